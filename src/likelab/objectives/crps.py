r"""The continuous ranked probability score (CRPS), in closed form per forecast family.

.. math:: \mathrm{CRPS}(F, y) = \int_{-\infty}^{\infty} \big(F(x) - \mathbf 1\{y \le x\}\big)^2 dx
          = \mathbb E_F|X - y| - \tfrac12 \mathbb E_F|X - X'|

(Matheson & Winkler 1976, Management Science 22:1087-1096; Gneiting & Raftery 2007, JASA
102:359-378, sec. 4.2). It is already in loss orientation (lower is better), strictly proper
relative to the forecasts with a finite mean, and *not* local: it rewards probability mass near
the observation, not only the density at it. For a discrete forecast on the integers the integral
is a sum over the steps of :math:`F`.

Closed forms are registered per torch distribution type (a registry walked along the MRO, like
:func:`likelab.families.power_integral`), written in standardised form
:math:`\sigma \cdot \mathrm{crps}_0((y - \mu)/\sigma)` where that helps. Every closed form is
tested against the ``scoringrules`` package and, independently, against quadrature of the defining
integral. Forecasts with no closed form raise :class:`~likelab.errors.UnsupportedError`: the CRPS
is never approximated silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import distributions as D

from likelab.errors import UnsupportedError
from likelab.families.distributions import Logistic
from likelab.objectives._special import (
    _lbeta,
    _log1p_square,
    _per_value,
    gammainc,
    gammaincc,
    student_t_cdf,
)
from likelab.objectives.base import Properties, check_observations, register_objective

__all__ = ["crps", "crps_loss", "register_crps"]

CrpsFn = Callable[[D.Distribution, torch.Tensor], torch.Tensor]
_CLOSED_FORMS: dict[type, CrpsFn] = {}
_UNDEFINED: set[type] = set()  # registered, but only to say why the CRPS does not exist

_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def register_crps(dist_type: type) -> Callable[[CrpsFn], CrpsFn]:
    """Register a closed form ``fn(dist, y) -> Tensor`` of the CRPS for ``dist_type``.

    ``fn`` returns one score per observation, shape ``broadcast(dist.batch_shape, y.shape)``; it
    is also found for subclasses of ``dist_type`` (the registry walks the MRO).
    """

    def decorate(fn: CrpsFn) -> CrpsFn:
        _CLOSED_FORMS[dist_type] = fn
        return fn

    return decorate


def _undefined(dist_type: type, message: str) -> None:
    """Register ``dist_type`` as a forecast whose CRPS is undefined, with the reason."""

    def refuse(dist: D.Distribution, y: torch.Tensor) -> torch.Tensor:
        raise UnsupportedError(message)

    _UNDEFINED.add(dist_type)
    register_crps(dist_type)(refuse)


def crps(dist: D.Distribution, y: torch.Tensor) -> torch.Tensor:
    r""":math:`\int (F(x) - \mathbf 1\{y \le x\})^2 dx`, one value per observation.

    ``y`` is broadcastable against ``dist.batch_shape``; a floating tensor is used as it is (no
    validation: :meth:`Objective.loss <likelab.objectives.Objective.loss>` validates), anything
    else goes through :func:`~likelab.objectives.check_observations`. Uses the closed form
    registered for ``type(dist)`` or its nearest base class. Raises
    :class:`~likelab.errors.UnsupportedError` for forecasts without one.
    """
    if not isinstance(y, torch.Tensor) or not y.is_floating_point():
        y = check_observations(dist, y)
    for cls in type(dist).__mro__:
        fn = _CLOSED_FORMS.get(cls)
        if fn is not None:
            return fn(dist, y)
    supported = sorted(c.__name__ for c in _CLOSED_FORMS if c not in _UNDEFINED)
    raise UnsupportedError(
        f"CRPS has no closed form for {type(dist).__name__} forecasts in likelab (supported: "
        f"{', '.join(supported)}); register one with likelab.objectives.crps.register_crps"
    )


@register_objective(
    "crps",
    formula="S(F, y) = ∫ (F(x) - 1{y <= x})² dx = E|X - y| - ½ E|X - X'|,  X, X' ~ F i.i.d.",
    reference="Matheson & Winkler (1976), Scoring rules for continuous probability "
    "distributions, Management Science 22:1087-1096; Gneiting & Raftery (2007), JASA "
    "102:359-378, sec. 4.2; closed forms: Jordan, Krüger & Lerch (2019), J. Stat. Softw. 90(12)",
    properties=Properties(proper=True, strictly_proper=True, local=False, robust=False),
    kind="crps",
    summary="Continuous ranked probability score: the integrated squared distance between the "
    "forecast CDF and the observation's step function.",
)
def crps_loss(dist: D.Distribution, y: torch.Tensor) -> torch.Tensor:
    """CRPS(F, y) = ∫ (F(x) - 1{y <= x})² dx in closed form (loss orientation: lower is better).

    >>> import torch
    >>> from likelab.objectives import get_objective
    >>> F = torch.distributions.Normal(torch.tensor(0.0), torch.tensor(1.0))
    >>> round(float(get_objective("crps")(F, torch.tensor(0.0))), 6)  # (√2 - 1)/√π
    0.233695
    """
    return crps(dist, y)


# ------------------------------------------------------------------ location-scale families
@register_crps(D.Normal)
def _normal(dist: D.Normal, y: torch.Tensor) -> torch.Tensor:
    r"""σ [z (2Φ(z) - 1) + 2φ(z) - 1/√π], z = (y - μ)/σ.

    Gneiting, Raftery, Westveld & Goldman (2005), Monthly Weather Review 133:1098-1118, eq. 5.
    Here 2Φ(z) - 1 = erf(z/√2).
    """
    z = (y - dist.loc) / dist.scale
    crps0 = (
        z * torch.erf(z * _INV_SQRT_2)
        + 2.0 * _INV_SQRT_2PI * torch.exp(-0.5 * z * z)
        - _INV_SQRT_PI
    )
    return dist.scale * crps0


@register_crps(D.Laplace)
def _laplace(dist: D.Laplace, y: torch.Tensor) -> torch.Tensor:
    """b [|z| + exp(-|z|) - 3/4], z = (y - μ)/b.

    Jordan, Krüger & Lerch (2019), J. Stat. Softw. 90(12), appendix A (Laplace).
    """
    z = (y - dist.loc) / dist.scale
    az = z.abs()
    return dist.scale * (az + torch.exp(-az) - 0.75)


@register_crps(Logistic)
def _logistic(dist: Logistic, y: torch.Tensor) -> torch.Tensor:
    """s [z - 2 log σ(z) - 1], z = (y - μ)/s.

    Jordan, Krüger & Lerch (2019), J. Stat. Softw. 90(12), appendix A (logistic); σ the sigmoid,
    the standard logistic CDF. ``logsigmoid`` is exact for all z (``softplus`` is not: with its
    default threshold it returns x for x > 20, an error of e^-20 ≈ 2e-9).
    """
    z = (y - dist.loc) / dist.scale
    return dist.scale * (z - 2.0 * torch.nn.functional.logsigmoid(z) - 1.0)


def student_t_crps_constants(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log k and c_ν of the Student-t CRPS for ν > 1: k = 2√ν/((ν - 1)B(½, ν/2)),
    c_ν = 2√ν B(½, ν - ½)/((ν - 1)B(½, ν/2)²) (Gneiting & Raftery 2007; Jordan, Krüger &
    Lerch 2019, scoringRules' crps_t)."""
    half = torch.full_like(v, 0.5)
    lb = _lbeta(half, v / 2)
    log_k = math.log(2.0) + 0.5 * torch.log(v) - torch.log(v - 1) - lb
    const = 2.0 * torch.sqrt(v) / (v - 1) * torch.exp(_lbeta(half, v - 0.5) - 2.0 * lb)
    return log_k, const


