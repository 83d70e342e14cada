"""The :class:`Family` base class: a parametric model of the data.

A family maps named natural parameters (``loc``, ``scale``, ...) to a batched
``torch.distributions.Distribution``, and back and forth between the natural parameters and an
unconstrained vector (the space optimisers work in). Parameters may be held fixed at construction
(``get_family("normal", scale=0.1)``); the remaining ones are *free*.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch.distributions import Distribution

from likelab._spec import format_spec
from likelab.errors import DataError, ParameterError, UnknownNameError, UnsupportedError

__all__ = ["Family", "Param", "as_rng", "as_tensor"]

ArrayLike = Any  # float, sequence, numpy array or tensor


@dataclass(frozen=True)
class Param:
    """One natural parameter of a family.

    ``domain`` is one of ``"real"``, ``"positive"``, ``"unit"`` (the closed interval [0, 1]) or
    ``"simplex"`` (a probability vector, last axis). It fixes the bijection to unconstrained space:
    identity, ``log``/``exp``, ``logit``/``sigmoid``, and logits relative to the first class.
    """

    name: str
    domain: str
    description: str


def as_tensor(value: ArrayLike, *, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """``value`` as a floating tensor (float64 unless ``value`` is already a floating tensor)."""
    if isinstance(value, torch.Tensor):
        if dtype is not None and value.dtype != dtype:
            value = value.to(dtype)
        elif not value.is_floating_point():
            value = value.to(torch.get_default_dtype() if dtype is None else dtype)
        return value if device is None else value.to(device)
    return torch.as_tensor(
        np.asarray(value, dtype=np.float64), dtype=dtype or torch.float64, device=device
    )


def as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """``seed`` as a numpy Generator: a Generator as is, ``None`` for fresh entropy, or a
    non-negative integer (numpy's seeds are non-negative; a negative or non-integer seed raises
    :class:`~likelab.errors.ParameterError` instead of numpy's bare ``ValueError``)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool):
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}") from None


