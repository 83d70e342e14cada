r"""M-estimator asymptotics by quadrature: θ*, the sandwich V = A⁻¹BA⁻¹, ARE, influence.

For an objective (scoring rule) S, a forecast family :math:`\{Q_\theta\}` and a true
distribution P, the M-estimator :math:`\hat\theta_n = \arg\min_\theta \frac1n\sum_i
S(Q_\theta, Y_i)` converges to

.. math::
    \theta^* = \arg\min_\theta E_P\, S(Q_\theta, Y), \qquad
    \sqrt n(\hat\theta_n - \theta^*) \to N(0, V),\quad V = A^{-1} B A^{-1},

with :math:`A = \nabla^2_\theta E_P S(Q_\theta, Y)` and
:math:`B = E_P[\nabla_\theta S\, \nabla_\theta S^\top]` at θ* (Huber 1964, Ann. Math.
Statist. 35:73-101; Huber 1981, *Robust Statistics*, ch. 3; van der Vaart 1998, *Asymptotic
Statistics*, ch. 5, Thm 5.23). Its influence function is
:math:`\mathrm{IF}(x) = -A^{-1}\nabla_\theta S(Q_{\theta^*}, x)` and its gross-error
sensitivity :math:`\gamma^*_j = \sup_x |\mathrm{IF}_j(x)|` (Hampel et al. 1986, *Robust
Statistics: The Approach Based on Influence Functions*, sec. 2.1). The asymptotic relative
efficiency against the log score (maximum likelihood) on the same truth and family is
:math:`V_{\log,jj} / V_{jj}`; for the density power divergence at the normal location it is
:math:`(1+2\beta)^{3/2}/(1+\beta)^3` (Basu, Harris, Hjort & Jones 1998, Biometrika 85:549-559).

Everything is in the family's **natural** parameters (``loc``, ``scale``, ``df``, ...), the
parameters the estimator reports, not the unconstrained (log-scale) coordinates it optimises in.

How each piece is computed, without Monte Carlo noise:

- θ*: :func:`likelab.properness.density.check_density` (Newton from several starts on the
  expected score of :mod:`likelab.properness.expected`); among the starts that converged to a
  minimum inside the parameter space, the lowest. Shortcut: for an objective claimed strictly
  proper, at a truth in the family (without kinks), θ* is the truth's parameters once verified
  (inside the space, A positive definite, Newton step below 1e-8 relative), with no search;
  the results agree with the search's to its precision. Otherwise, for a continuous truth and
  a family without kinks, the same search from the same starts first runs on one quadrature
  rule held fixed (the objective differentiated at fixed nodes, not through the adaptive
  rule), and its answer is kept only once verified the same way by the adaptive rule
  (:func:`_search_frozen`); where it is not, the full search. log's θ* and V, the ARE's
  reference, are computed once per (family, truth) and cached.
- One quadrature per point: the expected gradient, A's pointwise Hessians, B and the expected
  gradients of A's difference check are integrated together, one batch row per distinct θ and
  a vector of quantities per node (:func:`_moments`).
- A: the Hessian of the expected score by autograd *through the quadrature rule*, i.e. the
  derivative of the expected gradient. The rule's cuts follow the forecast's ``loc`` with their
  gradients, so the jump of the pointwise score at a kink of the density (the Laplace location)
  enters by Leibniz's rule, a term that an average of pointwise Hessians misses. For a family
  with kinks A is cross-checked against central differences of the exact expected gradient in
  every direction; for a smooth family, along one direction (:func:`_checked_along`: a term
  missing from E[∇²S], where ∇S is not differentiable in θ, shows in any generic direction);
  where they disagree the result refuses, with the numbers.
- B: :math:`E_P[g_i g_j]` integrated by the same rule as the expected score, with the pointwise
  gradient :math:`g = \nabla_\theta S(Q_\theta, y)` taken per quadrature node by autograd (each
  node has its own copy of θ). Discrete truths: exact sums.

A verdict needs evidence: where θ* does not exist (``linear`` with a free scale: the scale runs
to 0), where A is singular or not positive definite, or where an integral diverges, ``reason``
says why and the numbers are NaN.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from likelab.errors import ParameterError, UnsupportedError
from likelab.estimate.newton import CONVERGED
from likelab.families import Family, as_family
from likelab.families.dgp import DataGeneratingProcess, parse_dgp
from likelab.families.mixture import PointMass, support_bounds
from likelab.families.quadrature import centre_scale
from likelab.objectives import Objective, get_objective
from likelab.properness.classes import claim_of
from likelab.properness.density import EDGE, check_density, density_setting
from likelab.properness.expected import expected_score, expected_score_details

__all__ = ["AsymptoticsResult", "asymptotics"]

_DTYPE = torch.float64
_KINK_RTOL = 1e-4  # autograd vs finite-difference A, for a family with kinks
_PD_RTOL = 1e-10  # smallest / largest eigenvalue of A below this: singular
_SAME_RTOL = 1e-6  # θ* of the objective and of log differ beyond this (relative to 1 + |θ|)
_GES_STEPS = 14  # the influence function at centre ± scale·4^k, k = 0..13 (up to ~6.7e7 scales)
#: A floor for relative comparisons of |IF| (an IF that is exactly 0 far out).
_TINY = 1e-300
#: A polish step below this, relative to 1 + |θ| (four units of rounding), is not taken.
_ROUNDING_STEP = 4 * torch.finfo(torch.float64).eps
_GES_GRID = 4001


@dataclass(frozen=True)
class AsymptoticsResult:
    r"""Asymptotic theory of one objective on one truth and family (see :mod:`likelab.asymptotics`).

    Per free parameter (natural scale): ``theta_star``, ``asymptotic_sd`` (:math:`\sqrt{V_{jj}}`,
    the standard error at n is :math:`\sqrt{V_{jj}/n}`), ``are_vs_log``
    (:math:`V_{\log,jj}/V_{jj}`) and ``gross_error_sensitivity`` (``{"value", "bounded",
    "evidence"}``, ``value = inf`` where |IF| grows without limit). ``covariance`` is V,
    ``a_matrix`` A and ``b_matrix`` B (rows and columns in the order of ``params``). Where θ* of
    the objective differs from that of ``log`` (``theta_star_differs``), ``mse_ratio`` is
    :math:`\mathrm{MSE}_{\log}/\mathrm{MSE}` at ``n`` with
    :math:`\mathrm{MSE}_j = (\theta^*_j - t_j)^2 + V_{jj}/n` and target t (``target``: the
    truth's parameters when the truth is in the family; a contamination mixture's main component's
    (weight above 1/2) when that is in the family, as in a study; otherwise log's θ*; unless
    given; ``target_from`` says which).
    ``reason`` is empty when every number rests on a minimum, a positive definite A and finite
    integrals; otherwise it says why the numbers are NaN.
    """

    objective: str
    family: str
    truth: str
    params: tuple[str, ...]
    theta_star: dict[str, float]
    asymptotic_sd: dict[str, float]
    are_vs_log: dict[str, float]
    covariance: list[list[float]]
    a_matrix: list[list[float]]
    b_matrix: list[list[float]]
    reason: str
    log_theta_star: dict[str, float]
    theta_star_differs: bool
    n: int
    target: dict[str, float]
    target_from: str
    mse_ratio: dict[str, float]
    are_reason: str
    _influence: Callable[[torch.Tensor], torch.Tensor] | None = field(
        default=None, repr=False, compare=False
    )
    _support: tuple[float, float, float, float, bool] = field(
        default=(math.nan,) * 4 + (False,), repr=False, compare=False
    )
    _ges: Callable[[], dict[str, dict[str, Any]]] | None = field(
        default=None, repr=False, compare=False
    )

    @functools.cached_property
    def gross_error_sensitivity(self) -> dict[str, dict[str, Any]]:
        """Per free parameter ``{"value", "bounded", "evidence"}``: sup_x |IF_j(x)|, ``inf`` where
        |IF_j| grows without limit (:func:`_ges`). Computed when first read (a sweep of the
        influence function over ~4,000 points, not needed for θ*, V or the ARE)."""
        if self._ges is None:
            return {k: {"value": math.nan, "bounded": None, "evidence": {}} for k in self.params}
        return self._ges()

    def influence(self, x: Sequence[float] | np.ndarray | torch.Tensor) -> dict[str, list[float]]:
        r""":math:`\mathrm{IF}(x) = -A^{-1}\nabla_\theta S(Q_{\theta^*}, x)` at the points ``x``:
        ``{"x": [...], NAME: [...] per free parameter}``. NaN everywhere when the result has no
        θ* or no invertible A (``reason``); points outside the family's support are refused."""
        try:
            arr = np.asarray(x, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ParameterError(f"influence points must be numbers, got {x!r}") from None
        xs = torch.as_tensor(arr, dtype=_DTYPE)
        if not bool(torch.isfinite(xs).all()):
            raise ParameterError("influence points must be finite numbers")
        lo, hi = self._support[0], self._support[1]
        outside = (xs < lo) | (xs > hi)
        if bool(outside.any()):
            raise ParameterError(
                f"influence point {float(xs[outside][0]):g} lies outside the support "
                f"[{lo:g}, {hi:g}] of the family {self.family!r}"
            )
        if self._influence is None:
            values = torch.full((xs.numel(), len(self.params)), math.nan, dtype=_DTYPE)
        else:
            values = self._influence(xs)
        out: dict[str, list[float]] = {"x": [float(v) for v in xs]}
        for j, name in enumerate(self.params):
            out[name] = [float(v) for v in values[:, j]]
        return out

    def influence_grid(self, points: int = 201, width: float = 6.0) -> dict[str, list[float]]:
        """The influence function on ``points`` equally spaced x over the truth's centre ±
        ``width`` scales (clipped to the support; integers for a discrete family)."""
        lo, hi, c, s, discrete = self._support
        a, b = max(lo, c - width * s), min(hi, c + width * s)
        xs = np.linspace(a, b, int(points))
        if discrete:
            xs = np.unique(np.round(xs))
        return self.influence(xs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``inf``/``nan`` stay floats; the CLI writes them as it does
        elsewhere)."""
        return {
            "objective": self.objective,
            "family": self.family,
            "truth": self.truth,
            "parameters": {
                name: {
                    "theta_star": self.theta_star[name],
                    "asymptotic_sd": self.asymptotic_sd[name],
                    "are_vs_log": self.are_vs_log[name],
                    "gross_error_sensitivity": self.gross_error_sensitivity[name],
                    "mse_ratio": self.mse_ratio[name],
                }
                for name in self.params
            },
            "covariance": self.covariance,
            "a_matrix": self.a_matrix,
            "b_matrix": self.b_matrix,
            "reason": self.reason,
            "log_theta_star": self.log_theta_star,
            "theta_star_differs": self.theta_star_differs,
            "n": self.n,
            "target": self.target,
            "target_from": self.target_from,
            "are_reason": self.are_reason,
        }


def asymptotics(
    objective: str | Objective | Callable[..., torch.Tensor],
    family: str | Family,
    truth: str | DataGeneratingProcess,
    fixed: Mapping[str, float] | None = None,
    *,
    n: int = 1000,
    target: Mapping[str, float] | None = None,
) -> AsymptoticsResult:
    r"""θ*, V = A⁻¹BA⁻¹, ARE against log and the influence function of ``objective`` fitted in
    ``family`` (with ``fixed`` parameters held) to data from ``truth``; module docs for the
    method. ``n`` and ``target`` only enter the MSE ratio reported where θ* of the objective
    and of log differ.

    Normal location, known scale: the ARE of ``dpd:beta=0.5`` is
    :math:`(1+2\beta)^{3/2}/(1+\beta)^3 = 2^{3/2}/1.5^3`:

    >>> r = asymptotics("dpd:beta=0.5", "normal", "normal:loc=0,scale=1", fixed={"scale": 1})
    >>> abs(r.are_vs_log["loc"] - 2**1.5 / 1.5**3) < 1e-8
    True
    >>> r.gross_error_sensitivity["loc"]["bounded"]
    True
    >>> asymptotics("log", "normal:scale=1", "normal:loc=0,scale=1").gross_error_sensitivity[
    ...     "loc"]["value"]
    inf
    """
    obj = get_objective(objective)
    if obj.batch_level:
        raise UnsupportedError(f"{obj.name!r} is a batch-level objective, not a scoring rule")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"n must be an integer >= 1, got {n!r}")
    fam = as_family(family)
    if fixed:
        fam = fam.fix(**dict(fixed))
    dgp = parse_dgp(truth) if isinstance(truth, str) else truth
    for name in fam.free:
        if fam.param(name).domain == "simplex":
            raise UnsupportedError(
                f"asymptotics needs scalar parameters; {fam.spec!r} has a probability vector "
                f"{name!r}"
            )
    dgp, fam, p_dist, sample = density_setting(dgp, fam)
    core = _core(obj, fam, dgp, p_dist, sample=sample)
    log = core if obj.spec == "log" else _log_core(fam, dgp, p_dist, sample)
    names = fam.free
    nan = dict.fromkeys(names, math.nan)
    differs = False
    are, mse, are_reason = dict(nan), dict(nan), ""
    tgt, target_from = dict(nan), ""
    if target is not None:
        missing = [k for k in names if k not in target]
        if missing:
            raise ParameterError(f"target must give every free parameter; missing {missing}")
        tgt, target_from = {k: _number(target[k], f"target[{k!r}]") for k in names}, "given"
    else:
        theta_p = _truth_params(dgp, fam)
        main = _main_component(dgp, fam)
        if theta_p is not None:
            tgt, target_from = theta_p, "the truth's parameters"
        elif main is not None:
            tgt, weight = main
            target_from = (
                f"the parameters of the truth's main component (weight {weight:g}): the "
                "uncontaminated part, as in a study under contamination"
            )
        else:
            tgt, target_from = dict(log["theta"]), "θ* of log (the truth is not in the family)"
    if core["reason"] or log["reason"]:
        are_reason = core["reason"] or f"log has no asymptotics here: {log['reason']}"
    else:
        v, v_log = core["V"], log["V"]
        for j, k in enumerate(names):
            are[k] = float(v_log[j, j] / v[j, j])
            t_o, t_l = core["theta"][k], log["theta"][k]
            differs = differs or abs(t_o - t_l) > _SAME_RTOL * (1 + abs(t_l))
        for j, k in enumerate(names):
            mse_o = (core["theta"][k] - tgt[k]) ** 2 + float(v[j, j]) / n
            mse_l = (log["theta"][k] - tgt[k]) ** 2 + float(v_log[j, j]) / n
            mse[k] = mse_l / mse_o if mse_o > 0 else math.nan
        zero = [(k, float(v_log[j, j]) == 0.0) for j, k in enumerate(names) if v[j, j] == 0]
        notes = []
        if any(both for _, both in zero):
            notes.append(
                "the truth is degenerate: V = 0 for both the objective and log ("
                + ", ".join(k for k, both in zero if both)
                + ": every estimate equals θ*), the ARE (V_log / V = 0/0) is undefined"
            )
        if any(not both for _, both in zero):
            notes.append(
                "V = 0 for the objective but not for log ("
                + ", ".join(k for k, both in zero if not both)
                + "): the ARE is infinite"
            )
        if differs:
            notes.append(
                "θ* of the objective differs from θ* of log: the ARE compares variances around "
                f"different limits; mse_ratio (at n = {n}) includes the squared bias, against "
                f"{target_from}"
            )
        are_reason = "; ".join(notes)
    return AsymptoticsResult(
        objective=obj.spec,
        family=fam.spec,
        truth=dgp.spec,
        params=names,
        theta_star=core["theta"],
        asymptotic_sd=core["sd"],
        are_vs_log=are,
        covariance=_lists(core["V"]),
        a_matrix=_lists(core["A"]),
        b_matrix=_lists(core["B"]),
        reason=core["reason"],
        log_theta_star=log["theta"],
        theta_star_differs=differs,
        n=n,
        target=tgt,
        target_from=target_from,
        mse_ratio=mse,
        are_reason=are_reason,
        _influence=core["influence"],
        _support=core["support"],
        _ges=core["ges"],
    )


# ---------------------------------------------------------------------- the core computation
_LOG_CACHE: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
_LOG_CACHE_SIZE = 64


def _log_core(
    fam: Family,
    dgp: DataGeneratingProcess,
    p_dist: torch.distributions.Distribution,
    sample: torch.Tensor | None = None,
) -> dict[str, Any]:
    """θ* and V of ``log`` (the ARE's reference), computed once per (family, truth): every
    objective compared on the same setting shares it. Keyed by log's function and the classes
    and specs of the family and the truth (a spec rebuilds its object, floats at full
    precision); a copy is returned, so a caller cannot alter the cached numbers."""
    log = get_objective("log")
    key = (
        log.fn,  # a re-registered log is another reference
        type(fam),
        fam.spec,
        getattr(fam, "num_classes", None),
        type(dgp),
        type(getattr(dgp, "family", None)),
        dgp.spec,
    )
    if key in _LOG_CACHE:
        _LOG_CACHE.move_to_end(key)
    else:
        _LOG_CACHE[key] = _core(log, fam, dgp, p_dist, reference=True, sample=sample)
        while len(_LOG_CACHE) > _LOG_CACHE_SIZE:
            _LOG_CACHE.popitem(last=False)
    hit = _LOG_CACHE[key]
    return {**hit, "theta": dict(hit["theta"]), "sd": dict(hit["sd"])}


def _core(
    obj: Objective,
    fam: Family,
    dgp: DataGeneratingProcess,
    p_dist: torch.distributions.Distribution,
    *,
    fast: bool = True,
    reference: bool = False,
    sample: torch.Tensor | None = None,
) -> dict[str, Any]:
    """θ*, A, B, V (and, unless ``reference``, the influence function and GES) of ``obj``.

    ``fast``: where the truth is a member of the family (one without kinks) and ``obj`` is
    claimed strictly proper, θ* is the truth's parameters *if verified*
    (:func:`_truth_is_theta_star`), without the search of :func:`_theta_star` from several
    starts; otherwise (or ``fast=False``) the search. Both end on the root of the estimating
    equation (the search by the polish), so they agree to its precision. Either way A, B and
    the expected gradient at a point come from one quadrature (:func:`_moments`). Otherwise,
    with ``fast`` and the truth's ``sample`` (the search's starts come from it), the search of
    :func:`_search_frozen` first, its answer kept only if verified as above; else the search
    of :func:`_theta_star`.
    ``reference``: only θ* and V are needed (log, the ARE's reference)."""
    names = fam.free
    p = len(names)
    nan_mat = torch.full((p, p), math.nan, dtype=_DTYPE)
    support = _support(p_dist)
    out: dict[str, Any] = {
        "theta": dict.fromkeys(names, math.nan),
        "sd": dict.fromkeys(names, math.nan),
        "V": nan_mat,
        "A": nan_mat,
        "B": nan_mat,
        "influence": None,
        "support": support,
        "ges": None,
        "reason": "",
    }
    if fam.support_moves:
        out["reason"] = (
            f"no √n asymptotics: the support of {fam.spec!r} moves with its parameters, so the "
            "model is not regular (the density jumps to 0 at parameter-dependent points; Smith "
            "1985, Biometrika 72:67-90) and V = A⁻¹BA⁻¹ does not describe the estimator"
        )
        return out

    def forecast(th: torch.Tensor) -> torch.distributions.Distribution:
        return fam.distribution_unchecked({k: th[..., j] for j, k in enumerate(names)})

    def risk(th: torch.Tensor) -> torch.Tensor:
        if not kinked:  # integrated with everything else at th (one quadrature, reused)
            return moments_of(th)["S"]
        return expected_score(obj, p_dist, forecast(th.unsqueeze(0)))[0]

    moments: dict[tuple[float, ...], dict[str, torch.Tensor]] = {}
    grads: dict[tuple[float, ...], torch.Tensor] = {}

    def key_of(th: torch.Tensor) -> tuple[float, ...]:
        return tuple(float(v) for v in th)

    def moments_of(th: torch.Tensor) -> dict[str, torch.Tensor]:
        key = key_of(th)
        if key not in moments:
            moments[key] = _moments(obj, fam, th, p_dist, full=bool(kinked))
        return moments[key]

    def mean_grad(th: torch.Tensor) -> torch.Tensor:
        key = key_of(th)
        if key in moments or not kinked:
            return moments_of(th)["g"]
        if key not in grads:  # a family with a kink: A's 4p difference points are not needed
            grads[key] = _mean_grad(obj, fam, th, p_dist)
        return grads[key]

    kinked: bool | None = None
    cache: dict[tuple[float, ...], tuple[torch.Tensor, str]] = {}

    def a_of(th: torch.Tensor) -> tuple[torch.Tensor, str]:
        key = key_of(th)
        if key not in cache:  # the polish's A is the final one when no step was taken
            cache[key] = _a_matrix(obj, fam, th, p_dist, bool(kinked), moments_of(th))
        return cache[key]

    theta, polished = None, False
    if fast:
        theta_p = _truth_params(dgp, fam)
        if theta_p is not None and claim_of(obj) == "strictly proper":
            start = torch.tensor([theta_p[k] for k in names], dtype=_DTYPE)
            kinked = bool(fam.kinks({k: start[j] for j, k in enumerate(names)}))
            # not for a family with a kink (the Laplace location): θ* exactly at the truth puts
            # the kink on a grid point of the influence function, where the pointwise gradient
            # is a subgradient, not a one-sided limit; the search keeps θ* where it was
            if not kinked:
                theta, polished = _truth_is_theta_star(fam, start, mean_grad, a_of)
    if theta is None and fast and sample is not None:
        found = _search_frozen(obj, fam, dgp, p_dist, sample)
        if found is not None:
            kinked = False  # the search runs only in a family without kinks
        # verified before the polish too: a point where the fixed rule failed (a forecast run
        # narrow against its nodes) is dropped at the cost of one quadrature, not polished
        checked, exact = (
            (None, False) if found is None else _truth_is_theta_star(fam, found, mean_grad, a_of)
        )
        if checked is not None and exact:  # already the root to rounding level
            theta, polished = checked, True
        elif checked is not None:
            found = _polish(risk, mean_grad, a_of, found)
            theta, _ = _truth_is_theta_star(fam, found, mean_grad, a_of)
            polished = theta is not None
    if theta is None:
        theta, why = _theta_star(obj, fam, dgp)
        if theta is None:
            out["reason"] = why
            return out
        kinked = bool(fam.kinks({k: theta[j] for j, k in enumerate(names)}))
    out["theta"] = {k: float(theta[j]) for j, k in enumerate(names)}
    support = out["support"] = _support(p_dist, forecast(theta), frame=support)
    if not polished:
        theta = _polish(risk, mean_grad, a_of, theta)
    out["theta"] = {k: float(theta[j]) for j, k in enumerate(names)}
    a, why = a_of(theta)
    if why:
        out["A"] = a
        out["reason"] = why
        return out
    a = a.detach()
    out["A"] = a
    if not bool(torch.isfinite(a).all()):
        out["reason"] = f"A = ∇²E S is not finite at θ* ({_lists(a)})"
        return out
    lam = torch.linalg.eigvalsh(a)
    if not float(lam.min()) > _PD_RTOL * float(lam.abs().max()):
        out["reason"] = (
            f"A = ∇²E S is not positive definite at θ* (eigenvalues {[float(v) for v in lam]}): "
            "θ* is not a regular minimum and V = A⁻¹BA⁻¹ does not exist"
        )
        return out
    b = moments_of(theta)["B"]
    out["B"] = b
    if not bool(torch.isfinite(b).all()):
        out["reason"] = (
            "B = E[∇S ∇Sᵀ] diverges (the score's gradient has no finite second moment under "
            "the truth): the estimator is not √n-normal"
        )
        return out
    a_inv = torch.linalg.inv(a)
    v = a_inv @ b @ a_inv
    v = 0.5 * (v + v.T)
    out["V"] = v
    out["sd"] = {k: math.sqrt(float(v[j, j])) for j, k in enumerate(names)}
    if reference:
        return out

    def influence(xs: torch.Tensor) -> torch.Tensor:
        g = _pointwise_grad(obj, fam, theta, xs)
        return -(g @ a_inv.T)

    out["influence"] = influence
    out["ges"] = functools.partial(_ges, influence, names, support)
    return out


def _truth_is_theta_star(
    fam: Family,
    start: torch.Tensor,
    mean_grad: Callable[[torch.Tensor], torch.Tensor],
    a_of: Callable[[torch.Tensor], tuple[torch.Tensor, str]],
) -> tuple[torch.Tensor | None, bool]:
    r"""``start`` (the truth's parameters) when it is verified to be θ* of a strictly proper
    score, else None (then θ* is searched for); and whether it needs no polish.

    A strictly proper score is minimised over the family exactly at the truth (Gneiting &
    Raftery 2007, JASA 102:359-378, def. 1), so its θ* is known; what is verified is that the
    numbers say so: the truth lies inside the parameter space, A there is finite and positive
    definite, and the Newton step :math:`A^{-1} E_P \nabla_\theta S` is below 1e-8 (relative to
    1 + |θ|): a regular stationary point to quadrature accuracy. The polish that follows makes
    it exact, unless the step is already at rounding level (below 1e-12 relative): then θ* is
    the truth itself."""
    names = fam.free
    u = fam.to_unconstrained({k: start[j] for j, k in enumerate(names)})
    if not bool(torch.isfinite(u).all()) or bool((u.abs() >= EDGE).any()):
        return None, False
    try:
        a, why = a_of(start)  # first: it integrates the expected gradient with A
        g = mean_grad(start)
    except (ValueError, RuntimeError):
        return None, False
    if why or not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(g).all())):
        return None, False
    a = 0.5 * (a + a.T)
    lam = torch.linalg.eigvalsh(a)
    if not float(lam.min()) > _PD_RTOL * float(lam.abs().max()):
        return None, False
    step = torch.linalg.solve(a, g)
    size = step.abs() / (1.0 + start.abs())
    if not bool((size <= 1e-8).all()):
        return None, False
    return start, bool((size <= 1e-12).all())