@register_crps(D.StudentT)
def _student_t(dist: D.StudentT, y: torch.Tensor) -> torch.Tensor:
    r"""σ [z(2F_ν(z) - 1) + 2 f_ν(z)(ν + z²)/(ν - 1) - 2√ν B(½, ν - ½) / ((ν - 1) B(½, ν/2)²)].

    z = (y - μ)/σ; F_ν, f_ν the standard Student-t CDF and density. Jordan, Krüger & Lerch
    (2019), J. Stat. Softw. 90(12), appendix A (t distribution). Finite only for ν > 1 (the mean
    must exist); ``inf`` for ν <= 1. Evaluated as (y - μ)(2F_ν(z) - 1) + σ [k (1 + z²/ν)^{-(ν-1)/2}
    - c_ν], k = 2√ν/((ν - 1) B(½, ν/2)), finite with finite derivatives at every finite y.
    """
    nu, loc, scale = dist.df, dist.loc, dist.scale
    finite = nu > 1
    nus = torch.where(finite, nu, torch.full_like(nu, 2.0))  # stand-in keeps NaN out of grads
    z = (y - loc) / scale

    # Functions of ν alone: once per distinct ν when ν is a fixed parameter broadcast over y.
    log_k, const = _per_value(student_t_crps_constants, nus)
    # 2 f(z)(ν + z²)/(ν - 1) = k (1 + z²/ν)^{-(ν-1)/2}, k = 2√ν / ((ν - 1) B(½, ν/2)), with
    # log(1 + z²/ν) that does not overflow for |z| > 1e154 (z² would: inf · 0 = nan)
    spread = torch.exp(log_k - 0.5 * (nus - 1) * _log1p_square(z / torch.sqrt(nus)))
    # σ z (2F - 1) written as (y - μ)(2F - 1): for |z| → ∞ the score is σ|z| - σ c + o(1), and
    # ∂/∂σ of σ·crps₀(z) would be crps₀ - z crps₀'(z), two numbers ~|z| whose difference is -c
    out = (y - loc) * (2.0 * student_t_cdf(z, nus) - 1.0) + scale * (spread - const)
    return torch.where(finite, out, torch.full_like(out, math.inf))


