r"""Closed forms of local rules' φ, as data: what a compiled kernel needs to serve every rule.

A local rule is S = φ(ℓ), ℓ = log f(y). The built-in ones share one form, :class:`ExpLinear`
(all but ``focal``, which has its own, :class:`Focal`); so does the local part f(y)^c of every
integral rule (Gneiting & Raftery 2007, JASA 102:359-378, sec. 4.1). :func:`phi_form` gives an
objective's form, or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["ExpLinear", "Focal", "focal_terms", "phi_form", "register_phi_form"]


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


def focal_terms(ell: torch.Tensor, gamma: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""φ, φ', φ'' of the focal loss on a density, :math:`\varphi(\ell) = -m^\gamma\ell`,
    :math:`m = (1 - e^\ell)_+` (Lin et al. 2017, ICCV; a density above 1 is 'certain': weight 0),
    for γ > 0 (a float, or a tensor inside a compiled kernel). Below ℓ = 0, with p = e^ℓ and
    m = -expm1(ℓ): :math:`\varphi' = m^{\gamma-1}(\gamma p\ell - m)`,
    :math:`\varphi'' = \gamma p\, m^{\gamma-1}(\ell(1 - \gamma p)/m + 2)`; above, all 0."""
    below = ell < 0
    lb = torch.where(below, ell, torch.full_like(ell, -1.0))  # any ℓ < 0 where unused
    p = lb.exp()
    m = -torch.expm1(lb)
    w1 = m ** (gamma - 1.0)
    phi = -(w1 * m) * lb
    d1 = w1 * (gamma * p * lb - m)
    d2 = gamma * p * w1 * (lb * (1.0 - gamma * p) / m + 2.0)
    zero = torch.zeros_like(ell)
    return torch.where(below, phi, zero), torch.where(below, d1, zero), torch.where(below, d2, zero)


@dataclass(frozen=True)
class Focal:
    """φ(ℓ) = -(1 - e^ℓ)_+^γ ℓ, γ > 0 (:func:`focal_terms`); callable as a :data:`PhiFn`. Its
    γ is data, so one compiled kernel per family serves every γ."""

    gamma: float

    def __call__(self, ell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return focal_terms(ell, self.gamma)


_FORMS: dict[str, Callable[..., ExpLinear | Focal]] = {}


def register_phi_form(name: str):
    """Register ``form(**hyper) -> ExpLinear | Focal`` for the objective ``name``; it must equal
    the objective's φ (tested for every registered name)."""

    def decorate(fn: Callable[..., ExpLinear | Focal]) -> Callable[..., ExpLinear | Focal]:
        _FORMS[name] = fn
        return fn

    return decorate


def phi_form(objective: Any) -> ExpLinear | Focal | None:
    """The form (:class:`ExpLinear`, :class:`Focal`) of a built-in local rule's φ, or ``None`` (no
    such form, or a user objective, whose φ is its own code)."""
    if getattr(objective, "user", False):
        return None
    fn = _FORMS.get(objective.name)
    return None if fn is None else fn(**dict(objective.hyper))
