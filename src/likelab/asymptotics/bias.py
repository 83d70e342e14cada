r"""Asymptotic bias under contamination and a numerical breakdown point.

Under Huber's gross-error model :math:`P_\varepsilon = (1-\varepsilon) P + \varepsilon G`
(Huber 1964, Ann. Math. Statist. 35:73-101) an M-estimator converges to
:math:`\theta^*(\varepsilon) = \arg\min_\theta E_{P_\varepsilon} S(Q_\theta, Y)`; its asymptotic
bias is :math:`\theta^*(\varepsilon) - \theta^*(0)`, whose slope at 0 is the influence function
averaged over G (Hampel et al. 1986, sec. 2.1-2.2). For the log score in the normal location
family it is :math:`\varepsilon\,(E_G Y - \mu)`: the mean follows the outliers.

The *numerical breakdown point* is the smallest ε at which the estimate runs away: the largest
change of a free parameter :math:`\max_j|\theta^*_j(\varepsilon) - \theta^*_j(0)|` exceeds
``bound``, or θ* stops existing inside the parameter space (a scale running to 0 or ∞). It is
located on the grid and refined by bisection between the last ε that holds and the first that
breaks. With a fixed contamination G this is the breakdown *against that G*, a lower-level
version of Hampel's breakdown point (which takes the worst G).

G may be any data-generating process, in particular a point mass :math:`\delta_{x_0}`
(``"point:at=8"``), the gross error of Hampel's influence function: then
:math:`E_{P_\varepsilon} S(Q_\theta, Y) = (1-\varepsilon) E_P S(Q_\theta, Y) + \varepsilon
S(Q_\theta, x_0)` is computed exactly (the atom's term is added, not integrated), and for the log
score in the normal location family the bias is exactly :math:`\varepsilon (x_0 - \mu)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from likelab.errors import ParameterError, UnsupportedError
from likelab.families import Family, as_family
from likelab.families.dgp import Contaminated, DataGeneratingProcess, parse_dgp
from likelab.families.mixture import PointMass
from likelab.families.quadrature import centre_scale
from likelab.objectives import Objective, get_objective
from likelab.properness.density import density_setting

__all__ = ["ContaminationBias", "contamination_bias"]

_BISECT = 10  # halvings of the bracket around the breakdown point: width / 1024


@dataclass(frozen=True)
class ContaminationBias:
    """θ*(ε) and θ*(ε) − θ*(0) on a grid of ε, and the numerical breakdown point.

    ``theta_star[name][k]`` and ``bias[name][k]`` belong to ``eps[k]`` (NaN where θ* does not
    exist, ``reasons[k]`` says why). ``breakdown`` is the smallest ε found to break (None if no
    ε up to the grid's largest breaks); ``breakdown_evidence`` gives the bracket and the rule.
    """

    objective: str
    family: str
    truth: str
    contamination: str
    params: tuple[str, ...]
    eps: list[float]
    theta_star: dict[str, list[float]]
    bias: dict[str, list[float]]
    reasons: list[str]
    bound: float
    breakdown: float | None
    breakdown_evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "family": self.family,
            "truth": self.truth,
            "contamination": self.contamination,
            "eps": self.eps,
            "theta_star": self.theta_star,
            "bias": self.bias,
            "reasons": self.reasons,
            "bound": self.bound,
            "breakdown": self.breakdown,
            "breakdown_evidence": self.breakdown_evidence,
        }


def contamination_bias(
    objective: str | Objective | Callable[..., torch.Tensor],
    family: str | Family,
    truth: str | DataGeneratingProcess,
    contamination: str | DataGeneratingProcess,
    eps: Sequence[float],
    fixed: Mapping[str, float] | None = None,
    *,
    bound: float | None = None,
    bisect: int = _BISECT,
) -> ContaminationBias:
    r"""θ*(ε) − θ*(0) under :math:`(1-\varepsilon)\,\mathrm{truth} + \varepsilon\,
    \mathrm{contamination}` for each ε in ``eps`` (each in [0, 1)), and the breakdown point
    (module docs). ``contamination`` is any data-generating process, e.g. the point mass
    ``"point:at=8"``. ``bound`` defaults to half the distance between the centres (means, else
    medians; a point mass's own location) of the truth and the contamination: past it the
    estimate is nearer the outliers than the data. ``bisect`` halvings refine the breakdown
    point inside its bracket on the grid (0: the first ε of the grid that breaks, an upper
    bound; ``breakdown_evidence["bracket"]`` holds the bracket either way).

    >>> r = contamination_bias("log", "normal:scale=1", "normal:loc=0,scale=1",
    ...                        "normal:loc=8,scale=1", [0.0, 0.1])
    >>> round(r.bias["loc"][1], 10)
    0.8
    >>> r = contamination_bias("log", "normal:scale=1", "normal:loc=0,scale=1", "point:at=8",
    ...                        [0.1])
    >>> round(r.bias["loc"][0], 10)
    0.8
    """
    obj = get_objective(objective)
    if obj.batch_level:
        raise UnsupportedError(f"{obj.name!r} is a batch-level objective, not a scoring rule")
    grid = []
    for e in eps:
        try:
            v = float(e)
        except (TypeError, ValueError):
            raise ParameterError(f"ε must be a number in [0, 1), got {e!r}") from None
        if isinstance(e, bool):
            raise ParameterError(f"ε must be a number in [0, 1), got {e!r}")
        if not 0.0 <= v < 1.0:
            raise ParameterError(f"ε must lie in [0, 1), got {v!r}")
        grid.append(v)
    if not grid:
        raise ParameterError("give at least one ε")
    grid = sorted(set(grid))
    fam = as_family(family)
    if fixed:
        fam = fam.fix(**dict(fixed))
    base = parse_dgp(truth) if isinstance(truth, str) else truth
    outlier = parse_dgp(contamination) if isinstance(contamination, str) else contamination
    # both must be resolvable and inside the family's support
    density_setting(base, fam)
    density_setting(outlier, fam)
    if bound is None:
        c0 = _centre(base)
        c1 = _centre(outlier)
        bound = 0.5 * abs(c1 - c0)
        if not bound > 0:
            raise ParameterError(
                "the truth and the contamination have the same centre: give a bound"
            )
    elif isinstance(bound, bool) or not (
        isinstance(bound, int | float) and math.isfinite(bound) and bound > 0
    ):
        raise ParameterError(f"bound must be a positive number, got {bound!r}")
    if isinstance(bisect, bool) or not isinstance(bisect, int) or bisect < 0:
        raise ParameterError(f"bisect must be an integer >= 0, got {bisect!r}")
    from likelab.asymptotics.core import _theta_star

    names = fam.free

    def solve(e: float) -> tuple[torch.Tensor | None, str]:
        dgp = base if e == 0.0 else Contaminated(base, outlier, e)
        return _theta_star(obj, fam, dgp)

    theta0, why0 = solve(0.0)
    if theta0 is None:
        raise ParameterError(f"no θ* on the uncontaminated truth, so no bias: {why0}")

    def broken(th: torch.Tensor | None) -> bool:
        return th is None or float((th - theta0).abs().max()) > bound

    thetas, reasons = [], []
    for e in grid:
        th, why = (theta0, "") if e == 0.0 else solve(e)
        thetas.append(th)
        reasons.append(why)
    theta_star = {
        k: [math.nan if th is None else float(th[j]) for th in thetas] for j, k in enumerate(names)
    }
    bias = {
        k: [math.nan if th is None else float(th[j] - theta0[j]) for th in thetas]
        for j, k in enumerate(names)
    }
    breakdown, evidence = (
        None,
        {"rule": f"max_j |θ*_j(ε) - θ*_j(0)| > {bound:g}, or no θ* inside the parameter space"},
    )
    first = next((i for i, th in enumerate(thetas) if broken(th)), None)
    if first is None:
        evidence["note"] = f"no ε up to {grid[-1]:g} breaks"
    else:
        lo = grid[first - 1] if first > 0 else 0.0
        hi = grid[first]
        for _ in range(bisect):
            mid = 0.5 * (lo + hi)
            th, _ = solve(mid)
            if broken(th):
                hi = mid
            else:
                lo = mid
        breakdown = hi
        evidence["bracket"] = [lo, hi]
    return ContaminationBias(
        objective=obj.spec,
        family=fam.spec,
        truth=base.spec,
        contamination=outlier.spec,
        params=names,
        eps=grid,
        theta_star=theta_star,
        bias=bias,
        reasons=reasons,
        bound=float(bound),
        breakdown=breakdown,
        breakdown_evidence=evidence,
    )


def _centre(dgp: DataGeneratingProcess) -> float:
    d = dgp.distribution()
    if isinstance(d, PointMass):
        return float(d.loc)
    c, _ = centre_scale(d, d.support, torch.float64, torch.device("cpu"))
    return float(c)
