r"""The Hyvärinen score: a proper scoring rule that never needs the normalising constant.

.. math:: S(F, y) = 2\, \partial_y^2 \log f(y) + \big(\partial_y \log f(y)\big)^2

(Hyvärinen 2005, JMLR 6:695-709, the score-matching objective; Parry, Dawid & Lauritzen 2012,
Ann. Statist. 40:561-592; Dawid & Musio 2014, Metron 72:169-183). It depends on the forecast only
through the first two derivatives of :math:`\log f` at the observation, so it is *local of order
2* (not local in the order-0 sense of the log score, which is the only proper local rule of order
0), and a constant factor in :math:`f` cancels. It is strictly proper relative to the smooth
densities whose :math:`f \, \partial_y \log f` vanishes at the ends of the support (the boundary
term of Hyvärinen's integration by parts); where that fails, properness fails with it:

- Exponential forecasts: :math:`S = \lambda^2` whatever y is, minimised by λ → 0;
- a Gamma truth with shape α <= 2 (:math:`f \, \partial_y \log f = f'` does not vanish at 0);

Two forecasts are refused because the pointwise formula is not their score at all:

- uniform: its log-density is flat with jumps, so the formula gives 0 for every observation,
  inside the support or not;
- Laplace: :math:`\partial_y^2 \log f = -(2/b)\,\delta(y - \mu)`, a point mass at the kink that
  a pointwise derivative (autograd included) cannot see; the formula would give
  :math:`S = 1/b^2` for every observation, minimised by b → ∞, an artefact of the formula rather
  than a property of the score (``likelab.properness.check_density`` found it).

Closed forms of :math:`\partial_y \log f` and :math:`\partial_y^2 \log f` are used for the
forecasts that have simple ones (normal, Student-t, Cauchy, logistic, gamma, exponential; see
:func:`register_hyvarinen`); every other forecast is differentiated by autograd with respect to
``y`` (``create_graph=True``). Either way the result stays differentiable with respect to the
forecast's parameters (and to ``y``), to any order. The closed forms matter for speed: an
M-estimator's sandwich (``likelab.asymptotics``) differentiates the score twice more in the
parameters, which through autograd's two y-derivatives is a fourth-order graph.

Heavy tails: torch's Cauchy and Student-t log-densities form :math:`\log(1 + z^2/\nu)` from
:math:`z^2`, which overflows for :math:`|z| > 10^{154}`; the value survives (``log1p(inf) = inf``
is the right limit there), but the derivatives of order two and up are ``0 * inf = nan``. The
score differentiates twice in y, and a Newton step in the parameters twice more, so
expectations by quadrature under a heavy-tailed truth, whose nodes reach :math:`10^{300}`, came
out with ``nan`` Hessians. Their closed form is therefore written in :math:`1/w` beyond
:math:`|w| = 1` (:func:`_t_like`), and the autograd path (kept as the reference of the tests)
takes their log-density from
:func:`~likelab.objectives._special._log1p_square`, :math:`\log(1 + w^2) = 2 \log|w| +
\log(1 + w^{-2})` for :math:`|w| > 1`; either way the derivatives of every order are finite at
every finite w.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import distributions as D

from likelab.errors import UnsupportedError
from likelab.families.distributions import Logistic
from likelab.families.distributions import StudentT as LikelabStudentT
from likelab.objectives._special import _log1p_square
from likelab.objectives.base import Properties, check_observations, register_objective

__all__ = ["hyvarinen_loss", "hyvarinen_score", "register_hyvarinen"]

ScoreFn = Callable[[D.Distribution, torch.Tensor], torch.Tensor]
_CLOSED_FORMS: dict[type, ScoreFn] = {}

# Continuous forecasts for which the pointwise score is degenerate, with the reason.
_REFUSED: dict[type, str] = {
    D.Uniform: (
        "the Hyvärinen score needs a log-density that is twice differentiable and whose density "
        "vanishes smoothly at the ends of the support; the uniform log-density is flat with "
        "jumps, so the score would be 0 for every observation. Use log or crps instead"
    ),
    D.Laplace: (
        "the Hyvärinen score needs a log-density that is twice differentiable; the Laplace "
        "log-density has a kink at its location, whose second derivative is a point mass that a "
        "pointwise score cannot see (it would give 1/scale² for every observation, minimised by "
        "scale → ∞). Use log or crps instead"
    ),
}


def _check_forecast(dist: D.Distribution) -> None:
    if not isinstance(dist, D.Distribution):
        raise UnsupportedError(
            f"the forecast must be a torch.distributions.Distribution, got {type(dist).__name__}"
        )
    name = type(dist).__name__
    if tuple(dist.event_shape) != ():
        raise UnsupportedError(
            f"the Hyvärinen score is implemented for univariate forecasts; {name} has event shape "
            f"{tuple(dist.event_shape)} (the multivariate score needs the Laplacian of log f)"
        )
    try:
        support = dist.support
    except NotImplementedError:
        support = None
    if isinstance(dist, D.Categorical) or (support is not None and support.is_discrete):
        raise UnsupportedError(
            f"the Hyvärinen score needs a differentiable density, and {name} is a discrete "
            "forecast (its probabilities are not differentiable in y); use log, brier or crps"
        )
    for cls in type(dist).__mro__:
        reason = _REFUSED.get(cls)
        if reason is not None:
            raise UnsupportedError(f"{name} forecast: {reason}")


def _log_density(dist: D.Distribution, y: torch.Tensor) -> torch.Tensor:
    """``dist.log_prob(y)``, with the heavy-tailed forecasts' ``log(1 + z²/ν)`` computed by
    :func:`_log1p_square` (see the module docstring); the normalising constants are left out,
    since the score does not depend on them."""
    log_prob = type(dist).log_prob  # a subclass that redefines it has a density of its own
    if log_prob in (D.StudentT.log_prob, LikelabStudentT.log_prob):
        df = dist.df
        return -0.5 * (df + 1) * _log1p_square((y - dist.loc) / (dist.scale * df.sqrt()))
    if log_prob is D.Cauchy.log_prob:
        return -_log1p_square((y - dist.loc) / dist.scale)
    return dist.log_prob(y)


def register_hyvarinen(dist_type: type) -> Callable[[ScoreFn], ScoreFn]:
    r"""Register a closed form ``fn(dist, y) -> Tensor`` of the Hyvärinen score
    :math:`2\,\partial_y^2 \log f(y) + (\partial_y \log f(y))^2` for ``dist_type``.

    ``fn`` returns one score per observation, shape ``broadcast(dist.batch_shape, y.shape)``,
    written in elementwise torch operations (so that it is differentiable in the parameters and
    in ``y`` to any order). It is also used for subclasses of ``dist_type`` that keep its
    ``log_prob``; a subclass that redefines ``log_prob`` may have another density, and is
    differentiated by autograd instead (unless registered itself).
    """

    def decorate(fn: ScoreFn) -> ScoreFn:
        _CLOSED_FORMS[dist_type] = fn
        return fn

    return decorate


def _closed_form(dist: D.Distribution) -> ScoreFn | None:
    """The closed form registered for ``type(dist)``, or for its nearest registered base class
    if ``type(dist)`` inherits that class's ``log_prob``; else ``None``."""
    cls = type(dist)
    for base in cls.__mro__:
        fn = _CLOSED_FORMS.get(base)
        if fn is not None:
            return fn if base is cls or cls.log_prob is base.log_prob else None
    return None


