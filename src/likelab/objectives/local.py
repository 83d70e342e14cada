r"""Local scoring rules: the loss depends on the forecast only through :math:`f(y)`.

``log`` (the NLL), ``linear`` (alias ``sum``: the seed's sum of likelihoods), ``lq``, ``gce``,
``mae`` and ``focal``. Each works on any forecast with a ``log_prob``: densities for continuous
families, probabilities for discrete ones and ``Categorical``.
"""

from __future__ import annotations

import torch
from torch.distributions import Distribution

from likelab.objectives.base import Hyper, Properties, gt, in_interval, register_objective
from likelab.objectives.forms import ExpLinear, Focal, focal_terms, register_phi_form

__all__ = ["focal_loss", "gce_loss", "linear_loss", "log_loss", "lq_loss", "mae_loss"]


# φ(ℓ), φ'(ℓ), φ''(ℓ) with ℓ = log f(y): each local rule below is S = φ(ℓ).
def _phi_log(ell):
    one = torch.ones_like(ell)
    return -ell, -one, torch.zeros_like(ell)


def _phi_linear(ell):
    f = ell.exp()
    return -f, -f, -f


def _phi_power(ell, a: float, c: float):
    """S = c (1 - e^{a ℓ}) / a: φ' = -c e^{aℓ}, φ'' = -c a e^{aℓ}."""
    e = torch.exp(a * ell)
    return -c * torch.expm1(a * ell) / a, -c * e, -c * a * e


def _phi_lq(ell, q: float):
    return _phi_log(ell) if q == 1.0 else _phi_power(ell, 1.0 - q, 1.0)


def _phi_gce(ell, q: float):
    return _phi_power(ell, q, 1.0)


def _phi_mae(ell):
    return _phi_power(ell, 1.0, 2.0)


# The same φ's as data (likelab.objectives.forms): -c·expm1(aℓ)/a is coef = -c/a, rate = a.
register_phi_form("log")(lambda: ExpLinear(lin=-1.0))
register_phi_form("linear")(lambda: ExpLinear(coef=-1.0, rate=1.0))
register_phi_form("lq")(
    lambda q: (
        ExpLinear(lin=-1.0)
        if q == 1.0
        else ExpLinear(coef=-1.0 / (1.0 - q), rate=1.0 - q, minus_one=True)
    )
)
register_phi_form("gce")(lambda q: ExpLinear(coef=-1.0 / q, rate=q, minus_one=True))
register_phi_form("mae")(lambda: ExpLinear(coef=-2.0, rate=1.0, minus_one=True))


@register_objective(
    "log",
    phi=_phi_log,
    formula="S(F, y) = -log f(y)",
    reference="Good (1952), Rational decisions, JRSS B 14:107-114; "
    "Gneiting & Raftery (2007), JASA 102:359-378, sec. 4.1",
    properties=Properties(proper=True, strictly_proper=True, local=True, robust=False),
    kind="local",
    aliases=("nll", "logarithmic"),
    logits_risk=lambda logits, y: torch.nn.functional.cross_entropy(logits, y),
    summary="Negative log-likelihood: its mean is minus the log of the product of likelihoods.",
)
def log_loss(dist: Distribution, y: torch.Tensor) -> torch.Tensor:
    """-log f(y): the negative log-likelihood (log score, loss orientation)."""
    return -dist.log_prob(y)


@register_objective(
    "linear",
    phi=_phi_linear,
    formula="S(F, y) = -f(y)",
    reference="Gneiting & Raftery (2007), JASA 102:359-378, sec. 4.1 (the linear score is "
    "improper: it 'encourages over-prediction at the modes')",
    properties=Properties(proper=False, strictly_proper=False, local=True, robust=True),
    kind="local",
    aliases=("sum",),
    summary="Negative likelihood: its mean is minus the seed's sum of likelihoods / n.",
)
def linear_loss(dist: Distribution, y: torch.Tensor) -> torch.Tensor:
    """-f(y): the negated likelihood; its mean is -(1/n) Σ l_i, the seed's 'sum of likelihoods'."""
    return -dist.log_prob(y).exp()


def _lq_properties(q: float) -> Properties:
    return Properties(proper=q == 1.0, strictly_proper=q == 1.0, local=True, robust=q < 1.0)


