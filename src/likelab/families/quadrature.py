r"""Numerical :math:`\int f^k` and :math:`\sum_y p(y)^k`: the fallback of ``power_integral``.

:func:`likelab.families.power_integral` uses a registered closed form when the distribution's type
has one and :func:`numerical_power_integral` otherwise (mixtures, user distributions, Poisson).
The result is batched, differentiable with respect to the distribution's parameters (torch
operations only; the quadrature nodes are constants) and has the distribution's dtype and device.

**Continuous supports.** The support is cut at break points (a centre ``c`` of the distribution;
for a :class:`~likelab.families.mixture.Mixture` every component's centre and finite support
end), so that a kink (Laplace at its location) or a jump (a uniform component's edge) falls on a
piece boundary. Each piece is mapped from :math:`u \in [-U, U]`, where fixed Gauss-Legendre nodes
(``numpy.polynomial.legendre.leggauss``, cached per ``n``, dtype and device) are used:

* a half-line :math:`[a, \infty)`: :math:`y = a + s\,t/(1-t)` with
  :math:`t = (1 + \tanh(\tfrac{\pi}{2}\sinh u))/2`, i.e. :math:`y = a + s\,e^{(\pi/2)\sinh u}`
  (the "exp-sinh" rule; mirrored for :math:`(-\infty, a]`); the real line is two half-lines
  meeting at ``c``;
* a finite piece :math:`[a, b]`: :math:`y = a + (b-a)\,t`, same :math:`t` ("tanh-sinh").

``c`` and the scale ``s`` are guessed from the distribution: mean/standard deviation where finite,
else the median and half the interquartile range (``icdf``), else ``loc``/``scale`` attributes,
else 0 and 1; they are detached (they steer the rule, they are not part of the integrand).

Why the extra map :math:`t(u)` on top of the plain substitution :math:`y = c + s\,t/(1-t^2)` with
Gauss-Legendre in ``t``: the plain rule converges only algebraically when :math:`f^k` has an
integrable endpoint singularity (Gamma with shape < 1: :math:`y^{k(\alpha-1)}` at 0), a slowly
decaying algebraic tail (Cauchy or Student-t with :math:`k` near its divergence threshold), or a
kink at the centre (Laplace), e.g. about :math:`n^{-1}` for Cauchy with ``k = 0.75``. The
double-exponential map (Takahasi & Mori 1974, Publ. RIMS 9:721-741; Mori & Sugihara 2001,
J. Comput. Appl. Math. 127:287-296) makes all of these integrands decay double-exponentially in
``u`` and restores geometric convergence.

The rule is applied with 1, 2, 4, 8, 16 panels of 256 Gauss-Legendre nodes per piece until two
successive results agree to ``1e-10`` relative. Measured (``tests/families/test_integrals.py`` and
``test_mixture.py``): every closed form in :mod:`likelab.families.integrals` is reproduced to
better than ``1e-9`` relative, away from the divergence threshold (see below); mixtures of
well-separated components with ``k < 1``, whose :math:`f^k` has sharp (smooth but narrow)
troughs between components, need the finer levels and are reproduced to about ``1e-9``.

Integrands are formed in log space, :math:`\exp(k \log f(y) + \log |dy/du| + \log w_i)`, and
summed with ``logsumexp``, so large or tiny densities neither overflow nor underflow. A node whose
``y`` rounds onto the end of its piece is dropped (its share of the integral is below the
floating-point resolution of ``y`` there).

**Divergence.** Quadrature cannot prove divergence; instead, if the integrand (in ``u``) at the
outermost node of any piece exceeds ``1e-6`` times the total, the integrand has not decayed where
the rule stops, and the result is reported as ``inf``. This catches divergent integrals (Cauchy
with ``k <= 1/2``, Gamma with :math:`k(\alpha-1) + 1 \le 0`) and also integrals so close to
divergence (a tail :math:`y^{-p}` with :math:`p - 1` of a few hundredths) that double precision
cannot resolve them. A finite result near the threshold carries a truncation error of at most
about ``1e-7`` relative (Student-t with ν = 2.5 and ``k = 0.3``, :math:`p - 1 = 0.05`:
``1.1e-7``); away from it the truncation error is negligible.

**Discrete supports** (integers, e.g. ``Poisson``, ``Binomial``, ``Bernoulli``, ``Categorical``):
the sum :math:`\sum_y p(y)^k` runs over a finite support exactly, and otherwise over the window
:math:`\mu \pm (12\sigma + 20)`, clipped to the support (so
:math:`0 \le y \le M = \mu + 12\sigma + 20` for a small mean). The neglected
tail above the last term :math:`y_M` is bounded by the ratio test,
:math:`\sum_{y > y_M} p(y)^k \le p(y_M)^k r^k / (1 - r^k)` with
:math:`r = p(y_M)/p(y_M - 1) < 1`, which is a rigorous bound whenever the pmf is log-concave
(Poisson, Binomial, Geometric, negative binomial with ``r >= 1``) and the usual heuristic
otherwise; likewise below the first term. For Poisson(λ), the Chernoff bound
:math:`P(Y \ge a) \le e^{-\lambda}(e\lambda/a)^a` puts the tail mass beyond
:math:`\lambda + 12\sqrt\lambda + 20` below :math:`10^{-30}` for every λ. If either bound exceeds
``1e-14`` of the sum the window is doubled (up to ``2**26`` terms in all; beyond that the result is
reported as ``inf``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
from torch.distributions import Distribution, constraints

from likelab.errors import UnsupportedError
from likelab.families.mixture import Mixture, masked_log_prob, support_bounds

__all__ = [
    "centre_scale",
    "dtype_device",
    "gauss_legendre_nodes",
    "numerical_power_integral",
    "piece_nodes",
]

_N_PANEL = 256  # Gauss-Legendre nodes per panel
_PANEL_LEVELS = (1, 2, 4, 8, 16)  # panels per piece on the levels of the adaptive rule
_ADAPTIVE_RTOL = 1e-10

_LAMBDA = math.pi / 2  # the double-exponential map's constant (Takahasi & Mori 1974)
_DIVERGENCE_RTOL = 1e-6  # integrand at the last node / total above this: reported as inf
_DISCRETE_RTOL = 1e-14  # neglected discrete tail / total above this: widen the window
_DISCRETE_MAX_TERMS = 2**26
_SIGMAS = 12.0
_PAD = 20.0


def numerical_power_integral(
    dist: Distribution, k: float, *, n: int | None = None, rtol: float | None = None
) -> torch.Tensor:
    r""":math:`\int f^k\,dy` (continuous) or :math:`\sum_y p(y)^k` (discrete) by quadrature.

    Shape ``dist.batch_shape``; dtype and device of the distribution; differentiable with respect
    to its parameters. For a :class:`~likelab.families.mixture.Mixture`
    :math:`f = \sum_j w_j f_j` of continuous components the integral is taken component by
    component, :math:`\int f^k = \sum_j w_j \int f_j\, f^{k-1}`, each term with the rule of
    component ``j`` (the identity holds for every ``k``; it keeps every piece of the rule where
    its component has mass, however far apart the components are).

    ``n`` fixes the rule: one panel of ``n`` Gauss-Legendre nodes per piece. By default the rule
    is applied with 1, 2, 4, 8, 16 panels of 256 nodes until two successive results agree to
    ``rtol`` (default ``1e-10``, or ``100 * eps`` of a lower precision dtype) in every batch
    element, and the finer one is returned. Method, accuracy and the ``inf`` convention: see
    :mod:`likelab.families.quadrature`.

    >>> import torch
    >>> from torch.distributions import Normal
    >>> v = numerical_power_integral(Normal(torch.tensor(0.0, dtype=torch.float64),
    ...                                     torch.tensor(1.0, dtype=torch.float64)), 2.0)
    >>> abs(v.item() - 1 / (2 * 3.141592653589793 ** 0.5)) < 1e-13
    True
    """
    k = float(k)
    if not (math.isfinite(k) and k > 0):
        raise UnsupportedError(f"power integral needs a finite k > 0, got {k}")
    if not isinstance(dist, Distribution):
        raise UnsupportedError(
            f"power integral needs a torch Distribution, got {type(dist).__name__}"
        )
    if dist.event_shape != torch.Size():
        raise UnsupportedError(
            f"no numerical power integral for {type(dist).__name__} with event shape "
            f"{tuple(dist.event_shape)}: only univariate distributions are supported"
        )
    try:
        support = dist.support
        dtype, device = dtype_device(dist)
        support_bounds(support, dtype=dtype, device=device)
    except NotImplementedError:
        raise UnsupportedError(
            f"no numerical power integral for {type(dist).__name__}: its support "
            f"{getattr(dist, 'support', None)!r} is neither an interval of the real line nor "
            "a range of integers; register a closed form with register_power_integral"
        ) from None
    if support.is_discrete:
        return _discrete_sum(dist, k, support, dtype, device)
    if n is not None:
        if int(n) < 2:
            raise UnsupportedError(f"numerical power integral needs n >= 2 nodes, got {n}")
        return _continuous_rule(dist, k, (int(n), 1), support, dtype, device)
    if rtol is None:
        rtol = max(_ADAPTIVE_RTOL, 100 * torch.finfo(dtype).eps)
    levels = [(_N_PANEL, panels) for panels in _PANEL_LEVELS]
    with torch.no_grad():
        previous = _continuous_rule(dist, k, levels[0], support, dtype, device)
    for rule in levels[1:]:
        current = _continuous_rule(dist, k, rule, support, dtype, device)
        if bool(_agree(previous, current.detach(), rtol).all()):
            break
        previous = current.detach()
    return current


def _agree(a: torch.Tensor, b: torch.Tensor, rtol: float) -> torch.Tensor:
    """``|a - b| <= rtol |b|``, also true where both are ``inf`` (or either is ``nan``)."""
    both_inf = torch.isinf(a) & torch.isinf(b)
    return both_inf | ~((a - b).abs() > rtol * b.abs())


def _continuous_rule(
    dist: Distribution, k: float, rule: tuple[int, int], support, dtype: torch.dtype, device
) -> torch.Tensor:
    """The quadrature rule with ``rule = (n, panels)``: ``panels`` Gauss-Legendre panels of
    ``n`` nodes per piece (no adaptivity)."""
    if isinstance(dist, Mixture):
        return _mixture_integral(dist, k, rule, dtype, device)
    shape = dist.batch_shape
    lo, hi = support_bounds(support, dtype=dtype, device=device)

    def log_integrand(y: torch.Tensor) -> torch.Tensor:
        return k * masked_log_prob(dist, y)

    c, s = centre_scale(dist, support, dtype, device)
    lo, hi = lo.expand(shape), hi.expand(shape)
    log_terms, log_ends = _integrate_pieces(log_integrand, lo, hi, c.unsqueeze(-1), s, c, rule)
    return _total(log_terms, log_ends)


# ---------------------------------------------------------------------- continuous
def _mixture_integral(
    mix: Mixture, k: float, rule: tuple[int, int], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    shape = mix.batch_shape
    log_w = mix.log_weights.expand(*shape, mix.num_components)
    centres, scales, bounds = [], [], []
    for comp in mix.components:
        lo, hi = support_bounds(comp.support, dtype=dtype, device=device)
        c, s = centre_scale(comp, comp.support, dtype, device)
        centres.append(c.expand(shape))
        scales.append(s.expand(shape))
        bounds.append((lo.expand(shape), hi.expand(shape)))
    # break points: every component's centre and every finite support end
    candidates = centres + [b for lo, hi in bounds for b in (lo, hi)]
    all_terms, all_ends = [], []
    for j, comp in enumerate(mix.components):
        lo, hi = bounds[j]
        breaks = torch.stack(
            [
                torch.where(torch.isfinite(b), torch.minimum(torch.maximum(b, lo), hi), centres[j])
                for b in candidates
            ],
            dim=-1,
        )
        lw_j = log_w[..., j]

        def log_integrand(y: torch.Tensor, comp=comp, lw_j=lw_j) -> torch.Tensor:
            # log(w_j f_j(y) f(y)^(k-1)), -inf where w_j f_j(y) = 0 (f >= w_j f_j > 0 elsewhere)
            lf_j = masked_log_prob(comp, y)
            lf = mix.log_prob(y)
            ok = (lf_j > -math.inf) & (lw_j > -math.inf)
            val = lw_j + lf_j + (k - 1) * torch.where(ok, lf, torch.zeros_like(lf))
            return torch.where(ok, val, torch.full_like(val, -math.inf))

        terms, ends = _integrate_pieces(log_integrand, lo, hi, breaks, scales[j], centres[j], rule)
        all_terms.append(terms)
        all_ends.append(ends)
    return _total(torch.cat(all_terms, 0), torch.cat(all_ends, 0))


def _total(log_terms: torch.Tensor, log_ends: torch.Tensor) -> torch.Tensor:
    """``exp(logsumexp(log_terms))``, ``inf`` where an end-node integrand is not negligible."""
    log_total = torch.logsumexp(log_terms, dim=0)
    end_max = log_ends.max(dim=0).values
    diverged = end_max > log_total + math.log(_DIVERGENCE_RTOL)
    total = torch.exp(log_total)
    return torch.where(diverged, torch.full_like(total, math.inf), total)


def _integrate_pieces(
    log_integrand: Callable[[torch.Tensor], torch.Tensor],
    lo: torch.Tensor,
    hi: torch.Tensor,
    breaks: torch.Tensor,
    scale: torch.Tensor,
    safe: torch.Tensor,
    rule: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quadrature over ``[lo, hi]`` cut at ``breaks`` (``(*batch, P)``, inside ``[lo, hi]``).

    ``scale`` sets the half-line maps; ``safe`` is a point strictly inside the support where the
    integrand is evaluated in place of dropped nodes (and then discarded), so that neither the
    value nor the gradient of a dropped node can be ``nan``. Returns the log terms
    ``log(h(y_i) |dy/du|_i w_i)`` of all nodes, shape ``(N, *batch)``, and the log integrand in
    ``u`` (no Gauss-Legendre weight) at the two outermost nodes of every piece.
    """
    y, log_jac, log_gl, ok, ends, width = piece_nodes(lo, hi, breaks, scale, rule)
    finite = torch.isfinite(width) & (width > 0)
    log_jac = log_jac + torch.log(torch.where(finite, width, torch.ones_like(width)))
    y_safe = torch.where(ok, y, safe.unsqueeze(0).expand_as(y))
    log_h = log_integrand(y_safe)
    log_u = torch.where(ok, log_h + log_jac, torch.full_like(log_h, -math.inf))
    return log_u + log_gl, log_u[ends]


