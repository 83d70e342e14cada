"""Asymptotic theory of M-estimators by quadrature: θ*, V = A⁻¹BA⁻¹, ARE, influence functions.

See :mod:`likelab.asymptotics.core` for the formulas and references, and
:mod:`likelab.asymptotics.bias` for the bias under contamination and the breakdown point.
"""

from __future__ import annotations

from likelab.asymptotics.bias import ContaminationBias, contamination_bias
from likelab.asymptotics.core import AsymptoticsResult, asymptotics

__all__ = ["AsymptoticsResult", "ContaminationBias", "asymptotics", "contamination_bias"]
