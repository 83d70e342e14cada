"""What an objective looks like over a model's parameters, and where the naive product breaks.

- :func:`evaluate`: objectives over a 1-D or 2-D parameter grid, every local minimum, the flat
  (zero-gradient) part; :func:`seed_example` is the seed's figure (sum of likelihoods vs product
  vs log-product for N(mu, 0.1²)).
- :func:`find_local_minima`: plateau-aware local minima of a sampled function.
- :func:`underflow`: where the product of per-sample likelihoods, and its gradient, become
  subnormal and then exactly zero in each floating type, while the log-product does not.
"""

from __future__ import annotations

from likelab.landscape.grid import (
    Landscape,
    Minimum,
    ObjectiveLandscape,
    evaluate,
    evaluation_cost,
    seed_example,
)
from likelab.landscape.minima import find_local_minima
from likelab.landscape.underflow import UnderflowReport, underflow

__all__ = [
    "Landscape",
    "Minimum",
    "ObjectiveLandscape",
    "UnderflowReport",
    "evaluate",
    "evaluation_cost",
    "find_local_minima",
    "seed_example",
    "underflow",
]
