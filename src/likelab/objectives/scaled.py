r"""Rules that are a power of the scale times a function of the standardised observation.

For a location-scale forecast with location :math:`\mu`, scale :math:`\sigma` and
:math:`z = (y - \mu)/\sigma`, the CRPS is :math:`\sigma\,c(z)` (Gneiting & Raftery 2007, JASA
102:359-378, sec. 4.2; Jordan, Krüger & Lerch 2019, J. Stat. Softw. 90(12), appendix A) and the
Hyvärinen score is :math:`\sigma^{-2} h(z)` with :math:`h = 2g'' + g'^2`, :math:`g(z) = \log f_0(z)`
(Hyvärinen 2005, JMLR 6:695-709). Written as :math:`S = \sigma^a h(z)`, every derivative in
:math:`(\mu, \sigma)` follows from :math:`h, h', h''` (:mod:`likelab.estimate.structured`):

.. math::
    S_\mu = -\sigma^{a-1} h',\quad S_\sigma = \sigma^{a-1}(a h - z h'),\quad
    S_{\mu\mu} = \sigma^{a-2} h'',\quad S_{\mu\sigma} = \sigma^{a-2}\big((1-a) h' + z h''\big),

.. math::
    S_{\sigma\sigma} = \sigma^{a-2}\big(a(a-1) h - 2(a-1) z h' + z^2 h''\big).

A form may also give :math:`a h - z h'` itself where the difference of the two terms would cancel
for large :math:`|z|` (the CRPS, where both are of order :math:`|z|`), and the derivatives
:math:`h_\nu, h_{\nu\nu}, h_{\nu z}` in a shape parameter ν (a Student-t's df under the
Hyvärinen score, and the CRPS through the t CDF's df-derivatives of
:func:`~likelab.objectives._special.student_t_cdf_df_derivatives`), which may then be free;
without them it must be held fixed.

:func:`scaled_form` gives the form of an objective on a forecast, or ``None``; every registered
form is tested equal to its objective's loss, and its derivatives to autograd's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import distributions as D

from likelab.families.distributions import (
    Logistic,
    digamma_half_difference,
    trigamma_half_difference,
)
from likelab.families.distributions import StudentT as LikelabStudentT
from likelab.objectives._special import (
    _integer_degrees,
    _log1p_square,
    _per_value,
    _student_t_cdf_and_df_derivatives,
    student_t_cdf,
    student_t_cdf_df_derivatives,
)
from likelab.objectives.crps import student_t_crps_constants

__all__ = ["ScaledForm", "register_scaled_form", "scaled_form"]

#: ``z -> (h, h', h'', a h - z h' or None)`` elementwise.
HFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]]


@dataclass(frozen=True)
class ScaledForm:
    r""":math:`S(F, y) = \sigma^a\,h((y - \mu)/\sigma)` for the forecast's ``loc`` and ``scale``."""

    power: float
    loc: torch.Tensor
    scale: torch.Tensor
    h: HFn
    #: A shape parameter h depends on (a Student-t's ``df``), and ``h_shape(z) -> (h_ν, h_νν,
    #: h_νz)``; without it the shape must be held fixed.
    shape: str | None = None
    h_shape: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None


_FORMS: dict[tuple[str, type], Callable[[D.Distribution], ScaledForm]] = {}


def register_scaled_form(name: str, *dist_types: type):
    """Register ``form(dist) -> ScaledForm`` of the objective ``name`` on forecasts of exactly
    the types ``dist_types``; it must equal the objective's loss (tested)."""

    def decorate(fn: Callable[[D.Distribution], ScaledForm]):
        for t in dist_types:
            _FORMS[(name, t)] = fn
        return fn

    return decorate


def has_scaled_form(objective: Any, dist_type: type) -> bool:
    """Whether :func:`scaled_form` has a form of ``objective`` on forecasts of ``dist_type``."""
    return not getattr(objective, "user", False) and (objective.name, dist_type) in _FORMS


