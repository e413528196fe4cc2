"""TimeHUT: TS2Vec encoder + scheduled-temperature hierarchical contrastive loss + angular margin.

TS2Vec: Yue et al., AAAI 2022 (arXiv 2106.10466), code zhihanyue/ts2vec. TimeHUT: Jalali et al., arXiv 2510.01658,
code aminjalali-research/TimeHUT and aminjalali-research/TSlib (models/timehut/)."""
