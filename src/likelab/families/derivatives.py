r"""Closed-form per-observation derivatives of :math:`\ell = \log f(y;\theta)`.

``log_prob_derivatives(dist, y)`` returns :math:`\ell`, its gradient and its Hessian with respect to
the distribution's natural parameters, per observation, in the parameter order of the likelab
family of that type (``normal``: loc, scale; ``student_t``: df, loc, scale; ...). Shapes:
``(*B,)``, ``(*B, p)``, ``(*B, p, p)`` where ``B = broadcast(batch_shape, y.shape)``.

They let batched Newton fits skip the p + 1 autograd passes a Hessian costs (about 20x the
forward pass); each formula is tested against autograd of ``log_prob``. Location-scale families
share one rule: with :math:`z = (y - \mu)/\sigma` and :math:`\ell = g(z) - \log\sigma`,

.. math::
    \ell_\mu = -g'/\sigma,\quad \ell_\sigma = -(1 + z g')/\sigma,\quad
    \ell_{\mu\mu} = g''/\sigma^2,\quad \ell_{\mu\sigma} = (g' + z g'')/\sigma^2,\quad
    \ell_{\sigma\sigma} = (1 + 2 z g' + z^2 g'')/\sigma^2.

A distribution type with no entry returns ``None``; callers then use autograd.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import distributions as D

from likelab.families.distributions import Logistic

__all__ = ["log_prob_derivatives", "register_log_prob_derivatives"]

Derivatives = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
_REGISTRY: dict[type, Callable[[D.Distribution, torch.Tensor], Derivatives]] = {}


def register_log_prob_derivatives(dist_type: type):
    """Register ``fn(dist, y) -> (ell, grad, hess)`` for ``dist_type`` (exact type match)."""

    def decorate(fn):
        _REGISTRY[dist_type] = fn
        return fn

    return decorate


def log_prob_derivatives(dist: D.Distribution, y: torch.Tensor) -> Derivatives | None:
    """``(ell, grad, hess)`` of ``log f(y)`` in the natural parameters, or ``None``."""
    fn = _REGISTRY.get(type(dist))
    return None if fn is None else fn(dist, y)


def _sym(entries: list[list[torch.Tensor]]) -> torch.Tensor:
    return torch.stack([torch.stack(row, -1) for row in entries], -2)


def _location_scale(loc, scale, y, g, g1, g2):
    """(ell, grad, hess) of g(z) - log(scale) in (loc, scale); g, g1, g2 take z."""
    z = (y - loc) / scale
    gz, d1, d2 = g(z), g1(z), g2(z)
    s2 = scale * scale
    ell = gz - torch.log(scale)
    grad = torch.stack([-d1 / scale, -(1 + z * d1) / scale], -1)
    h_ll = d2 / s2
    h_ls = (d1 + z * d2) / s2
    h_ss = (1 + 2 * z * d1 + z * z * d2) / s2
    return ell, grad, _sym([[h_ll, h_ls], [h_ls, h_ss]])


@register_log_prob_derivatives(D.Normal)
def _normal(dist: D.Normal, y):
    """g(z) = -z²/2 - log√(2π): g' = -z, g'' = -1."""
    c = 0.5 * math.log(2 * math.pi)
    return _location_scale(
        dist.loc,
        dist.scale,
        y,
        lambda z: -0.5 * z * z - c,
        lambda z: -z,
        lambda z: torch.full_like(z, -1.0),
    )


@register_log_prob_derivatives(D.Laplace)
def _laplace(dist: D.Laplace, y):
    """g(z) = -|z| - log 2: g' = -sign z, g'' = 0 (almost everywhere)."""
    return _location_scale(
        dist.loc,
        dist.scale,
        y,
        lambda z: -z.abs() - math.log(2.0),
        lambda z: -torch.sign(z),
        torch.zeros_like,
    )


@register_log_prob_derivatives(Logistic)
def _logistic(dist: Logistic, y):
    """g(z) = 2 log σ(z) - z: g' = 1 - 2σ(z), g'' = -2σ(z)(1 - σ(z))."""
    return _location_scale(
        dist.loc,
        dist.scale,
        y,
        lambda z: 2 * torch.nn.functional.logsigmoid(z) - z,
        lambda z: 1 - 2 * torch.sigmoid(z),
        lambda z: -2 * torch.sigmoid(z) * torch.sigmoid(-z),
    )


@register_log_prob_derivatives(D.Cauchy)
def _cauchy(dist: D.Cauchy, y):
    """g(z) = -log π - log(1 + z²): g' = -2z/(1+z²), g'' = -2(1 - z²)/(1+z²)²."""
    return _location_scale(
        dist.loc,
        dist.scale,
        y,
        lambda z: -math.log(math.pi) - torch.log1p(z * z),
        lambda z: -2 * z / (1 + z * z),
        lambda z: -2 * (1 - z * z) / (1 + z * z) ** 2,
    )