_undefined(
    D.Cauchy,
    "CRPS is undefined: the Cauchy distribution has no finite mean (E|X - y| = ∞); "
    "use a Student-t forecast with df > 1, or a score such as log",
)


# ------------------------------------------------------------------ bounded / positive support
@register_crps(D.Uniform)
def _uniform(dist: D.Uniform, y: torch.Tensor) -> torch.Tensor:
    r"""(b - a) [|z - F| + F² - F + 1/3], z = (y - a)/(b - a), F = min(max(z, 0), 1).

    Valid for y inside or outside [a, b]. Jordan, Krüger & Lerch (2019), J. Stat. Softw. 90(12),
    appendix A (uniform, without point masses).
    """
    width = dist.high - dist.low
    z = (y - dist.low) / width
    cdf = z.clamp(0.0, 1.0)
    return width * ((z - cdf).abs() + cdf * cdf - cdf + 1.0 / 3.0)


@register_crps(D.Exponential)
def _exponential(dist: D.Exponential, y: torch.Tensor) -> torch.Tensor:
    r"""|y| - 2F(y)/λ + 1/(2λ), F(y) = 1 - e^{-λ y} for y >= 0 and 0 below.

    Jordan, Krüger & Lerch (2019), J. Stat. Softw. 90(12), appendix A (exponential). With
    z = λy: (1/λ)[z + 2 expm1(-z) + ½] for z >= 0 and (1/λ)[½ - z] for z < 0 (the score is
    defined for y < 0 too). Written branch by branch so that the derivative at y = 0, a point
    of the support, is the correct 2F(0) - 1 = -1 (``abs`` would contribute 0 there).
    """
    rate = dist.rate
    z = rate * y
    zp = z.clamp(min=0.0)  # keeps expm1 finite on the unselected side of the where
    return (torch.where(z >= 0, zp + 2.0 * torch.expm1(-zp), -z) + 0.5) / rate