def scaled_form(objective: Any, dist: D.Distribution) -> ScaledForm | None:
    """The :class:`ScaledForm` of a built-in rule on ``dist``, or ``None``."""
    if not has_scaled_form(objective, type(dist)):
        return None
    return _FORMS[(objective.name, type(dist))](dist, **dict(objective.hyper))


_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# ------------------------------------------------------------------ CRPS: S = σ c(z)
@register_scaled_form("crps", D.Normal)
def _crps_normal(dist: D.Normal) -> ScaledForm:
    """c = z(2Φ - 1) + 2φ - 1/√π, c' = 2Φ - 1, c'' = 2φ, c - z c' = 2φ - 1/√π."""

    def h(z):
        two_phi = 2.0 * _INV_SQRT_2PI * torch.exp(-0.5 * z * z)
        c1 = torch.erf(z * _INV_SQRT_2)
        scale_term = two_phi - _INV_SQRT_PI
        return z * c1 + scale_term, c1, two_phi, scale_term

    return ScaledForm(1.0, dist.loc, dist.scale, h)


@register_scaled_form("crps", Logistic)
def _crps_logistic(dist: Logistic) -> ScaledForm:
    """c = z - 2 log σ(z) - 1, c' = σ(z) - σ(-z), c'' = 2σ(z)σ(-z); c - z c' is even in z,
    2|z|σ(-|z|) - 2 log σ(|z|) - 1, with no term of order |z|."""

    def h(z):
        p, q = torch.sigmoid(z), torch.sigmoid(-z)
        a = z.abs()
        scale_term = 2.0 * a * torch.sigmoid(-a) - 2.0 * torch.nn.functional.logsigmoid(a) - 1.0
        return (
            z - 2.0 * torch.nn.functional.logsigmoid(z) - 1.0,
            p - q,
            2.0 * p * q,
            scale_term,
        )

    return ScaledForm(1.0, dist.loc, dist.scale, h)


@register_scaled_form("crps", D.Laplace)
def _crps_laplace(dist: D.Laplace) -> ScaledForm:
    """c = |z| + e^-|z| - 3/4, c' = sign(z)(1 - e^-|z|), c'' = e^-|z| (c is twice
    continuously differentiable, also at 0), c - z c' = (1 + |z|) e^-|z| - 3/4."""

    def h(z):
        a = z.abs()
        e = torch.exp(-a)
        return a + e - 0.75, torch.sign(z) * -torch.expm1(-a), e, (1.0 + a) * e - 0.75

    return ScaledForm(1.0, dist.loc, dist.scale, h)


@register_scaled_form("crps", D.StudentT, LikelabStudentT)
def _crps_student_t(dist: D.StudentT) -> ScaledForm:
    r"""c = z(2F_ν - 1) + k(1 + z²/ν)^{-(ν-1)/2} - c_ν, c' = 2F_ν - 1,
    c'' = 2f_ν(z) = k (ν - 1)/ν (1 + z²/ν)^{-(ν+1)/2}, c - z c' = k(1 + z²/ν)^{-(ν-1)/2} - c_ν,
    k = 2√ν/((ν - 1)B(½, ν/2)), c_ν = 2√ν B(½, ν - ½)/((ν - 1)B(½, ν/2)²) (the same
    constants as :func:`likelab.objectives.crps`); ``inf`` for ν <= 1 as there. The
    ν-derivatives are :func:`_crps_t_shape`'s: df may be free."""
    nu = dist.df

    finite = nu > 1
    nus = torch.where(finite, nu, torch.full_like(nu, 2.0))
    log_k, const = _per_value(student_t_crps_constants, nus)
    terms = _t_cdf_terms(nus)

    def h(z):
        log_w = _log1p_square(z / torch.sqrt(nus))
        spread = torch.exp(log_k - 0.5 * (nus - 1) * log_w)
        c1 = 2.0 * terms(z)[0] - 1.0
        c2 = torch.exp(log_k - 0.5 * (nus + 1) * log_w) * (nus - 1) / nus
        scale_term = spread - const
        inf = torch.full_like(scale_term, math.inf)
        value = torch.where(finite, z * c1 + scale_term, inf)
        return value, c1, c2, torch.where(finite, scale_term, inf)

    shape = _crps_t_shape(nus, finite, log_k, const, terms)
    return ScaledForm(1.0, dist.loc, dist.scale, h, "df", shape)


