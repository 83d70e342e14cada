"""Properness: is an objective's expected score minimised by the true distribution?

So far the *classes* setting (forecasts over the whole K-simplex), :func:`check_classes`. The
density setting (expected scores by quadrature over a forecast family) is still to come.
"""

from __future__ import annotations

from likelab.properness.classes import ClassesVerdict, check_classes, class_truths

__all__ = ["ClassesVerdict", "check_classes", "class_truths"]
