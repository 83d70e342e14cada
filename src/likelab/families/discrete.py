"""Discrete families: poisson, bernoulli, categorical."""

from __future__ import annotations

import numpy as np
import torch
from torch import distributions as D

from likelab.errors import ParameterError
from likelab.families.base import Family, Param, as_tensor

__all__ = ["Bernoulli", "CategoricalFamily", "Poisson"]


def _integer(y: torch.Tensor) -> torch.Tensor:
    return y == torch.round(y)


class Poisson(Family):
    """Poisson family with mean ``rate``."""

    name = "poisson"
    params = (Param("rate", "positive", "mean"),)
    support = "integers y >= 0"
    discrete = True
    torch_name = "Poisson"

    def _in_support(self, y):
        return (y >= 0) & _integer(y)

    def _build(self, p):
        return D.Poisson(p["rate"], validate_args=False)

    def _sample(self, rng, p, size):
        return rng.poisson(p["rate"], size)

    def _start(self, y):
        m = y.mean(-1)
        return {"rate": torch.where(m > 0, m, torch.full_like(m, 0.5 / y.shape[-1]))}

    def fisher_information(self, **params):
        """Fisher information of the rate: 1/λ."""
        from likelab.families.continuous import _diag_fisher

        return _diag_fisher(self, params, lambda p: {"rate": 1 / p["rate"]})


class Bernoulli(Family):
    """Bernoulli family with success probability ``probs`` (observations 0 or 1)."""

    name = "bernoulli"
    params = (Param("probs", "unit", "P(y = 1)"),)
    support = "y in {0, 1}"
    discrete = True
    torch_name = "Bernoulli"

    def _in_support(self, y):
        return (y == 0) | (y == 1)

    def _build(self, p):
        return D.Bernoulli(probs=p["probs"], validate_args=False)

    def _sample(self, rng, p, size):
        return (rng.random(size) < p["probs"]).astype(np.float64)

    def _start(self, y):
        n = y.shape[-1]
        # Shrink towards 1/2 so that an all-0 or all-1 sample starts inside (0, 1).
        return {"probs": (y.sum(-1) + 0.5) / (n + 1)}

    def fisher_information(self, **params):
        """Fisher information of p: 1/(p(1-p))."""
        from likelab.families.continuous import _diag_fisher

        return _diag_fisher(self, params, lambda p: {"probs": 1 / (p["probs"] * (1 - p["probs"]))})


class CategoricalFamily(Family):
    """Categorical family over classes ``0..K-1`` with probability vector ``probs`` (last axis).

    ``num_classes`` is structural, not a parameter: ``get_family("categorical", num_classes=3)``
    or give ``probs`` (fixed or at evaluation). Unconstrained coordinates are the K - 1 logits
    relative to class 0.
    """

    name = "categorical"
    params = (Param("probs", "simplex", "class probabilities"),)
    support = "integers 0..K-1"
    discrete = True
    torch_name = "Categorical"

    def __init__(self, num_classes: int | float | None = None, **fixed):
        super().__init__(**fixed)
        if num_classes is not None:
            if float(num_classes) != int(num_classes) or int(num_classes) < 2:
                raise ParameterError(
                    f"categorical num_classes must be an integer >= 2, got {num_classes}"
                )
            num_classes = int(num_classes)
            if "probs" in self.fixed and self.fixed["probs"].shape[-1] != num_classes:
                raise ParameterError(
                    f"categorical probs has {self.fixed['probs'].shape[-1]} classes, "
                    f"num_classes says {num_classes}"
                )
        elif "probs" in self.fixed:
            num_classes = int(self.fixed["probs"].shape[-1])
        self.num_classes: int | None = num_classes

    @property
    def spec(self) -> str:
        from likelab._spec import format_spec

        if "probs" in self.fixed or self.num_classes is None:
            return super().spec
        return format_spec(self.name, {"num_classes": self.num_classes})

    def fix(self, **fixed):
        return type(self)(num_classes=self.num_classes, **{**self.fixed, **fixed})

    @property
    def n_free(self) -> int:
        if not self.free:
            return 0
        if self.num_classes is None:
            raise ParameterError("categorical needs num_classes to know its parameter count")
        return self.num_classes - 1

    def _in_support(self, y):
        ok = (y >= 0) & _integer(y)
        if self.num_classes is not None:
            ok &= y < self.num_classes
        return ok

    def _build(self, p):
        return D.Categorical(probs=p["probs"], validate_args=False)

    def _sample(self, rng, p, size):
        probs = np.asarray(p["probs"], dtype=np.float64)
        if probs.ndim != 1:
            raise ParameterError("categorical sampling takes a single probability vector")
        return rng.choice(probs.shape[-1], size=size, p=probs / probs.sum())

    def _start(self, y):
        k = self.num_classes or int(y.max().item()) + 1
        counts = torch.nn.functional.one_hot(y.long(), k).to(y.dtype).sum(-2)
        return {"probs": (counts + 0.5) / (counts.sum(-1, keepdim=True) + 0.5 * k)}

    def to_natural(self, u):
        if not self.free:
            return {}
        return {"probs": torch.softmax(torch.cat([torch.zeros_like(u[..., :1]), u], -1), -1)}


def as_labels(y) -> torch.Tensor:
    """Class labels as a long tensor (for Categorical ``log_prob``)."""
    return as_tensor(y).long()
