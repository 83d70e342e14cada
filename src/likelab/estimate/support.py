r"""Exact fits of the uniform family under density-based objectives.

For the uniform forecast :math:`F = U(l, h)` of width :math:`w = h - l` the density is
:math:`f(y) = 1/w` on :math:`[l, h]` and 0 outside, and :math:`\int f^\alpha = w^{1-\alpha}`. So
every *local* rule :math:`S = \phi(f(y))` and every *integral* rule (a function of
:math:`f(y)` and :math:`\int f^\alpha`) takes only two values, both functions of w alone: the loss
:math:`s_{in}(w)` of an observation inside the interval and :math:`s_{out}(w)` of one outside.
With k of the n observations inside, the empirical risk is

.. math::
    R(l, h) = \tfrac{k}{n}\, s_{in}(w) + \left(1 - \tfrac{k}{n}\right) s_{out}(w).

The risk is a step function of (l, h) wherever an observation crosses an end, and its gradient in
any smooth coordinates is blind to those steps: a Newton method stops on a wall (issue 12: a log
fit stopped with ``low`` still at its start). Instead the minimiser is found exhaustively. For a
given k the best interval is the narrowest that holds k observations, i.e. a window of k
consecutive order statistics :math:`[y_{(j)}, y_{(j+k-1)}]` of minimal width :math:`w_k`, because
for every built-in rule :math:`s_{in} \le s_{out}` and :math:`s_{in}, s_{out}` are monotone powers
(or the log) of w. So the candidates are the n - 1 windows :math:`(k, w_k)`, k = 2 … n (O(n²) work;
O(n) with one end fixed, or where excluding an observation costs +inf), and the two limits where no
minimiser exists: the interval shrinking onto one observation (w → 0: the spherical,
pseudospherical, γ-divergence and Lq scores reward it without bound) and growing without bound (w →
∞). Under the log score, :math:`s_{out} = +\infty` forces k = n and the answer is the closed-form
MLE :math:`(\min y, \max y)` (the likelihood :math:`w^{-n}` is largest for the narrowest interval
that holds every observation).

The winner is verified on the objective itself, not on the decomposition: its risk must equal
:math:`R` above to rounding, and moving each free end by ±δ (δ = 10⁻⁹ … 10⁻³ w) must not lower
it. Reasons: ``"exact"`` (verified minimiser, converged), ``"boundary"`` (a limit beats every
finite interval: the infimum is not attained, no estimate; not converged), ``"nonfinite"`` (no
interval has a finite risk, e.g. the log score with observations beyond a fixed end),
``"nonsmooth"`` (verification failed, or an observation inside costs more than one outside at
some candidate width, so the search's premise fails, as it may for a user's φ; not converged).
"""

from __future__ import annotations

import torch

from likelab.families import Family
from likelab.families.distributions import ClosedUniform
from likelab.objectives import Objective

__all__ = ["applies", "fit_uniform"]


def applies(fam: Family, obj: Objective) -> bool:
    """Whether :func:`fit_uniform` solves this fit: a family whose support moves with its
    parameters (the uniform) and a density-based objective (local or integral rule)."""
    return (
        fam.name == "uniform"
        and bool(fam.free)
        and (obj.kind in ("local", "integral") or obj.phi_fn is not None)
    )


