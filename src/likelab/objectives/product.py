r"""The raw product of likelihoods, computed the naive way on purpose.

:math:`-\prod_i f(y_i)` is the seed's ``l_batch = l1 * l2 * l3`` negated into a loss. It has
the same minimiser as the log loss in exact arithmetic, but in floating point the product of n
numbers below one underflows to a subnormal and then to exactly zero once n passes a few dozen
(float32) or a few hundred (float64); its gradient vanishes with it. It is kept to show that, not
for use: fitting with it is refused.
"""

from __future__ import annotations

import torch
from torch.distributions import Distribution

from likelab.objectives.base import Properties, register_objective

__all__ = ["likelihood_factors", "product_risk"]


def likelihood_factors(dist: Distribution, y: torch.Tensor) -> torch.Tensor:
    """f(y_i): the per-observation likelihoods whose product is the joint likelihood."""
    return dist.log_prob(y).exp()


def product_risk(dist: Distribution, y: torch.Tensor, *, dim: int = -1) -> torch.Tensor:
    """-∏ f(y_i) along ``dim``, multiplied out in the forecast's dtype (underflows on purpose)."""
    return -likelihood_factors(dist, y).prod(dim=dim)


register_objective(
    "product",
    formula="R(F, y_1..y_n) = -prod_i f(y_i)   (batch-level; computed naively)",
    reference="Fisher (1922), On the mathematical foundations of theoretical statistics, "
    "Phil. Trans. R. Soc. A 222:309-368 (the likelihood); the naive product underflows: "
    "Goldberg (1991), What every computer scientist should know about floating-point arithmetic",
    properties=Properties(
        proper=None, strictly_proper=None, local=True, robust=False, demonstration=True
    ),
    kind="batch",
    risk=product_risk,
    aliases=("joint",),
    summary="The joint likelihood itself (negated): same optimum as log in exact arithmetic, "
    "underflows in floating point. Demonstration only.",
)(likelihood_factors)
