r"""Closed forms of local rules' φ, as data: what a compiled kernel needs to serve every rule.

A local rule is S = φ(ℓ), ℓ = log f(y). The built-in ones share one form, :class:`ExpLinear`;
so does the local part f(y)^c of every integral rule (Gneiting & Raftery 2007, JASA
102:359-378, sec. 4.1). :func:`phi_form` gives an objective's form, or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["ExpLinear", "phi_form", "register_phi_form"]


@dataclass(frozen=True)
class ExpLinear:
    r"""φ(ℓ) = const + lin·ℓ + coef·E(rate·ℓ), E = ``expm1`` (``minus_one``) or ``exp``.

    The form shared by the built-in local rules (``log``: lin = -1; ``linear``: coef = -1, rate =
    1; ``lq``/``gce``/``mae``: -c·expm1(aℓ)/a) and by the local part ψ = f^c = exp(cℓ) of the
    integral rules, :math:`S = A(\theta) + C(\theta)\,f(y)^c`. Callable as a :data:`PhiFn`;
    its coefficients are data, so one compiled kernel per family serves every such rule.
    """

    const: float = 0.0
    lin: float = 0.0
    coef: float = 0.0
    rate: float = 0.0
    minus_one: bool = False

    def __call__(self, ell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.coef == 0.0:
            one = torch.ones_like(ell)
            return self.const + self.lin * ell, self.lin * one, 0.0 * one
        x = self.rate * ell
        e = torch.exp(x)
        head = torch.expm1(x) if self.minus_one else e
        d1 = self.coef * self.rate * e
        return self.const + self.lin * ell + self.coef * head, self.lin + d1, self.rate * d1


_FORMS: dict[str, Callable[..., ExpLinear]] = {}


def register_phi_form(name: str):
    """Register ``form(**hyper) -> ExpLinear`` for the objective ``name``; it must equal the
    objective's φ (tested for every registered name)."""

    def decorate(fn: Callable[..., ExpLinear]) -> Callable[..., ExpLinear]:
        _FORMS[name] = fn
        return fn

    return decorate


def phi_form(objective: Any) -> ExpLinear | None:
    """The :class:`ExpLinear` form of a built-in local rule's φ, or ``None`` (no such form, or a
    user objective, whose φ is its own code)."""
    if getattr(objective, "user", False):
        return None
    fn = _FORMS.get(objective.name)
    return None if fn is None else fn(**dict(objective.hyper))
