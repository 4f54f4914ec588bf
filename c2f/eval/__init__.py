"""Evaluation: the exact TVR metrics and prediction files (c2f.eval.predict runs a model to make them)."""

from c2f.eval.metrics import QueryOutcome, compute_metrics, per_query_outcomes
from c2f.eval.predictions import TVRPredictions, read_predictions, write_predictions

__all__ = [
    "QueryOutcome",
    "TVRPredictions",
    "compute_metrics",
    "per_query_outcomes",
    "read_predictions",
    "write_predictions",
]