def piece_nodes(
    lo: torch.Tensor,
    hi: torch.Tensor,
    breaks: torch.Tensor,
    scale: torch.Tensor,
    rule: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, list[int], torch.Tensor]:
    r"""The nodes of the piecewise double-exponential rule on ``[lo, hi]`` cut at ``breaks``.

    ``lo``, ``hi`` and ``scale`` have the batch shape, ``breaks`` ``(*batch, P)`` (inside
    ``[lo, hi]``, any order; they may carry gradients, and the nodes move with them). Returns,
    each ``(N, *batch)`` or broadcastable: the nodes ``y``; ``log |dy/du|`` *without* the width
    of a finite piece; the log Gauss-Legendre weights; the mask of valid nodes (dropped ones:
    rounded onto a piece's end, non-finite, or on a piece of zero width); the indices of the two
    outermost nodes of every piece; and each node's piece width (``inf`` on half-lines, where
    the factor is 1), so that :math:`\int h \approx \sum_i \mathrm{width}_i\, h(y_i) |dy/du|_i
    w_i` with the width read as 1 on half-lines.

    The width is a separate factor so that a piece of zero width (two cuts that coincide, one
    of them moving with a parameter) can still carry the derivative
    :math:`h(a)\, d\,\mathrm{width}` that Leibniz's rule gives it: its nodes all sit at ``a``.
    """
    lo_inf = _homogeneous_inf(lo, "lower")
    hi_inf = _homogeneous_inf(hi, "upper")
    edges = torch.sort(breaks, dim=-1).values
    view = (-1,) + (1,) * lo.dim()
    nodes = [x.view(view) for x in gauss_legendre_nodes(*rule, lo.dtype, lo.device)]
    n = nodes[0].shape[0]
    pieces = []
    first, last = edges[..., 0], edges[..., -1]
    if lo_inf:
        pieces.append(_half_line(first, -1.0, scale, nodes))
    else:
        pieces.append(_finite_piece(lo, first, nodes))
    pieces = [(p[0], p[1], p[2], p[3].unsqueeze(0).expand(n, *p[3].shape)) for p in pieces]
    count = edges.shape[-1] - 1
    if count > 0:  # the pieces between cuts: one set of tensor operations for all of them
        shape = edges.shape[:-1]
        inner = _finite_piece(
            edges[..., :-1].movedim(-1, 0).unsqueeze(1),
            edges[..., 1:].movedim(-1, 0).unsqueeze(1),
            [x.unsqueeze(0) for x in nodes],
        )
        y_in, jac_in, ok_in = (t.expand(count, n, *shape) for t in inner[:3])
        w_in = inner[3].expand(count, n, *shape)
        pieces.append(tuple(t.reshape(count * n, *shape) for t in (y_in, jac_in, ok_in, w_in)))
    if hi_inf:
        last_piece = _half_line(last, 1.0, scale, nodes)
    else:
        last_piece = _finite_piece(last, hi, nodes)
    pieces.append((*last_piece[:3], last_piece[3].unsqueeze(0).expand(n, *last_piece[3].shape)))
    y = torch.cat([p[0] for p in pieces], 0)
    log_jac = torch.cat([p[1] for p in pieces], 0)
    ok = torch.cat([p[2] for p in pieces], 0) & torch.isfinite(y) & (log_jac > -math.inf)
    width = torch.cat([p[3] for p in pieces], 0)
    ok = ok & (width > 0)
    total = count + 2
    log_gl = nodes[3].repeat(total, *([1] * lo.dim()))
    ends = [i * n for i in range(total)] + [(i + 1) * n - 1 for i in range(total)]
    return y, log_jac, log_gl, ok, ends, width


