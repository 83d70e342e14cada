r"""Choosing a robust objective's tuning parameter from the data: ``dpd:beta=auto``,
``gamma:gamma=auto`` and ``lq:q=auto`` in :func:`~likelab.estimate.fit`.

The parameter :math:`b` runs over a grid :math:`b_1 < \dots < b_G`; at each grid value the model
is fitted, giving :math:`\hat\theta_b` and its sandwich covariance :math:`\hat V_b / n`. The
estimated mean squared error of Warwick & Jones (2005) is

.. math::

    \widehat{\mathrm{MSE}}(b) = \sum_j (\hat\theta_{b,j} - \theta_{P,j})^2
        + \operatorname{tr}(\hat V_b) / n
      = \lVert \hat\theta_b - \theta_P \rVert^2 + \sum_j \mathrm{se}_{b,j}^2 ,

squared bias against a pilot estimate :math:`\theta_P` plus the variance (only the diagonal of
the sandwich enters: the trace is the sum of the squared standard errors). The chosen value is
its minimiser on the grid. One pass depends on the pilot; the *iterated* Warwick-Jones rule of
Basak, Basu & Jones (2021) takes the chosen value's estimate as the next pilot and repeats until
the choice stops changing (a fixed point: with :math:`\theta_P = \hat\theta_{b^*}` the minimiser
is :math:`b^*` again). The passes cannot cycle: a move from :math:`b` to :math:`b'` needs
:math:`\|\hat\theta_{b'} - \hat\theta_b\|^2 + \operatorname{tr}(\hat V_{b'})/n \le
\operatorname{tr}(\hat V_b)/n` (strictly, or an exact tie won by the lower grid index), so each
move lowers the variance term or, in a tie, the index; no value is visited twice and the choice
settles within G + 1 passes, the most :func:`likelab.estimate.fit` makes. A choice that has not
settled (only when :func:`select` is given fewer passes, e.g. ``max_iter=1``: the one-pass rule
of Warwick & Jones) says so (``settled`` false, with the last two values). The grid fits do not
depend on the pilot, so the passes cost nothing beyond the ``G`` fits.

Evidence. A grid value whose fit did not converge, or whose estimate or SE is not finite, is
excluded from the minimisation and reported with its reason (``excluded``); when no grid value is
usable the choice is undetermined (NaN, with the reason), never a default.

Conventions per objective (:data:`TUNABLE`): ``dpd`` and ``gamma`` tend to the log score as their
parameter goes to 0, so 0 on their grid means ``log`` (the maximum likelihood estimate, the most
efficient end); their default grid is 0, 0.05, ..., 1 and their default pilot the robust end
(``dpd:beta=1``, the L2E pilot of Warwick & Jones; ``gamma:gamma=1``). ``lq`` is ``log`` at
q = 1 and more robust as q falls; its default grid is 0.5, 0.55, ..., 1. Its default pilot is
``dpd:beta=1``, not ``lq:q=0.5``: the Lq estimator is not Fisher-consistent for a scale
parameter at q < 1 (at the normal model its scale tends to :math:`\sigma\sqrt{q}`; Ferrari &
Yang 2010), so its own robust end would be a biased pilot that the iteration does not leave: on
clean normal samples (n = 500) the pilot ``lq:q=0.5`` ends at q = 0.5, ``dpd:beta=1`` at q = 0.95
to 1.

References: Warwick & Jones (2005), Choosing a robustness tuning parameter, J. Statist. Comput.
Simul. 75(7):581-588; Basak, Basu & Jones (2021), On the 'optimal' density power divergence
tuning parameter, J. Appl. Stat. 48(3):536-556.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from likelab._spec import parse_spec
from likelab.errors import LikelabError, ParameterError, SpecError
from likelab.objectives import Objective, get_objective

__all__ = ["TUNABLE", "Tunable", "TuningResult", "auto_objective", "select"]


@dataclass(frozen=True)
class Tunable:
    """An objective whose parameter can be chosen from the data: its name, the parameter, the
    default grid, the grid value that means ``log`` (or ``None``) and the default pilot spec."""

    objective: str
    parameter: str
    grid: tuple[float, ...]
    log_at: float | None
    pilot: str

    @property
    def spec(self) -> str:
        """The spec as the user writes it: ``dpd:beta=auto``."""
        return f"{self.objective}:{self.parameter}=auto"

    def at(self, value: float) -> Objective:
        """The objective at one grid value (``log`` at :attr:`log_at`, the parameter's limit)."""
        if self.log_at is not None and value == self.log_at:
            return get_objective("log")
        return get_objective(self.objective, **{self.parameter: value})

    def check_grid(self, grid: Sequence[float] | None) -> tuple[float, ...]:
        """``grid`` (default :attr:`grid`) as sorted floats, or a :class:`ParameterError`: fewer
        than 2 values, a non-number, a repeat, or a value the objective refuses."""
        if grid is None:
            return self.grid
        if isinstance(grid, str | bytes) or not isinstance(grid, Sequence | np.ndarray):
            raise ParameterError(
                f"tune_grid must be a sequence of numbers (values of {self.parameter}), "
                f"got {grid!r}"
            )
        values = []
        for v in grid:
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
                raise ParameterError(f"tune_grid: {v!r} is not a number")
            if not math.isfinite(float(v)):
                raise ParameterError(f"tune_grid: {v!r} is not a finite number")
            values.append(float(v))
        if len(set(values)) != len(values):
            raise ParameterError(f"tune_grid: a value is given twice in {values}")
        if len(values) < 2:
            raise ParameterError(
                f"tune_grid needs at least 2 values of {self.parameter} to choose from, "
                f"got {values}"
            )
        for v in values:
            try:
                self.at(v)
            except LikelabError as exc:
                raise ParameterError(f"tune_grid for {self.spec}: {exc}") from None
        return tuple(sorted(values))


def _steps(lo: float, hi: float, step: float) -> tuple[float, ...]:
    k = round((hi - lo) / step)
    return tuple(round(lo + i * step, 10) for i in range(k + 1))


#: The objectives that accept ``PARAM=auto``, by name.
TUNABLE: dict[str, Tunable] = {
    "dpd": Tunable("dpd", "beta", _steps(0.0, 1.0, 0.05), 0.0, "dpd:beta=1"),
    "gamma": Tunable("gamma", "gamma", _steps(0.0, 1.0, 0.05), 0.0, "gamma:gamma=1"),
    "lq": Tunable("lq", "q", _steps(0.5, 1.0, 0.05), None, "dpd:beta=1"),
}


def auto_objective(spec: Any) -> Tunable | None:
    """The :class:`Tunable` that ``spec`` asks to tune (``"dpd:beta=auto"``), ``None`` for any
    other objective; a :class:`ParameterError` for ``auto`` where it is not supported
    (``pseudospherical:gamma=auto``, ``log:x=auto``).

    >>> auto_objective("dpd:beta=auto").parameter, auto_objective("dpd:beta=0.5")
    ('beta', None)
    """
    if not isinstance(spec, str) or "auto" not in spec.lower():
        return None
    try:
        parsed = parse_spec(spec, kind="objective")
    except SpecError:  # not a name:key=value spec (an import path, phi:EXPR): not ours
        return None
    keys = [k for k, v in parsed.kwargs.items() if isinstance(v, str) and v.lower() == "auto"]
    if not keys:
        return None
    tun = TUNABLE.get(parsed.name)
    if tun is None or keys != [tun.parameter] or len(parsed.kwargs) != 1:
        known = ", ".join(t.spec for t in TUNABLE.values())
        raise ParameterError(
            f"objective {spec.strip()!r}: '=auto' (a tuning parameter chosen from the data) is "
            f"supported for {known} only"
        )
    return tun


def select(
    theta: np.ndarray,
    variance: np.ndarray,
    usable: np.ndarray,
    pilot: np.ndarray,
    max_iter: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""The iterated Warwick-Jones choice on a grid, for R datasets at once.

    ``theta`` ``(R, G, P)``: the estimates at each grid value (P free parameter components);
    ``variance`` ``(R, G)``: :math:`\operatorname{tr}(\hat V_b)/n = \sum_j \mathrm{se}_{b,j}^2`;
    ``usable`` ``(R, G)``: which grid values may be chosen; ``pilot`` ``(R, P)``: the first pilot.
    Pass ``t`` minimises :math:`\|\hat\theta_b - \theta_P^{(t)}\|^2 + \operatorname{tr}(\hat
    V_b)/n` over the usable ``b`` and sets :math:`\theta_P^{(t+1)} = \hat\theta_{b_t}`; a dataset
    stops once :math:`b_t = b_{t-1}` (settled) or after ``max_iter`` passes (not settled;
    default G + 1, enough to settle always: see the module's docstring).

    Returns ``chosen`` ``(R,)`` (grid index; -1 where no grid value is usable), ``mse`` ``(R, G)``
    (the last pass's curve, NaN at unusable values: ``chosen`` is its argmin), ``iterations``
    ``(R,)``, ``settled`` ``(R,)`` and ``previous`` ``(R,)`` (the index chosen by the pass
    before the last, whose estimate was the last curve's pilot; -1 after one pass).

    >>> th = np.array([[[1.0], [0.1], [0.0]]])  # an outlying estimate at b_1, agreement after
    >>> chosen, mse, it, ok, _ = select(th, np.array([[0.01, 0.02, 0.04]]),
    ...                                 np.ones((1, 3), bool), np.array([[0.0]]))
    >>> int(chosen[0]), int(it[0]), bool(ok[0])
    (1, 2, True)
    """
    r, g, _ = theta.shape
    max_iter = g + 1 if max_iter is None else max_iter
    chosen = np.full(r, -1)
    previous = np.full(r, -1)
    iterations = np.zeros(r, dtype=np.int64)
    settled = np.zeros(r, dtype=bool)
    mse = np.full((r, g), np.nan)
    active = usable.any(axis=1)
    pilot = np.array(pilot, dtype=np.float64)
    rows = np.arange(r)
    for it in range(1, max_iter + 1):
        if not active.any():
            break
        curve = ((theta - pilot[:, None, :]) ** 2).sum(-1) + variance
        curve = np.where(usable, curve, np.nan)
        k = np.where(usable, curve, np.inf).argmin(axis=1)
        previous[active] = chosen[active]
        chosen[active] = k[active]
        mse[active] = curve[active]
        iterations[active] = it
        done = active & (chosen == previous)
        settled |= done
        active &= ~done
        pilot = np.where(active[:, None], theta[rows, np.maximum(chosen, 0)], pilot)
    return chosen, mse, iterations, settled, previous


@dataclass(frozen=True)
class TuningResult:
    """How a tuning parameter was chosen (:attr:`FitResult.tuning
    <likelab.estimate.FitResult>`): the grid, the MSE curve minimised, the estimates along the
    grid (the 'monitoring' path), the pilot, the passes and whether the choice settled.

    For one dataset of shape ``(n,)`` per-dataset fields are scalars and per-grid fields have
    shape ``(G,)``; for data of shape ``(R, n)`` they gain a leading axis of length R.
    """

    #: The tuned parameter (``beta``) and the objective spec asked for (``dpd:beta=auto``).
    parameter: str
    objective: str
    #: The grid of values, ascending; for dpd and gamma, 0 means the log score (the limit).
    grid: tuple[float, ...]
    #: The chosen value (NaN where undetermined: see ``reason``).
    chosen: np.ndarray | float
    #: The last pass's estimated MSE at each grid value; NaN where excluded.
    mse: np.ndarray
    #: tr(V_b)/n = sum of the squared sandwich SEs at each grid value (the MSE's variance term).
    variance: np.ndarray
    #: The estimates at each grid value, by parameter (the monitoring path).
    path: dict[str, np.ndarray]
    #: Why a grid value was excluded from the choice ("" where it was usable).
    excluded: np.ndarray
    #: The first pilot: a spec, or "given values", and its estimates.
    pilot: str
    pilot_params: dict[str, np.ndarray | float]
    #: The Warwick-Jones passes made, and whether the choice settled (a fixed point).
    iterations: np.ndarray | int
    settled: np.ndarray | bool
    #: "" where a value was chosen and settled; otherwise why it is undetermined or unsettled.
    reason: np.ndarray | str

    @property
    def usable(self) -> np.ndarray:
        """Which grid values could be chosen."""
        return np.asarray(self.excluded) == ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite floats become ``None``)."""
        from likelab.estimate.fit import _json

        return {
            "parameter": self.parameter,
            "objective": self.objective,
            "grid": list(self.grid),
            "chosen": _json(self.chosen),
            "mse": _json(self.mse),
            "variance": _json(self.variance),
            "path": {k: _json(v) for k, v in self.path.items()},
            "excluded": _json(self.excluded),
            "pilot": self.pilot,
            "pilot_params": {k: _json(v) for k, v in self.pilot_params.items()},
            "iterations": _json(self.iterations),
            "settled": _json(self.settled),
            "reason": _json(self.reason),
        }
