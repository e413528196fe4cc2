"""LightningModules, one family per module; `registry` maps a dataset's modality to a family."""
