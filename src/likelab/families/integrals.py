r"""``∫ f^k``: the power integral of a predictive distribution.

Integral scoring rules (quadratic, spherical, pseudospherical, power, dpd, gamma) need
:math:`\int f(y)^k \, dy` for a continuous forecast and :math:`\sum_y p(y)^k` for a discrete one.
Closed forms are registered per torch distribution type (a registry, not an if-chain); a numerical
fallback covers the rest. Every closed form is tested against scipy quadrature.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import distributions as D

from likelab.errors import UnsupportedError
from likelab.families.distributions import (
    Logistic,
    StudentT,
    digamma_half_difference,
    lgamma_half_difference,
    once_per_value,
    trigamma_half_difference,
)

__all__ = [
    "log_power_integral_derivatives",
    "power_integral",
    "register_log_power_integral_derivatives",
    "register_power_integral",
]

PowerIntegral = Callable[[D.Distribution, float], torch.Tensor]
_CLOSED_FORMS: dict[type, PowerIntegral] = {}


def register_power_integral(dist_type: type) -> Callable[[PowerIntegral], PowerIntegral]:
    """Register a closed form ``fn(dist, k) -> Tensor[batch_shape]`` for ``dist_type``."""

    def decorate(fn: PowerIntegral) -> PowerIntegral:
        _CLOSED_FORMS[dist_type] = fn
        return fn

    return decorate


def power_integral(dist: D.Distribution, k: float) -> torch.Tensor:
    r""":math:`\int f^k` (continuous) or :math:`\sum p^k` (discrete), shape ``dist.batch_shape``.

    Uses the closed form registered for ``type(dist)`` (walking its MRO), else the numerical
    fallback :func:`likelab.families.quadrature.numerical_power_integral`. Infinite where the
    integral diverges (e.g. Student-t with ``k (df + 1) <= 1``).
    """
    if k <= 0:
        raise UnsupportedError(f"power integral needs k > 0, got {k}")
    for cls in type(dist).__mro__:
        fn = _CLOSED_FORMS.get(cls)
        if fn is not None:
            return fn(dist, float(k))
    from likelab.families.quadrature import numerical_power_integral

    return numerical_power_integral(dist, float(k))


def _lbeta(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    """log B(a, b); Python floats become tensors of the other argument's dtype, else float64."""
    ref = a if isinstance(a, torch.Tensor) else b if isinstance(b, torch.Tensor) else None
    kw = {"dtype": torch.float64} if ref is None else {"dtype": ref.dtype, "device": ref.device}
    a, b = torch.as_tensor(a, **kw), torch.as_tensor(b, **kw)
    return torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)


@register_power_integral(D.Normal)
def _normal(dist: D.Normal, k: float) -> torch.Tensor:
    """∫ φ_σ^k = (2πσ²)^{(1-k)/2} k^{-1/2}."""
    s = dist.scale
    return (2 * math.pi * s**2) ** ((1 - k) / 2) / math.sqrt(k)


@register_power_integral(D.Laplace)
def _laplace(dist: D.Laplace, k: float) -> torch.Tensor:
    """∫ ((2b)^{-1} e^{-|y|/b})^k dy = (2b)^{1-k} / k."""
    return (2 * dist.scale) ** (1 - k) / k


@register_power_integral(Logistic)
def _logistic(dist: Logistic, k: float) -> torch.Tensor:
    """∫ f^k = s^{1-k} B(k, k): substitute u = σ(z), du = σ(1-σ) dz."""
    return dist.scale ** (1 - k) * math.exp(_lbeta(k, k).item())


@register_power_integral(D.StudentT)
def _student_t(dist: D.StudentT, k: float) -> torch.Tensor:
    """∫ f^k = c^k σ^{1-k} √ν B(1/2, (k(ν+1) - 1)/2), c = Γ((ν+1)/2)/(√(νπ) Γ(ν/2)).

    Finite iff k(ν + 1) > 1. Both ratios of Gamma functions, log c and log B(½, b) =
    log Γ(½) - [log Γ(b + ½) - log Γ(b)], are taken by
    :func:`~likelab.families.distributions.lgamma_half_difference`: a difference of ``lgamma``
    loses ε·ν log ν absolutely (2e-4 at ν = 1e11, the df→∞ ridge a fit can walk along), which
    made the risk of a Student-t under an integral rule too noisy there for a line search.
    """
    nu, s = torch.broadcast_tensors(dist.df, dist.scale)

    def of_nu(nu: torch.Tensor) -> torch.Tensor:  # the terms in ν alone
        log_c = lgamma_half_difference(nu / 2) - 0.5 * torch.log(nu * math.pi)
        b = (k * (nu + 1) - 1) / 2
        safe_b = torch.where(b > 0, b, torch.ones_like(b))
        log_beta = 0.5 * math.log(math.pi) - lgamma_half_difference(safe_b)  # log B(½, b)
        return k * log_c + 0.5 * torch.log(nu) + log_beta

    log_val = once_per_value(of_nu, nu) + (1 - k) * torch.log(s)
    b = (k * (nu + 1) - 1) / 2
    return torch.where(b > 0, torch.exp(log_val), torch.full_like(log_val, math.inf))