def _half_line(a: torch.Tensor, sign: float, scale: torch.Tensor, nodes) -> tuple:
    """exp-sinh nodes on ``[a, ∞)`` (``sign = 1``) or ``(-∞, a]`` (``sign = -1``):
    ``y = a ± s e^e``, ``e = (π/2) sinh u``, ``|dy/du| = s e^e (π/2) cosh u``."""
    _, e, log_dsinh = nodes[0], nodes[1], nodes[2]
    y = a + sign * scale * torch.exp(e)
    log_jac = torch.log(scale) + e + log_dsinh
    valid = (y > a) if sign > 0 else (y < a)
    return y, log_jac, valid, torch.full_like(a, math.inf)


def _finite_piece(a: torch.Tensor, b: torch.Tensor, nodes) -> tuple:
    """tanh-sinh nodes on ``[a, b]``: ``y = a + (b-a) σ(z)`` for ``u < 0`` and
    ``y = b - (b-a) σ(-z)`` for ``u >= 0`` (``z = π sinh u``; precise near both ends),
    ``|dy/du| = (b-a) σ(z) σ(-z) π cosh u``, returned as ``log(σ(z) σ(-z) π cosh u)`` and the
    width ``b - a``."""
    u, sig_lo, sig_hi, log_dtanh = nodes[0], nodes[4], nodes[5], nodes[6]
    width = b - a
    y = torch.where(u < 0, a + width * sig_lo, b - width * sig_hi)
    return y, log_dtanh.expand_as(y), (y > a) & (y < b), width