class Family(ABC):
    """A parametric family of distributions with some parameters possibly held fixed.

    Subclasses set the class attributes and implement :meth:`_build` (natural parameters to a
    torch distribution), :meth:`_sample` (numpy sampler) and :meth:`_start` (a quick consistent
    estimate used to start optimisers). ``∫ f^k`` of the built distribution is
    :func:`likelab.families.power_integral`.
    """

    name: ClassVar[str]
    params: ClassVar[tuple[Param, ...]]
    support: ClassVar[str]  # human description of the support, e.g. "real line", "y > 0"
    discrete: ClassVar[bool] = False
    torch_name: ClassVar[str] = ""

    def __init__(self, **fixed: ArrayLike) -> None:
        names = self.param_names
        for key in fixed:
            if key not in names:
                raise UnknownNameError(
                    f"family {self.name!r} has no parameter {key!r}; "
                    f"its parameters are: {', '.join(names)}"
                )
        self.fixed: dict[str, torch.Tensor] = {}
        for key, value in fixed.items():
            self.fixed[key] = self._check_param(key, value)
        self._check_joint({**self.fixed})

    # ------------------------------------------------------------------ description
    @property
    def param_names(self) -> tuple[str, ...]:
        """All natural parameter names, in canonical order."""
        return tuple(p.name for p in self.params)

    @property
    def free(self) -> tuple[str, ...]:
        """The names of the parameters not held fixed, in canonical order."""
        return tuple(n for n in self.param_names if n not in self.fixed)

    def param(self, name: str) -> Param:
        """The :class:`Param` called ``name``."""
        for p in self.params:
            if p.name == name:
                return p
        raise UnknownNameError(
            f"family {self.name!r} has no parameter {name!r}; "
            f"its parameters are: {', '.join(self.param_names)}"
        )

    @property
    def spec(self) -> str:
        """The spec string that rebuilds this family, e.g. ``"normal:scale=0.1"``."""
        return format_spec(self.name, {k: _scalar_or_list(v) for k, v in self.fixed.items()})

    def __repr__(self) -> str:
        return f"Family({self.spec!r})"

    def fix(self, **fixed: ArrayLike) -> Family:
        """A copy of this family with more parameters held fixed."""
        return type(self)(**{**self.fixed, **fixed})

    # ------------------------------------------------------------------ distributions
    def distribution(self, **params: ArrayLike) -> Distribution:
        """The batched torch distribution at the given free parameters (natural scale).

        Every free parameter must be given; fixed ones may not be. Values broadcast against each
        other (a grid of ``loc`` of shape ``(G, 1)`` against observations of shape ``(n,)`` gives a
        batch of shape ``(G, n)``).
        """
        for key in params:
            if key not in self.param_names:
                self.param(key)  # raises UnknownNameError
            if key in self.fixed:
                raise ParameterError(
                    f"parameter {key!r} of {self.name!r} is held fixed at "
                    f"{_scalar_or_list(self.fixed[key])}; do not pass it again"
                )
        missing = [n for n in self.free if n not in params]
        if missing:
            raise ParameterError(
                f"family {self.spec!r} needs values for its free parameters: {', '.join(missing)}"
            )
        dtype = _common_dtype(params.values())
        full = {k: self._check_param(k, v, dtype=dtype) for k, v in params.items()}
        device = next((t.device for t in full.values()), None)
        for k, v in self.fixed.items():
            full[k] = v.to(dtype=dtype, device=device) if device is not None else v.to(dtype)
        self._check_joint(full)
        return self._build(full)

    def distribution_unchecked(self, params: Mapping[str, torch.Tensor]) -> Distribution:
        """Like :meth:`distribution` for tensors already known valid (hot loops of optimisers)."""
        full = dict(params)
        ref = next(iter(full.values()), None)
        for k, v in self.fixed.items():
            full[k] = v if ref is None else v.to(dtype=ref.dtype, device=ref.device)
        return self._build(full)

    @abstractmethod
    def _build(self, p: Mapping[str, torch.Tensor]) -> Distribution:
        """Natural parameters (all of them, valid) to the torch distribution."""

    # ------------------------------------------------------------------ unconstrained map
    def to_unconstrained(self, params: Mapping[str, ArrayLike]) -> torch.Tensor:
        """Free natural parameters to one unconstrained vector per batch element (last axis).

        >>> from likelab.families import get_family
        >>> get_family("normal").to_unconstrained({"loc": 1.0, "scale": 1.0}).tolist()
        [1.0, 0.0]
        """
        parts = []
        for name in self.free:
            if name not in params:
                raise ParameterError(f"missing free parameter {name!r} of {self.spec!r}")
            domain = self.param(name).domain
            u = _to_unconstrained(domain, self._check_param(name, params[name]))
            parts.append(u if domain == "simplex" else u.unsqueeze(-1))
        if not parts:
            return torch.zeros(0, dtype=torch.float64)
        batch = torch.broadcast_shapes(*[p.shape[:-1] for p in parts])
        return torch.cat([p.expand(*batch, p.shape[-1]) for p in parts], dim=-1)

    def to_natural(self, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """The inverse of :meth:`to_unconstrained`: unconstrained vectors to free parameters."""
        out: dict[str, torch.Tensor] = {}
        i = 0
        for name in self.free:
            domain = self.param(name).domain
            width = u.shape[-1] - (len(self.free) - 1) if domain == "simplex" else 1
            chunk = u[..., i : i + width]
            out[name] = _to_natural(domain, chunk if domain == "simplex" else chunk[..., 0])
            i += width
        return out

    @property
    def n_free(self) -> int:
        """Length of the unconstrained vector (for ``simplex`` parameters, K - 1 each)."""
        return len(self.free)

    # ------------------------------------------------------------------ data
    def check_data(self, y: ArrayLike) -> torch.Tensor:
        """Observations as a float64 tensor, or a :class:`DataError` naming the first bad one."""
        t = as_tensor(y)
        if t.numel() == 0:
            raise DataError("no observations: the data are empty")
        # a finite sum means finite terms (NaN and ±inf propagate); one that overflows is checked
        if not bool(t.sum().isfinite()) and not bool(torch.isfinite(t).all()):
            idx = _first_index(~torch.isfinite(t))
            raise DataError(f"observation {idx} is {t[idx].item()}: data must be finite")
        if type(self)._in_support is Family._in_support:  # every real number
            return t
        outside = ~self._in_support(t)
        if outside.any():
            idx = _first_index(outside)
            raise DataError(
                f"observation {idx} = {t[idx].item():g} lies outside the support of "
                f"{self.name!r} ({self.support})"
            )
        return t

    def in_support(self, y: ArrayLike) -> torch.Tensor:
        """Elementwise: whether each value lies in the family's support (for some parameters).

        >>> from likelab.families import get_family
        >>> get_family("poisson").in_support([-1.0, 0.0, 2.5, 3.0]).tolist()
        [False, True, False, True]
        """
        return self._in_support(as_tensor(y))

    def _in_support(self, y: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(y, dtype=torch.bool)

    # ------------------------------------------------------------------ sampling
    def sample(
        self,
        size: int | Sequence[int],
        *,
        seed: int | np.random.Generator | None = None,
        **params: ArrayLike,
    ) -> np.ndarray:
        """Draw a float64 array of shape ``size`` from the family at the given parameters.

        ``seed`` is an integer or a ``numpy.random.Generator``; the same seed gives the same
        draws bit for bit. Fixed parameters are taken from the family.

        >>> from likelab.families import get_family
        >>> get_family("normal").sample(3, seed=0, loc=0.0, scale=1.0).shape
        (3,)
        """
        rng = as_rng(seed)
        full = {**{k: v for k, v in self.fixed.items()}, **params}
        missing = [n for n in self.param_names if n not in full]
        if missing:
            raise ParameterError(f"sampling {self.name!r} needs values for: {', '.join(missing)}")
        for k in params:
            self.param(k)
        checked = {k: self._check_param(k, v).numpy() for k, v in full.items()}
        self._check_joint({k: torch.as_tensor(v) for k, v in checked.items()})
        size = (int(size),) if np.isscalar(size) else tuple(int(s) for s in size)
        if any(s < 0 for s in size):
            raise ParameterError(f"sample size must be non-negative, got {size}")
        return np.asarray(self._sample(rng, checked, size), dtype=np.float64)

    @abstractmethod
    def _sample(self, rng: np.random.Generator, p: Mapping[str, np.ndarray], size: tuple) -> Any:
        """Draw ``size`` observations with numpy."""

    # ------------------------------------------------------------------ estimation helpers
    def start(self, y: ArrayLike) -> dict[str, torch.Tensor]:
        """A quick, consistent estimate of the free parameters from data (last axis = samples).

        Used to start optimisers; ``y`` of shape ``(..., n)`` gives parameters of shape ``(...)``.
        """
        t = self.check_data(y)
        est = self._start(t)
        return {k: est[k] for k in self.free}

    @abstractmethod
    def _start(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Moment/quantile estimates of every parameter from ``y`` (last axis = samples)."""

    def fisher_information(self, **params: ArrayLike) -> torch.Tensor:
        """Per-observation Fisher information of the free parameters, shape ``(..., p, p)``.

        Computed as ``E[-∇² log f(Y)]`` where a closed form is known; raises
        :class:`UnsupportedError` otherwise.
        """
        raise UnsupportedError(f"no closed-form Fisher information for {self.name!r}")

    #: ``True`` where the support itself depends on the parameters (the uniform): the density
    #: jumps to 0 at parameter-dependent points, the model is not regular and √n-asymptotics
    #: (sandwich SEs) do not apply to density-based objectives (Smith 1985, Biometrika 72:67-90).
    support_moves: bool = False

    def kinks(self, params: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        r"""Points ``κ(θ)`` in y where ``log f(y; θ)`` is continuous but not differentiable in
        ``θ`` (the Laplace density at its location), as functions of the natural ``params``
        (differentiable, batched like them). Empty for a smooth family.

        There the per-observation score jumps, so the derivative of its *expectation* (the
        sandwich's bread) has a term that the average of pointwise Hessians misses:
        :math:`g(\kappa)\,[\psi(\kappa^-) - \psi(\kappa^+)]\,\partial\kappa/\partial\theta^\top`
        (:mod:`likelab.estimate.sandwich`).
        """
        del params
        return []

    # ------------------------------------------------------------------ validation
    def _check_param(self, name: str, value: ArrayLike, *, dtype=None) -> torch.Tensor:
        p = self.param(name)
        try:
            t = as_tensor(value, dtype=dtype)
        except (TypeError, ValueError):
            raise ParameterError(
                f"{self.name} parameter {name!r} must be a number or an array of numbers, "
                f"got {value!r}"
            ) from None
        if not torch.isfinite(t).all():
            raise ParameterError(f"{self.name} parameter {name!r} must be finite, got {_show(t)}")
        if p.domain == "positive" and not (t > 0).all():
            raise ParameterError(f"{self.name} parameter {name!r} must be > 0, got {_show(t)}")
        if p.domain == "unit" and not ((t >= 0) & (t <= 1)).all():
            raise ParameterError(
                f"{self.name} parameter {name!r} must lie in [0, 1], got {_show(t)}"
            )
        if p.domain == "simplex":
            if t.dim() == 0 or t.shape[-1] < 2:
                raise ParameterError(
                    f"{self.name} parameter {name!r} must be a vector of at least 2 probabilities"
                )
            if not (t >= 0).all() or not torch.allclose(
                t.sum(-1), torch.ones((), dtype=t.dtype), atol=1e-6
            ):
                raise ParameterError(
                    f"{self.name} parameter {name!r} must be non-negative and sum to 1, "
                    f"got {_show(t)}"
                )
        return t

    def _check_joint(self, p: Mapping[str, torch.Tensor]) -> None:  # noqa: B027
        """Constraints between parameters (e.g. uniform ``low < high``); none by default."""


# ---------------------------------------------------------------------- bijections
def _to_unconstrained(domain: str, value: torch.Tensor) -> torch.Tensor:
    if domain == "real":
        return value
    if domain == "positive":
        return torch.log(value)
    if domain == "unit":
        return torch.logit(value)
    if domain == "simplex":
        logp = torch.log(value)
        return logp[..., 1:] - logp[..., :1]
    raise AssertionError(domain)


def _to_natural(domain: str, u: torch.Tensor) -> torch.Tensor:
    if domain == "real":
        return u
    if domain == "positive":
        return torch.exp(u)
    if domain == "unit":
        return torch.sigmoid(u)
    if domain == "simplex":
        zero = torch.zeros_like(u[..., :1])
        return torch.softmax(torch.cat([zero, u], dim=-1), dim=-1)
    raise AssertionError(domain)


# ---------------------------------------------------------------------- small helpers
def _common_dtype(values) -> torch.dtype:
    for v in values:
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v.dtype
    return torch.float64


def _first_index(mask: torch.Tensor) -> tuple[int, ...] | int:
    idx = tuple(int(i) for i in torch.nonzero(mask)[0])
    return idx[0] if len(idx) == 1 else idx


def _show(t: torch.Tensor) -> str:
    if t.numel() == 1:
        return f"{t.item():g}"
    flat = t.flatten()
    head = ", ".join(f"{x:g}" for x in flat[:4].tolist())
    return f"[{head}{', ...' if flat.numel() > 4 else ''}]"


def _scalar_or_list(t: torch.Tensor) -> float | list:
    return t.item() if t.numel() == 1 else t.tolist()