@register_power_integral(D.Cauchy)
def _cauchy(dist: D.Cauchy, k: float) -> torch.Tensor:
    """∫ (πγ(1+z²))^{-k} dy = π^{-k} γ^{1-k} B(1/2, k - 1/2), finite iff k > 1/2."""
    if k <= 0.5:
        return torch.full_like(dist.scale, math.inf)
    return dist.scale ** (1 - k) * math.exp(-k * math.log(math.pi) + _lbeta(0.5, k - 0.5).item())


@register_power_integral(D.Uniform)
def _uniform(dist: D.Uniform, k: float) -> torch.Tensor:
    """∫ (b-a)^{-k} over [a, b] = (b - a)^{1-k}."""
    return (dist.high - dist.low) ** (1 - k)


@register_power_integral(D.Exponential)
def _exponential(dist: D.Exponential, k: float) -> torch.Tensor:
    """∫_0^∞ λ^k e^{-kλy} dy = λ^{k-1} / k."""
    return dist.rate ** (k - 1) / k


@register_power_integral(D.Gamma)
def _gamma(dist: D.Gamma, k: float) -> torch.Tensor:
    """∫ f^k = β^{k-1} Γ(k(α-1)+1) / (Γ(α)^k k^{k(α-1)+1}), finite iff k(α - 1) + 1 > 0."""
    a, b = torch.broadcast_tensors(dist.concentration, dist.rate)
    m = k * (a - 1) + 1
    safe_m = torch.where(m > 0, m, torch.ones_like(m))
    log_val = (
        (k - 1) * torch.log(b) + torch.lgamma(safe_m) - k * torch.lgamma(a) - safe_m * (math.log(k))
    )
    return torch.where(m > 0, torch.exp(log_val), torch.full_like(log_val, math.inf))


@register_power_integral(D.Bernoulli)
def _bernoulli(dist: D.Bernoulli, k: float) -> torch.Tensor:
    """p^k + (1 - p)^k."""
    p = dist.probs
    return p**k + (1 - p) ** k


@register_power_integral(D.Categorical)
def _categorical(dist: D.Categorical, k: float) -> torch.Tensor:
    """Σ_j p_j^k over the classes."""
    return (dist.probs**k).sum(-1)


@register_power_integral(D.Poisson)
def _poisson(dist: D.Poisson, k: float) -> torch.Tensor:
    r""":math:`\sum_y p(y)^2 = e^{-2\lambda} I_0(2\lambda)` (the generating function of
    :math:`I_0`, Abramowitz & Stegun 1964, 9.6.33, with :math:`z = 2\lambda`, ``i0e`` in torch),
    which costs O(1) however large λ; 1 for ``k = 1``; other ``k``: where
    :func:`_poisson_is_smooth`, the integral of :func:`_poisson_summation` (O(1) per λ), else
    the window sum of :func:`~likelab.families.quadrature.numerical_power_integral`, whose
    window of :math:`\lambda \pm (12\sqrt\lambda + 20)` terms is then at most a few hundred."""
    rate = dist.rate
    if k == 2.0:
        return torch.special.i0e(2 * rate)
    if k == 1.0:
        return torch.ones_like(rate)
    from likelab.families.quadrature import numerical_power_integral

    smooth = _poisson_is_smooth(rate.detach(), k)
    if bool(smooth.all()):
        return _poisson_summation(rate, k)
    if not bool(smooth.any()):
        return numerical_power_integral(dist, k)
    # each rule on its own elements; a stand-in elsewhere keeps the other rule finite and small
    big = _poisson_summation(torch.where(smooth, rate, torch.full_like(rate, 1e3)), k)
    small = numerical_power_integral(D.Poisson(torch.where(smooth, 1.0, rate)), k)
    return torch.where(smooth, big, small)


#: Gauss-Hermite nodes of :func:`_poisson_summation`.
_HERMITE_NODES = 32


def _poisson_is_smooth(rate: torch.Tensor, k: float) -> torch.Tensor:
    r"""Where :func:`_poisson_summation` is exact to rounding: the pmf's width
    :math:`s = \sqrt{\lambda/k}` of :math:`p^k` is at least √3 (Poisson summation error
    :math:`e^{-2\pi^2 s^2} < 10^{-25}`) and 8 widths below the mode stay above y = 0."""
    s2 = rate / k
    return (s2 >= 3.0) & (rate - 0.5 - 8.0 * s2.clamp(min=0).sqrt() >= 0)


