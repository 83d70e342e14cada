"""Batched M-estimation: fit any family with any objective, many datasets at once.

>>> import numpy as np
>>> from likelab.estimate import fit
>>> y = np.random.default_rng(0).standard_t(3, size=(4, 200))
>>> res = fit(y, "student_t")
>>> res.params["df"].shape, bool(res.converged.all())
((4,), True)
"""

from __future__ import annotations

from likelab.estimate.fit import FitComparison, FitFailure, FitResult, fit, fit_objectives
from likelab.estimate.newton import NewtonResult, newton_minimize
from likelab.estimate.sandwich import sandwich_covariance
from likelab.estimate.tuning import TuningResult

__all__ = [
    "FitComparison",
    "FitFailure",
    "FitResult",
    "NewtonResult",
    "TuningResult",
    "fit",
    "fit_objectives",
    "newton_minimize",
    "sandwich_covariance",
]
