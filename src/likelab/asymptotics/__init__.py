"""Asymptotic theory of M-estimators by quadrature: θ*, V = A⁻¹BA⁻¹, ARE, influence functions.

See :mod:`likelab.asymptotics.core` for the formulas and references.
"""

from __future__ import annotations

from likelab.asymptotics.core import AsymptoticsResult, asymptotics

__all__ = ["AsymptoticsResult", "asymptotics"]
