"""Asymptotic theory of M-estimators by quadrature: θ*, V = A⁻¹BA⁻¹, ARE, influence functions.

See :mod:`likelab.asymptotics.core` for the formulas and references, and
:mod:`likelab.asymptotics.bias` for the bias under contamination and the breakdown point.
``likelab.asymptotics`` (the attribute of the top-level package) is the *function*
:func:`asymptotics`; import from this package with ``from likelab.asymptotics import ...``.

>>> import math
>>> from likelab.asymptotics import asymptotics
>>> r = asymptotics("crps", "normal:scale=1", "normal:loc=0,scale=1")
>>> round(r.are_vs_log["loc"], 6) == round(3 / math.pi, 6)  # V = π/3: ψ = 2Φ - 1, A = 1/√π
True
"""

from __future__ import annotations

from likelab.asymptotics.bias import ContaminationBias, contamination_bias
from likelab.asymptotics.core import AsymptoticsResult, asymptotics

__all__ = ["AsymptoticsResult", "ContaminationBias", "asymptotics", "contamination_bias"]
