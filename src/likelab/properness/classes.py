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
  :math:`\tau_S = 10^{-9}(1 + |\bar S(q; q)|)` (far above the ~1e-15 rounding of the sums);
- ``proper``: no truth is beaten, but for some truth another forecast ties it, its expected score
  within :math:`\tau_S` while :math:`\max_k |p_k - q_k| > 10^{-3}`;
- ``strictly proper``: no truth is beaten and every optimum found is q (to :math:`10^{-3}`;
  the optimiser reaches ~1e-8, a tie elsewhere would be far from q).

A numerical check can refute properness (the worst truth and the forecast that beats it are
returned as evidence) but only support it on the truths tried.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical

from likelab.errors import ParameterError, UnsupportedError
from likelab.estimate.newton import newton_minimize
from likelab.objectives import Objective, get_objective

__all__ = ["ClassesVerdict", "Verdict", "check_classes", "class_truths"]

SCORE_TOL = 1e-9  # relative gap in expected score that refutes properness
PARAM_TOL = 1e-3  # distance in probability that makes an optimum "another forecast"


@dataclass(frozen=True)
class Verdict:
    """What every properness verdict carries: the objective's spec, the setting
    (``"classes:K"`` or ``"density"``), the verdict (``None`` where none can be given) and the
    registry's claim."""

    objective: str
    setting: str
    verdict: str | None
    claimed: str | None

    @property
    def agrees_with_claim(self) -> bool | None:
        """Whether the verdict is what the registry claims (None without a claim or verdict)."""
        if self.claimed is None or self.verdict is None:
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
    truths = torch.as_tensor(class_truths(k, n_truths, seed))
    m = truths.shape[0]
    try:
        at_truth = expected_class_score(obj, truths, truths)
    except UnsupportedError as exc:
        raise UnsupportedError(f"{obj.spec} cannot score class forecasts: {exc}") from None

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

    res = newton_minimize(risk, u0, max_iter=max_iter)
    u = res.u.reshape(starts, m, k - 1)
    p_all = torch.softmax(torch.cat([torch.zeros_like(u[..., :1]), u], -1), -1)  # (S, M, K)
    v_all = res.value.reshape(starts, m)
    v_all = torch.where(torch.isfinite(v_all), v_all, torch.full_like(v_all, math.inf))
    best = v_all.argmin(0)
    idx = torch.arange(m)
    p_best, v_best = p_all[best, idx], v_all[best, idx]
    tol = SCORE_TOL * (1 + at_truth.abs())
    gap = at_truth - v_best
    dist_all = (p_all - truths).abs().amax(-1)  # (S, M)
    ties = (v_all <= at_truth + tol) & (dist_all > PARAM_TOL)

    beaten = gap > tol
    if bool(beaten.any()):
        verdict, worst = "improper", int(torch.argmax(gap / (1 + at_truth.abs())))
        p_show = p_best[worst]
    elif bool(ties.any()):
        verdict = "proper"
        worst = int(torch.nonzero(ties.any(0))[0])
        s = int(torch.nonzero(ties[:, worst])[0])
        p_show = p_all[s, worst]
    else:
        verdict, worst = "strictly proper", int(torch.argmax(dist_all.min(0).values))
        p_show = p_best[worst]
    q_show = truths[worst]
    claimed = claim_of(obj)
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
        how=_how(q_show, p_show, verdict),
        details={"converged": float(res.converged.float().mean())},
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


def _how(q: torch.Tensor, p: torch.Tensor, verdict: str) -> str:
    if verdict == "strictly proper":
        return f"the optimum is the truth (within {float((p - q).abs().max()):.1e})"
    hq, hp = _entropy(q), _entropy(p)
    direction = "sharper than the truth" if hp < hq else "flatter than the truth"
    mode = int(torch.argmax(q))
    return (
        f"{direction}: entropy {hp:.3f} vs {hq:.3f}; mass on the truth's mode {float(p[mode]):.3f}"
        f" vs {float(q[mode]):.3f}"
    )
