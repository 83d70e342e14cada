r"""Batched damped Newton minimisation: B independent p-dimensional problems at once.

Each problem ``b`` minimises a smooth-ish function :math:`f_b(u)` of an unconstrained vector
:math:`u \in \mathbb{R}^p` (p is small: 1 to 4 parameters). Every iteration computes, for all
active problems at once, the value, gradient and Hessian by autograd (the problems are independent,
so one backward pass of :math:`\sum_b f_b` gives every gradient and p more give every Hessian), then

- the *saddle-free* Newton direction :math:`d = -Q |\Lambda|_\delta^{-1} Q^\top g` from the batched
  eigendecomposition :math:`H = Q \Lambda Q^\top`, with eigenvalues replaced by
  :math:`\max(|\lambda|, \delta)` so that d is a descent direction even where H is indefinite or
  singular (Dauphin et al. 2014, NeurIPS; Nocedal & Wright 2006, *Numerical Optimization*,
  sec. 3.4 on modified Newton methods);
- a per-problem backtracking line search with the Armijo condition (Nocedal & Wright, alg. 3.1),
  the problems that already satisfy it leaving the search. With closed-form derivatives the
  full step is tried with them, and where it is accepted they serve the next iteration (one
  value pass per iteration saved; the iterates are the same). When few problems are left
  searching, one evaluation tries several halvings of their steps (1, 2, 4, ... per block, or
  from the first as many as fill ``LINE_SEARCH_MIN_ROWS`` rows, up to ``LINE_SEARCH_ROWS``
  trial points): the same trial points and accepted steps, in fewer
  calls;
- per-problem convergence tests; a problem that has converged or failed leaves the batch, so the
  rest costs less. Failures are recorded as a reason, never raised;
- where the line search finds no decrease even for steps below ``xtol``, or the gradient and
  Hessian are exactly zero, the derivatives are no evidence of a minimum (the objective may be
  non-differentiable there: a kink, the edge of a support). The point is then *probed*
  (:func:`probe_minimum`): the objective is evaluated at ``u ± r·v`` for every coordinate
  direction, every pair of coordinates, the gradient and the Newton direction, at radii
  ``r = 10⁻¹⁴ … 10⁻¹`` (relative to ``1 + ‖u‖∞``). If in every direction the first change of
  value above rounding is an increase, the point is a local minimum to that resolution (and the
  lowest point probed, lower by rounding at most, is kept); if some direction decreases, the
  iteration continues from the lowest point probed (a compass step,
  Kolda, Lewis & Torczon 2003, SIAM Review 45:385-482); otherwise nothing is claimed. A damped
  step that gains less than 10⁻⁹ of the value (Newton creeping towards a kink) is probed the
  same way, so that a kinked minimum costs a few iterations rather than the iteration limit.

Reasons: ``"gtol"`` (gradient below tolerance), ``"ftol"`` (Newton decrement, the predicted
remaining decrease, below tolerance relative to the value), ``"xtol"`` (no decrease along the
direction even for steps below ``xtol``, with a gradient below ``1e-6 (1 + |f|)`` and the probe
verifying a local minimum: a minimum to working precision), ``"kink"`` (the same stop with a
gradient that is *not* small, or with zero gradient and Hessian, where the probe verified a local
minimum: a minimum at which the objective is not differentiable, such as a Laplace location at a
data point, or flat-bottomed, as between the two middle observations), ``"nonsmooth"`` (such a stop
where the probe found neither a decrease nor an increase in some direction: not verified, not
converged), ``"exact"`` (set by callers that solve a problem exactly instead, e.g.
:func:`likelab.estimate.fit` for the uniform family), ``"max_iter"``, ``"nonfinite"`` (value,
gradient or Hessian not finite at the current point), ``"line_search"`` (no decrease found along
the direction), ``"flat"`` (gradient and Hessian exactly zero and the probe finds no change of
value in some direction up to radius 10⁻¹: the objective is flat to the last bit there, as on the
underflowed plateau of the naive product or of a far-off sum of likelihoods; no evidence of a
minimum), ``"boundary"`` (stopped without a small gradient with a coordinate beyond ``±boundary`` =
25, i.e. a parameter beyond e^±25 on its log or logit scale: the infimum lies at the edge of the
parameter space and there is no finite estimate, as for a gamma fitted to equal observations).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from likelab._threads import adapt
from likelab.estimate.small import (
    cholesky_direction,
    row_dot,
    row_max_abs,
    rows_finite,
)

__all__ = ["CONVERGED", "STOP_REASONS", "NewtonResult", "newton_minimize", "probe_minimum"]

#: ``values(u, idx) -> (B,)``: the objective of problems ``idx`` at ``u`` (shape ``(B, p)``).
ValueFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``derivatives(u, idx) -> (values (B,), gradients (B, p), Hessians (B, p, p))``.
DerivFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]

REASONS = (
    "running",
    "gtol",
    "ftol",
    "xtol",
    "max_iter",
    "nonfinite",
    "line_search",
    "flat",
    "boundary",
    "kink",
    "nonsmooth",
    "exact",
)
#: Each reason in words, for a person reading a table (the module docstring has the details).
STOP_REASONS = {
    "running": "not started: no iteration was run",
    "gtol": "converged: the gradient is below tolerance",
    "ftol": "converged: the Newton decrement (the predicted remaining decrease) is below tolerance",
    "xtol": "converged: no decrease even for the smallest steps, the gradient is small and a "
    "probe in every direction verified a local minimum",
    "max_iter": "did not converge: the iteration limit was reached before a stationary point",
    "nonfinite": "did not converge: the risk, its gradient or its Hessian is not finite at the "
    "last point (NaN or infinite)",
    "line_search": "did not converge: no step along the search direction lowered the risk",
    "flat": "did not converge: the risk is flat to the last bit around the last point (zero "
    "gradient and Hessian, no change of value up to radius 0.1): no evidence of a minimum",
    "boundary": "did not converge: a parameter ran beyond e^±25 on its log or logit scale; the "
    "risk has no minimum inside the parameter space (its infimum lies at the edge) and there "
    "is no finite estimate",
    "kink": "converged: a local minimum where the risk is not differentiable, verified by a "
    "probe in every direction",
    "nonsmooth": "did not converge: the risk is not differentiable at the last point and a probe "
    "found neither a decrease nor an increase in some direction",
    "exact": "converged: solved exactly (no iterations)",
}
#: Reasons that mean "converged": a verified minimum (see the module docstring).
CONVERGED = frozenset({"gtol", "ftol", "xtol", "kink", "exact"})
_CONVERGED = CONVERGED
#: Probe radii, relative to ``1 + max|u|``.
PROBE_RADII = tuple(10.0**-k for k in range(14, 0, -1))


@dataclass(frozen=True)
class NewtonResult:
    """Per-problem outcome: solution, value, iteration count and reason code."""

    u: torch.Tensor  # (B, p)
    value: torch.Tensor  # (B,)
    n_iter: torch.Tensor  # (B,) int64
    reason: list[str]

    @functools.cached_property
    def converged(self) -> torch.Tensor:
        """``(B,)`` bool: whether each problem's reason is a converged one (computed once)."""
        flags = np.fromiter((r in _CONVERGED for r in self.reason), bool, len(self.reason))
        return torch.as_tensor(flags)