def _poisson_summation(rate: torch.Tensor, k: float) -> torch.Tensor:
    r""":math:`\sum_{y \ge 0} p(y)^k` as the integral of its continuous extension
    :math:`g(y) = \exp k(y \log\lambda - \lambda - \log\Gamma(y + 1))` over
    :math:`y > -1`, by Gauss-Hermite quadrature.

    By the Poisson summation formula :math:`\sum_y g(y) = \sum_m \hat g(2\pi m)`, and the
    terms :math:`m \ne 0` of a near-Gaussian g of width :math:`s = \sqrt{\lambda/k}` are
    :math:`\approx \hat g(0)\, e^{-2\pi^2 m^2 s^2}`, below 1e-25 relative for
    :math:`s^2 \ge 3` (:func:`_poisson_is_smooth`; g vanishes like :math:`(y+1)^k
    e^{-k\lambda}` at -1). The integral uses 32 Gauss-Hermite nodes (numpy's ``hermgauss``)
    centred at :math:`\lambda - \tfrac12` with width s (both detached: they steer the rule);
    measured against the direct sum: 1e-14 relative for :math:`1 \le k \le 5`, λ up to 1e5
    (beyond, the direct sum's own log-pmf loses :math:`\epsilon k\lambda\log\lambda`).
    """
    t, log_w = _hermite(_HERMITE_NODES, rate.dtype, rate.device)
    lam = rate.unsqueeze(-1)
    centre = (lam - 0.5).detach()
    width = (lam / k).sqrt().detach() * math.sqrt(2.0)
    y = centre + width * t
    inside = y > -1
    ys = torch.where(inside, y, torch.zeros_like(y))
    log_g = k * (ys * torch.log(lam) - lam - torch.lgamma(ys + 1)) + log_w
    log_g = torch.where(inside, log_g, torch.full_like(log_g, -math.inf))
    return width.squeeze(-1) * torch.exp(torch.logsumexp(log_g, -1))


@functools.lru_cache(maxsize=8)
def _hermite(n: int, dtype: torch.dtype, device: torch.device):
    """Gauss-Hermite nodes t and log(w) + t² (the weight e^{-t²} divided out)."""
    t, w = np.polynomial.hermite.hermgauss(n)
    return (
        torch.as_tensor(t, dtype=dtype, device=device),
        torch.as_tensor(np.log(w) + t * t, dtype=dtype, device=device),
    )


# ------------------------------------------------- derivatives of log ∫ f^k in the parameters
#: ``(L, ∇L, ∇²L)``: ``L = log ∫ f^k`` of shape ``batch_shape``; its first derivatives by
#: parameter name and its second derivatives by pairs of names, each pair once (either order),
#: the identically zero ones left out.
LogIntegralDerivatives = tuple[
    torch.Tensor, dict[str, torch.Tensor], dict[tuple[str, str], torch.Tensor]
]
_LOG_DERIVATIVES: dict[type, Callable[[D.Distribution, float], LogIntegralDerivatives]] = {}


def register_log_power_integral_derivatives(*dist_types: type):
    """Register ``fn(dist, k) -> (L, ∇L, ∇²L)`` (:data:`LogIntegralDerivatives`) for
    ``dist_types``: closed-form derivatives of ``log ∫ f^k`` in the distribution's parameters
    (its attribute names), tested against autograd of :func:`power_integral`."""

    def decorate(fn):
        for t in dist_types:
            _LOG_DERIVATIVES[t] = fn
        return fn

    return decorate


def log_power_integral_derivatives(dist: D.Distribution, k: float) -> LogIntegralDerivatives | None:
    r"""``log ∫ f^k`` with its gradient and Hessian in the distribution's parameters, in closed
    form, or ``None`` where none is registered for ``type(dist)`` (exact type: a subclass may
    change the density). Where the integral diverges, ``L = +inf`` and every derivative given
    is ``nan`` (those identically zero are left out, as elsewhere).

    An integral rule's coefficients are functions of ``L`` alone
    (:class:`~likelab.objectives.affine.AffineForm`), so a fit gets theirs by the chain rule
    from these, without autograd through special functions (:mod:`likelab.estimate.structured`).
    """
    fn = _LOG_DERIVATIVES.get(type(dist))
    if fn is None or k <= 0:
        return None
    value, grad, hess = fn(dist, float(k))
    bad = ~torch.isfinite(value)
    if bool(bad.any()):
        nan = torch.full_like(value, math.nan)
        grad = {n: torch.where(bad, nan, g) for n, g in grad.items()}
        hess = {n: torch.where(bad, nan, h) for n, h in hess.items()}
    return value, grad, hess