def _t_cdf_terms(nus: torch.Tensor):
    r"""``terms(z, derivatives=False) -> (F_ν(z), ∂F/∂ν, ∂²F/∂ν²)`` (the last two ``None`` unless
    asked for) for the CRPS form's h and h_shape, which a fit calls in turn on the same z:
    computed once per z. By the quadrature rules of
    :func:`~likelab.objectives._special.student_t_cdf_df_derivatives` (the CDF beside its
    derivatives from the same nodes, within 3e-15 of :func:`student_t_cdf`, tested; cheaper than
    its continued fraction even for F alone); by :func:`student_t_cdf`, and the derivatives only
    when asked for, where z carries a gradient (the rules are not differentiated) or ν is a small
    integer (the CDF's finite forms are cheaper still, and such a df is a fixed one)."""
    integer = _integer_degrees(nus) is not None
    last: dict[str, Any] = {}

    def terms(z: torch.Tensor, derivatives: bool = False) -> tuple[Any, ...]:
        if last.get("z") is not z or last.get("version") != z._version:
            last.clear()
            last.update(z=z, version=z._version)
            if z.requires_grad or integer:
                last["out"] = (student_t_cdf(z, nus), None, None)
            else:
                last["out"] = _student_t_cdf_and_df_derivatives(z, nus)
        if derivatives and last["out"][1] is None:
            last["out"] = (last["out"][0], *student_t_cdf_df_derivatives(z, nus))
        return last["out"]

    return terms


def _crps_t_constant_derivatives(v: torch.Tensor) -> tuple[torch.Tensor, ...]:
    r"""First and second ν-derivatives of :math:`\log k` and of :math:`\log c_\nu`
    (:func:`~likelab.objectives.crps.student_t_crps_constants`), with
    :math:`D_j(x) = \psi^{(j-1)}(x + \tfrac12) - \psi^{(j-1)}(x)`
    (:mod:`likelab.families.distributions`, no cancellation for large ν; ψ' to 1e-13 by its
    recurrence):
    :math:`\log k = \log 2 + \tfrac12\log\nu - \log(\nu-1) - \tfrac12\log\pi + D_0(\nu/2)`,
    :math:`\log c_\nu = \log 2 + \tfrac12\log\nu - \log(\nu-1) - \tfrac12\log\pi
    - D_0(\nu - \tfrac12) + 2D_0(\nu/2)`."""
    base1 = 0.5 / v - 1.0 / (v - 1.0)
    base2 = -0.5 / (v * v) + 1.0 / ((v - 1.0) * (v - 1.0))
    d1_half = digamma_half_difference(v / 2)
    d2_half = trigamma_half_difference(v / 2, recurrence=True)
    d1_less = digamma_half_difference(v - 0.5)
    d2_less = trigamma_half_difference(v - 0.5, recurrence=True)
    return (
        base1 + 0.5 * d1_half,
        base2 + 0.25 * d2_half,
        base1 - d1_less + d1_half,
        base2 - d2_less + 0.5 * d2_half,
    )


