"""LightningDataModules by modality and the readers of real dataset formats."""