def _in_out(obj: Objective, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The losses s_in(w), s_out(w) of an observation inside and outside U(0, w)."""
    dist = ClosedUniform(torch.zeros_like(w), w, validate_args=False)
    return obj.loss(dist, w / 2, validate=False), obj.loss(dist, -w, validate=False)


def _window_risk(obj: Objective, k: torch.Tensor, w: torch.Tensor, n: int) -> torch.Tensor:
    """R = k/n s_in(w) + (1 - k/n) s_out(w) from the objective's own losses on U(0, w)."""
    w_safe = torch.where(w > 0, w, torch.ones_like(w))
    s_in, s_out = _in_out(obj, w_safe)
    frac = k / n
    out = torch.where(k < n, (1 - frac) * s_out, torch.zeros_like(s_out))
    risk = frac * s_in + out
    return torch.where(w > 0, risk, torch.full_like(risk, float("nan")))


def _actual_risk(obj: Objective, low, high, y) -> torch.Tensor:
    dist = ClosedUniform(low.unsqueeze(-1), high.unsqueeze(-1), validate_args=False)
    return obj.risk(dist, y, validate=False)


def fit_uniform(
    fam: Family, obj: Objective, y: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor, list[str]]:
    """The exact minimiser over the free ends for data ``y`` of shape ``(R, n)``.

    Returns the natural free parameters (each ``(R,)``), the risk there and a reason per dataset.
    """
    r, n = y.shape
    ys = y.sort(-1).values
    dtype = ys.dtype
    span = (ys[:, -1] - ys[:, 0]).clamp(min=torch.finfo(dtype).tiny)
    at_most = torch.searchsorted(ys, ys, right=True).to(dtype)  # #{y <= y_(j)}
    below = torch.searchsorted(ys, ys, right=False).to(dtype)  # #{y <  y_(j)}
    free = fam.free
    probe = ClosedUniform(torch.zeros_like(span), span, validate_args=False)
    excluding_is_infinite = bool((obj.loss(probe, -span, validate=False) == float("inf")).all())
    if free == ("low", "high"):
        lows, highs, counts = [], [], []
        # where excluding an observation costs +inf (the log score) only k = n is a candidate
        for k in range(n if excluding_is_infinite else 2, n + 1):
            width = ys[:, k - 1 :] - ys[:, : n - k + 1]
            j = width.argmin(-1, keepdim=True)
            lows.append(ys.gather(-1, j).squeeze(-1))
            highs.append(ys.gather(-1, j + k - 1).squeeze(-1))
            counts.append(torch.full((r,), float(k), dtype=dtype))
        low, high, k = torch.stack(lows, -1), torch.stack(highs, -1), torch.stack(counts, -1)
        ties = (at_most - below).amax(-1)  # the most observations at one point
        k_shrink, k_grow = ties, torch.full((r,), float(n), dtype=dtype)
    elif free == ("high",):
        lo = fam.fixed["low"].to(dtype).expand(r).unsqueeze(-1)
        below_lo = (ys < lo).sum(-1, keepdim=True).to(dtype)
        low, high = lo.expand_as(ys), ys
        k = at_most - below_lo
        k_shrink = (ys == lo).sum(-1).to(dtype)
        k_grow = n - below_lo.squeeze(-1)
    else:  # ("low",)
        hi = fam.fixed["high"].to(dtype).expand(r).unsqueeze(-1)
        upto_hi = (ys <= hi).sum(-1, keepdim=True).to(dtype)
        low, high = ys, hi.expand_as(ys)
        k = upto_hi - below
        k_shrink = (ys == hi).sum(-1).to(dtype)
        k_grow = upto_hi.squeeze(-1)
    risk = _window_risk(obj, k, high - low, n)
    risk = torch.where(torch.isnan(risk), torch.full_like(risk, float("inf")), risk)
    best = risk.argmin(-1, keepdim=True)
    low_b, high_b = low.gather(-1, best).squeeze(-1), high.gather(-1, best).squeeze(-1)
    decomposed = risk.gather(-1, best).squeeze(-1)
    value = _actual_risk(obj, low_b, high_b, y)
    tol = 1e-9 * (1.0 + value.abs())
    ok = torch.isfinite(value) & ((value - decomposed).abs() <= tol)
    # the premise of the search: an observation inside never costs more than one outside
    widths = (high - low).clamp(min=torch.finfo(dtype).tiny)
    s_in, s_out = _in_out(obj, widths)
    ok &= ~(s_in > s_out).any(-1)
    # local verification on the objective itself: no free end moved by ±δ lowers the risk
    width = high_b - low_b
    rounding = 100 * torch.finfo(dtype).eps * (1.0 + value.abs())
    for rel in (1e-9, 1e-6, 1e-3):
        for sign in (-1.0, 1.0):
            d = sign * rel * width
            if "low" in free:
                v = _actual_risk(obj, low_b + d, high_b, y)
                ok &= ~(v < value - rounding)
            if "high" in free:
                v = _actual_risk(obj, low_b, high_b + d, y)
                ok &= ~(v < value - rounding)
    # the two limits with no minimiser: shrinking onto a point, growing without bound
    unbounded = torch.zeros_like(ok)
    for w in (span * 1e-12, span * 1e-15, span * 1e12, span * 1e15):
        kk = k_shrink if bool((w < span).all()) else k_grow
        limit = _window_risk(obj, kk, w, n)
        unbounded |= limit < value - rounding
    reason = []
    for i in range(r):
        if not bool(torch.isfinite(value[i])):
            reason.append("nonfinite")
        elif bool(unbounded[i]):
            reason.append("boundary")
        elif bool(ok[i]):
            reason.append("exact")
        else:
            reason.append("nonsmooth")
    params = {}
    if "low" in free:
        params["low"] = low_b
    if "high" in free:
        params["high"] = high_b
    return params, value, reason