def _crps_t_shape(nus, finite, log_k, const, terms):
    r"""The ν-derivatives of the Student-t CRPS's c (:func:`_crps_student_t`):
    :math:`c_\nu = 2z F_\nu + S_\nu - c_\nu'`, :math:`c_{\nu\nu} = 2z F_{\nu\nu} + S_{\nu\nu}
    - c_\nu''`, :math:`c_{\nu z} = 2F_\nu` (as :math:`c_z = 2F - 1`), with :math:`F_\nu,
    F_{\nu\nu}` from :func:`~likelab.objectives._special.student_t_cdf_df_derivatives` and
    :math:`S = k W^{-(\nu-1)/2}`, :math:`W = 1 + z^2/\nu`, :math:`y = 1 - 1/W`:
    :math:`S_\nu = S\,T`, :math:`T = (\log k)' - \tfrac12\log W + (\nu - 1)y/(2\nu)`,
    :math:`S_{\nu\nu} = S\,(T^2 + T')`, :math:`T' = (\log k)'' + y/(2\nu) + y/(2\nu^2)
    - (\nu - 1)y(1 - y)/(2\nu^2)`. Zero where ν <= 1 (the score is ``inf`` there), as
    autograd gives through its ``where``."""
    lk1, lk2, lc1, lc2 = _per_value(_crps_t_constant_derivatives, nus)
    c1, c2 = const * lc1, const * (lc1 * lc1 + lc2)

    def h_shape(z):
        log_w = _log1p_square(z / torch.sqrt(nus))
        y = -torch.expm1(-log_w)
        spread = torch.exp(log_k - 0.5 * (nus - 1) * log_w)
        t = lk1 - 0.5 * log_w + (nus - 1) * y / (2.0 * nus)
        nu2 = 2.0 * nus * nus
        dt = lk2 + y / (2.0 * nus) + y / nu2 - (nus - 1) * y * (1 - y) / nu2
        _, f1, f2 = terms(z, derivatives=True)
        zero = torch.zeros_like(f1)
        # at z = ±inf (a scale of 0) z F_ν and S_ν vanish (inf · 0 would be nan): -c_ν', -c_ν''
        far = z.isinf()
        h_n = torch.where(far, -c1, 2.0 * z * f1 + spread * t - c1)
        h_nn = torch.where(far, -c2, 2.0 * z * f2 + spread * (t * t + dt) - c2)
        h_n, h_nn = torch.where(finite, h_n, zero), torch.where(finite, h_nn, zero)
        return h_n, h_nn, torch.where(finite, 2.0 * f1, zero)

    return h_shape


# ------------------------------------------------------------------ Hyvärinen: S = h(z)/σ²
@register_scaled_form("hyvarinen", D.Normal)
def _hyvarinen_normal(dist: D.Normal) -> ScaledForm:
    """h = z² - 2, h' = 2z, h'' = 2."""

    def h(z):
        return z * z - 2.0, 2.0 * z, torch.full_like(z, 2.0), None

    return ScaledForm(-2.0, dist.loc, dist.scale, h)


@register_scaled_form("hyvarinen", Logistic)
def _hyvarinen_logistic(dist: Logistic) -> ScaledForm:
    """h = 1 - 8pq, p = σ(z), q = σ(-z) (p' = pq): h' = -8pq(q - p),
    h'' = -8pq((q - p)² - 2pq)."""

    def h(z):
        p, q = torch.sigmoid(z), torch.sigmoid(-z)
        pq = p * q
        d = q - p
        return 1.0 - 8.0 * pq, -8.0 * pq * d, -8.0 * pq * (d * d - 2.0 * pq), None

    return ScaledForm(-2.0, dist.loc, dist.scale, h)


def _t_like_h(nu: torch.Tensor | float):
    r"""Student-t-like h with ν fixed, in :math:`s = \nu/(\nu + z^2) \in [0, 1]` (finite for
    every finite z): :math:`h = \tfrac{\nu+1}{\nu}\, s(\nu + 3 - (\nu + 5)s)`,
    :math:`s' = -2zs^2/\nu`, :math:`s'' = (2s^2/\nu)(3 - 4s)`."""
    k = (nu + 1.0) / nu

    def h(z):
        s = 1.0 / (1.0 + _square_over(z, nu))
        inner = (nu + 3.0) - 2.0 * (nu + 5.0) * s
        ds = -2.0 * z * s * s / nu
        d2s = (2.0 * s * s / nu) * (3.0 - 4.0 * s)
        value = k * s * ((nu + 3.0) - (nu + 5.0) * s)
        return value, k * inner * ds, k * (-2.0 * (nu + 5.0) * ds * ds + inner * d2s), None

    return h