@functools.lru_cache(maxsize=64)
def gauss_legendre_nodes(
    n: int, panels: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, ...]:
    r"""Composite Gauss-Legendre nodes on :math:`[-U, U]` with the double-exponential map's
    constants: ``panels`` equal panels of ``n`` nodes each (``numpy...leggauss(n)``).

    Returns, each of shape ``(n * panels,)``, ascending: ``u``; ``e = (π/2) sinh u``;
    ``log((π/2) cosh u)``; ``log w`` (the composite weights); ``σ(z)`` and ``σ(-z)`` with
    ``z = π sinh u`` (each computed without cancellation on its own side); and
    ``log(σ(z) σ(-z) π cosh u)``. ``U`` keeps :math:`e^{(\pi/2)\sinh U}` at
    ``0.45 * log(finfo(dtype).max)`` so mapped nodes stay finite (``U ≈ 6.0`` in float64, ``3.9``
    in float32). Computed in float64 numpy, cast, and cached per ``(n, panels, dtype, device)``.
    """
    finfo = torch.finfo(dtype)
    u_max = math.asinh(0.45 * math.log(finfo.max) / _LAMBDA)
    x, w = np.polynomial.legendre.leggauss(int(n))
    half = u_max / int(panels)
    mids = -u_max + half * (2 * np.arange(int(panels)) + 1)
    u = (mids[:, None] + half * x[None, :]).ravel()
    log_w = np.tile(np.log(w * half), int(panels))
    e = _LAMBDA * np.sinh(u)
    log_dsinh = np.log(_LAMBDA * np.cosh(u))
    z = 2 * e
    sig_lo = 0.5 * (1 + np.tanh(e))  # σ(z)
    sig_hi = 0.5 * (1 - np.tanh(e))  # σ(-z)
    sig_lo = np.where(u < 0, np.exp(-np.logaddexp(0.0, -z)), sig_lo)
    sig_hi = np.where(u > 0, np.exp(-np.logaddexp(0.0, z)), sig_hi)
    log_dtanh = -np.logaddexp(0.0, -z) - np.logaddexp(0.0, z) + np.log(2 * _LAMBDA * np.cosh(u))
    out = (u, e, log_dsinh, log_w, sig_lo, sig_hi, log_dtanh)
    return tuple(torch.as_tensor(a, dtype=dtype, device=device) for a in out)