@register_hyvarinen(D.Normal)
def _normal(dist: D.Normal, y: torch.Tensor) -> torch.Tensor:
    r"""(z² - 2)/σ², z = (y - μ)/σ: :math:`\partial_y \log f = -z/\sigma`,
    :math:`\partial_y^2 \log f = -1/\sigma^2` (Hyvärinen 2005, sec. 2.2)."""
    z = (y - dist.loc) / dist.scale
    return (z * z - 2.0) / (dist.scale * dist.scale)


def _t_like(
    r: torch.Tensor, nu: torch.Tensor | float, scale: torch.Tensor, root_nu: torch.Tensor | float
) -> torch.Tensor:
    r"""The score of :math:`\log f = c - \tfrac{\nu+1}{2}\log(1 + w^2)`, :math:`r = y - \mu`,
    :math:`w = r/(\sigma\sqrt\nu)` (``root_nu`` = :math:`\sqrt\nu`):

    .. math:: \partial_y \log f = -\frac{(\nu+1)\, w}{\sigma\sqrt\nu\,(1 + w^2)}, \quad
              \partial_y^2 \log f = -\frac{(\nu+1)(1 - w^2)}{\sigma^2\nu\,(1 + w^2)^2}, \quad
              S = \frac{\nu+1}{\sigma^2\nu}\,\frac{(\nu+3) w^2 - 2}{(1 + w^2)^2}.

    For :math:`|w| > 1` it is written in :math:`u = 1/r` and :math:`v = 1/w = \sigma\sqrt\nu\,u`
    as :math:`(\nu+1)\, u^2 (\nu + 3 - 2v^2)/(1 + v^2)^2`: :math:`w^2` would overflow beyond
    :math:`|w| \sim 10^{154}`, and there σ enters through v alone, so that the σ-derivatives,
    of relative size :math:`v^2` there, are not the difference of two terms of size 1 (as they
    would be through :math:`(\nu+1)/(\sigma^2\nu) \cdot v^2`). Each branch is fed only its own
    inputs, so derivatives of every order stay finite at every finite y.
    """
    w = r / (scale * root_nu)
    big = w.abs() > 1
    w_small = torch.where(big, torch.zeros_like(w), w)
    u = 1.0 / torch.where(big, r, torch.ones_like(r))
    v = scale * root_nu * u
    w2, v2 = w_small * w_small, v * v
    far = (nu + 1.0) * u * u * ((nu + 3.0) - 2.0 * v2) / (1.0 + v2) ** 2
    near = (nu + 1.0) / (nu * scale * scale) * ((nu + 3.0) * w2 - 2.0) / (1.0 + w2) ** 2
    return torch.where(big, far, near)