def _log_scale_terms(scale: torch.Tensor, k: float):
    """The terms of ``(1 - k) log σ``: ∂/∂σ = (1 - k)/σ, ∂²/∂σ² = -(1 - k)/σ²."""
    return {"scale": (1 - k) / scale}, {("scale", "scale"): -(1 - k) / (scale * scale)}


@register_log_power_integral_derivatives(D.Normal, D.Laplace, Logistic, D.Cauchy)
def _location_scale_log_derivatives(dist, k: float) -> LogIntegralDerivatives:
    """A location-scale family without a shape parameter: ``L = (1 - k) log σ + const``
    (substitute z = (y - μ)/σ in ∫ f^k), free of the location."""
    value = torch.log(power_integral(dist, k))
    value, scale = torch.broadcast_tensors(value, dist.scale)
    grad, hess = _log_scale_terms(scale, k)
    return value, grad, hess


@register_log_power_integral_derivatives(D.StudentT, StudentT)
def _student_t_log_derivatives(dist: D.StudentT, k: float) -> LogIntegralDerivatives:
    r"""``L = k log c(ν) + ½ log ν + log B(½, b) + (1 - k) log σ``, ``b = (k(ν + 1) - 1)/2``
    (:func:`_student_t`), with ``log c = D(ν/2) - ½ log(νπ)``, ``log B(½, b) = ½ log π - D(b)``
    and ``D(x) = log Γ(x + ½) - log Γ(x)``, whose derivatives are
    :func:`~likelab.families.distributions.digamma_half_difference` and
    :func:`~likelab.families.distributions.trigamma_half_difference`:

    .. math::
        L_\nu = k\left[\tfrac12 D'(\nu/2) - \tfrac1{2\nu}\right] + \tfrac1{2\nu}
            - \tfrac k2 D'(b),\qquad
        L_{\nu\nu} = k\left[\tfrac14 D''(\nu/2) + \tfrac1{2\nu^2}\right] - \tfrac1{2\nu^2}
            - \tfrac{k^2}4 D''(b).
    """
    value = torch.log(power_integral(dist, k))
    nu, scale, value = torch.broadcast_tensors(dist.df, dist.scale, value)

    def b_of(v: torch.Tensor) -> torch.Tensor:  # diverges where b <= 0: L = inf, derivatives nan
        b = (k * (v + 1) - 1) / 2
        return torch.where(b > 0, b, torch.ones_like(b))

    def l_nu(v: torch.Tensor) -> torch.Tensor:
        d = k * (0.5 * digamma_half_difference(v / 2) - 0.5 / v) + 0.5 / v
        return d - 0.5 * k * digamma_half_difference(b_of(v))

    def l_nunu(v: torch.Tensor) -> torch.Tensor:
        d = k * (0.25 * trigamma_half_difference(v / 2) + 0.5 / (v * v)) - 0.5 / (v * v)
        return d - 0.25 * k * k * trigamma_half_difference(b_of(v))

    grad, hess = _log_scale_terms(scale, k)
    # the terms in ν alone: once where ν is one value broadcast (a fixed df)
    grad["df"] = once_per_value(l_nu, nu)
    hess["df", "df"] = once_per_value(l_nunu, nu)
    return value, grad, hess


@register_log_power_integral_derivatives(D.Exponential)
def _exponential_log_derivatives(dist: D.Exponential, k: float) -> LogIntegralDerivatives:
    """``L = (k - 1) log λ - log k``."""
    rate = dist.rate
    value = torch.log(power_integral(dist, k))
    return value, {"rate": (k - 1) / rate}, {("rate", "rate"): -(k - 1) / (rate * rate)}


@register_log_power_integral_derivatives(D.Gamma)
def _gamma_log_derivatives(dist: D.Gamma, k: float) -> LogIntegralDerivatives:
    """``L = (k - 1) log β + log Γ(m) - k log Γ(α) - m log k``, ``m = k(α - 1) + 1``:
    ``L_α = k[ψ(m) - ψ(α) - log k]``, ``L_αα = k²ψ'(m) - kψ'(α)``, ``L_β = (k - 1)/β``,
    ``L_ββ = -(k - 1)/β²``."""
    value = torch.log(power_integral(dist, k))
    a, b, value = torch.broadcast_tensors(dist.concentration, dist.rate, value)
    m = k * (a - 1) + 1
    m = torch.where(m > 0, m, torch.ones_like(m))  # diverges there: L = inf, derivatives nan
    grad = {
        "concentration": k * (torch.digamma(m) - torch.digamma(a) - math.log(k)),
        "rate": (k - 1) / b,
    }
    hess = {
        ("concentration", "concentration"): k * k * torch.polygamma(1, m)
        - k * torch.polygamma(1, a),
        ("rate", "rate"): -(k - 1) / (b * b),
    }
    return value, grad, hess
