"""Model-health maths: component scores, the weighted overall score and per-layer diagnostics."""
