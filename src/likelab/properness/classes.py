r"""Properness over the probability simplex: is the expected score minimised by the truth?

For a scoring rule S on K classes and a true distribution q, the expected score of a forecast p is
:math:`\bar S(p; q) = \sum_k q_k S(p, k)`. S is *proper* if :math:`\bar S(q; q) \le \bar S(p; q)`
for all p, q and *strictly proper* if equality forces p = q (Gneiting & Raftery 2007, JASA
102:359-378, sec. 2-3). :func:`check_classes` tests this numerically: for many truths q (Dirichlet
draws and edge cases: uniform, near one-hot, ties) it minimises :math:`\bar S(\cdot; q)` over the
whole simplex, in softmax coordinates, with the batched Newton optimiser of
:mod:`likelab.estimate.newton` from several starts (the truth itself among them), and compares the
optimum with q.

Verdicts, with the tolerances that decide them:

- ``improper``: some truth is beaten: :math:`\bar S(q; q) - \min_p \bar S(p; q) > \tau_S` with
  :math:`\tau_S = 10^{-9}(1 + |\bar S(q; q)|)` (far above the ~1e-15 rounding of the sums), the
  evidence being finite expected scores at q and at the p that beats it;
- ``proper``: no truth is beaten, but for some truth another forecast ties it: its expected
  score within :math:`\tau_S` while :math:`\max_k |p_k - q_k| > 10^{-3}`, *and* the expected
  score is flat at the truth along the way to it (below);
- ``strictly proper``: no truth is beaten and every optimum found is q (to :math:`10^{-3}`) or
  a flat-looking but strict minimum;
- ``undetermined``: nothing beats a truth, but the evidence for the other two is missing: an
  expected score at some truth is not finite (a rule that returns NaN, or one infinite at
  interior forecasts), or no start for some truth ended at a converged, finite minimum. The
  verdict's ``how`` says which and where. No verdict rests on an empty set or a non-finite
  number.

**Ties and flat minima.** A value within :math:`\tau_S` is not yet a tie: where the minimum is
strict but flat (pseudospherical rules with large γ, whose expected score rises like
:math:`|p - q|^\gamma` towards a class the truth nearly lacks), the optimiser stops at p with a
gap of, e.g., 4e-10 at distance 5e-3 (``pseudospherical:gamma=4`` on K = 5), real but below
:math:`\tau_S`, which is sized for refutations, not for ties. A proper rule's expected score is
:math:`\bar S(p; q) = -G(p) - \langle G'(p), q - p\rangle` with G convex (Gneiting & Raftery
2007, Theorem 1, loss orientation), so the gap :math:`\bar S(p; q) - \bar S(q; q)` is the Bregman
divergence :math:`D_G(q, p)`. It vanishes at p ≠ q only where G is affine on the segment [q, p],
and then :math:`g(t) = \bar S(q + t d; q) - \bar S(q; q)`, d = p - q, vanishes *identically* on
[0, 1]: in value at p, in slope g'(1) at p (p is a minimiser too) and in curvature
:math:`g''(0) = d^\top \nabla^2 G(q)\, d` at q. A candidate is therefore a tie only where all
three are at rounding level, and a flat strict minimum where any one is resolvably positive:

- the gap g(1), computed as :math:`\sum_k q_k (S(p, k) - S(q, k))`, beyond
  :math:`64 K \epsilon \sum_k q_k (|S(p, k)| + |S(q, k)|)` (a sum of K differences of terms of
  that size rounds to a few :math:`K \epsilon` of it; 64 is the margin);
- g'(1) and g''(0), computed by autograd, beyond 4 times the difference between two arithmetic
  paths (the forecasts given as probabilities and as log-probabilities), which measures their
  rounding, and beyond :math:`10^{-10}` of the class-by-class derivatives whose q-weighted sum
  they are (rounding leaves ~1e-16 of that size; an optimiser that stopped a distance δ off a
  genuinely flat set leaves a slope of about twice its residual gap, far below this).

The gap resolves the flat minima of moderate γ (4e-10 above); the slope at p resolves minima of
order γ whose gap rounds away: ``pseudospherical:gamma=8`` under a truth with a class of
probability 1.4e-4 stops at p at distance 0.012 with g(1) = 9e-15 (rounding) but g'(1) = 7.5e-14,
its two paths agreeing to 4e-18; the curvature resolves minima near q. The constant score and
any rule flat along d pass all three and stay ties; the optimiser reaches a genuine flat set to
rounding, since it converges quadratically in the directions off it.

**Size.** The Newton solve holds ``starts × truths`` forecasts of K classes each scored at all
K labels, with a K - 1 dimensional Hessian by autograd: memory and time grow like
:math:`S M K^3`. :func:`classes_cost` estimates both, and :func:`check_classes` refuses, before
allocating anything, a K whose memory estimate exceeds
:func:`likelab._budget.memory_limit` (the one limit every size check of likelab uses: half the
machine's physical memory, or ``LIKELAB_MEMORY_LIMIT``), with the estimate in the message.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical

from likelab._budget import format_bytes, format_seconds, memory_limit
from likelab.errors import ParameterError, UnsupportedError
from likelab.estimate.newton import newton_minimize
from likelab.objectives import Objective, get_objective

__all__ = [
    "UNDETERMINED",
    "VERDICTS",
    "ClassesVerdict",
    "Verdict",
    "check_classes",
    "class_truths",
    "classes_cost",
]

SCORE_TOL = 1e-9  # relative gap in expected score that refutes properness
PARAM_TOL = 1e-3  # distance in probability that makes an optimum "another forecast"
UNDETERMINED = "undetermined"
#: Every verdict a check can give (besides ``None``: no question, the truth is outside the family).
VERDICTS = ("strictly proper", "proper", "improper", UNDETERMINED)
ROUNDING = 64  # a gap within ROUNDING * K * eps of the summed terms' size is rounding
CURVATURE_TOL = 1e-10  # curvature at the truth, relative to its terms, that makes a tie strict


@dataclass(frozen=True)
class Verdict:
    """What every properness verdict carries: the objective's spec, the setting
    (``"classes:K"`` or ``"density"``), the verdict (one of :data:`VERDICTS`, or ``None`` where
    the question does not arise: a truth outside the forecast family) and the registry's claim.
    ``"undetermined"`` means the question arises but the evidence cannot answer it (non-finite
    expected scores, no converged start); ``how`` then says why."""

    objective: str
    setting: str
    verdict: str | None
    claimed: str | None

    @property
    def agrees_with_claim(self) -> bool | None:
        """Whether the verdict is what the registry claims (None without a claim or verdict)."""
        if self.claimed is None or self.verdict in (None, UNDETERMINED):
            return None
        return self.claimed == self.verdict

    def _head(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "setting": self.setting,
            "verdict": self.verdict,
            "claimed": self.claimed,
            "agrees_with_claim": self.agrees_with_claim,
        }


@dataclass(frozen=True)
class ClassesVerdict(Verdict):
    """The verdict for one objective on K classes, with its evidence.

    ``worst_truth`` is the truth with the largest gap ``gap = S(q; q) - min_p S(p; q)`` (> 0:
    beaten), ``optimum`` the forecast found there; ``how`` says how the optimum is wrong
    (sharper or flatter than the truth, measured by entropy).
    """

    truths: int
    worst_truth: list[float]
    optimum: list[float]
    gap: float
    distance: float
    how: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._head(),
            "truths": self.truths,
            "worst_truth": self.worst_truth,
            "optimum": self.optimum,
            "gap": self.gap,
            "distance": self.distance,
            "how": self.how,
        }


_BYTES_PER_CELL = 12.0  # peak bytes per (problem, K³) cell, measured (see classes_cost)
_SECONDS_PER_CELL = 1.5e-6  # seconds per (problem, K³) cell over a whole solve, measured
_BASE_BYTES = 64 * 2**20


def _n_truths_of(k: int, n_random: int) -> int:
    return (5 if k >= 3 else 4) + n_random


def classes_cost(k: int, n_truths: int = 40, starts: int = 4) -> tuple[float, float]:
    """Estimated peak memory (bytes) and time (seconds) of :func:`check_classes` on K classes.

    ``starts × truths`` problems, each with a K × K matrix of forecasts-by-labels whose K - 1
    Hessian rows autograd builds: both grow like :math:`S M K^3`. The constants were measured
    with the log score (K = 20 to 120, peak resident memory above the interpreter's); they are
    estimates, within a factor of about 2.

    >>> mem, sec = classes_cost(1000)
    >>> mem > 2**30 and sec > 3600
    True
    """
    cells = float(starts) * _n_truths_of(k, n_truths) * float(k) ** 3
    return _BASE_BYTES + _BYTES_PER_CELL * cells, _SECONDS_PER_CELL * cells


def _check_size(k: int, n_truths: int, starts: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ParameterError(f"the number of classes K must be an integer >= 2, got {k!r}")
    mem, sec = classes_cost(k, n_truths, starts)
    budget = memory_limit()
    if mem <= budget:
        return
    largest = 2
    while classes_cost(largest + 1, n_truths, starts)[0] <= budget:
        largest += 1
    raise ParameterError(
        f"properness on K = {k} classes needs about {format_bytes(mem)} of memory (limit "
        f"{format_bytes(budget)}, {_limit_source()}) and about {format_seconds(sec)}: "
        f"use K <= {largest}"
    )


def _limit_source() -> str:
    return (
        "set by LIKELAB_MEMORY_LIMIT"
        if os.environ.get("LIKELAB_MEMORY_LIMIT", "").strip()
        else "half this machine's; LIKELAB_MEMORY_LIMIT changes it"
    )


def class_truths(k: int, n_random: int = 40, seed: int = 0) -> np.ndarray:
    """Truths on the K-simplex: uniform, near one-hot, two-way and three-way ties, a geometric
    profile, then ``n_random`` Dirichlet(1) draws (seeded). Shape ``(M, K)``, float64."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ParameterError(f"the number of classes K must be an integer >= 2, got {k!r}")
    edge = [np.full(k, 1.0 / k)]
    near = np.full(k, 0.02 / (k - 1))
    near[0] = 0.98
    edge.append(near)
    tie = np.full(k, 0.1 / max(k - 2, 1)) if k > 2 else np.zeros(k)
    tie[:2] = 0.45 if k > 2 else 0.5
    edge.append(tie / tie.sum())
    if k >= 3:
        tie3 = np.full(k, 0.04 / max(k - 3, 1)) if k > 3 else np.zeros(k)
        tie3[:3] = 0.32 if k > 3 else 1 / 3
        edge.append(tie3 / tie3.sum())
    geometric = 0.5 ** np.arange(k)
    edge.append(geometric / geometric.sum())
    rng = np.random.default_rng(seed)
    return np.concatenate([np.stack(edge), rng.dirichlet(np.ones(k), size=n_random)])


def expected_class_score(
    objective: Objective, p: torch.Tensor, q: torch.Tensor, *, logits: bool = False
) -> torch.Tensor:
    """``Σ_k q_k S(p, k)`` for forecasts ``p`` and truths ``q`` of shape ``(B, K)``.

    With ``logits=True``, ``p`` holds the forecasts' logits: use it where probabilities may be
    tiny, since ``Categorical(probs=...)`` clamps them at the dtype's eps before taking logs.
    """
    k = p.shape[-1]
    labels = torch.arange(k, device=p.device)
    batch = p.unsqueeze(-2).expand(*p.shape[:-1], k, k)
    dist = Categorical(logits=batch) if logits else Categorical(probs=batch)  # (B, K) forecasts
    losses = objective.loss(dist, labels.expand(*p.shape[:-1], k), validate=False)  # (B, K)
    return (q * losses).sum(-1)


def check_classes(
    objective: str | Objective | Callable[..., torch.Tensor],
    k: int = 3,
    *,
    n_truths: int = 40,
    starts: int = 4,
    seed: int = 0,
    max_iter: int = 200,
    on_progress: Callable[[int, int], None] | None = None,
) -> ClassesVerdict:
    """Check whether ``objective`` is (strictly) proper on K classes; see the module docstring.

    >>> check_classes("log", 3).verdict
    'strictly proper'
    >>> v = check_classes("linear", 3)
    >>> v.verdict, v.how.split(":")[0]
    ('improper', 'sharper than the truth')
    """
    obj = get_objective(objective)
    if obj.batch_level:
        raise UnsupportedError(f"{obj.name!r} is a batch-level objective, not a scoring rule")
    for name, value, least in (
        ("n_truths", n_truths, 0),
        ("starts", starts, 1),
        ("max_iter", max_iter, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ParameterError(f"{name} must be an integer >= {least}, got {value!r}")
    _check_size(k, n_truths, starts)
    truths = torch.as_tensor(class_truths(k, n_truths, seed))
    m = truths.shape[0]
    try:
        at_truth = expected_class_score(obj, truths, truths)
    except UnsupportedError as exc:
        raise UnsupportedError(f"{obj.spec} cannot score class forecasts: {exc}") from None
    at_truth = at_truth.detach()

    # Starts in softmax coordinates (logits relative to class 0): the truth, then random points.
    log_q = torch.log(truths)
    u_truth = log_q[:, 1:] - log_q[:, :1]
    rng = np.random.default_rng(seed + 1)
    extra = torch.as_tensor(rng.normal(0.0, 2.0, size=(starts - 1, m, k - 1)))
    u0 = torch.cat([u_truth.unsqueeze(0), extra]).reshape(starts * m, k - 1)
    q_rep = truths.repeat(starts, 1)

    def risk(u: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        logits = torch.cat([torch.zeros_like(u[:, :1]), u], dim=-1)
        return expected_class_score(obj, logits, q_rep[idx], logits=True)

    res = newton_minimize(risk, u0, max_iter=max_iter, on_progress=on_progress)
    u = res.u.reshape(starts, m, k - 1)
    p_all = torch.softmax(torch.cat([torch.zeros_like(u[..., :1]), u], -1), -1)  # (S, M, K)
    finite = torch.isfinite(res.value).reshape(starts, m)
    # a start is evidence where it converged, or stopped where the expected score is flat to
    # the last bit (gradient and Hessian exactly 0: a constant score)
    flat_stop = torch.as_tensor([r == "flat" for r in res.reason]).reshape(starts, m)
    converged = (res.converged.reshape(starts, m) | flat_stop) & finite
    v_all = torch.where(
        finite,
        res.value.reshape(starts, m),
        torch.full_like(finite, math.inf, dtype=res.value.dtype),
    )
    best = v_all.argmin(0)
    idx = torch.arange(m)
    p_best, v_best = p_all[best, idx], v_all[best, idx]
    truth_ok = torch.isfinite(at_truth)
    tol = SCORE_TOL * (1 + at_truth.abs())
    gap = torch.where(
        truth_ok & finite.any(0), at_truth - v_best, torch.full_like(at_truth, math.nan)
    )
    dist_all = (p_all - truths).abs().amax(-1)  # (S, M)
    candidates = (v_all <= at_truth + tol) & (dist_all > PARAM_TOL) & truth_ok
    ties = candidates.clone()
    if bool(candidates.any()):
        s_i, m_i = torch.nonzero(candidates, as_tuple=True)
        ties[s_i, m_i] = _flat_towards(obj, truths[m_i], p_all[s_i, m_i])
    # evidence for "proper" or "strictly proper": a finite score at every truth, and for every
    # truth a start that converged to a finite minimum
    missing = ~truth_ok | ~converged.any(0)

    beaten = gap > tol  # NaN (no finite evidence) compares False
    reason = ""
    if bool(beaten.any()):
        verdict = "improper"
        worst = int(torch.argmax(torch.where(beaten, gap / (1 + at_truth.abs()), -math.inf)))
        p_show = p_best[worst]
    elif bool(missing.any()):
        verdict = UNDETERMINED
        worst = int(torch.nonzero(missing)[0])
        p_show = p_best[worst] if bool(finite[:, worst].any()) else truths[worst]
        reason = _missing_reason(at_truth, finite, converged, res.reason, starts, m, worst)
    elif bool(ties.any()):
        verdict = "proper"
        worst = int(torch.nonzero(ties.any(0))[0])
        s = int(torch.nonzero(ties[:, worst])[0])
        p_show = p_all[s, worst]
    else:
        verdict = "strictly proper"
        near = torch.where(converged, dist_all, torch.full_like(dist_all, math.inf)).min(0).values
        worst = int(torch.argmax(near))
        p_show = p_best[worst]
    q_show = truths[worst]
    claimed = claim_of(obj)
    flat = int((candidates & ~ties).sum())
    return ClassesVerdict(
        objective=obj.spec,
        setting=f"classes:{k}",
        verdict=verdict,
        claimed=claimed,
        truths=m,
        worst_truth=q_show.tolist(),
        optimum=p_show.tolist(),
        gap=float(gap[worst]),
        distance=float((p_show - q_show).abs().max()),
        how=reason or _how(q_show, p_show, verdict, flat),
        details={
            "converged": float(converged.float().mean()),
            "flat_strict_minima": flat,
        },
    )


def _flat_towards(obj: Objective, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    r"""Whether a candidate tie at ``p`` is genuine, for rows of ``q`` and ``p`` of shape
    ``(C, K)`` (module docstring, "Ties and flat minima"): with d = p - q and
    :math:`g(t) = \bar S(q + t d; q) - \bar S(q; q)`, the gap g(1), the slope g'(1) and the
    curvature g''(0) all at rounding level. Any of them resolvably positive makes p a flat but
    strict minimum."""
    c, k = q.shape
    d = p - q
    labels = torch.arange(k, device=q.device).expand(c, k)
    eps = torch.finfo(q.dtype).eps
    with torch.no_grad():
        l_p = obj.loss(Categorical(probs=p.unsqueeze(1).expand(c, k, k)), labels, validate=False)
        l_q = obj.loss(Categorical(probs=q.unsqueeze(1).expand(c, k, k)), labels, validate=False)
        gap = (q * (l_p - l_q)).sum(-1)
        noise = ROUNDING * k * eps * (q * (l_p.abs() + l_q.abs())).sum(-1)
    flat = torch.isfinite(gap) & (gap.abs() <= noise)
    flat &= ~_resolved_positive(obj, q, d, labels, at=1.0, order=1)  # slope at p
    flat &= ~_resolved_positive(obj, q, d, labels, at=0.0, order=2)  # curvature at q
    return flat


def _resolved_positive(
    obj: Objective, q: torch.Tensor, d: torch.Tensor, labels: torch.Tensor, at: float, order: int
) -> torch.Tensor:
    r"""Whether :math:`\partial_t^n \sum_k q_k S(q + t d, k)` at ``t = at`` (n = ``order``) is
    positive beyond its rounding: computed by autograd along two arithmetic paths (the
    forecasts as probabilities and as their logarithms), it must exceed 4 times their
    difference and ``CURVATURE_TOL`` of :math:`\sum_k q_k |\partial_t^n S(q + t d, k)|`. Each
    class has its own t, so one backward pass per order gives every class's derivative. Where
    autograd cannot take them (a rule that is not differentiable so often), nothing is
    resolved."""
    c, _ = q.shape
    none = torch.zeros(c, dtype=torch.bool)
    sums, sizes = [], []
    for as_logits in (False, True):
        try:
            with torch.enable_grad():
                t = torch.full_like(q, at, requires_grad=True)  # one t per label: (C, K)
                r = q.unsqueeze(1) + t.unsqueeze(-1) * d.unsqueeze(1)  # (C, K labels, K)
                dist = Categorical(logits=torch.log(r)) if as_logits else Categorical(probs=r)
                deriv = obj.loss(dist, labels, validate=False)  # (C, K)
                for n in range(order):
                    if not deriv.requires_grad:
                        return none
                    (deriv,) = torch.autograd.grad(
                        deriv.sum(), t, create_graph=n < order - 1, allow_unused=True
                    )
                    if deriv is None:
                        return none
        except (RuntimeError, UnsupportedError):
            return none
        deriv = deriv.detach()
        sums.append((q * deriv).sum(-1))
        sizes.append((q * deriv.abs()).sum(-1))
    value = torch.minimum(*sums)
    noise = 4 * (sums[0] - sums[1]).abs() + CURVATURE_TOL * torch.maximum(*sizes)
    return torch.isfinite(value) & torch.isfinite(noise) & (value > noise)


def _missing_reason(
    at_truth: torch.Tensor,
    finite: torch.Tensor,
    converged: torch.Tensor,
    reasons: list[str],
    starts: int,
    m: int,
    worst: int,
) -> str:
    bad_truth = ~torch.isfinite(at_truth)
    if bool(bad_truth.any()):
        n = int(bad_truth.sum())
        return (
            f"undetermined: the expected score at the truth is {float(at_truth[worst])} "
            f"({n} of {m} truths have no finite expected score); non-finite numbers are no "
            "evidence for a verdict"
        )
    stops = sorted({reasons[s * m + worst] for s in range(starts)})
    n = int((~converged.any(0)).sum())
    return (
        f"undetermined: no start converged to a finite minimum for {n} of {m} truths "
        f"(stops: {', '.join(stops)}), so nothing shows where the expected score is minimised"
    )


def claim_of(obj: Objective) -> str | None:
    """The registry's claim for ``obj``: "strictly proper", "proper", "improper" or None."""
    p = obj.properties
    if p.strictly_proper:
        return "strictly proper"
    if p.proper:
        return "proper"
    if p.proper is False:
        return "improper"
    return None


def _entropy(p: torch.Tensor) -> float:
    return float(-(p * torch.log(p.clamp(min=1e-300))).sum())


def _how(q: torch.Tensor, p: torch.Tensor, verdict: str, flat: int = 0) -> str:
    if verdict == "strictly proper":
        extra = (
            f"; {flat} flat optima elsewhere are strict minima (the score rises towards them)"
            if flat
            else ""
        )
        return f"the optimum is the truth (within {float((p - q).abs().max()):.1e}){extra}"
    hq, hp = _entropy(q), _entropy(p)
    direction = "sharper than the truth" if hp < hq else "flatter than the truth"
    mode = int(torch.argmax(q))
    return (
        f"{direction}: entropy {hp:.3f} vs {hq:.3f}; mass on the truth's mode {float(p[mode]):.3f}"
        f" vs {float(q[mode]):.3f}"
    )
