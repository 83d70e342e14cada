"""The classification lab: train networks with any objective and see what they learn.

Datasets with known :math:`P(Y \\mid X)` where possible (:mod:`likelab.classify.datasets`),
label noise, models (:mod:`likelab.classify.models`), a PyTorch trainer that takes any objective
of the registry (:mod:`likelab.classify.trainer`) and test-set metrics
(:mod:`likelab.classify.metrics`).
"""

from __future__ import annotations

from likelab.classify.datasets import (
    CORPUS,
    Dataset,
    add_label_noise,
    list_datasets,
    load_dataset,
)
from likelab.classify.metrics import classification_metrics, reliability
from likelab.classify.models import build_model
from likelab.classify.trainer import Comparison, TrainResult, compare, train

__all__ = [
    "CORPUS",
    "Comparison",
    "Dataset",
    "TrainResult",
    "add_label_noise",
    "build_model",
    "classification_metrics",
    "compare",
    "list_datasets",
    "load_dataset",
    "reliability",
    "train",
]