def value_grad_hess(
    fun: ValueFn, u: torch.Tensor, idx: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Values ``(B,)``, gradients ``(B, p)`` and Hessians ``(B, p, p)`` of independent problems."""
    with torch.enable_grad():
        u = u.detach().requires_grad_(True)
        v = fun(u, idx)
        if not v.requires_grad:  # a constant objective: no graph, zero derivatives
            return v.detach(), torch.zeros_like(u), u.new_zeros(*u.shape, u.shape[-1])
        (g,) = torch.autograd.grad(v.sum(), u, create_graph=True, allow_unused=True)
        if g is None or not g.requires_grad:  # linear in u, or independent of it
            g = torch.zeros_like(u) if g is None else g
            return v.detach(), g.detach(), u.new_zeros(*u.shape, u.shape[-1])
        rows = []
        for j in range(u.shape[-1]):
            (hj,) = torch.autograd.grad(
                g[:, j].sum(), u, retain_graph=j < u.shape[-1] - 1, allow_unused=True
            )
            rows.append(torch.zeros_like(u) if hj is None else hj)
    return v.detach(), g.detach(), torch.stack(rows, dim=1).detach()


def saddle_free_direction(g: torch.Tensor, h: torch.Tensor, delta: float) -> torch.Tensor:
    """``-Q diag(1/max(|λ|, δ·max(1, max|λ|))) Qᵀ g``: a descent direction for any symmetric H.

    Where H is safely positive definite (its Cholesky factor exists and its diagonal is not
    tiny), that is the plain Newton step ``-H⁻¹g``, solved by Cholesky; the eigendecomposition
    is only paid for the other problems.
    """
    d, ok = cholesky_direction(g, h, delta)
    if not bool(ok.all()):
        bad = (~ok).nonzero().squeeze(-1)
        hb = h[bad]
        d[bad] = _eigen_direction(g[bad], 0.5 * (hb + hb.transpose(-1, -2)), delta)
    return d


def _eigen_direction(g: torch.Tensor, h: torch.Tensor, delta: float) -> torch.Tensor:
    """Eigenvalues replaced by |λ|, and those numerically zero (|λ| <= δ·max(1, max|λ|)) by
    max(√‖g‖∞, δ·max(1, max|λ|)). The √‖g‖ floor (as in regularised Newton methods, Mishchenko
    2023, SIAM J. Optim. 33:1440-1462) keeps steps of order √‖g‖ along directions of zero
    curvature (the location of a Laplace fit) and vanishes at a minimum; small but genuine
    curvature (df of a Student-t far out, ~1e-8) keeps its full Newton step."""
    lam, q = torch.linalg.eigh(h)
    scale = lam.abs().amax(dim=-1, keepdim=True).clamp(min=1.0)
    zero = lam.abs() <= delta * scale  # numerically zero curvature
    floor = torch.maximum(delta * scale, g.abs().amax(-1, keepdim=True).sqrt())
    lam = torch.where(zero, floor.expand_as(lam), lam.abs())
    return -(q @ ((q.transpose(-1, -2) @ g.unsqueeze(-1)) / lam.unsqueeze(-1))).squeeze(-1)


def _probe_directions(p: int, extra: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """``(S, M, p)`` unit directions: ±e_i, ±(e_i ± e_j)/√2 and ± each row of ``extra``; for
    p = 2, also 32 directions evenly around the circle (a descent cone narrower than 11° can still
    be missed: the probe is evidence, not proof)."""
    eye = torch.eye(p, dtype=like.dtype, device=like.device)
    fixed = [eye]
    if p == 2:
        angle = torch.arange(16, dtype=like.dtype, device=like.device) * (math.pi / 16)
        fixed.append(torch.stack([angle.cos(), angle.sin()], -1))
    for i in range(p):
        for j in range(i + 1, p):
            fixed += [(eye[i] + eye[j]).unsqueeze(0), (eye[i] - eye[j]).unsqueeze(0)]
    base = torch.cat(fixed)
    base = base / base.norm(dim=-1, keepdim=True)
    rows = [base.expand(like.shape[0], *base.shape)]
    for e in extra if p > 1 else ():  # in one dimension they are ±e_1 again
        norm = e.norm(dim=-1, keepdim=True)
        unit = torch.where(norm > 0, e / torch.where(norm > 0, norm, 1.0), eye[0].expand_as(e))
        rows.append(unit.unsqueeze(1))
    dirs = torch.cat(rows, dim=1)
    return torch.cat([dirs, -dirs], dim=1)


def probe_minimum(
    fun: ValueFn,
    u: torch.Tensor,
    value: torch.Tensor,
    idx: torch.Tensor,
    extra: list[torch.Tensor] | None = None,
    radii: tuple[float, ...] = PROBE_RADII,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Probe problems ``idx`` at ``u`` (``(S, p)``, values ``(S,)``) for a local minimum.

    Returns ``(up, down, best_u, best_value)``: ``up`` where, along every probe direction, the
    first change of value beyond rounding (``100 ε (1 + |f|)``) over increasing radii is an
    increase (a non-finite value counts as an increase only if it is ``+inf``: outside a
    support); ``down`` where some direction's first change is a decrease. ``best_u`` and
    ``best_value`` are the lowest point probed where it is lower than ``value`` at all (else
    ``u`` and ``value``): the next iterate after ``down``, a polish after ``up``. Neither ``up``
    nor ``down``: no evidence either way (flat in some direction, or NaN).
    """
    s, p = u.shape
    dirs = _probe_directions(p, list(extra or []), u)  # (S, M, p)
    m = dirs.shape[1]
    r = torch.as_tensor(radii, dtype=u.dtype, device=u.device)
    scale = 1.0 + u.abs().amax(-1)
    trial = (
        u[:, None, None, :]
        + (r[None, None, :, None] * scale[:, None, None, None]) * dirs[:, :, None, :]
    )  # (S, M, K, p)
    k = r.numel()
    with torch.no_grad():
        vals = fun(trial.reshape(-1, p), idx.repeat_interleave(m * k)).reshape(s, m, k)
    diff = vals - value[:, None, None]
    tol = 100 * torch.finfo(u.dtype).eps * (1.0 + value.abs())[:, None, None]
    posinf = vals == float("inf")
    changed = (diff.abs() > tol) & ~torch.isnan(diff) | posinf
    any_changed = changed.any(-1)  # (S, M)
    first = changed.to(torch.int8).argmax(-1, keepdim=True)  # first radius with a change
    first_diff = torch.where(posinf, torch.full_like(diff, float("inf")), diff).gather(-1, first)
    first_diff = first_diff.squeeze(-1)
    dir_up = any_changed & (first_diff > 0)
    dir_down = any_changed & (first_diff < 0)
    up = dir_up.all(-1)
    down = dir_down.any(-1)
    # the lowest point probed (any direction, any radius), where it is lower at all
    flat_vals = torch.where(torch.isnan(vals), torch.full_like(vals, float("inf")), vals)
    flat_vals = flat_vals.reshape(s, m * k)
    j = flat_vals.argmin(-1)
    rows = torch.arange(s, device=u.device)
    best_value = flat_vals[rows, j]
    best_u = trial.reshape(s, m * k, p)[rows, j]
    lower = best_value < value
    best_u = torch.where(lower[:, None], best_u, u)
    best_value = torch.where(lower, best_value, value)
    return up, down, best_u, best_value


class _Ahead:
    """Derivatives already evaluated at the next iterate of some problems (the accepted full
    Newton step), taken instead of evaluating them again."""

    def __init__(self, b: int, u: torch.Tensor) -> None:
        p = u.shape[-1]
        self.known = torch.zeros(b, dtype=torch.bool, device=u.device)
        self.v = u.new_empty(b)
        self.g = u.new_empty(b, p)
        self.h = u.new_empty(b, p, p)

    def keep(self, rows: torch.Tensor, v, g, h) -> None:
        self.v[rows], self.g[rows], self.h[rows] = v, g, h
        self.known[rows] = True

    def take(self, derivatives: DerivFn, ua: torch.Tensor, active: torch.Tensor):
        known = self.known[active]
        if not bool(known.any()):
            return derivatives(ua, active)
        v, g, h = self.v[active], self.g[active], self.h[active]
        self.known[active] = False
        missing = (~known).nonzero().squeeze(-1)
        if missing.numel():
            v[missing], g[missing], h[missing] = derivatives(ua[missing], active[missing])
        return v, g, h


#: Rows of trial points per value evaluation that the line search fills with several step
#: lengths of its last few problems (a call costs about as much as ~1000 rows' work).
LINE_SEARCH_ROWS = 1024
#: A block of halvings fills at least this many rows from the start: below it, the call's fixed
#: cost (0.5-1 ms: dispatch, a compiled kernel's launch) outweighs the rows' work, and a few
#: problems that need many halvings (Newton's tail) took one call per doubling.
LINE_SEARCH_MIN_ROWS = 256


def _still_searching(searching, alpha, d, ua, xtol):
    """Drop the problems whose (halved) step is below ``xtol``: it cannot change the answer."""
    negligible = row_max_abs(alpha[searching, None] * d[searching]) <= xtol * (
        1.0 + row_max_abs(ua[searching])
    )
    return searching[~negligible]


def _backtrack(
    fun, searching, k, halving, alpha, accepted, v_new, ua, d, v, slope, active, armijo, xtol
):
    """Up to ``k`` halvings of the step of problems ``searching`` from one evaluation of
    ``fun`` at the k trial points of each; ``alpha``, ``accepted`` and ``v_new`` updated in
    place as one halving at a time would (Armijo backtracking, Nocedal & Wright 2006, alg.
    3.1). Returns the problems still searching and the halvings done."""
    s = searching.numel()
    powers = 0.5 ** torch.arange(k, dtype=alpha.dtype, device=alpha.device)  # exact
    steps = alpha[searching][None, :] * powers[:, None]  # (k, S): α, α/2, ...
    trial = ua[searching][None] + steps[..., None] * d[searching][None]
    with torch.no_grad():
        vt = fun(trial.reshape(k * s, -1), active[searching].repeat(k)).reshape(k, s)
    ok = torch.isfinite(vt) & (vt <= v[searching] + armijo * steps * slope[searching])
    # after a failed trial j the step is halved, and the search ends if that is negligible
    size = row_max_abs(d[searching])[None, :] * steps * 0.5
    stop = size <= xtol * (1.0 + row_max_abs(ua[searching]))[None, :]
    ends = ok | stop
    ended = ends.any(0)
    first = ends.to(torch.int8).argmax(0)  # the first trial that ends the search
    cols = torch.arange(s, device=alpha.device)
    hit = ended & ok[first, cols]
    accepted[searching[hit]] = True
    v_new[searching[hit]] = vt[first, cols][hit]
    # accepted: the step of that trial; failed or still searching: the halved one
    last = torch.where(ended, first, k - 1)
    alpha[searching] = torch.where(hit, steps[last, cols], steps[last, cols] * 0.5)
    return searching[~ended], halving + k


def newton_minimize(
    fun: ValueFn,
    u0: torch.Tensor,
    *,
    max_iter: int = 100,
    gtol: float = 1e-9,
    ftol: float = 1e-15,
    xtol: float = 1e-12,
    max_step: float = 10.0,
    delta: float = 1e-12,
    armijo: float = 1e-4,
    max_halvings: int = 60,
    derivatives: DerivFn | None = None,
    boundary: float = 25.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> NewtonResult:
    """Minimise ``fun`` from ``u0`` (shape ``(B, p)``) for every problem independently.

    ``fun(u, idx)`` must return the objective of the problems ``idx`` (a long tensor) at ``u``
    and must treat the rows independently. ``gtol`` applies to the largest gradient component
    relative to ``1 + |f|``; ``ftol`` to the Newton decrement ``-gᵀd/2`` relative to
    ``1 + |f|``; ``max_step`` caps the largest component of a Newton step. ``derivatives``
    supplies values, gradients and Hessians in closed form; by default they come from autograd
    of ``fun`` (:func:`value_grad_hess`). ``on_progress(done, total)`` is called before each
    iteration and once at the end, ``total = B``: ``done`` is the number of problems finished, or
    the share of the iteration budget spent (``B * it / (max_iter + 1)``) where that is larger,
    so that it never decreases (the library never prints; the CLI draws a bar from it).
    """
    u = u0.detach().clone()
    b = u.shape[0]
    device = u.device
    value = torch.full((b,), float("nan"), dtype=u.dtype, device=device)
    n_iter = torch.zeros(b, dtype=torch.int64, device=device)
    code = torch.zeros(b, dtype=torch.int64, device=device)  # index into REASONS
    code_of = {r: i for i, r in enumerate(REASONS)}
    active = torch.arange(b, device=device)
    # With closed-form derivatives, the first trial of the line search (the full Newton step)
    # is evaluated with them: where it is accepted, they are the next iteration's derivatives,
    # which saves a value pass per iteration (the full step is the usual case near a minimum).
    ahead = _Ahead(b, u) if derivatives is not None else None

    for it in range(max_iter + 1):
        if active.numel() == 0:
            break
        if on_progress is not None:
            on_progress(max(b - int(active.numel()), (b * it) // (max_iter + 1)), b)
        adapt()  # inside a batched fit: the cores other processes leave idle (likelab._threads)
        ua = u[active]
        if derivatives is None:
            v, g, h = value_grad_hess(fun, ua, active)
        else:
            v, g, h = (
                derivatives(ua, active) if ahead is None else ahead.take(derivatives, ua, active)
            )
        value[active] = v
        finite = rows_finite(v, g, h)
        g_max = row_max_abs(g)
        small_g = g_max <= gtol * (1.0 + v.abs())
        flat = (g_max == 0) & (row_max_abs(h.flatten(1)) == 0)
        done = torch.where(~finite, code_of["nonfinite"], 0)
        done = torch.where(finite & small_g, code_of["gtol"], done)
        done = torch.where(finite & flat, code_of["flat"], done)
        moved = torch.zeros_like(done, dtype=torch.bool)
        at = (done == code_of["flat"]).nonzero().squeeze(-1)
        if at.numel() and it < max_iter:  # zero derivatives are no evidence: probe the value
            up, down, bu, bv = probe_minimum(fun, ua[at], v[at], active[at])
            done[at[up]] = code_of["kink"]
            u[active[at]], value[active[at]] = bu, bv  # the lowest point probed
            go = down & ~up
            done[at[go]] = 0
            moved[at[go]] = True
        if it == max_iter:
            done = torch.where(done == 0, code_of["max_iter"], done)
        code[active] = done
        moved_on = active[moved]  # moved by the probe: they continue at the next iteration
        n_iter[moved_on] += 1
        keep = (done == 0) & ~moved
        active, ua, v, g, h = active[keep], ua[keep], v[keep], g[keep], h[keep]
        if active.numel() == 0:
            active = moved_on
            continue
        n_iter[active] += 1

        d = saddle_free_direction(g, h, delta)
        slope = row_dot(g, d)
        # Newton decrement λ²/2 = -gᵀd/2: the decrease still available near a minimum (Boyd &
        # Vandenberghe 2004, sec. 9.5.1). Below ftol, the full Newton step is taken without a line
        # search (the quadratic model is exact to rounding there) and the problem is done.
        close = -0.5 * slope <= ftol * (1.0 + v.abs())
        biggest = row_max_abs(d).unsqueeze(-1)
        d = d * torch.where(biggest > max_step, max_step / biggest, torch.ones_like(biggest))
        slope = row_dot(g, d)  # < 0: descent

        alpha = torch.ones_like(v)
        accepted = close.clone()
        v_new = v.clone()
        searching = torch.arange(active.numel(), device=device)[~close]
        halving = blocks = 0
        while halving < max_halvings and searching.numel():
            if halving == 0 and ahead is not None:
                # the full step, with the derivatives the next iteration reuses where accepted
                trial = ua[searching] + alpha[searching, None] * d[searching]
                with torch.no_grad():
                    vt, gt, ht = derivatives(trial, active[searching])
                ok = torch.isfinite(vt) & (
                    vt <= v[searching] + armijo * alpha[searching] * slope[searching]
                )
                ahead.keep(active[searching[ok]], vt[ok], gt[ok], ht[ok])
                accepted[searching[ok]] = True
                v_new[searching[ok]] = vt[ok]
                searching = searching[~ok]
                halving += 1
                if searching.numel():
                    alpha[searching] = alpha[searching] * 0.5
                    searching = _still_searching(searching, alpha, d, ua, xtol)
                continue
            # The next k halvings in one evaluation: a few problems left cost one call each
            # time whatever their number, so they try k step lengths at once (the same trial
            # points and the same answer as one at a time: the largest step that is accepted).
            # k doubles from one block to the next (1, 2, 4, ...): at most about twice the
            # trial points of one at a time, in log2 as many calls; it starts where the block
            # fills LINE_SEARCH_MIN_ROWS rows.
            k = min(
                max_halvings - halving,
                max(1 << blocks, LINE_SEARCH_MIN_ROWS // searching.numel()),
                max(1, LINE_SEARCH_ROWS // searching.numel()),
            )
            blocks += 1
            searching, halving = _backtrack(
                fun,
                searching,
                k,
                halving,
                alpha,
                accepted,
                v_new,
                ua,
                d,
                v,
                slope,
                active,
                armijo,
                xtol,
            )
        step = alpha[:, None] * d
        u[active[accepted]] = ua[accepted] + step[accepted]
        value[active[accepted]] = v_new[accepted]

        if bool(close.any()):  # the value after the final full step, for the record
            with torch.no_grad():
                v_close = fun(ua[close] + d[close], active[close])
            v_new[close] = torch.where(torch.isfinite(v_close), v_close, v[close])
        tiny_step = row_max_abs(step) <= xtol * (1.0 + row_max_abs(ua))
        stuck = ~accepted & tiny_step
        failed = ~accepted & ~tiny_step
        done = torch.zeros_like(code[active])
        done = torch.where(close, code_of["ftol"], done)
        done = torch.where(stuck, code_of["xtol"], done)
        done = torch.where(failed, code_of["line_search"], done)
        far = row_max_abs(u[active]) > boundary
        done = torch.where((stuck | failed) & far, code_of["boundary"], done)
        at = (stuck & ~far).nonzero().squeeze(-1)
        if at.numel():  # no decrease even for tiny steps: verify a minimum by probing
            up, down, bu, bv = probe_minimum(fun, ua[at], v[at], active[at], [g[at], d[at]])
            small = g[at].abs().amax(-1) <= 1e-6 * (1.0 + v[at].abs())
            verdict = torch.where(small, code_of["xtol"], code_of["kink"])
            verdict = torch.where(up, verdict, code_of["nonsmooth"])
            verdict = torch.where(down & ~up, 0, verdict)
            done[at] = verdict
            u[active[at]], value[active[at]] = bu, bv  # the lowest point probed
        # A damped step that gained almost nothing (below 1e-9 relative) is how Newton
        # creeps towards a kink (each step a fraction of the remaining distance): probe there
        # instead of creeping on. A verified minimum stops; otherwise the iteration goes on.
        creep = (
            accepted
            & ~close
            & (alpha < 1)
            & ~far
            & (done == 0)
            & (v - v_new <= 1e-9 * (1.0 + v.abs()))
        )
        at = creep.nonzero().squeeze(-1)
        if at.numel():
            u_at = u[active[at]]
            up, down, bu, bv = probe_minimum(fun, u_at, v_new[at], active[at], [g[at], d[at]])
            small = g[at].abs().amax(-1) <= 1e-6 * (1.0 + v[at].abs())
            verdict = torch.where(small, code_of["xtol"], code_of["kink"])
            done[at] = torch.where(up, verdict, 0)
            u[active[at]], value[active[at]] = bu, bv  # the lowest point probed
        code[active] = done
        active = torch.cat([active[done == 0], moved_on]).sort().values

    reason = [REASONS[c] for c in code.cpu().tolist()]
    if on_progress is not None:
        on_progress(b, b)
    return NewtonResult(u=u, value=value, n_iter=n_iter, reason=reason)