@register_objective(
    "lq",
    phi=_phi_lq,
    formula="S(F, y) = (1 - f(y)^(1-q)) / (1 - q)   (-log f(y) at q = 1)",
    reference="Ferrari & Yang (2010), Maximum Lq-likelihood estimation, Ann. Statist. 38:753-783",
    properties=_lq_properties,
    kind="local",
    hypers=(Hyper("q", 0.5, gt(0.0), "q > 0"),),
    summary="Lq-likelihood: the Box-Cox transform of f(y); q < 1 downweights unlikely points.",
)
def lq_loss(dist: Distribution, y: torch.Tensor, *, q: float) -> torch.Tensor:
    """Negative Lq-likelihood (1 - f^{1-q})/(1 - q); tends to -log f as q → 1."""
    log_f = dist.log_prob(y)
    if q == 1.0:
        return -log_f
    a = 1.0 - q
    return -torch.expm1(a * log_f) / a


def _gce_properties(q: float) -> Properties:
    return Properties(proper=False, strictly_proper=False, local=True, robust=True)


@register_objective(
    "gce",
    phi=_phi_gce,
    formula="S(F, y) = (1 - f(y)^q) / q",
    reference="Zhang & Sabuncu (2018), Generalized cross entropy loss for training deep neural "
    "networks with noisy labels, NeurIPS",
    properties=_gce_properties,
    kind="local",
    hypers=(Hyper("q", 0.7, in_interval(0.0, 1.0), "0 < q <= 1"),),
    summary="Generalised cross-entropy: -log f as q → 0, (1 - f) = MAE/2 at q = 1.",
)
def gce_loss(dist: Distribution, y: torch.Tensor, *, q: float) -> torch.Tensor:
    """Generalised cross-entropy (1 - f^q)/q, the same loss as ``lq`` at 1 - q."""
    return -torch.expm1(q * dist.log_prob(y)) / q


@register_objective(
    "mae",
    phi=_phi_mae,
    formula="S(F, y) = 2 (1 - f(y))   (= ||e_y - p||_1 for a Categorical forecast)",
    reference="Ghosh, Kumar & Sastry (2017), Robust loss functions under label noise for deep "
    "neural networks, AAAI",
    properties=Properties(proper=False, strictly_proper=False, local=True, robust=True),
    kind="local",
    summary="Mean absolute error between one-hot target and probabilities: 2(1 - f(y)).",
)
def mae_loss(dist: Distribution, y: torch.Tensor) -> torch.Tensor:
    """2 (1 - f(y)): the L1 distance between the one-hot label and a probability vector."""
    return 2.0 * (1.0 - dist.log_prob(y).exp())


def _phi_focal(ell, gamma: float):
    """S = -(1 - f)_+^γ log f (:func:`~likelab.objectives.forms.focal_terms`); γ = 0 is log."""
    return _phi_log(ell) if gamma == 0.0 else focal_terms(ell, gamma)


register_phi_form("focal")(lambda gamma: ExpLinear(lin=-1.0) if gamma == 0.0 else Focal(gamma))


def _focal_properties(gamma: float) -> Properties:
    return Properties(proper=gamma == 0.0, strictly_proper=gamma == 0.0, local=True, robust=False)


@register_objective(
    "focal",
    phi=_phi_focal,
    formula="S(F, y) = -(1 - f(y))_+^gamma log f(y)   (a density f(y) >= 1 counts as certain)",
    reference="Lin, Goyal, Girshick, He & Dollár (2017), Focal loss for dense object detection, "
    "ICCV",
    properties=_focal_properties,
    kind="local",
    hypers=(Hyper("gamma", 2.0, lambda g: g >= 0.0, "gamma >= 0"),),
    summary="Focal loss: log loss down-weighted on confident predictions; gamma = 0 is log.",
)
def focal_loss(dist: Distribution, y: torch.Tensor, *, gamma: float) -> torch.Tensor:
    """-(1 - f)^γ log f. For densities above 1 the weight (1 - f)_+ is 0: the point is 'certain'."""
    log_f = dist.log_prob(y)
    if gamma == 0.0:
        return -log_f
    weight = (-torch.expm1(log_f)).clamp(min=0.0) ** gamma
    return -weight * log_f
