r"""Integral scoring rules: the loss depends on :math:`f(y)` *and* on :math:`\int f^k`.

``quadratic`` (aliases ``brier``, ``l2e``), ``spherical``, ``pseudospherical``, ``power``,
``dpd`` (density power divergence) and ``gamma`` (gamma-divergence). All are in loss orientation
(lower is better) and all are strictly proper relative to the forecasts for which the integral
they need is finite (Gneiting & Raftery, 2007, JASA 102:359-378, sec. 4.1 for densities; sec. 3
for the categorical case, where :math:`\int f^k` is the sum :math:`\sum_j p_j^k`). None is local:
the penalty :math:`\int f^k` looks at the whole forecast, which is what lets these rules stay
proper while bounding the influence of a single observation (the robustness their literature
claims).

Numerics. :math:`f(y)^a` is computed as ``exp(a * log_prob(y))`` (no ``pow`` of a density that may
underflow) and the ratios as ``exp(difference of logs)``; :math:`\int f^k` comes from
:func:`likelab.families.power_integral` (closed forms per family, a numerical fallback otherwise).
Everything is differentiable in the forecast's parameters and in ``y``.

Infinite integrals. Where :math:`\int f^k = \infty` the rule is not defined for that forecast.
Among the built-in families this happens for a gamma density with :math:`k(\alpha - 1) + 1 \le 0`
(e.g. concentration 0.3 and ``quadratic``); a Student-t needs :math:`k(\nu + 1) \le 1` and a
Cauchy :math:`k \le 1/2`, which the exponents used here (:math:`k > 1`) never reach. The value is
then reported honestly, never clamped: ``+inf`` for the difference rules (``quadratic``,
``power``, ``dpd``: a finite term minus an infinite one) and ``nan`` for the ratio rules
(``spherical``, ``pseudospherical``, ``gamma``), whose arithmetic limit (the worst possible score)
would otherwise pass silently for a number.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution

from likelab.families import power_integral
from likelab.objectives.affine import AffineForm, register_affine_form
from likelab.objectives.base import Hyper, Properties, gt, register_objective
from likelab.objectives.forms import ExpLinear

__all__ = [
    "dpd_loss",
    "gamma_loss",
    "power_loss",
    "pseudospherical_loss",
    "quadratic_loss",
    "spherical_loss",
]

_GR = "Gneiting & Raftery (2007), Strictly proper scoring rules, prediction, and estimation, JASA "
_GR += "102:359-378"

# Strictly proper relative to the forecasts with a finite ∫f^k; non-local; proposed as robust.
_INTEGRAL_PROPERTIES = Properties(proper=True, strictly_proper=True, local=False, robust=True)


def _log_power_integral(dist: Distribution, k: float) -> torch.Tensor:
    """log ∫ f^k (log Σ_j p_j^k for discrete forecasts); ``+inf`` where the integral diverges."""
    return torch.log(power_integral(dist, k))


def _of_log_integral_form(psi: ExpLinear, k: float, of_log_integral) -> AffineForm:
    """The :class:`AffineForm` whose coefficients are ``of_log_integral(log ∫ f^k)``."""

    def coefficients(dist: Distribution) -> tuple[torch.Tensor, torch.Tensor]:
        return of_log_integral(_log_power_integral(dist, k))

    return AffineForm(psi, coefficients, k, of_log_integral)


def _nan_where_infinite(value: torch.Tensor, log_integral: torch.Tensor) -> torch.Tensor:
    """``value``, with ``nan`` wherever the power integral it was divided by is infinite.

    A ``torch.where`` without a data-dependent branch: no host synchronisation on accelerators.
    """
    return torch.where(log_integral == math.inf, math.nan, value)


@register_objective(
    "quadratic",
    formula="S(F, y) = ∫ f² - 2 f(y)   (Categorical: Σ_j p_j² - 2 p_y = Brier score - 1)",
    reference=f"{_GR}, sec. 4.1 (quadratic score) and sec. 3 (Brier score, categorical); "
    "Brier (1950), Mon. Weather Rev. 78:1-3; Scott (2001), Parametric statistical modeling by "
    "minimum integrated square error (L2E), Technometrics 43:274-285",
    properties=_INTEGRAL_PROPERTIES,
    kind="integral",
    aliases=("brier", "l2e"),
    summary="Quadratic score: the Brier score less 1 on classes, the L2E criterion on densities.",
)
def quadratic_loss(dist: Distribution, y: torch.Tensor) -> torch.Tensor:
    r"""Quadratic score :math:`S(F, y) = \int f^2 - 2 f(y)`.

    Gneiting & Raftery (2007) sec. 4.1 (``QS``, here negated into a loss). On a Categorical it is
    :math:`\sum_j p_j^2 - 2 p_y = \sum_j (p_j - 1\{j = y\})^2 - 1`, the Brier (1950) score less one.
    Its empirical mean is Scott's (2001) L2E criterion, an unbiased estimate (up to the constant
    :math:`\int g^2`) of the integrated squared error :math:`\int (f - g)^2` to the data's
    density ``g``. ``+inf`` where :math:`\int f^2` diverges.
    """
    return power_integral(dist, 2.0) - 2.0 * dist.log_prob(y).exp()


@register_affine_form("quadratic")
def _quadratic_form() -> AffineForm:
    """A = ∫f², C = -2, ψ = f(y)."""

    def of_log_integral(log_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.exp(log_i), torch.full_like(log_i, -2.0)

    return _of_log_integral_form(ExpLinear(coef=1.0, rate=1.0), 2.0, of_log_integral)


@register_objective(
    "spherical",
    formula="S(F, y) = -f(y) / (∫ f²)^(1/2)",
    reference=f"{_GR}, sec. 4.1 (spherical score, the pseudospherical score at alpha = 2) and "
    "sec. 3 (categorical); Good (1971), comment on Buehler, in Foundations of Statistical "
    "Inference, pp. 337-339",
    properties=_INTEGRAL_PROPERTIES,
    kind="integral",
    summary="Spherical score: the likelihood divided by the L2 norm of the forecast.",
)
def spherical_loss(dist: Distribution, y: torch.Tensor) -> torch.Tensor:
    r"""Spherical score :math:`S(F, y) = -f(y) / \|f\|_2 = -f(y) / (\int f^2)^{1/2}`.

    Gneiting & Raftery (2007) sec. 4.1 (``SphS``, negated). Computed as
    :math:`-\exp(\log f(y) - \tfrac12 \log \int f^2)`; ``nan`` where :math:`\int f^2 = \infty`.
    """
    log_i = _log_power_integral(dist, 2.0)
    value = -torch.exp(dist.log_prob(y) - 0.5 * log_i)
    return _nan_where_infinite(value, log_i)


@register_affine_form("spherical")
def _spherical_form() -> AffineForm:
    """A = 0, C = -(∫f²)^(-1/2) (nan where the integral diverges), ψ = f(y)."""

    def of_log_integral(log_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros_like(log_i), _nan_where_infinite(-torch.exp(-0.5 * log_i), log_i)

    return _of_log_integral_form(ExpLinear(coef=1.0, rate=1.0), 2.0, of_log_integral)


def _pseudospherical(dist: Distribution, y: torch.Tensor, gamma: float) -> torch.Tensor:
    """-f(y)^{γ-1} / (∫f^γ)^{(γ-1)/γ}, with nan where ∫f^γ diverges."""
    log_i = _log_power_integral(dist, gamma)
    value = -torch.exp((gamma - 1.0) * (dist.log_prob(y) - log_i / gamma))
    return _nan_where_infinite(value, log_i)


@register_objective(
    "pseudospherical",
    formula="S(F, y) = -f(y)^(gamma-1) / (∫ f^gamma)^((gamma-1)/gamma),   gamma > 1",
    reference=f"{_GR}, sec. 4.1 (pseudospherical score, their alpha is our gamma) and sec. 3; "
    "Good (1971), comment on Buehler, in Foundations of Statistical Inference, pp. 337-339",
    properties=_INTEGRAL_PROPERTIES,
    kind="integral",
    hypers=(Hyper("gamma", 3.0, gt(1.0), "gamma > 1"),),
    summary="Pseudospherical score: f(y)^(γ-1) over the L_γ norm of f to the power γ - 1.",
)
def pseudospherical_loss(dist: Distribution, y: torch.Tensor, *, gamma: float) -> torch.Tensor:
    r"""Pseudospherical score :math:`S(F, y) = -f(y)^{\gamma-1} / \|f\|_\gamma^{\gamma-1}`.

    :math:`\|f\|_\gamma^{\gamma-1} = (\int f^\gamma)^{(\gamma-1)/\gamma}`; Gneiting & Raftery
    (2007) sec. 4.1 (``PseudoS`` with their :math:`\alpha = \gamma`, negated), strictly proper for
    :math:`\gamma > 1` relative to the forecasts in :math:`L_\gamma`. ``gamma = 2`` is the
    spherical score; the default ``gamma = 3`` is the first integer exponent that gives a rule
    distinct from ``spherical`` (which is registered on its own); the price is that
    :math:`\int f^3` needs a gamma forecast's concentration above 2/3 (every other family here
    has :math:`\int f^3 < \infty`). Computed as
    :math:`-\exp((\gamma - 1)(\log f(y) - \gamma^{-1} \log \int f^\gamma))`; ``nan`` where
    :math:`\int f^\gamma = \infty`.
    """
    return _pseudospherical(dist, y, gamma)


@register_affine_form("pseudospherical")
def _pseudospherical_form(*, gamma: float) -> AffineForm:
    """A = 0, C = -(∫f^γ)^(-(γ-1)/γ) (nan where the integral diverges), ψ = f(y)^(γ-1)."""

    def of_log_integral(log_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = -torch.exp(-(gamma - 1.0) / gamma * log_i)
        return torch.zeros_like(log_i), _nan_where_infinite(c, log_i)

    return _of_log_integral_form(ExpLinear(coef=1.0, rate=gamma - 1.0), gamma, of_log_integral)


@register_objective(
    "power",
    formula="S(F, y) = (alpha - 1) ∫ f^alpha - alpha f(y)^(alpha-1),   alpha > 1",
    reference="Dawid & Musio (2014), Theory and applications of proper scoring rules, Metron "
    f"72:169-183 (the Tsallis score); {_GR}, sec. 4.1 (alpha = 2: the quadratic score); equal to "
    "(alpha - 1) times the density power divergence score of Basu, Harris, Hjort & Jones (1998), "
    "Biometrika 85:549-559, with beta = alpha - 1",
    properties=_INTEGRAL_PROPERTIES,
    kind="integral",
    hypers=(Hyper("alpha", 2.0, gt(1.0), "alpha > 1"),),
    summary="Power score: quadratic at alpha = 2, (alpha - 1) times dpd with beta = alpha - 1.",
)
def power_loss(dist: Distribution, y: torch.Tensor, *, alpha: float) -> torch.Tensor:
    r"""Power score :math:`S(F, y) = (\alpha - 1) \int f^\alpha - \alpha f(y)^{\alpha - 1}`.

    The Tsallis score of Dawid & Musio (2014); strictly proper for :math:`\alpha > 1` relative
    to :math:`L_\alpha`: it is the rule built from the strictly convex :math:`G(p) = \int p^\alpha`
    by Gneiting & Raftery's (2007) sec. 2.1 construction. At :math:`\alpha = 2` it is the
    quadratic score; in general it equals :math:`\beta` times the ``dpd`` loss at
    :math:`\beta = \alpha - 1` (Basu et al., 1998). ``+inf`` where :math:`\int f^\alpha` diverges.
    """
    return (alpha - 1.0) * power_integral(dist, alpha) - alpha * torch.exp(
        (alpha - 1.0) * dist.log_prob(y)
    )


@register_affine_form("power")
def _power_form(*, alpha: float) -> AffineForm:
    """A = (α - 1) ∫f^α, C = -α, ψ = f(y)^(α-1)."""

    def of_log_integral(log_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (alpha - 1.0) * torch.exp(log_i), torch.full_like(log_i, -alpha)

    form = ExpLinear(coef=1.0, rate=alpha - 1.0)
    return _of_log_integral_form(form, alpha, of_log_integral)


@register_objective(
    "dpd",
    formula="S(F, y) = ∫ f^(1+beta) - (1 + 1/beta) f(y)^beta,   beta > 0",
    reference="Basu, Harris, Hjort & Jones (1998), Robust and efficient estimation by minimising "
    "a density power divergence, Biometrika 85:549-559 (their d_beta without the term in "
    "g^(1+beta)); strictly proper as 1/beta times the power (Tsallis) score of Dawid & Musio "
    "(2014), Metron 72:169-183",
    properties=_INTEGRAL_PROPERTIES,
    kind="integral",
    hypers=(Hyper("beta", 0.5, gt(0.0), "beta > 0"),),
    summary="Density power divergence loss: -log f as beta -> 0 (up to constants), L2E at 1.",
)
def dpd_loss(dist: Distribution, y: torch.Tensor, *, beta: float) -> torch.Tensor:
    r"""Density power divergence loss :math:`S(F, y) = \int f^{1+\beta} - (1 + 1/\beta) f(y)^\beta`.

    Basu, Harris, Hjort & Jones (1998): the divergence
    :math:`d_\beta(g, f) = \int \{f^{1+\beta} - (1 + 1/\beta) g f^\beta + \beta^{-1} g^{1+\beta}\}`
    without the term free of ``f``, with :math:`\int g f^\beta` replaced by its empirical mean. It
    is exactly :math:`1/\beta` times the power score at :math:`\alpha = 1 + \beta`, hence strictly
    proper; :math:`\beta = 1` is the quadratic score. ``+inf`` where :math:`\int f^{1+\beta}`
    diverges.
    """
    return power_integral(dist, 1.0 + beta) - (1.0 + 1.0 / beta) * torch.exp(
        beta * dist.log_prob(y)
    )


@register_affine_form("dpd")
def _dpd_form(*, beta: float) -> AffineForm:
    """A = ∫f^(1+β), C = -(1 + 1/β), ψ = f(y)^β."""

    def of_log_integral(log_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.exp(log_i), torch.full_like(log_i, -(1.0 + 1.0 / beta))

    return _of_log_integral_form(ExpLinear(coef=1.0, rate=beta), 1.0 + beta, of_log_integral)


@register_objective(
    "gamma",
    formula="S(F, y) = (1/gamma) [1 - f(y)^gamma / (∫ f^(1+gamma))^(gamma/(1+gamma))],   gamma > 0",
    reference="Fujisawa & Eguchi (2008), Robust parameter estimation with a small bias against "
    "heavy contamination, J. Multivariate Anal. 99:2053-2081; a positive affine map of the "
    f"pseudospherical score with exponent 1 + gamma ({_GR}, sec. 4.1)",
    properties=_INTEGRAL_PROPERTIES,
    kind="integral",
    hypers=(Hyper("gamma", 0.5, gt(0.0), "gamma > 0"),),
    summary="Gamma-divergence loss: -log f(y) as gamma -> 0, robust to heavy contamination.",
)
def gamma_loss(dist: Distribution, y: torch.Tensor, *, gamma: float) -> torch.Tensor:
    r"""Gamma-divergence loss :math:`S = \gamma^{-1}[1 - f(y)^\gamma / c_\gamma(F)]`.

    :math:`c_\gamma(F) = (\int f^{1+\gamma})^{\gamma/(1+\gamma)}`; Fujisawa & Eguchi (2008).
    Per observation this is
    :math:`(1 + S_{\mathrm{ps}}) / \gamma` where :math:`S_{\mathrm{ps}}` is the pseudospherical
    loss with exponent :math:`1 + \gamma`: a positive affine transform, so strictly proper
    relative to :math:`L_{1+\gamma}`. As :math:`\gamma \to 0` it tends to :math:`-\log f(y)`.
    Its empirical minimiser is the gamma-estimator: Fujisawa & Eguchi minimise
    :math:`-\gamma^{-1} \log \big(n^{-1} \sum_i f(y_i)^\gamma / c_\gamma(F)\big)`,
    a decreasing function of the mean of the ratios, hence an increasing function of the mean of
    this loss; both have the same minimiser. Computed as :math:`-\mathrm{expm1}(x) / \gamma`,
    :math:`x = \gamma \log f(y) - \tfrac{\gamma}{1+\gamma} \log \int f^{1+\gamma}`, accurate for
    small :math:`\gamma`; ``nan`` where :math:`\int f^{1+\gamma} = \infty`.
    """
    log_i = _log_power_integral(dist, 1.0 + gamma)
    x = gamma * dist.log_prob(y) - (gamma / (1.0 + gamma)) * log_i
    return _nan_where_infinite(-torch.expm1(x) / gamma, log_i)


@register_affine_form("gamma")
def _gamma_form(*, gamma: float) -> AffineForm:
    """With κ = γ/(1+γ) log ∫f^(1+γ): A = -expm1(-κ)/γ, C = -e^(-κ)/γ, ψ = expm1(γ log f(y)),
    so that A + Cψ = -expm1(γ log f(y) - κ)/γ, both terms of order log f for small γ (nan where
    the integral diverges)."""

    def of_log_integral(log_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        kappa = (gamma / (1.0 + gamma)) * log_i
        a = -torch.expm1(-kappa) / gamma
        c = -torch.exp(-kappa) / gamma
        return _nan_where_infinite(a, log_i), _nan_where_infinite(c, log_i)

    psi = ExpLinear(coef=1.0, rate=gamma, minus_one=True)
    return _of_log_integral_form(psi, 1.0 + gamma, of_log_integral)
