r"""Finite mixtures of univariate torch distributions of possibly different types.

.. math:: f(y) = \sum_{j=1}^J w_j f_j(y), \qquad w_j \ge 0, \ \sum_j w_j = 1.

``torch.distributions.MixtureSameFamily`` needs every component to be one batched distribution of
a single type; contamination models such as ``0.9 N(0, 1) + 0.1 Cauchy(0, 10)`` or
``0.95 N(0, 1) + 0.05 U(-10, 10)`` do not fit that mould. :class:`Mixture` takes a list of
components instead. Reference for mixtures in general: McLachlan & Peel (2000), *Finite Mixture
Models*, ch. 1.

``∫ f^k`` of a mixture has no closed form; :func:`likelab.families.power_integral` computes it
with the numerical fallback, which integrates the mixture component by component
(:mod:`likelab.families.quadrature`).

>>> import torch
>>> from torch.distributions import Normal
>>> m = Mixture([0.9, 0.1], [Normal(0.0, 1.0), Normal(8.0, 1.0)])
>>> round(float(m.mean), 6)
0.8
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch.distributions import Categorical, Distribution, constraints

from likelab.errors import ParameterError

__all__ = ["Mixture", "PointMass", "inside_point", "support_bounds"]


class Mixture(Distribution):
    r"""The finite mixture :math:`\sum_j w_j F_j` of univariate distributions.

    Args:
        weights: mixture weights, shape ``(J,)`` or ``(*batch, J)``; non-negative, summing to 1
            (to within ``1e-6``, or ``1e-9`` in float64; they are then renormalised exactly).
            Zero weights are allowed (``eps = 0`` contamination).
        components: ``J`` distributions with ``event_shape == ()``, all continuous or all
            discrete, of any types and of batch shapes that broadcast with each other and with
            ``weights.shape[:-1]``.

    ``log_prob`` is :math:`\log\sum_j \exp(\log w_j + \log f_j(y))` (``logsumexp``), where
    :math:`\log f_j(y) = -\infty` outside component ``j``'s support (torch distributions built
    with ``validate_args=False`` do not check this themselves). ``cdf`` is
    :math:`\sum_j w_j F_j(y)` (components must implement ``cdf``); ``mean`` and ``variance``
    follow from the law of total expectation / variance and are ``nan``/``inf`` where a component
    with positive weight has none.

    ``support``: for continuous components, the real line if any component lives on the whole
    real line; otherwise the smallest interval or half-line containing every component's support
    (gaps between supports, as in a mixture of two separated uniforms, have density zero). For
    discrete components, the smallest integer interval containing every component's support.
    """

    arg_constraints: ClassVar[dict] = {}
    has_rsample = False

    def __init__(
        self,
        weights: Any,
        components: Sequence[Distribution],
        validate_args: bool | None = None,
    ) -> None:
        components = list(components)
        if not components:
            raise ParameterError("a mixture needs at least one component")
        for j, comp in enumerate(components):
            if not isinstance(comp, Distribution):
                raise ParameterError(
                    f"mixture component {j} must be a torch Distribution, got {type(comp).__name__}"
                )
            if comp.event_shape != torch.Size():
                raise ParameterError(
                    f"mixture component {j} ({type(comp).__name__}) is not univariate: "
                    f"event_shape {tuple(comp.event_shape)}"
                )
        kinds = {bool(comp.support.is_discrete) for comp in components}
        if len(kinds) > 1:
            raise ParameterError(
                "a mixture cannot combine discrete and continuous components (a density and a "
                "probability mass function do not add up to either)"
            )
        dtype, device = _dtype_device(components)
        try:
            w = torch.as_tensor(weights, dtype=dtype, device=device)
        except (TypeError, ValueError, RuntimeError):
            raise ParameterError(
                f"mixture weights must be numbers (a list or tensor), got {weights!r}"
            ) from None
        if w.dim() == 0 or w.shape[-1] != len(components):
            raise ParameterError(
                f"mixture weights must have last axis of length {len(components)} (one per "
                f"component), got shape {tuple(w.shape)}"
            )
        if not torch.isfinite(w).all() or (w < 0).any():
            raise ParameterError(f"mixture weights must be finite and non-negative, got {_show(w)}")
        tol = 1e-9 if dtype == torch.float64 else 1e-6
        total = w.sum(-1)
        if ((total - 1).abs() > tol).any():
            raise ParameterError(
                f"mixture weights must sum to 1 (within {tol:g}), got sums {_show(total)}"
            )
        try:
            batch_shape = torch.broadcast_shapes(
                w.shape[:-1], *[comp.batch_shape for comp in components]
            )
        except RuntimeError:
            shapes = [tuple(w.shape[:-1])] + [tuple(c.batch_shape) for c in components]
            raise ParameterError(
                f"mixture weights and components have batch shapes that do not broadcast: {shapes}"
            ) from None
        self.weights = w / total.unsqueeze(-1)
        self.components = components
        self._discrete = kinds == {True}
        super().__init__(batch_shape, validate_args=validate_args)

    # ------------------------------------------------------------------ structure
    @property
    def num_components(self) -> int:
        """The number of components ``J``."""
        return len(self.components)

    @property
    def log_weights(self) -> torch.Tensor:
        """``log w``, shape ``(*batch, J)`` (``-inf`` for zero weights)."""
        return torch.log(self.weights)

    def __repr__(self) -> str:
        comps = ", ".join(type(c).__name__ for c in self.components)
        return f"Mixture(weights: {tuple(self.weights.shape)}, components: [{comps}])"

    @property
    def support(self) -> constraints.Constraint:  # type: ignore[override]
        """The smallest interval (or integer interval) containing every component's support."""
        lows, highs = [], []
        for comp in self.components:
            lo, hi = support_bounds(
                comp.support, dtype=self.weights.dtype, device=self.weights.device
            )
            lows.append(lo)
            highs.append(hi)
        lo = _reduce(lows, torch.minimum)
        hi = _reduce(highs, torch.maximum)
        if self._discrete:
            if bool(torch.isinf(hi).any()):
                return constraints._IntegerGreaterThan(_plain(lo))
            return constraints.integer_interval(_plain(lo), _plain(hi))
        lo_inf, hi_inf = bool(torch.isinf(lo).any()), bool(torch.isinf(hi).any())
        if lo_inf and hi_inf:
            return constraints.real
        if hi_inf:
            return constraints.greater_than_eq(_plain(lo))
        if lo_inf:
            return constraints.less_than(_plain(hi))
        return constraints.interval(_plain(lo), _plain(hi))

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        new = self._get_checked_instance(Mixture, _instance)
        new.weights = self.weights.expand(*batch_shape, self.num_components)
        new.components = [c.expand(batch_shape) for c in self.components]
        new._discrete = self._discrete
        super(Mixture, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    # ------------------------------------------------------------------ densities
    def component_log_probs(self, value: torch.Tensor) -> torch.Tensor:
        """``log f_j(value)`` for every component, stacked on a new last axis (``-inf`` outside
        component ``j``'s support)."""
        value = torch.as_tensor(value, dtype=self.weights.dtype, device=self.weights.device)
        lps = [masked_log_prob(comp, value) for comp in self.components]
        return torch.stack(torch.broadcast_tensors(*lps), dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        r""":math:`\log f(y) = \operatorname{logsumexp}_j(\log w_j + \log f_j(y))`."""
        if self._validate_args:
            self._validate_sample(value)
        return torch.logsumexp(self.component_log_probs(value) + self.log_weights, dim=-1)

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        r""":math:`F(y) = \sum_j w_j F_j(y)`, with :math:`F_j = 0` below and 1 above component
        ``j``'s support. Raises ``NotImplementedError`` if a component has no ``cdf``."""
        value = torch.as_tensor(value, dtype=self.weights.dtype, device=self.weights.device)
        cdfs = []
        for comp in self.components:
            lo, hi = support_bounds(comp.support, dtype=value.dtype, device=value.device)
            inside = (value >= lo) & (value <= hi)
            safe = torch.where(inside, value, inside_point(comp.support, value.dtype, value.device))
            cdf = comp.cdf(safe)
            cdfs.append(torch.where(inside, cdf, (value > hi).to(cdf.dtype)))
        stacked = torch.stack(torch.broadcast_tensors(*cdfs), dim=-1)
        return (stacked * self.weights).sum(-1)

    # ------------------------------------------------------------------ moments
    @property
    def mean(self) -> torch.Tensor:
        r""":math:`\mu = \sum_j w_j \mu_j` (terms with :math:`w_j = 0` dropped)."""
        return _weighted_sum(self.weights, [c.mean for c in self.components])

    @property
    def variance(self) -> torch.Tensor:
        r""":math:`\sum_j w_j (\sigma_j^2 + (\mu_j - \mu)^2)` (law of total variance)."""
        mu = self.mean
        terms = [c.variance + (c.mean - mu) ** 2 for c in self.components]
        return _weighted_sum(self.weights, terms)

    # ------------------------------------------------------------------ sampling
    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """Draw the component index from ``Categorical(weights)``, then that component's value.

        Uses the torch global RNG (``torch.manual_seed`` makes it reproducible). Every component is
        sampled at every position and the indexed one kept, so the stream consumed does not depend
        on the drawn indices. Discrete components give floating-point counts/labels.
        """
        sample_shape = torch.Size(sample_shape)
        with torch.no_grad():
            index = Categorical(probs=self.weights.expand(*self.batch_shape, -1)).sample(
                sample_shape
            )
            draws = [
                c.expand(self.batch_shape).sample(sample_shape).to(self.weights.dtype)
                for c in self.components
            ]
            stacked = torch.stack(draws, dim=-1)
            return stacked.gather(-1, index.unsqueeze(-1)).squeeze(-1)


class PointMass(Distribution):
    r"""The point mass (Dirac measure) :math:`\delta_{x_0}`: all its mass at the one point
    ``loc``, the limit of Huber's gross-error contamination (Huber 1964, Ann. Math. Statist.
    35:73-101; Hampel et al. 1986, *Robust Statistics*, sec. 2.1: the influence function is the
    derivative in the direction of :math:`\delta_x`).

    An atom has no density with respect to Lebesgue measure, so an expected score under a truth
    with atoms is a sum over the atoms plus an integral over the rest:
    :math:`E_{(1-\varepsilon)P + \varepsilon\delta_{x_0}} S(Q, Y) = (1-\varepsilon)\,E_P S(Q, Y)
    + \varepsilon\, S(Q, x_0)` (:mod:`likelab.properness.expected` adds the atom's term
    exactly; it never integrates it).

    Args:
        loc: the point :math:`x_0` (a finite number; batch shape ``()`` or any shape).
        discrete: the kind of mixture it sits in. ``True``: its support is the integer interval
            ``{x_0}`` (``loc`` must be an integer) and ``log_prob`` is its probability mass
            function, 0 at :math:`x_0` and :math:`-\infty` elsewhere, so that the exact sums of
            a discrete truth count it like any other integer mass. ``False`` (default): it
            sits among continuous components, its support is ``[x_0, x_0]`` and ``log_prob`` is
            :math:`-\infty` everywhere, the Lebesgue density of its (empty) absolutely
            continuous part, so that a :class:`Mixture`'s ``log_prob`` is the density of the
            continuous part of the truth.

    ``mean`` is :math:`x_0`, ``variance`` 0, ``cdf(y)`` is :math:`1[y \ge x_0]`, ``icdf`` is
    :math:`x_0`, ``sample`` returns :math:`x_0`.

    >>> import torch
    >>> d = PointMass(torch.tensor(8.0, dtype=torch.float64))
    >>> float(d.mean), float(d.variance), d.cdf(torch.tensor([7.0, 8.0])).tolist()
    (8.0, 0.0, [0.0, 1.0])
    """

    arg_constraints: ClassVar[dict] = {}
    has_rsample = False

    def __init__(self, loc: Any, *, discrete: bool = False, validate_args: bool | None = None):
        try:
            x0 = torch.as_tensor(loc)
        except (TypeError, ValueError, RuntimeError):
            raise ParameterError(f"a point mass needs a number, got {loc!r}") from None
        if not x0.is_floating_point():
            x0 = x0.to(torch.get_default_dtype())
        if not bool(torch.isfinite(x0).all()):
            raise ParameterError(f"a point mass needs a finite location, got {_show(x0)}")
        if discrete and not bool((x0 == x0.round()).all()):
            raise ParameterError(
                f"a point mass among discrete components must sit at an integer, got {_show(x0)}"
            )
        self.loc = x0
        self.discrete = bool(discrete)
        super().__init__(x0.shape, validate_args=validate_args)

    @property
    def support(self) -> constraints.Constraint:  # type: ignore[override]
        x0 = _plain(self.loc)
        if self.discrete:
            return constraints.integer_interval(x0, x0)
        return constraints.interval(x0, x0)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        new = self._get_checked_instance(PointMass, _instance)
        new.loc = self.loc.expand(batch_shape)
        new.discrete = self.discrete
        super(PointMass, new).__init__(batch_shape, validate_args=False)
        return new

    def __repr__(self) -> str:
        kind = "discrete" if self.discrete else "continuous"
        return f"PointMass(loc: {_show(self.loc)}, {kind})"

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """The pmf (discrete) or the Lebesgue density of the continuous part (``-inf``)."""
        value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        at = value == self.loc
        if not self.discrete:
            at = torch.zeros_like(at)
        zero = torch.zeros((), dtype=self.loc.dtype, device=self.loc.device)
        return torch.where(at, zero, torch.full_like(zero, -math.inf))

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        return (value >= self.loc).to(self.loc.dtype)

    def icdf(self, value: torch.Tensor) -> torch.Tensor:
        value = torch.as_tensor(value, dtype=self.loc.dtype, device=self.loc.device)
        return torch.broadcast_tensors(self.loc, value)[0].clone()

    @property
    def mean(self) -> torch.Tensor:
        return self.loc

    @property
    def mode(self) -> torch.Tensor:
        return self.loc

    @property
    def variance(self) -> torch.Tensor:
        return torch.zeros_like(self.loc)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape
        return self.loc.expand(shape).clone()


# ---------------------------------------------------------------------- support helpers
def support_bounds(
    support: constraints.Constraint, *, dtype: torch.dtype, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The closed hull ``[lo, hi]`` of a univariate torch support (``±inf`` where unbounded).

    Raises ``NotImplementedError`` for a support it does not recognise.
    """
    inf = math.inf

    def t(x):
        return torch.as_tensor(x, dtype=dtype, device=device)

    if isinstance(support, constraints._Real):
        return t(-inf), t(inf)
    if isinstance(support, constraints._Boolean):
        return t(0.0), t(1.0)
    if isinstance(
        support,
        (constraints._GreaterThan, constraints._GreaterThanEq, constraints._IntegerGreaterThan),
    ):
        return t(support.lower_bound), t(inf)
    if isinstance(support, (constraints._LessThan, constraints._IntegerLessThan)):
        return t(-inf), t(support.upper_bound)
    if isinstance(
        support,
        (constraints._Interval, constraints._HalfOpenInterval, constraints._IntegerInterval),
    ):
        return t(support.lower_bound), t(support.upper_bound)
    raise NotImplementedError(f"unrecognised support {support!r}")


def inside_point(support: constraints.Constraint, dtype: torch.dtype, device=None) -> torch.Tensor:
    """A point inside ``support`` (broadcastable against its bounds): the midpoint of an interval,
    one unit inside a half-line, the lower end of an integer range, 0 on the real line."""
    lo, hi = support_bounds(support, dtype=dtype, device=device)
    if support.is_discrete:
        zero = torch.zeros_like(lo)
        return torch.where(torch.isfinite(lo), lo, torch.where(torch.isfinite(hi), hi, zero))
    lo_f, hi_f = torch.isfinite(lo), torch.isfinite(hi)
    zero = torch.zeros((), dtype=dtype, device=device)
    lo0 = torch.where(lo_f, lo, zero)
    hi0 = torch.where(hi_f, hi, zero)
    return torch.where(
        lo_f & hi_f, (lo0 + hi0) / 2, torch.where(lo_f, lo0 + 1, torch.where(hi_f, hi0 - 1, zero))
    )


def masked_log_prob(dist: Distribution, value: torch.Tensor) -> torch.Tensor:
    """``dist.log_prob(value)``, ``-inf`` outside ``dist.support`` and never evaluated there.

    Values outside the support are replaced by :func:`inside_point` before calling ``log_prob``,
    so that distributions that do not check their argument (``validate_args=False``) neither
    return garbage (``Exponential.log_prob(-1)`` is finite) nor fail (``Categorical`` indexes).
    """
    support = dist.support
    if isinstance(support, constraints._Real):
        return dist.log_prob(value)
    ok = support.check(value)
    safe = torch.where(ok, value, inside_point(support, value.dtype, value.device))
    lp = dist.log_prob(safe)
    return torch.where(ok, lp, torch.full_like(lp, -math.inf))


# ---------------------------------------------------------------------- small helpers
def _dtype_device(components: Sequence[Distribution]) -> tuple[torch.dtype, torch.device]:
    for comp in components:
        for value in vars(comp).values():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                return value.dtype, value.device
    return torch.get_default_dtype(), torch.device("cpu")


def _reduce(items: list[torch.Tensor], op) -> torch.Tensor:
    out = items[0]
    for item in items[1:]:
        out = op(out, item)
    return out


def _plain(t: torch.Tensor) -> float | torch.Tensor:
    """A Python float for a 0-d tensor (constraints print nicer), else the tensor."""
    return t.item() if t.dim() == 0 else t


def _weighted_sum(weights: torch.Tensor, values: list[torch.Tensor]) -> torch.Tensor:
    total = None
    for j, v in enumerate(values):
        w = weights[..., j]
        w, v = torch.broadcast_tensors(w, v)
        term = w * torch.where(w > 0, v, torch.zeros_like(v))
        total = term if total is None else total + term
    return total


def _show(t: torch.Tensor) -> str:
    flat = t.flatten()
    head = ", ".join(f"{x:g}" for x in flat[:4].tolist())
    return f"[{head}{', ...' if flat.numel() > 4 else ''}]"
