r"""Properness over a forecast family: is :math:`E_{Y \sim P} S(Q_\theta, Y)` minimised at P?

For a true distribution P and a parametric forecast family :math:`\{Q_\theta\}`,
:func:`check_density` computes the expected score :math:`\bar S(\theta) = E_P S(Q_\theta, Y)` by
quadrature (:func:`~likelab.properness.expected.expected_score`, never a Monte Carlo average),
minimises it over θ in the family's unconstrained coordinates with the batched Newton optimiser
of :mod:`likelab.estimate.newton` from several starts (P's own parameters, a fit to a large
seeded sample of P, and random perturbations of that fit), and compares the optimum θ* with P.

When P belongs to the family (same family, and P agrees with the family's fixed parameters),
a verdict, with the tolerances that decide it:

- ``improper``: P is beaten: :math:`\bar S(\theta_P) - \bar S(\theta^*) > \tau_S`, with
  :math:`\tau_S = 10^{-9}(1 + E_P|S(Q_{\theta_P}, Y)|)`. The quadrature error is below
  :math:`10^{-10} E_P|S|` (the rule is refined until it is), ten times smaller;
- ``proper``: P is not beaten, but some start ends (converged, or on an exactly flat stretch)
  at another θ whose expected score is within :math:`\tau_S` of P's while
  :math:`\max_j |u^*_j - u_{P,j}| > 10^{-3}` on the unconstrained scale (log for scales, so a
  relative difference of 0.1%);
- ``strictly proper``: P is not beaten and every converged start returns to P (to
  :math:`10^{-3}`), at least one start having converged;
- ``undetermined``: P is not beaten, but its expected score is not finite, or no start
  converged to a finite minimum (``how`` gives the starts' stops): no verdict rests on an empty
  set or a non-finite number.

Before any of this, the truth must be resolved by the quadrature: its density must integrate to
1 (to 1e-6) on the nodes (:func:`~likelab.properness.expected.truth_mass`); a truth whose
log-density underflows (a normal scale below ~1e-154, whose square is 0) or whose nodes round
onto one point (a scale below ~1e-16 of its location) is refused with a ParameterError.

This is properness *relative to the family*: a rule improper over all distributions can still
be minimised at P within a small family, and the verdict only speaks for the truth tried. The
evidence says how the optimum is wrong: ``linear`` under N(0, 1) drives the forecast scale to 0
(the search stops at the edge of the parameter space, scale = e^-25); ``lq:q=0.5`` settles at
the scale :math:`\sqrt{q}`.

When P is outside the family (another family, a contamination mixture) there is no verdict: the
optimum is reported as such. For the log score it is the Kullback-Leibler projection of P onto
the family (e.g. moment matching for a normal family).
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from likelab.errors import ParameterError, UnsupportedError
from likelab.estimate.newton import NewtonResult, newton_minimize
from likelab.families import Family, as_family, get_family
from likelab.families.dgp import DataGeneratingProcess, FamilyDGP, MixtureDGP, parse_dgp
from likelab.families.mixture import Mixture, PointMass, support_bounds
from likelab.families.quadrature import dtype_device
from likelab.objectives import Objective, get_objective
from likelab.properness.classes import UNDETERMINED, Verdict, claim_of
from likelab.properness.expected import (
    ExpectedScore,
    expected_score,
    expected_score_details,
    truth_mass,
)

__all__ = ["DensityVerdict", "check_density"]

SCORE_TOL = 1e-9  # relative gap in expected score that refutes properness
PARAM_TOL = 1e-3  # distance on the unconstrained scale that makes an optimum "another forecast"
EDGE = 25.0  # |u| beyond this: the optimum is at the edge of the parameter space (e^±25)
_SAMPLE = 4096  # draws from the truth for the fitted start and the support check
_DRIFT = 5.0  # a start that moved this far on a log/logit scale is followed towards the edge
_LADDER = 8  # points on the way to the edge
_MASS_TOL = 1e-6  # |∫p - 1| on the quadrature's nodes beyond which the truth is unresolved


@dataclass(frozen=True)
class DensityVerdict(Verdict):
    """The verdict for one objective, one truth and one forecast family, with its evidence.

    ``verdict`` is ``None`` when the truth is not in the family; ``optimum`` and ``value`` are
    the best forecast found and its expected score; ``at_truth``, ``gap`` (at_truth - value,
    > 0: the truth is beaten) and ``distance`` (on the unconstrained scale) exist only when the
    truth is in the family.
    """

    truth: str
    family: str
    truth_params: dict[str, float] | None
    optimum: dict[str, float]
    value: float
    at_truth: float | None
    gap: float | None
    distance: float | None
    how: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._head(),
            "truth": self.truth,
            "family": self.family,
            "truth_params": self.truth_params,
            "optimum": self.optimum,
            "value": self.value,
            "at_truth": self.at_truth,
            "gap": self.gap,
            "distance": self.distance,
            "how": self.how,
            "reason": self.reason,
        }


def density_setting(
    truth: str | DataGeneratingProcess, family: str | Family | None = None, seed: int = 0
) -> tuple[DataGeneratingProcess, Family, torch.distributions.Distribution, torch.Tensor]:
    """The checked setting of :func:`check_density`, shared by every objective judged in it: the
    truth, the forecast family, the truth's distribution and a sample of it. Raises what the
    setting itself gets wrong (a truth that is not a spec, a mixture without a family, a family
    with nothing free, a support the family cannot cover, a truth the quadrature cannot
    resolve), whatever the objective. The truth's mass on the quadrature's nodes, the costly
    part, is computed once per truth (:func:`_truth_mass`).
    """
    dgp = parse_dgp(truth) if isinstance(truth, str) else truth
    if not isinstance(dgp, DataGeneratingProcess):
        raise ParameterError(
            f"the truth must be a data-generating spec such as 'normal:loc=0,scale=1', got "
            f"{type(truth).__name__}"
        )
    if family is None:
        if not isinstance(dgp, FamilyDGP):
            what = "a mixture" if isinstance(dgp, MixtureDGP) else "not a member of a family"
            raise ParameterError(
                f"the truth {dgp.spec!r} is {what}: name the forecast family to fit to it"
            )
        fam = get_family(dgp.family.name)
    else:
        fam = as_family(family)
    if not fam.free:
        raise ParameterError(f"the forecast family {fam.spec!r} has no free parameter to vary")
    p_dist = dgp.distribution()
    sample = dgp.sample(_SAMPLE, seed=np.random.SeedSequence([seed, 0x5EED]).generate_state(1)[0])
    _check_support(dgp, p_dist, fam, sample)
    mass = _truth_mass(dgp, p_dist)
    if not abs(mass - 1.0) <= _MASS_TOL:
        raise ParameterError(
            f"the truth {dgp.spec} cannot be resolved in {dtype_device(p_dist)[0]}: its "
            f"density integrates to {mass:.6g} on the quadrature's nodes, not 1 (a scale so "
            "small that its log-density underflows, or so small against its location that the "
            "nodes round onto one point); no verdict can rest on it. Rescale the problem"
        )
    return dgp, fam, p_dist, sample


_MASS_CACHE: OrderedDict[tuple[Any, ...], float] = OrderedDict()
_MASS_CACHE_SIZE = 256


def _dgp_key(dgp: DataGeneratingProcess) -> tuple[Any, ...]:
    """What identifies a truth's distribution: its spec (floats at full precision) and the
    classes that build it (of the process, of its family, of a mixture's every component), so
    that a re-registered family under the same name is another truth."""
    comps = getattr(dgp, "components", None)
    inner = tuple(_dgp_key(c) for c in comps) if comps is not None else ()
    fam = getattr(dgp, "family", None)
    return (type(dgp), type(fam), getattr(fam, "num_classes", None), dgp.spec, inner)


def _truth_mass(dgp: DataGeneratingProcess, p_dist: torch.distributions.Distribution) -> float:
    """:func:`~likelab.properness.expected.truth_mass` of ``p_dist``, computed once per truth
    (keyed by :func:`_dgp_key`): every objective judged on the same truth shares it."""
    key = (_dgp_key(dgp), dtype_device(p_dist)[0])
    if key in _MASS_CACHE:
        _MASS_CACHE.move_to_end(key)
        return _MASS_CACHE[key]
    mass = truth_mass(p_dist)
    _MASS_CACHE[key] = mass
    while len(_MASS_CACHE) > _MASS_CACHE_SIZE:
        _MASS_CACHE.popitem(last=False)
    return mass


def check_density(
    objective: str | Objective | Callable[..., torch.Tensor],
    truth: str | DataGeneratingProcess,
    family: str | Family | None = None,
    *,
    starts: int = 4,
    seed: int = 0,
    max_iter: int = 100,
    on_progress: Callable[[int, int], None] | None = None,
) -> DensityVerdict:
    """Minimise ``E_P S(Q_θ, Y)`` over the family and judge ``objective``; see the module docs.

    ``truth`` is a data-generating spec (``"normal:loc=0,scale=1"``, or a mixture such as
    ``"0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1"``); ``family`` the forecast family
    (default: the truth's own family with every parameter free).

    >>> check_density("log", "normal:loc=0,scale=1").verdict
    'strictly proper'
    >>> v = check_density("linear", "normal:loc=0,scale=1")
    >>> v.verdict, v.optimum["scale"] < 1e-10
    ('improper', True)
    """
    obj = get_objective(objective)
    if obj.batch_level:
        raise UnsupportedError(f"{obj.name!r} is a batch-level objective, not a scoring rule")
    if isinstance(starts, bool) or not isinstance(starts, int) or starts < 1:
        raise ParameterError(f"starts must be an integer >= 1, got {starts!r}")
    dgp, fam, p_dist, sample = density_setting(truth, family, seed)
    theta_p = _truth_params(dgp, fam)
    u_p = None if theta_p is None else fam.to_unconstrained(theta_p).to(torch.float64)
    u0 = start_points(dgp, fam, sample, starts, seed)

    def forecast(u: torch.Tensor) -> torch.distributions.Distribution:
        return fam.distribution_unchecked(fam.to_natural(u))

    def scores(u: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        return expected_score(obj, p_dist, forecast(u))

    try:
        with torch.no_grad():
            scores(u0[:1])
    except UnsupportedError as exc:
        raise UnsupportedError(f"{obj.spec} cannot score {fam.spec} forecasts: {exc}") from None

    res = newton_minimize(scores, u0, max_iter=max_iter, on_progress=on_progress)
    res = _follow_to_edges(lambda u: expected_score_details(obj, p_dist, forecast(u)), fam, u0, res)
    values = torch.where(torch.isfinite(res.value), res.value, torch.full_like(res.value, math.inf))
    best = int(torch.argmin(values))
    u_best = res.u[best]
    optimum = _natural(fam, u_best)
    value = float(res.value[best])
    claimed = claim_of(obj)
    common = {
        "objective": obj.spec,
        "setting": "density",
        "claimed": claimed,
        "truth": dgp.spec,
        "family": fam.spec,
        "optimum": optimum,
        "value": value,
        "reason": res.reason[best],
    }
    details = {
        "starts": [
            {
                "optimum": _natural(fam, res.u[i]),
                "value": float(res.value[i]),
                "reason": res.reason[i],
            }
            for i in range(u0.shape[0])
        ]
    }
    if u_p is None:
        return DensityVerdict(
            verdict=None,
            truth_params=None,
            at_truth=None,
            gap=None,
            distance=None,
            how=_how_outside(obj, fam, optimum, u_best, res.reason[best]),
            details=details,
            **common,
        )

    with torch.no_grad():
        q_p = fam.distribution_unchecked(fam.to_natural(u_p.unsqueeze(0)))
        at_p, scale_p, _ = expected_score_details(obj, p_dist, q_p)
    at_truth = float(at_p[0])
    tol = SCORE_TOL * (1.0 + float(scale_p[0]))
    dist_all = (res.u - u_p).abs().amax(-1)
    finite = torch.isfinite(res.value)
    converged = res.converged & finite
    # a tie needs a start that stopped at a minimum or on an exactly flat stretch ("flat":
    # gradient and Hessian 0), not one that ran out of iterations on a shallow slope
    stopped = converged | (torch.as_tensor([r == "flat" for r in res.reason]) & finite)
    ties = (values <= at_truth + tol) & (dist_all > PARAM_TOL) & stopped
    gap = at_truth - value
    undetermined = ""
    if not math.isfinite(at_truth):
        verdict, shown = UNDETERMINED, best
        undetermined = (
            f"undetermined: the expected {obj.spec} score of the truth is {at_truth}; "
            "non-finite numbers are no evidence for a verdict"
        )
    elif math.isfinite(value) and gap > tol:
        verdict, shown = "improper", best
    elif bool(ties.any()):
        verdict, shown = "proper", int(torch.nonzero(ties)[0])
    elif bool(converged.any()):
        verdict = "strictly proper"
        # the converged start farthest from the truth: how close "returned to the truth" is
        far = torch.where(converged, dist_all, torch.full_like(dist_all, -1.0))
        shown = int(torch.argmax(far))
    else:
        verdict, shown = UNDETERMINED, best
        stops = ", ".join(f"{n} × {r}" for r, n in sorted(Counter(res.reason).items()))
        undetermined = (
            f"undetermined: none of the {len(res.reason)} starts converged to a finite "
            f"minimum (stops: {stops}), so nothing shows where the expected score is minimised"
        )
    u_show = res.u[shown]
    shown_opt = _natural(fam, u_show)
    details["returned"] = f"{int(converged.sum())} of {len(res.reason)} starts converged"
    how = undetermined or _how_inside(fam, theta_p, shown_opt, u_show, u_p, verdict)
    if verdict == "strictly proper" and int(converged.sum()) < len(res.reason):
        how += f" ({details['returned']})"
    return DensityVerdict(
        verdict=verdict,
        truth_params={k: float(v) for k, v in theta_p.items()},
        at_truth=at_truth,
        gap=at_truth - float(res.value[shown]),
        distance=float((u_show - u_p).abs().max()),
        how=how,
        details=details,
        **{
            **common,
            "optimum": shown_opt,
            "value": float(res.value[shown]),
            "reason": res.reason[shown],
        },
    )


def start_points(
    dgp: DataGeneratingProcess, fam: Family, sample: torch.Tensor, starts: int = 4, seed: int = 0
) -> torch.Tensor:
    """The starts of :func:`check_density`'s search, rows in the family's unconstrained
    coordinates: the truth's own parameters (when it is in the family), a fit to ``sample``
    (:meth:`Family.start`), and perturbations of that fit by N(0, 1) draws (seeded by ``seed``)
    up to ``starts`` rows."""
    theta_p = _truth_params(dgp, fam)
    u_p = None if theta_p is None else fam.to_unconstrained(theta_p).to(torch.float64)
    u_fit = fam.to_unconstrained(fam.start(sample)).to(torch.float64)
    rng = np.random.default_rng(seed)
    rows = ([] if u_p is None else [u_p]) + [u_fit]
    while len(rows) < starts:
        rows.append(u_fit + torch.as_tensor(rng.normal(0.0, 1.0, size=u_fit.shape)))
    return torch.stack(rows)


def _follow_to_edges(
    details: Callable[[torch.Tensor], ExpectedScore],
    fam: Family,
    u0: torch.Tensor,
    res: NewtonResult,
) -> NewtonResult:
    """Check whether a start that drifted far along a log- or logit-scale coordinate stopped
    only because the expected score flattens out there (the gradient falls below tolerance long
    before the edge, as for ``linear``, whose expected score approaches -p(μ) like σ² when the
    forecast scale σ → 0). If the score keeps falling (or stays level) on a ladder of points out
    to ``e^±25``, the infimum is at the edge: the start is moved there, with reason ``"edge"``."""
    u, value, reason = res.u.clone(), res.value.clone(), list(res.reason)
    domains = [fam.param(name).domain for name in fam.free]
    for i in range(u.shape[0]):
        if not math.isfinite(float(value[i])):
            continue
        for j, domain in enumerate(domains):
            moved = float(u[i, j] - u0[i, j])
            if domain not in ("positive", "unit") or abs(moved) < _DRIFT:
                continue
            end = math.copysign(EDGE, moved)
            if (end - float(u[i, j])) * moved <= 0:  # already at or beyond the edge
                continue
            ladder = u[i].repeat(_LADDER + 1, 1)
            ladder[:, j] = torch.linspace(float(u[i, j]), end, _LADDER + 1, dtype=u.dtype)
            with torch.no_grad():
                along, _, error = details(ladder)
            # non-increasing up to the quadrature's own error (and rounding)
            slack = 1e-12 * (1.0 + along.abs()) + error.nan_to_num(nan=0.0)
            rises = torch.diff(along) > slack[1:] + slack[:-1]
            if bool(torch.isfinite(along).all()) and not bool(rises.any()):
                u[i] = ladder[-1]
                value[i] = along[-1]
                reason[i] = "edge"
    return NewtonResult(u=u, value=value, n_iter=res.n_iter, reason=reason)


def _truth_params(dgp: DataGeneratingProcess, fam: Family) -> dict[str, torch.Tensor] | None:
    """P's values of the family's free parameters, or None when P is not in the family."""
    if not isinstance(dgp, FamilyDGP) or dgp.family.name != fam.name:
        return None
    params = dgp.family.fixed
    for name, value in fam.fixed.items():
        if not torch.allclose(
            params[name].to(torch.float64), value.to(torch.float64), rtol=1e-12, atol=0.0
        ):
            return None
    if getattr(dgp.family, "num_classes", None) != getattr(fam, "num_classes", None):
        return None
    return {name: params[name] for name in fam.free}


def _check_support(
    dgp: DataGeneratingProcess,
    p_dist: torch.distributions.Distribution,
    fam: Family,
    sample: np.ndarray,
) -> None:
    """Refuse a truth with mass where the family has none (its forecasts would score ±inf):
    a sample, the ends of every component's support (just inside an open end of a continuous
    one) and every atom exactly (a point mass at 0 for a family on y > 0 is refused, however
    small its weight)."""
    points = [float(x) for x in sample[:256]]
    comps = p_dist.components if isinstance(p_dist, Mixture) else [p_dist]
    for comp in comps:
        if isinstance(comp, PointMass):
            points.append(float(comp.loc))
            continue
        lo, hi = (float(b) for b in support_bounds(comp.support, dtype=torch.float64))
        if comp.support.is_discrete:
            points += [
                lo if math.isfinite(lo) else -(2.0**40),
                hi if math.isfinite(hi) else 2.0**40,
            ]
        else:
            points += [
                np.nextafter(lo, math.inf) if math.isfinite(lo) else -1e300,
                np.nextafter(hi, -math.inf) if math.isfinite(hi) else 1e300,
            ]
    t = torch.as_tensor(points, dtype=torch.float64)
    outside = ~fam.in_support(t)
    if bool(outside.any()):
        y = float(t[outside][0])
        raise ParameterError(
            f"the truth {dgp.spec} puts mass outside the support of the family {fam.spec!r} "
            f"({fam.support}), e.g. at y = {y:g}: choose a family whose support contains the "
            "truth's"
        )


def _natural(fam: Family, u: torch.Tensor) -> dict[str, float]:
    return {k: _plain(v) for k, v in fam.to_natural(u.detach()).items()}


def _plain(v: torch.Tensor) -> Any:
    return float(v) if v.dim() == 0 else [float(x) for x in v]


def _edge_words(fam: Family, name: str, u: float) -> str | None:
    domain = fam.param(name).domain
    if abs(u) < EDGE or domain == "real":
        return None
    if domain == "positive":
        return "→ 0" if u < 0 else "→ ∞"
    if domain == "unit":
        return "→ 0" if u < 0 else "→ 1"
    return None


def _describe(fam: Family, optimum: dict[str, float], u: torch.Tensor) -> list[str]:
    parts, i = [], 0
    for name in fam.free:
        value = optimum[name]
        edge = _edge_words(fam, name, float(u[i])) if not isinstance(value, list) else None
        shown = f"{value:.4g}" if not isinstance(value, list) else str(value)
        parts.append(f"{name} {edge} (search stopped at {shown})" if edge else f"{name} {shown}")
        i += 1
    return parts


def _how_inside(
    fam: Family,
    theta_p: dict[str, torch.Tensor],
    optimum: dict[str, float],
    u: torch.Tensor,
    u_p: torch.Tensor,
    verdict: str,
) -> str:
    dist = float((u - u_p).abs().max())
    if verdict == "strictly proper":
        return f"every converged start returned to the truth (within {dist:.1e})"
    parts, i = [], 0
    for name in fam.free:
        truth_v, opt_v = float(theta_p[name]), optimum[name]
        if abs(float(u[i] - u_p[i])) > PARAM_TOL:
            edge = _edge_words(fam, name, float(u[i]))
            if edge:
                parts.append(f"{name} {edge} (truth {truth_v:.4g}; search stopped at {opt_v:.3g})")
            else:
                parts.append(f"{name} {opt_v:.4g} vs truth {truth_v:.4g}")
        i += 1
    lead = "another forecast ties the truth" if verdict == "proper" else "the truth is beaten"
    sharp = ""
    if "scale" in fam.free:
        ratio = optimum["scale"] / float(theta_p["scale"])
        if abs(math.log(ratio)) > PARAM_TOL:
            sharp = "; sharper than the truth" if ratio < 1 else "; flatter than the truth"
    return f"{lead}: " + ", ".join(parts) + sharp


def _how_outside(
    obj: Objective, fam: Family, optimum: dict[str, float], u: torch.Tensor, reason: str
) -> str:
    what = "the Kullback-Leibler projection" if obj.name == "log" else "the best forecast"
    return (
        f"no verdict (the truth is not in the family); {what} in {fam.spec}: "
        + ", ".join(_describe(fam, optimum, u))
        + f" [{reason}]"
    )