def _square_over(z: torch.Tensor, nu: torch.Tensor | float) -> torch.Tensor:
    """z²/ν, ``inf`` rather than an overflow warning for huge |z|."""
    w = z / math.sqrt(nu) if isinstance(nu, float) else z / torch.sqrt(nu)
    return w * w


def _t_like_shape(nu: torch.Tensor):
    r"""The ν-derivatives of :func:`_t_like_h`'s :math:`h = qP`, :math:`q = (\nu+1)/\nu`,
    :math:`P = (\nu+3)s - (\nu+5)s^2`, through :math:`s_\nu = s(1-s)/\nu`,
    :math:`s_{\nu\nu} = -2 s s_\nu/\nu`, :math:`s_z = -2zs^2/\nu`,
    :math:`s_{\nu z} = s_z(1 - 2s)/\nu`; with :math:`I = \nu + 3 - 2(\nu+5)s`:
    :math:`P_\nu = s - s^2 + s_\nu I`, :math:`P_{\nu\nu} = 2s_\nu(1-2s) + s_{\nu\nu} I
    - 2(\nu+5)s_\nu^2`, :math:`P_z = s_z I`, :math:`P_{\nu z} = s_z(1-2s) + s_{\nu z} I
    - 2(\nu+5)s_\nu s_z`, and :math:`h_\nu = q_\nu P + q P_\nu`,
    :math:`h_{\nu\nu} = q_{\nu\nu}P + 2q_\nu P_\nu + qP_{\nu\nu}`,
    :math:`h_{\nu z} = q_\nu P_z + q P_{\nu z}` (:math:`q_\nu = -1/\nu^2`,
    :math:`q_{\nu\nu} = 2/\nu^3`)."""
    q, q1, q2 = (nu + 1.0) / nu, -1.0 / (nu * nu), 2.0 / (nu * nu * nu)

    def h_shape(z):
        s = 1.0 / (1.0 + _square_over(z, nu))
        inner = (nu + 3.0) - 2.0 * (nu + 5.0) * s
        big_p = s * ((nu + 3.0) - (nu + 5.0) * s)
        s_n = s * (1.0 - s) / nu
        s_nn = -2.0 * s * s_n / nu
        s_z = -2.0 * z * s * s / nu
        s_nz = s_z * (1.0 - 2.0 * s) / nu
        p_n = s - s * s + s_n * inner
        p_nn = 2.0 * s_n * (1.0 - 2.0 * s) + s_nn * inner - 2.0 * (nu + 5.0) * s_n * s_n
        p_z = s_z * inner
        p_nz = s_z * (1.0 - 2.0 * s) + s_nz * inner - 2.0 * (nu + 5.0) * s_n * s_z
        return q1 * big_p + q * p_n, q2 * big_p + 2.0 * q1 * p_n + q * p_nn, q1 * p_z + q * p_nz

    return h_shape


@register_scaled_form("hyvarinen", D.StudentT, LikelabStudentT)
def _hyvarinen_student_t(dist: D.StudentT) -> ScaledForm:
    """h = (ν+1)((ν+3)z² - 2ν)/(ν + z²)² (:func:`_t_like_h`), with its ν-derivatives
    (:func:`_t_like_shape`): df may be free."""
    nu = dist.df
    return ScaledForm(-2.0, dist.loc, dist.scale, _t_like_h(nu), "df", _t_like_shape(nu))


@register_scaled_form("hyvarinen", D.Cauchy)
def _hyvarinen_cauchy(dist: D.Cauchy) -> ScaledForm:
    """The Student-t's h at ν = 1: 2(4z² - 2)/(1 + z²)²."""
    return ScaledForm(-2.0, dist.loc, dist.scale, _t_like_h(1.0))