@register_log_prob_derivatives(D.StudentT)
def _student_t(dist: D.StudentT, y):
    """Student-t in (df ν, loc, scale), D = ν + z²; derived by hand, tested against autograd.

    g(z) = -(ν+1)/2 log(1 + z²/ν) + c(ν), c(ν) = lgamma((ν+1)/2) - lgamma(ν/2) - log(νπ)/2;
    ℓ_ν = ½[ψ((ν+1)/2) - ψ(ν/2) - 1/ν - log(D/ν) + (ν+1) z²/(ν D)];
    ℓ_νν = ½[½ψ'((ν+1)/2) - ½ψ'(ν/2) + 1/ν² + z²/(ν D) - z²(D + ν² + ν)/(ν² D²)];
    ℓ_νμ = z(z² - 1)/(σ D²), ℓ_νσ = z²(z² - 1)/(σ D²).
    """
    nu, loc, scale = dist.df, dist.loc, dist.scale
    z = (y - loc) / scale
    z2 = z * z
    dd = nu + z2
    c = torch.lgamma((nu + 1) / 2) - torch.lgamma(nu / 2) - 0.5 * torch.log(nu * math.pi)
    ell_ls, grad_ls, hess_ls = _location_scale(
        loc,
        scale,
        y,
        lambda z: -(nu + 1) / 2 * torch.log1p(z * z / nu),
        lambda z: -(nu + 1) * z / (nu + z * z),
        lambda z: -(nu + 1) * (nu - z * z) / (nu + z * z) ** 2,
    )
    ell = ell_ls + c
    log_w = torch.log1p(z2 / nu)
    d_nu = 0.5 * (
        torch.digamma((nu + 1) / 2)
        - torch.digamma(nu / 2)
        - 1 / nu
        - log_w
        + (nu + 1) * z2 / (nu * dd)
    )
    d_nunu = 0.5 * (
        0.5 * torch.polygamma(1, (nu + 1) / 2)
        - 0.5 * torch.polygamma(1, nu / 2)
        + 1 / nu**2
        + z2 / (nu * dd)
        - z2 * (dd + nu * nu + nu) / (nu * nu * dd * dd)
    )
    d_numu = z * (z2 - 1) / (scale * dd * dd)
    d_nusig = z2 * (z2 - 1) / (scale * dd * dd)
    d_nu, d_nunu, d_numu, d_nusig = torch.broadcast_tensors(d_nu, d_nunu, d_numu, d_nusig)
    grad = torch.cat([d_nu.unsqueeze(-1), grad_ls], -1)
    h = hess_ls
    hess = _sym(
        [
            [d_nunu, d_numu, d_nusig],
            [d_numu, h[..., 0, 0], h[..., 0, 1]],
            [d_nusig, h[..., 1, 0], h[..., 1, 1]],
        ]
    )
    return ell, grad, hess


@register_log_prob_derivatives(D.Exponential)
def _exponential(dist: D.Exponential, y):
    """ℓ = log λ - λy: ℓ_λ = 1/λ - y, ℓ_λλ = -1/λ²."""
    lam = dist.rate
    ell = torch.log(lam) - lam * y
    g = 1 / lam - y
    h = (-1 / lam**2).expand_as(g)
    return ell, g.unsqueeze(-1), h[..., None, None]


@register_log_prob_derivatives(D.Poisson)
def _poisson(dist: D.Poisson, y):
    """ℓ = y log λ - λ - log y!: ℓ_λ = y/λ - 1, ℓ_λλ = -y/λ²."""
    lam = dist.rate
    ell = y * torch.log(lam) - lam - torch.lgamma(y + 1)
    g = y / lam - 1
    return ell, g.unsqueeze(-1), (-y / lam**2)[..., None, None]


@register_log_prob_derivatives(D.Gamma)
def _gamma(dist: D.Gamma, y):
    """ℓ = α log β - lgamma(α) + (α-1) log y - βy, in (α = concentration, β = rate):
    ℓ_α = log β - ψ(α) + log y, ℓ_β = α/β - y, ℓ_αα = -ψ'(α), ℓ_αβ = 1/β, ℓ_ββ = -α/β²."""
    a, b = dist.concentration, dist.rate
    log_y = torch.log(y)
    ell = a * torch.log(b) - torch.lgamma(a) + (a - 1) * log_y - b * y
    g_a = torch.log(b) - torch.digamma(a) + log_y
    g_b = a / b - y
    g_a, g_b = torch.broadcast_tensors(g_a, g_b)
    h_aa = (-torch.polygamma(1, a)).expand_as(g_a)
    h_ab = (1 / b).expand_as(g_a)
    h_bb = (-a / b**2).expand_as(g_a)
    return ell, torch.stack([g_a, g_b], -1), _sym([[h_aa, h_ab], [h_ab, h_bb]])
