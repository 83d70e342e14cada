r"""Rules affine in one local term: :math:`S(F, y) = A(F) + C(F)\,\psi(\log f(y))`.

Every integral rule of :mod:`likelab.objectives.integral` has this form, with
:math:`\psi(\ell) = e^{c\ell} = f(y)^c` (or :math:`e^{c\ell} - 1`, which keeps ``gamma`` accurate
for small :math:`\gamma`) and :math:`A, C` closed forms of the forecast through its power integral
:math:`\int f^k` (Gneiting & Raftery 2007, JASA 102:359-378, sec. 4.1). Written so, a fit needs
per observation only the moments of :math:`\psi` (:func:`likelab.estimate.moments.local_moments`
with the :class:`~likelab.objectives.forms.ExpLinear` ψ); :math:`A` and :math:`C` are functions
of the parameters alone (:mod:`likelab.estimate.structured`).

:func:`affine_form` gives an objective's form, or ``None``; every registered form is tested equal
to its objective's loss, including where the integral diverges (``+inf`` or ``nan``, as the
objective says).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.distributions import Distribution

from likelab.objectives.forms import ExpLinear

__all__ = ["AffineForm", "affine_form", "register_affine_form"]


@dataclass(frozen=True)
class AffineForm:
    r""":math:`S(F, y) = A(F) + C(F)\,\psi(\log f(y))`.

    ``psi`` is the local term (an :class:`ExpLinear` with ``coef = 1``: :math:`e^{c\ell}`, or
    :math:`\operatorname{expm1}(c\ell)` with ``minus_one``); ``coefficients(F) -> (A, C)``, each
    of shape ``F.batch_shape``, differentiable in the forecast's parameters; ``power`` and
    ``of_log_integral``, where given, write them as functions of :math:`\log\int f^k`.
    """

    psi: ExpLinear
    coefficients: Callable[[Distribution], tuple[torch.Tensor, torch.Tensor]]
    #: ``k`` where ``(A, C)`` are functions of ``L = log ∫ f^k`` alone (every built-in form):
    #: ``coefficients(F) == of_log_integral(L)``, so that their derivatives in the parameters
    #: follow by the chain rule from L's closed-form ones
    #: (:func:`likelab.families.integrals.log_power_integral_derivatives`)
    power: float | None = None
    of_log_integral: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None


_FORMS: dict[str, Callable[..., AffineForm]] = {}


def register_affine_form(name: str):
    """Register ``form(**hyper) -> AffineForm`` for the objective ``name``; it must equal the
    objective's loss (tested for every registered name)."""

    def decorate(fn: Callable[..., AffineForm]) -> Callable[..., AffineForm]:
        _FORMS[name] = fn
        return fn

    return decorate


def affine_form(objective: Any) -> AffineForm | None:
    """The :class:`AffineForm` of a built-in rule, or ``None`` (no such form, or a user
    objective)."""
    if getattr(objective, "user", False):
        return None
    fn = _FORMS.get(objective.name)
    return None if fn is None else fn(**dict(objective.hyper))