def _homogeneous_inf(bound: torch.Tensor, which: str) -> bool:
    inf = torch.isinf(bound)
    if bool(inf.all()):
        return True
    if bool(inf.any()):
        raise UnsupportedError(
            f"quadrature: the {which} end of the support is infinite for some "
            "batch elements and finite for others"
        )
    return False


def centre_scale(
    dist: Distribution, support: constraints.Constraint, dtype: torch.dtype, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """A detached centre inside the support and a positive scale, shape ``dist.batch_shape``."""
    shape = dist.batch_shape
    nan = torch.full(shape, math.nan, dtype=dtype, device=device)
    c, s = nan.clone(), nan.clone()

    def fill(c, s, c_new, s_new):
        c_new = torch.as_tensor(c_new, dtype=dtype, device=device).detach().expand(shape)
        s_new = torch.as_tensor(s_new, dtype=dtype, device=device).detach().expand(shape)
        need = ~(torch.isfinite(c) & torch.isfinite(s) & (s > 0))
        good = torch.isfinite(c_new) & torch.isfinite(s_new) & (s_new > 0)
        take = need & good
        return torch.where(take, c_new, c), torch.where(take, s_new, s)

    def done(c, s):
        return bool((torch.isfinite(c) & torch.isfinite(s) & (s > 0)).all())

    try:
        with torch.no_grad():
            c, s = fill(c, s, dist.mean, dist.stddev)
    except (NotImplementedError, RuntimeError, ValueError, TypeError):
        pass
    if not done(c, s):
        try:
            with torch.no_grad():
                p = torch.tensor([0.25, 0.5, 0.75], dtype=dtype, device=device)
                q = dist.icdf(p.view((3,) + (1,) * len(shape)).expand((3, *shape)))
            c, s = fill(c, s, q[1], (q[2] - q[0]) / 2)
        except (NotImplementedError, RuntimeError, ValueError, TypeError, AttributeError):
            pass
    if not done(c, s):
        loc, scale = getattr(dist, "loc", None), getattr(dist, "scale", None)
        if isinstance(loc, torch.Tensor) and isinstance(scale, torch.Tensor):
            c, s = fill(c, s, loc, scale)
    c, s = fill(
        c,
        s,
        torch.zeros(shape, dtype=dtype, device=device),
        torch.ones(shape, dtype=dtype, device=device),
    )
    # move the centre strictly inside the support
    lo, hi = support_bounds(support, dtype=dtype, device=device)
    lo, hi = lo.detach().expand(shape), hi.detach().expand(shape)
    inside = (c > lo) & (c < hi)
    lo_f, hi_f = torch.isfinite(lo), torch.isfinite(hi)
    lo0 = torch.where(lo_f, lo, torch.zeros_like(lo))
    hi0 = torch.where(hi_f, hi, torch.zeros_like(hi))
    fallback = torch.where(
        lo_f & hi_f,
        (lo0 + hi0) / 2,
        torch.where(lo_f, lo0 + s, torch.where(hi_f, hi0 - s, c)),
    )
    c = torch.where(inside, c, fallback)
    return c, s


# ---------------------------------------------------------------------- discrete
def _discrete_sum(
    dist: Distribution, k: float, support: constraints.Constraint, dtype, device
) -> torch.Tensor:
    shape = dist.batch_shape
    if math.prod(shape) == 0:  # an empty batch: nothing to sum
        return torch.zeros(shape, dtype=dtype, device=device)
    lo, hi = support_bounds(support, dtype=dtype, device=device)
    lo, hi = lo.expand(shape).detach(), hi.expand(shape).detach()
    if bool(torch.isinf(lo).any()):
        raise UnsupportedError(
            f"no numerical power integral for {type(dist).__name__}: its integer support "
            f"{support!r} is not bounded below"
        )
    mu, sd = _mean_sd(dist, shape, dtype, device)
    finite = torch.isfinite(hi)
    numel = max(1, math.prod(shape))
    span = float((hi - lo).max()) + 1 if bool(finite.all()) else math.inf
    if span * numel <= 2**20:  # small finite support: sum every term
        start, width, half = lo, int(span), None
    else:
        half = torch.where(torch.isfinite(sd), _SIGMAS * sd + _PAD, torch.full_like(sd, 500.0))
        start, width = None, None
    while True:
        if half is not None:
            centre = torch.where(torch.isfinite(mu), mu, lo + half)
            start = torch.maximum(lo, torch.floor(centre - half))
            stop = torch.ceil(centre + half)
            stop = torch.where(finite, torch.minimum(stop, hi), stop)
            width = int((stop - start).max().item()) + 1
        ys = start.unsqueeze(0) + torch.arange(width, dtype=dtype, device=device).view(
            (-1,) + (1,) * len(shape)
        )
        lp = masked_log_prob(dist, ys)
        log_terms = k * lp
        log_total = torch.logsumexp(log_terms, dim=0)
        if half is None:
            return torch.exp(log_total)
        tail = torch.logaddexp(
            _log_tail(lp[-1], lp[-2] if width > 1 else lp[-1], k, ys[-1] >= hi),
            _log_tail(lp[0], lp[1] if width > 1 else lp[0], k, ys[0] <= lo),
        )
        converged = ~(tail > log_total + math.log(_DISCRETE_RTOL))
        if bool(converged.all()):
            return torch.exp(log_total)
        if 2 * width * numel > _DISCRETE_MAX_TERMS:
            total = torch.exp(log_total)
            return torch.where(converged, total, torch.full_like(total, math.inf))
        half = 2 * half


def _log_tail(lp_end: torch.Tensor, lp_next: torch.Tensor, k: float, at_bound: torch.Tensor):
    """log of the ratio-test bound p_end^k r^k / (1 - r^k), r = p_end / p_next (``-inf`` at a
    support bound or where p_end = 0; ``+inf`` where r >= 1)."""
    with torch.no_grad():
        a = k * (lp_end - lp_next)
        bound = k * lp_end + a - torch.log(-torch.expm1(torch.clamp(a, max=-1e-300)))
        bound = torch.where(a < 0, bound, torch.full_like(bound, math.inf))
        zero = at_bound | (lp_end == -math.inf)
        return torch.where(zero, torch.full_like(bound, -math.inf), bound)


def _mean_sd(dist: Distribution, shape, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    nan = torch.full(shape, math.nan, dtype=dtype, device=device)
    try:
        with torch.no_grad():
            mu = torch.as_tensor(dist.mean, dtype=dtype, device=device).expand(shape)
            sd = torch.as_tensor(dist.stddev, dtype=dtype, device=device).expand(shape)
        ok = torch.isfinite(mu) & torch.isfinite(sd)
        return torch.where(ok, mu, nan), torch.where(ok, sd, nan)
    except (NotImplementedError, RuntimeError, ValueError, TypeError):
        return nan, nan


def dtype_device(dist: Distribution) -> tuple[torch.dtype, torch.device]:
    """The dtype and device of the distribution's first floating-point parameter."""
    if isinstance(dist, Mixture):
        return dist.weights.dtype, dist.weights.device
    candidates = [getattr(dist, name, None) for name in dist.arg_constraints]
    candidates += list(vars(dist).values())
    for value in candidates:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.dtype, value.device
    for value in vars(dist).values():
        if isinstance(value, Distribution):
            return dtype_device(value)
    return torch.get_default_dtype(), torch.device("cpu")
