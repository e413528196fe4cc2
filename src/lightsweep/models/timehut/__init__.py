"""TimeHUT: TS2Vec encoder + scheduled-temperature hierarchical contrastive loss + angular margin (spec: shared/spec/timehut.md)."""