@register_hyvarinen(D.StudentT)
@register_hyvarinen(LikelabStudentT)  # same density, more accurate normalising constant
def _student_t(dist: D.StudentT, y: torch.Tensor) -> torch.Tensor:
    """Student-t: :func:`_t_like` with ν = df."""
    return _t_like(y - dist.loc, dist.df, dist.scale, dist.df.sqrt())


@register_hyvarinen(D.Cauchy)
def _cauchy(dist: D.Cauchy, y: torch.Tensor) -> torch.Tensor:
    """Cauchy: :func:`_t_like` with ν = 1, (2/σ²)(4z² - 2)/(1 + z²)²."""
    return _t_like(y - dist.loc, 1.0, dist.scale, 1.0)


@register_hyvarinen(Logistic)
def _logistic(dist: Logistic, y: torch.Tensor) -> torch.Tensor:
    r"""(1 - 8 p q)/s², p = σ(z), q = σ(-z), z = (y - μ)/s.

    :math:`\log f = 2\log\sigma(z) - z - \log s`: :math:`\partial_z \log f = q - p`,
    :math:`\partial_z^2 \log f = -2pq`, so :math:`s^2 S = (q - p)^2 - 4pq = 1 - 8pq`
    (p + q = 1). Both sigmoids are taken directly, so pq keeps its relative accuracy in
    the tails, where it is :math:`\approx e^{-|z|}`.
    """
    z = (y - dist.loc) / dist.scale
    return (1.0 - 8.0 * torch.sigmoid(z) * torch.sigmoid(-z)) / (dist.scale * dist.scale)


@register_hyvarinen(D.Gamma)
def _gamma(dist: D.Gamma, y: torch.Tensor) -> torch.Tensor:
    r""":math:`\partial_y \log f = (\alpha - 1)/y - \beta`,
    :math:`\partial_y^2 \log f = -(\alpha - 1)/y^2`. At y <= 0 (outside the support) these
    are the same formulas torch's log-density gives (nan or inf at y = 0)."""
    a1 = dist.concentration - 1.0
    d1 = a1 / y - dist.rate
    return d1 * d1 - 2.0 * a1 / (y * y)


@register_hyvarinen(D.Exponential)
def _exponential(dist: D.Exponential, y: torch.Tensor) -> torch.Tensor:
    r"""λ² whatever y is: :math:`\log f = \log\lambda - \lambda y` is linear in y."""
    rate = dist.rate
    return (rate * rate).expand(torch.broadcast_shapes(tuple(y.shape), tuple(rate.shape)))