@register_crps(D.Gamma)
def _gamma(dist: D.Gamma, y: torch.Tensor) -> torch.Tensor:
    r"""y(2F_α(y) - 1) - (α/β)(2F_{α+1}(y) - 1) - 1/(β B(½, α)).

    F_α the Gamma(α, rate β) CDF, :math:`F_\alpha(y) = P(\alpha, \beta y)`. Scheuerer & Möller
    (2015), Ann. Appl. Stat. 9:1328-1349, appendix; as given by Jordan, Krüger & Lerch (2019), J.
    Stat. Softw. 90(12), appendix A (gamma). Written as (1/β)[x(2P_α - 1) - α(2P_{α+1} - 1) -
    1/B(½, α)] with x = βy and P(α+1, x) = P(α, x) - x^α e^{-x}/Γ(α+1) (Abramowitz & Stegun
    6.5.21), so one incomplete-gamma evaluation serves both CDFs. P is the
    differentiable :func:`~likelab.objectives._special.gammainc`, so α is trainable. Valid for
    y <= 0 too (both CDFs are 0 there).
    """
    alpha, rate = dist.concentration, dist.rate
    x = rate * y
    positive = x > 0
    xs = torch.where(positive, x, torch.ones_like(x))  # stand-in keeps log(0) out of grads
    p_alpha = torch.where(positive, gammainc(alpha, xs), torch.zeros_like(xs))
    log_term = alpha * torch.log(xs) - xs - torch.lgamma(alpha + 1.0)
    p_alpha1 = p_alpha - torch.where(positive, torch.exp(log_term), torch.zeros_like(xs))
    half = torch.full_like(alpha, 0.5)
    inv_b = torch.exp(-_lbeta(half, alpha))
    return (x * (2.0 * p_alpha - 1.0) - alpha * (2.0 * p_alpha1 - 1.0) - inv_b) / rate


# ------------------------------------------------------------------ discrete forecasts
@register_crps(D.Bernoulli)
def _bernoulli(dist: D.Bernoulli, y: torch.Tensor) -> torch.Tensor:
    r"""(p - y)² for y ∈ {0, 1}: the Brier score of the event.

    F = 1 - p on [0, 1), so :math:`\int_0^1 (1 - p - \mathbf 1\{y \le x\})^2 dx = (p - y)^2`
    (Gneiting & Raftery 2007, sec. 4.2: the CRPS of a binary forecast is the Brier score).
    """
    return (dist.probs - y) ** 2


@register_crps(D.Poisson)
def _poisson(dist: D.Poisson, y: torch.Tensor) -> torch.Tensor:
    r"""(y - λ)(2F_λ(y) - 1) + 2λ f_λ(⌊y⌋) - λ e^{-2λ} (I₀(2λ) + I₁(2λ)).

    F_λ, f_λ the Poisson CDF and pmf; I₀, I₁ modified Bessel functions of the first kind. Wei &
    Held (2014), TEST 23:787-805; Jordan, Krüger & Lerch (2019), J. Stat. Softw. 90(12),
    appendix A (Poisson). Exact (no truncation). The constant term is λ(i0e(2λ) + i1e(2λ)) with
    the exponentially scaled Bessel functions, so it neither overflows nor loses precision for
    large λ. :math:`F_\lambda(y) = Q(\lfloor y \rfloor + 1, \lambda)`, the regularised upper
    incomplete gamma function, from :func:`~likelab.objectives._special.gammaincc`
    (``torch.special.gammaincc`` is off by ~1e-10 relative for shapes around 20-30 in torch
    2.13); its shape argument is an integer and carries no gradient. Holds for real y (piecewise
    linear between integers, with derivative 2F - 1 in y), and for y < 0.
    """
    rate = dist.rate
    k = torch.floor(y).detach()  # piecewise constant: its derivative is 0 everywhere it exists
    k, rate_b = torch.broadcast_tensors(k, rate)
    nonneg = k >= 0
    ks = torch.where(nonneg, k, torch.zeros_like(k))
    cdf = torch.where(nonneg, gammaincc(ks + 1.0, rate_b), torch.zeros_like(k))
    log_pmf = torch.xlogy(ks, rate_b) - rate_b - torch.lgamma(ks + 1.0)  # 0 log 0 = 0
    pmf = torch.where(nonneg, torch.exp(log_pmf), torch.zeros_like(k))
    two_rate = 2.0 * rate
    const = rate * (torch.special.i0e(two_rate) + torch.special.i1e(two_rate))
    return (y - rate) * (2.0 * cdf - 1.0) + 2.0 * rate * pmf - const


_undefined(
    D.Categorical,
    "CRPS needs an ordered (real or integer-valued) outcome, and a Categorical forecast's "
    "classes have no order; use brier (the quadratic score), to which the CRPS reduces for a "
    "binary outcome",
)