#: Panels per piece of the fixed rule of :func:`_search_frozen` (a search, checked afterwards).
_SEARCH_PANELS = 1


def _search_frozen(
    obj: Objective,
    fam: Family,
    dgp: DataGeneratingProcess,
    p_dist: torch.distributions.Distribution,
    sample: torch.Tensor,
) -> torch.Tensor | None:
    """A candidate θ* (natural parameters), or None where this search cannot give one.

    :func:`_theta_star`'s search, from the same starts (:func:`~likelab.properness.density.
    start_points`) with the same batched Newton optimiser, but on the expected score over one
    rule held fixed (:func:`~likelab.properness.expected.frozen_expectation`, nodes cut where
    the first start's forecast has its centre, peak and ends), so that each step
    differentiates the objective at fixed nodes rather than through an adaptive rule. Only for
    a continuous truth and a family without kinks (where the fixed nodes integrate every
    forecast's score, smooth in y), and only if every start converged to a point inside the
    parameter space; where the starts end at different points, the lowest by the adaptive rule.
    The lowest point takes one more Newton step on the fixed rule (the optimiser may stop at a
    relative gradient of 1e-9). The candidate is an approximation (the fixed rule's error, and
    a forecast that drifts narrow against the nodes): the caller keeps it only if verified
    (:func:`_truth_is_theta_star`: a regular stationary point by the adaptive rule), polished
    unless its Newton step by the adaptive rule is already at rounding level."""
    from likelab.estimate.newton import newton_minimize, value_grad_hess
    from likelab.properness.density import start_points
    from likelab.properness.expected import frozen_expectation

    if p_dist.support.is_discrete:
        return None
    names = fam.free
    try:
        u0 = start_points(dgp, fam, sample)
        first = fam.to_natural(u0[:1])
        if fam.kinks(first):
            return None
        expect = frozen_expectation(
            p_dist, fam.distribution_unchecked(first), panels=_SEARCH_PANELS
        )

        def forecast(u: torch.Tensor) -> torch.distributions.Distribution:
            return fam.distribution_unchecked(fam.to_natural(u))

        def fun(u: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
            q = forecast(u)
            return expect(lambda y: obj.loss(q, y, validate=False))

        res = newton_minimize(fun, u0, max_iter=100)
    except (ValueError, RuntimeError):  # likelab's errors are ValueErrors: the full search says
        return None
    if not bool(res.converged.all()) or not bool(torch.isfinite(res.value).all()):
        return None
    if bool((res.u.abs() >= EDGE).any()):
        return None
    best = int(torch.argmin(res.value))
    apart = (res.u - res.u[best]).abs().amax(-1) > 1e-3
    if bool(apart.any()):  # several minima: the lowest by the adaptive rule
        with torch.no_grad():
            values = expected_score(obj, p_dist, forecast(res.u))
        if not bool(torch.isfinite(values).all()):
            return None
        best = int(torch.argmin(values))
    u = res.u[best : best + 1]
    # one more Newton step on the fixed rule: the optimiser may stop at a relative gradient of
    # 1e-9; near the root the step squares the error, down to the fixed rule's own
    try:
        _, g, h = value_grad_hess(fun, u, torch.zeros(1, dtype=torch.long))
        step, info = torch.linalg.solve_ex(0.5 * (h[0] + h[0].T), g[0])
    except (ValueError, RuntimeError):
        step, info = None, 1
    if (
        step is not None
        and int(info) == 0
        and bool(torch.isfinite(step).all())
        and bool((step.abs() <= 1e-6 * (1.0 + u[0].abs())).all())
    ):
        u = u - step
    natural = fam.to_natural(u[0])
    return torch.stack([natural[k].detach().to(_DTYPE) for k in names])


def _theta_star(
    obj: Objective, fam: Family, dgp: DataGeneratingProcess
) -> tuple[torch.Tensor | None, str]:
    """The minimiser of the expected score, or None and why there is none."""
    verdict = check_density(obj, dgp, fam)
    starts = verdict.details["starts"]
    names = fam.free
    best, best_value = None, math.inf
    for s in starts:
        if s["reason"] not in CONVERGED or not math.isfinite(s["value"]):
            continue
        th = torch.tensor([float(s["optimum"][k]) for k in names], dtype=_DTYPE)
        u = fam.to_unconstrained({k: th[j] for j, k in enumerate(names)})
        if bool((u.abs() >= EDGE).any()):
            continue
        if s["value"] < best_value:
            best, best_value = th, s["value"]
    if best is None:
        stops = ", ".join(sorted({s["reason"] for s in starts}))
        return None, (
            f"no θ*: the expected {obj.spec} score has no minimum inside {fam.spec!r} under "
            f"{dgp.spec} (starts stopped: {stops}; best found {verdict.optimum}, expected score "
            f"{verdict.value:.6g}); {verdict.how}"
        )
    if best_value > verdict.value + 1e-9 * (1.0 + abs(verdict.value)):
        return None, (
            f"no θ*: the lowest expected score ({verdict.value:.6g}, at {verdict.optimum}) is not "
            f"at a minimum inside the parameter space ({verdict.reason})"
        )
    return best, ""


def _polish(
    risk: Callable[[torch.Tensor], torch.Tensor],
    grad: Callable[[torch.Tensor], torch.Tensor],
    a_of: Callable[[torch.Tensor], tuple[torch.Tensor, str]],
    theta: torch.Tensor,
) -> torch.Tensor:
    """Up to four chord (fixed-A Newton) steps on the estimating equation E_P ∇_θ S = 0 in the
    natural parameters, each kept only if it shrinks the expected gradient and keeps the
    expected score finite, and none taken once a step is below four units of rounding of θ.
    The optimiser stops at a relative gradient of 1e-9, and the gradient of the rule through
    its moving cuts carries errors of that size; ``grad`` integrates the pointwise gradient
    instead (fixed nodes), which is exact to rounding. A at the start is
    taken first: its quadrature integrates the expected gradient too (:func:`_moments`), so
    ``grad`` there costs nothing."""
    a = None
    try:
        a, why = a_of(theta)
    except (ValueError, RuntimeError):
        a, why = None, ""
    if why:
        a = None
    g = grad(theta)
    for _ in range(4):
        if not bool(torch.isfinite(g).all()) or float(g.abs().max()) == 0.0:
            break
        if a is None:  # a chord method: A once, near θ* it changes by O(|step|)
            a, why = a_of(theta)
            if why:
                break
        step, info = torch.linalg.solve_ex(0.5 * (a + a.T), g)
        if int(info) != 0 or not bool(torch.isfinite(step).all()):
            break
        # a step within a few units of rounding of θ cannot move the root: θ is as exact as
        # its floats are (the expected gradient there is rounding noise)
        if bool((step.abs() <= _ROUNDING_STEP * (1.0 + theta.abs())).all()):
            break
        new = theta - step
        try:
            g_new = grad(new)
            with torch.no_grad():
                finite = math.isfinite(float(risk(new)))
        except (ValueError, RuntimeError):
            break
        if not (finite and bool(torch.isfinite(g_new).all())):
            break
        if not float(g_new.abs().max()) < float(g.abs().max()):
            break
        theta, g = new, g_new
    return theta.detach()


def _a_matrix(
    obj: Objective,
    fam: Family,
    theta: torch.Tensor,
    p_dist: torch.distributions.Distribution,
    kinked: bool,
    moments: dict[str, torch.Tensor],
) -> tuple[torch.Tensor, str]:
    r"""A = ∂_θ E_P ∇_θ S(Q_θ, Y) at θ, and a reason where it cannot be trusted.

    Smooth family: :math:`E_P \nabla^2_\theta S` (pointwise Hessians per node, fixed nodes),
    cross-checked against Richardson-extrapolated central differences of the expected gradient
    (their error, :math:`O(h^4)` with h = 1e-3 relative plus rounding over h, is below 1e-9; a
    gap above 1e-6 relative means the pointwise Hessian misses a term). Family with a kink
    (the Laplace location): the pointwise Hessian misses the jump of ∇S at the kink (Leibniz),
    so A *is* the differences of the expected gradient, which is smooth; forward and backward
    differences must agree (to 1e-2 relative, their O(h) truncation being ~1e-3): otherwise the
    expected gradient has a kink at θ and A does not exist.
    """
    a = moments["H"]
    grads = moments["fd"]
    if not kinked:
        return _checked_along(a, grads, _direction(fam, theta), p_dist)
    cols, fwd, bwd = [], [], []
    steps, _ = _fd_points(fam, theta)
    # the 1 + 4p expected gradients, integrated with E[∇²S] and B by one rule (:func:`_moments`)
    g0 = grads[0]
    for j, h in enumerate(steps):
        gp, gm, gp2, gm2 = grads[1 + 4 * j : 5 + 4 * j]
        d1, d2 = (gp - gm) / (2 * h), (gp2 - gm2) / h
        cols.append((4 * d2 - d1) / 3)
        fwd.append((gp2 - g0) / (0.5 * h))
        bwd.append((g0 - gm2) / (0.5 * h))
    a_fd = torch.stack(cols, dim=1)
    a_fd = 0.5 * (a_fd + a_fd.T)
    size = 1.0 + float(a_fd.abs().max()) if bool(torch.isfinite(a_fd).all()) else math.inf
    if p_dist.support.is_discrete:
        return a_fd, (
            f"A does not exist: {fam.spec!r} has a kink in its density and the truth has "
            "atoms, so the expected gradient jumps where the kink meets an atom"
        )
    a = a + _kink_term(obj, fam, theta, p_dist)
    f, b = torch.stack(fwd, dim=1), torch.stack(bwd, dim=1)
    gap = float((f - b).abs().max())
    atom = _atom_at_kink(fam, theta, p_dist, max(steps))
    if not gap <= 1e-2 * size and atom:
        return a_fd, atom
    if not gap <= 1e-2 * size:
        return a_fd, (
            f"A does not exist: {fam.spec!r} has a kink in its density and the expected "
            f"gradient is not differentiable at θ* (one-sided derivatives {_lists(f)} and "
            f"{_lists(b)})"
        )
    if not bool(torch.isfinite(a).all()):
        return a, _not_finite(a)
    # differences of a C¹ expected gradient with a kinked derivative (the density of a kinked
    # truth at a kink of the family) err by O(h) = 1e-3
    gap = float((a - a_fd).abs().max())
    if not gap <= 1e-2 * size:
        atom = _atom_at_kink(fam, theta, p_dist, max(steps))
        if atom:
            return a, atom
        return a, (
            f"A is undetermined: E[∇²S] + kink term = {_lists(a)} disagrees with the "
            f"derivative of the expected gradient {_lists(a_fd)} (gap {gap:.2e}): ∇S is not "
            "differentiable in θ for almost every y, or the integrals are not resolved"
        )
    return 0.5 * (a + a.T), ""


def _not_finite(a: torch.Tensor) -> str:
    return (
        f"A = E[∇²S] is not finite at θ* ({_lists(a)}): an integral diverges, or the "
        "objective's second derivatives are not finite at some nodes (e.g. a function of "
        "p = f(y) where f underflows to 0: write it in l = log f(y) instead)"
    )


def _checked_along(
    a: torch.Tensor,
    grads: torch.Tensor,
    d: torch.Tensor,
    p_dist: torch.distributions.Distribution,
) -> tuple[torch.Tensor, str]:
    r"""A = E[∇²S] of a family without kinks, checked along one direction d against the
    derivative of the expected gradient, Richardson-extrapolated central differences
    :math:`(4 D_{1/2} - D_1)/3` with :math:`D_t = [ar g(	heta + t d) - ar g(	heta - t
    d)]/(2t)` (``grads``: the expected gradients at θ, θ ± d, θ ± d/2). Where ∇S is not
    differentiable in θ for almost every y (|y - θ|: its pointwise Hessian is 0, its expected
    gradient's derivative 2p(θ)), E[∇²S] misses a term M and :math:`Md \ne 0` for any d outside
    M's null space; d's entries (powers of the plastic number, alternating in sign, times each
    parameter's step) keep it out of the null space of any such M that is not built to contain
    it. The differences err by :math:`O(h^4)` with h = 1e-3 relative, plus rounding over h: below
    1e-9; a gap above 1e-6 (relative to A's size times d's) is a missing term."""
    if not bool(torch.isfinite(a).all()):
        return a, _not_finite(a)
    _, gp, gm, gp2, gm2 = grads  # the first: at θ itself
    along = (4 * (gp2 - gm2) - 0.5 * (gp - gm)) / 3
    expect = a @ d
    tol = 1e-2 if _has_kink(p_dist) else 1e-6
    size = (1.0 + float(a.abs().max())) * float(d.abs().max())
    gap = float((expect - along).abs().max())
    if not gap <= tol * size:
        return a, (
            f"A is undetermined: E[∇²S] = {_lists(a)} disagrees with the derivative of the "
            f"expected gradient along d = {[float(v) for v in d]}: A d = "
            f"{[float(v) for v in expect]}, the expected gradient's differences "
            f"{[float(v) for v in along]} (gap {gap:.2e}): ∇S is not differentiable in θ for "
            "almost every y, or the integrals are not resolved"
        )
    return 0.5 * (a + a.T), ""


#: The plastic number ρ (ρ³ = ρ + 1): the direction of :func:`_checked_along` is (-1/ρ)^j.
_PLASTIC = 1.3247179572447460


def _direction(fam: Family, theta: torch.Tensor) -> torch.Tensor:
    """The direction d of :func:`_checked_along`: each parameter's step of :func:`_fd_points`
    times (-1/ρ)^j, ρ the plastic number."""
    steps, _ = _fd_points(fam, theta)
    return torch.tensor(
        [h * (-1.0 / _PLASTIC) ** j for j, h in enumerate(steps)], dtype=theta.dtype
    )


def _atom_at_kink(
    fam: Family, theta: torch.Tensor, p_dist: torch.distributions.Distribution, width: float
) -> str:
    """Why A does not exist where a point mass of the truth sits at a kink κ(θ*) of the score
    (within ``width``, the largest step of :func:`_a_matrix`'s differences), or "" where none
    does. The pointwise gradient jumps at the kink, so where the truth puts mass w on that
    point the expected gradient jumps too (by w times the jump) as κ crosses it: the expected
    score is not twice differentiable at θ*, and no A describes the estimator (its limit law is
    not normal)."""
    comps = getattr(p_dist, "components", [p_dist])
    weights = getattr(p_dist, "weights", None)
    kinks = fam.kinks({k: theta[j] for j, k in enumerate(fam.free)})
    for kappa in kinks:
        kap = float(kappa.detach().sum())
        for c, comp in enumerate(comps):
            if not isinstance(comp, PointMass):
                continue
            at = float(comp.loc)
            if abs(at - kap) <= width:
                w = "" if weights is None else f"mass {float(weights.reshape(-1)[c]):g} "
                return (
                    f"A does not exist: a point of the truth ({w}at y = {at:g}) sits at the kink "
                    f"of the score at θ* (κ = {kap:.6g}, {fam.spec!r} has a kink in its density), "
                    "so the expected gradient jumps there as θ moves: the expected score is not "
                    "twice differentiable at θ* and V = A⁻¹BA⁻¹ does not exist"
                )
    return ""


def _fd_points(fam: Family, theta: torch.Tensor) -> tuple[list[float], list[torch.Tensor]]:
    """The steps h_j of :func:`_a_matrix`'s differences and the 1 + 4p points θ, θ ± h_j e_j,
    θ ± h_j e_j / 2 at which it takes the expected gradient."""
    p = theta.numel()
    steps, points = [], [theta]
    for j, name in enumerate(fam.free):
        domain = fam.param(name).domain
        t = abs(float(theta[j]))
        h = 1e-3 * (t if domain == "positive" else min(t, 1 - t) if domain == "unit" else 1 + t)
        e = torch.zeros(p, dtype=_DTYPE)
        e[j] = 1.0
        steps.append(h)
        points += [theta + h * e, theta - h * e, theta + 0.5 * h * e, theta - 0.5 * h * e]
    return steps, points


def _moments(
    obj: Objective,
    fam: Family,
    theta: torch.Tensor,
    p_dist: torch.distributions.Distribution,
    *,
    full: bool = False,
) -> dict[str, torch.Tensor]:
    r"""Everything the sandwich needs at θ, integrated by **one** rule (one adaptive quadrature
    instead of five): the expected score ``S`` and gradient ``g`` = :math:`E_P\nabla_\theta S`,
    ``H`` = :math:`E_P\nabla^2_\theta S`, ``B`` = :math:`E_P[\nabla_\theta S\,\nabla_\theta
    S^\top]` at θ, and ``fd``, the expected gradients at θ and the points of A's check: θ ± d,
    θ ± d/2 along the direction d of :func:`_direction` (:func:`_checked_along`), or with ``full``
    (a family with a kink, whose A is the differences) the 1 + 4p points of :func:`_fd_points`.

    The forecast batch has one row per θ (shape (m, 1), so each row has its own cuts and
    nodes) and the integrand returns p numbers per node (shape (N, m, p)): row 0 g at θ, the
    next r rows (θ again, so the same nodes and weights) the 2q entries of H and B and the score
    itself taken at row 0's nodes, p per row (padded with zeros, which integrate to 0 exactly),
    the other rows the
    expected gradients at the difference points. Each number is integrated exactly as it would
    be alone; only the rule's refinement level is shared (the finest any of them needs), and
    the pointwise derivatives are taken once per node."""
    p = theta.numel()
    names = fam.free
    pairs = [(i, j) for i in range(p) for j in range(i, p)]
    ii = torch.tensor([i for i, _ in pairs])
    jj = torch.tensor([j for _, j in pairs])
    if full:
        _, points = _fd_points(fam, theta)
    else:
        d = _direction(fam, theta)
        points = [theta, theta + d, theta - d, theta + 0.5 * d, theta - 0.5 * d]
    q = len(pairs)
    r = -(-(2 * q + 1) // p)  # rows of θ that carry H, B and S̄, p entries each
    rows = torch.stack([points[0]] * (1 + r) + points[1:]).detach()  # (m, p); rows 0..r are θ

    def derivatives(th: torch.Tensor, y: torch.Tensor, hessian: bool):
        """S (…), ∇S (…, p) and, if ``hessian``, ∇²S (…, p, p) at nodes ``y`` with θ per
        column (a separate pass for the Hessian's column: its backward passes then run over
        that column alone)."""
        with torch.enable_grad():
            copies = [th[..., j].expand(y.shape).clone().requires_grad_(True) for j in range(p)]
            dist = fam.distribution_unchecked(dict(zip(names, copies, strict=True)))
            loss = obj.loss(dist, y.detach(), validate=False)
            grads = torch.autograd.grad(loss.sum(), copies, create_graph=hessian, allow_unused=True)
            grads = [torch.zeros_like(y) if gr is None else gr for gr in grads]
            g = torch.stack([gr.detach() for gr in grads], dim=-1)
            if not hessian:
                return loss.detach(), g, None
            h = torch.zeros(*y.shape, p, p, dtype=y.dtype)
            for i in sorted(set(ii.tolist())):
                if not grads[i].requires_grad:
                    continue
                row = torch.autograd.grad(
                    grads[i].sum(), copies, retain_graph=True, allow_unused=True
                )
                for j in range(p):
                    if row[j] is not None:
                        h[..., i, j] = row[j].detach()
        return loss.detach(), g, h

    def integrand(dist: torch.distributions.Distribution, y: torch.Tensor) -> torch.Tensor:
        y = y[..., 0]  # (N, m)
        out = torch.zeros(*y.shape, p, dtype=y.dtype)
        s0, g0, h0 = derivatives(rows[0], y[:, 0], True)  # (N,), (N, p), (N, p, p)
        out[:, 0] = g0
        extra = torch.zeros(y.shape[0], r * p, dtype=y.dtype)  # rows 1..r, flattened
        extra[:, :q] = h0[:, ii, jj]
        extra[:, q : 2 * q] = g0[:, ii] * g0[:, jj]
        extra[:, 2 * q] = s0
        out[:, 1 : 1 + r] = extra.reshape(y.shape[0], r, p)
        _, g_fd, _ = derivatives(rows[1 + r :], y[:, 1 + r :], False)  # (N, m - 1 - r, p)
        out[:, 1 + r :] = g_fd
        return out

    product = dataclasses.replace(obj, name=f"sandwich[{obj.spec}]", hyper={}, fn=integrand)
    q_dist = fam.distribution_unchecked({n: rows[:, j : j + 1] for j, n in enumerate(names)})
    with torch.no_grad():
        values = expected_score_details(product, p_dist, q_dist).value  # (m, p)
    extra = values[1 : 1 + r].reshape(-1)
    h, b = torch.empty(p, p, dtype=_DTYPE), torch.empty(p, p, dtype=_DTYPE)
    for c, (i, j) in enumerate(pairs):
        h[i, j] = h[j, i] = extra[c]
        b[i, j] = b[j, i] = extra[q + c]
    return {
        "g": values[0],
        "H": h,
        "B": b,
        "S": extra[2 * q],
        "fd": torch.cat([values[:1], values[1 + r :]]),
    }


def _has_kink(p_dist: torch.distributions.Distribution) -> bool:
    comps = getattr(p_dist, "components", [p_dist])
    return any(isinstance(c, torch.distributions.Laplace) for c in comps)


def _kink_term(
    obj: Objective, fam: Family, theta: torch.Tensor, p_dist: torch.distributions.Distribution
) -> torch.Tensor:
    r"""Leibniz's term of A at the family's kinks κ(θ): :math:`\sum_\kappa p(\kappa)
    [\psi(\kappa^-) - \psi(\kappa^+)] \nabla_\theta\kappa^\top` with p the truth's density and
    ψ = ∇_θ S (Huber 1967; Stefanski & Boos 2002; :mod:`likelab.estimate.sandwich`). The
    one-sided limits are extrapolated from κ ∓ ε and κ ∓ 2ε (ε = 1e-5 (1 + |κ|)): the jump
    :math:`2J(\varepsilon) - J(2\varepsilon)` errs by O(ε²)."""
    names = fam.free
    p = theta.numel()
    with torch.enable_grad():
        th = theta.detach().clone().requires_grad_(True)
        kinks = fam.kinks({k: th[j] for j, k in enumerate(names)})
        total = torch.zeros(p, p, dtype=_DTYPE)
        for kappa in kinks:
            (dk,) = torch.autograd.grad(kappa.sum(), th, retain_graph=True, allow_unused=True)
            if dk is None:
                continue
            kap = float(kappa.detach().sum())
            with torch.no_grad():
                dens = float(p_dist.log_prob(torch.tensor(kap, dtype=_DTYPE)).exp())
            eps = 1e-5 * (1.0 + abs(kap))
            ys = torch.tensor([kap - eps, kap + eps, kap - 2 * eps, kap + 2 * eps], dtype=_DTYPE)
            psi = _pointwise_grad(obj, fam, theta, ys)
            jump = 2 * (psi[0] - psi[1]) - (psi[2] - psi[3])
            total = total + dens * jump[:, None] * dk.detach()[None, :]
    return total


def _pointwise_grad(
    obj: Objective, fam: Family, theta: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    r""":math:`\nabla_\theta S(Q_\theta, y)` at every element of ``y``, shape ``(*y.shape, p)``:
    each element gets its own copy of θ, so one backward pass gives every gradient (the one
    column of :func:`_pointwise_grad_cols`)."""
    return _pointwise_grad_cols(obj, fam, theta.unsqueeze(0), y)


def _pointwise_grad_cols(
    obj: Objective, fam: Family, cols: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """The pointwise gradient with θ per column: ``cols`` (k, p), ``y`` (N, k) (with k = 1,
    ``y`` of any shape); the gradient at node (n, c) is taken at θ_c. Shape ``(*y.shape, p)``."""
    names = fam.free
    with torch.enable_grad():
        copies = [
            cols[:, j].detach().expand(y.shape).clone().requires_grad_(True)
            for j in range(len(names))
        ]
        dist = fam.distribution_unchecked(dict(zip(names, copies, strict=True)))
        loss = obj.loss(dist, y.detach(), validate=False)
        grads = torch.autograd.grad(loss.sum(), copies, allow_unused=True)
    return torch.stack([torch.zeros_like(y) if g is None else g.detach() for g in grads], dim=-1)


def _expect_nodes(
    obj: Objective,
    fam: Family,
    theta: torch.Tensor,
    p_dist: torch.distributions.Distribution,
    per_node: Callable[[torch.Tensor], torch.Tensor],
    k: int,
) -> torch.Tensor:
    """``E_P[per_node(Y)]`` for ``k`` columns (``per_node`` maps nodes (N, k) to (N, k)); the
    forecast of every column is Q_θ, or Q_{θ_c} with ``theta`` of shape (k, p)."""

    def integrand(dist: torch.distributions.Distribution, y: torch.Tensor) -> torch.Tensor:
        return per_node(y)

    product = dataclasses.replace(obj, name=f"grad-moment[{obj.spec}]", hyper={}, fn=integrand)
    names = fam.free
    cols = theta.detach().expand(k, len(names)) if theta.dim() == 1 else theta.detach()
    q = fam.distribution_unchecked({n: cols[:, j].clone() for j, n in enumerate(names)})
    with torch.no_grad():
        return expected_score_details(product, p_dist, q).value


def _mean_grad(
    obj: Objective, fam: Family, theta: torch.Tensor, p_dist: torch.distributions.Distribution
) -> torch.Tensor:
    """E_P ∇_θ S(Q_θ, Y): the estimating equation, 0 at θ*."""
    return _mean_grads(obj, fam, theta.unsqueeze(0), p_dist)[0]


def _mean_grads(
    obj: Objective, fam: Family, thetas: torch.Tensor, p_dist: torch.distributions.Distribution
) -> torch.Tensor:
    """E_P ∇_θ S(Q_θ, Y) at each row of ``thetas`` (m, p), in one quadrature: column (i, j)
    of the batch is the forecast Q_{θ_i} (its own cuts) scoring ∂S/∂θ_j at θ_i."""
    m, p = thetas.shape
    cols = thetas.detach().repeat_interleave(p, dim=0)  # (m p, p): row i p + j is θ_i
    which = torch.arange(p).repeat(m)  # the derivative each column integrates

    def per_node(y: torch.Tensor) -> torch.Tensor:  # y: (N, m p)
        g = _pointwise_grad_cols(obj, fam, cols, y)  # (N, m p, p)
        return g.gather(-1, which.expand(y.shape).unsqueeze(-1)).squeeze(-1)

    return _expect_nodes(obj, fam, cols, p_dist, per_node, m * p).reshape(m, p)


def _support(
    p_dist: torch.distributions.Distribution, q_dist=None, frame: tuple | None = None
) -> tuple:
    """(lo, hi, centre, scale, discrete): the support of the forecast family (of the truth when
    there is no forecast), and the truth's centre and scale (taken from ``frame``, an earlier
    result for the same truth, when given)."""
    lo, hi = (float(v) for v in support_bounds(p_dist.support, dtype=_DTYPE))
    discrete = bool(p_dist.support.is_discrete)
    if q_dist is not None:
        lo, hi = (float(v) for v in support_bounds(q_dist.support, dtype=_DTYPE))
        discrete = bool(q_dist.support.is_discrete)
    if frame is not None:
        return lo, hi, frame[2], frame[3], discrete
    c, s = centre_scale(p_dist, p_dist.support, _DTYPE, torch.device("cpu"))
    return lo, hi, float(c), float(s), discrete


def _ges(
    influence: Callable[[torch.Tensor], torch.Tensor], names: Sequence[str], support: tuple
) -> dict[str, dict[str, Any]]:
    r"""sup_x |IF_j(x)|: ``inf`` where |IF_j| keeps growing along x = centre ± scale·4^k towards
    an infinite end of the support (increasing over the last four steps, the increments not
    shrinking by more than half each step: a bounded monotone IF approaching its limit like 1/x
    has increments shrinking by 4 per step) or towards a finite end that it blows up at; else
    the maximum over a dense grid of the central region and the far points."""
    lo, hi, c, s, discrete = support
    far: dict[str, np.ndarray] = {}
    steps = 4.0 ** np.arange(_GES_STEPS)
    if math.isinf(hi):
        far["+"] = c + s * steps
    elif hi > c:
        far["+"] = hi - (hi - c) * 4.0 ** -np.arange(_GES_STEPS)
    if math.isinf(lo):
        far["-"] = c - s * steps
    elif lo < c:
        far["-"] = lo + (c - lo) * 4.0 ** -np.arange(_GES_STEPS)
    if discrete:
        far = {
            k: np.unique(np.round(v)) if k == "+" else np.unique(np.round(v))[::-1]
            for k, v in far.items()
        }
        if math.isfinite(lo):  # a finite lower end of integers: the IF there is just a value
            far.pop("-", None)
    grid = np.linspace(max(lo, c - 50 * s), min(hi, c + 50 * s), _GES_GRID)
    if discrete:
        grid = np.unique(np.round(grid))
    grid = grid[(grid > lo) | (discrete & (grid >= lo))] if math.isfinite(lo) else grid
    grid = grid[(grid < hi) | (discrete & (grid <= hi))] if math.isfinite(hi) else grid
    # one pass of the influence function over the grid and every far point (each point has its
    # own copy of θ, so batching them changes no value)
    sides = list(far)
    allx = np.concatenate([grid, *(far[k] for k in sides)])
    values = influence(torch.as_tensor(allx, dtype=_DTYPE)).abs()
    central = values[: len(grid)]
    out: dict[str, dict[str, Any]] = {}
    far_values, at = {}, len(grid)
    for k in sides:
        far_values[k] = values[at : at + len(far[k])]
        at += len(far[k])
    for j, name in enumerate(names):
        unbounded_side, evidence = None, {}
        sup = float(central[:, j].max()) if central.numel() else 0.0
        for side, xs in far.items():
            vals = far_values[side][:, j].numpy()
            evidence[side] = {
                "x": [float(x) for x in xs],
                "abs_influence": [float(v) for v in vals],
            }
            if not np.isfinite(vals).all():
                unbounded_side = side
                continue
            sup = max(sup, float(vals.max()))
            if len(vals) >= 5:
                d = np.diff(vals[-5:])
                # a material rise: at least 0.1% over the four steps (x grows 256-fold there;
                # log|x| growth rises ~30%), not rounding in A^-1 (a 1e-16 off-diagonal term
                # times x drifts a bounded IF by 1e-8 relative at x = 7e7)
                rise = vals[-1] - vals[-5] > 1e-3 * max(abs(vals[-5]), _TINY)
                if rise and (d > 0).all() and (d[1:] >= 0.5 * d[:-1]).all():
                    unbounded_side = side
        if unbounded_side is not None:
            out[name] = {
                "value": math.inf,
                "bounded": False,
                "evidence": {
                    "side": unbounded_side,
                    **evidence,
                    "rule": "|IF| increases along the last four steps to the support's end by "
                    "more than 0.1%, without the increments shrinking",
                },
            }
        else:
            out[name] = {
                "value": sup,
                "bounded": True,
                "evidence": {
                    **evidence,
                    "rule": f"maximum of |IF| over {len(grid)} grid points on centre ± 50 "
                    "scales and the far points",
                },
            }
    return out


def _truth_params(dgp: DataGeneratingProcess, fam: Family) -> dict[str, float] | None:
    from likelab.properness.density import _truth_params as tp

    params = tp(dgp, fam)
    return None if params is None else {k: float(v) for k, v in params.items()}


def _main_component(
    dgp: DataGeneratingProcess, fam: Family
) -> tuple[dict[str, float], float] | None:
    """The parameters and weight of a mixture's component of weight above 1/2 when it is a
    member of ``fam`` (contamination (1 - eps) P + eps G, eps < 1/2: the target is P's
    parameters, the estimand of :mod:`likelab.study.design` under contamination); else None."""
    from likelab.families.dgp import MixtureDGP

    if not isinstance(dgp, MixtureDGP):
        return None
    k = int(np.argmax(dgp.weights))
    if not dgp.weights[k] > 0.5:
        return None
    params = _truth_params(dgp.components[k], fam)
    return None if params is None else (params, float(dgp.weights[k]))


def _lists(m: torch.Tensor) -> list[list[float]]:
    return [[float(v) for v in row] for row in m]


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise ParameterError(f"{what} must be a finite number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} must be a finite number, got {value!r}") from None
    if not math.isfinite(v):
        raise ParameterError(f"{what} must be a finite number, got {value!r}")
    return v