def hyvarinen_score(dist: D.Distribution, y: torch.Tensor) -> torch.Tensor:
    r""":math:`2\,\partial_y^2 \log f(y) + (\partial_y \log f(y))^2`, one value per observation.

    Closed forms where registered (:func:`register_hyvarinen`), else autograd. The derivatives
    are elementwise: with independent observations,
    :math:`\partial \sum_i \log f_i(y_i) / \partial y_j = \partial_{y_j} \log f_j(y_j)`, so one
    backward pass of ``log_prob(y).sum()`` gives them all, and a second pass of the sum of those
    gives the second derivatives. ``y`` is first expanded to the full broadcast shape so that no
    derivative is summed over a broadcast axis. The result is differentiable in the parameters
    (for fitting) and in ``y``, to any order, whenever they require grad; when nothing does (or
    grad mode is off) it is returned without a graph.
    """
    _check_forecast(dist)
    if not isinstance(y, torch.Tensor) or not y.is_floating_point():
        y = check_observations(dist, y)  # lists, arrays, integers: a tensor in the forecast's dtype
    fn = _closed_form(dist)
    if fn is None:
        return _autograd_score(dist, y)
    torch.broadcast_shapes(tuple(y.shape), tuple(dist.batch_shape))  # same error as autograd's
    if dist._validate_args:  # as log_prob would: y inside the support
        dist._validate_sample(y.detach())
    # a graph exactly when y or a parameter requires grad and grad mode is on; the dtype is y's
    # (that of the derivatives in y)
    return fn(dist, y).to(y.dtype)


def _autograd_score(dist: D.Distribution, y: torch.Tensor) -> torch.Tensor:
    """:func:`hyvarinen_score` by autograd: two derivatives of the log-density in ``y``."""
    shape = torch.broadcast_shapes(tuple(y.shape), tuple(dist.batch_shape))
    # Keep the graph only if the caller can differentiate: y or a parameter requires grad (the
    # parameters are seen through a plain forward log_prob) and grad mode is on.
    keep_graph = torch.is_grad_enabled() and (
        y.requires_grad or dist.log_prob(y.detach()).requires_grad
    )
    if y.requires_grad:
        y_var = y.expand(shape).clone()  # a node of its own: derivatives w.r.t. it are ∂/∂y only
    else:
        y_var = y.detach().expand(shape).clone().requires_grad_(True)
    with torch.enable_grad():
        log_f = _log_density(dist, y_var)
        (d1,) = torch.autograd.grad(log_f.sum(), y_var, create_graph=True)
        if d1.requires_grad:
            (d2,) = torch.autograd.grad(d1.sum(), y_var, create_graph=keep_graph, allow_unused=True)
        else:  # log f linear in y (and no parameter requires grad): ∂² log f = 0
            d2 = None
    if d2 is None:
        d2 = torch.zeros_like(d1)
    score = 2.0 * d2 + d1 * d1
    return score if keep_graph else score.detach()


@register_objective(
    "hyvarinen",
    formula="S(F, y) = 2 ∂²_y log f(y) + (∂_y log f(y))²   (local of order 2: it depends on f "
    "through log f and its first two derivatives at y; the normalising constant cancels)",
    reference="Hyvärinen (2005), Estimation of non-normalized statistical models by score "
    "matching, JMLR 6:695-709; Parry, Dawid & Lauritzen (2012), Proper local scoring rules, Ann. "
    "Statist. 40:561-592; Dawid & Musio (2014), Theory and applications of proper scoring rules, "
    "Metron 72:169-183",
    properties=Properties(proper=True, strictly_proper=True, local=False, robust=False),
    kind="hyvarinen",
    summary="Hyvärinen (score-matching) score: strictly proper for smooth densities that vanish "
    "at the ends of their support, and free of the normalising constant.",
)
def hyvarinen_loss(dist: D.Distribution, y: torch.Tensor) -> torch.Tensor:
    """2 ∂²_y log f(y) + (∂_y log f(y))², by autograd (differentiable in the parameters).

    >>> import torch
    >>> from likelab.objectives import get_objective
    >>> F = torch.distributions.Normal(torch.tensor(0.0), torch.tensor(2.0))
    >>> get_objective("hyvarinen")(F, torch.tensor([0.0, 2.0])).tolist()  # y²/σ⁴ - 2/σ²
    [-0.5, -0.25]
    """
    return hyvarinen_score(dist, y)
