r"""Data-generating processes: the truth that simulations draw from.

A :class:`DataGeneratingProcess` draws reproducible float64 samples with numpy
(``.sample(size, seed)``: the same seed gives the same bits), gives the true distribution as a
float64 torch distribution (``.distribution()``, for properness checks and expected scores) and
names itself with a spec string (``.spec``) that :func:`parse_dgp` reads back:

* ``"normal:loc=0,scale=1"``: a family at fully specified parameters (:class:`FamilyDGP`);
* ``"point:at=8"``: the point mass :math:`\delta_8` (:class:`PointMassDGP`), every draw 8;
* ``"0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1"``: a finite mixture
  (:class:`MixtureDGP`), of which :class:`Contaminated` ``(1 - eps) F + eps G`` is the
  two-component case (Huber 1964, Ann. Math. Statist. 35:73-101: the gross-error model), e.g.
  ``"0.9 normal:loc=0,scale=1 + 0.1 point:at=8"``, gross errors all at 8.

>>> dgp = parse_dgp("0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1")
>>> dgp.sample(4, seed=0).shape
(4,)
>>> round(float(dgp.distribution().mean), 12)
0.8
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch.distributions import Distribution

from likelab._spec import format_spec, parse_spec
from likelab.errors import ParameterError, SpecError, UnknownNameError
from likelab.families.base import Family, as_rng
from likelab.families.mixture import Mixture, PointMass

__all__ = [
    "Contaminated",
    "DataGeneratingProcess",
    "FamilyDGP",
    "MixtureDGP",
    "PointMassDGP",
    "canonical_dgp",
    "contaminated",
    "parse_dgp",
    "split_sample_size",
]

Seed = int | np.random.Generator | None
_WEIGHT_TOL = 1e-9
_PLUS = re.compile(r"\s+\+\s+")
#: The spec name of :class:`PointMassDGP` (``point:at=X``); no family may take it.
POINT = "point"


class DataGeneratingProcess(ABC):
    """A distribution to simulate data from, with its torch twin and its spec string."""

    discrete: bool = False

    @abstractmethod
    def sample(self, size: int | Sequence[int], seed: Seed = None) -> np.ndarray:
        """A float64 array of shape ``size``; the same integer seed gives the same bits.

        ``seed`` may also be a ``numpy.random.Generator``, which is advanced.
        """

    @abstractmethod
    def distribution(self) -> Distribution:
        """The true distribution as a float64 torch distribution (batch shape ``()``)."""

    @property
    @abstractmethod
    def spec(self) -> str:
        """A spec string that :func:`parse_dgp` turns back into an equivalent process."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


class FamilyDGP(DataGeneratingProcess):
    """A :class:`~likelab.families.Family` at fully specified parameters.

    Args:
        family: a family or a family spec string (``"normal:loc=0"``).
        params: values for the parameters the family leaves free. Afterwards no parameter may be
            free, and each must be a scalar (a probability vector for ``categorical``).

    >>> FamilyDGP("normal", {"loc": 0.0, "scale": 2.0}).spec
    'normal:loc=0,scale=2'
    """

    def __init__(self, family: str | Family, params: Mapping[str, Any] | None = None) -> None:
        from likelab.families import get_family

        base = get_family(family)
        fam = base.fix(**dict(params)) if params else base
        if fam.free:
            raise ParameterError(
                f"a data-generating process needs every parameter of {fam.name!r}; missing: "
                f"{', '.join(fam.free)} (e.g. {_example(fam)})"
            )
        for name, value in fam.fixed.items():
            vector = fam.param(name).domain == "simplex"
            if (vector and value.dim() != 1) or (not vector and value.numel() != 1):
                raise ParameterError(
                    f"{fam.name} parameter {name!r} of a data-generating process must be a "
                    f"single {'probability vector' if vector else 'number'}, got shape "
                    f"{tuple(value.shape)}"
                )
        self.family = fam
        self.discrete = fam.discrete

    def sample(self, size: int | Sequence[int], seed: Seed = None) -> np.ndarray:
        """Draws from :meth:`Family.sample` (one numpy stream; see the family's sampler)."""
        return self.family.sample(size, seed=seed)

    def distribution(self) -> Distribution:
        return self.family.distribution()

    @property
    def spec(self) -> str:
        return self.family.spec


class PointMassDGP(DataGeneratingProcess):
    r"""The point mass :math:`\delta_{x_0}`: every draw is ``at`` (spec ``point:at=X``).

    Alone it is a degenerate truth; as a mixture component it is the gross error of Huber's
    model at one point, ``"0.9 normal:loc=0,scale=1 + 0.1 point:at=8"``, whose expected scores
    are exact: :math:`(1-\varepsilon) E_P S(Q, Y) + \varepsilon S(Q, x_0)` (the atom is added,
    not integrated; see :class:`~likelab.families.mixture.PointMass`). Sampling consumes no
    random numbers. It mixes with continuous components, and with discrete ones when ``at`` is
    an integer (:attr:`discrete` is ``None``: it takes the kind of the mixture it is in).

    >>> PointMassDGP(8).spec, PointMassDGP(8).sample(3, seed=1).tolist()
    ('point:at=8', [8.0, 8.0, 8.0])
    """

    discrete = None  # type: ignore[assignment]

    def __init__(self, at: float) -> None:
        if isinstance(at, bool) or not isinstance(at, int | float | np.integer | np.floating):
            raise ParameterError(
                f"a point mass needs a number for its location, got {at!r} (e.g. point:at=8)"
            )
        value = float(at)
        if not math.isfinite(value):
            raise ParameterError(
                f"a point mass needs a finite location, got {at!r} (e.g. point:at=8)"
            )
        self.at = value

    def sample(self, size: int | Sequence[int], seed: Seed = None) -> np.ndarray:
        """``at`` everywhere; ``seed`` is accepted for the common interface and not used."""
        shape = (int(size),) if np.isscalar(size) else tuple(int(s) for s in size)
        if any(s < 0 for s in shape):
            raise ParameterError(f"sample size must be non-negative, got {shape}")
        return np.full(shape, self.at, dtype=np.float64)

    def distribution(self, *, discrete: bool = False) -> PointMass:
        """:class:`~likelab.families.mixture.PointMass` at ``at`` (float64), of the kind
        ``discrete`` (a component of a discrete mixture is its pmf)."""
        return PointMass(np.float64(self.at), discrete=discrete)

    @property
    def spec(self) -> str:
        return format_spec(POINT, {"at": self.at})


class MixtureDGP(DataGeneratingProcess):
    r"""The finite mixture :math:`\sum_j w_j F_j` of data-generating processes.

    Weights are non-negative and sum to 1 within ``1e-9`` (then renormalised exactly); components
    are all discrete or all continuous. Nested mixtures are flattened (weights multiplied).

    Sampling, with ``rng = numpy.random.default_rng(seed)`` (or the Generator given), consumes the
    stream in this exact order:

    1. ``u = rng.random(size)``: one uniform per observation;
    2. for ``j = 1..J`` in order, ``x_j = component_j.sample(size, seed=rng)``: a full-size sample
       from every component, whatever ``u`` is (a point mass draws no random numbers);
    3. observation ``i`` is ``x_j[i]`` for the ``j`` with ``W_{j-1} <= u_i < W_j``
       (``W_j = w_1 + ... + w_j``, ``W_J = 1``).

    So the draws are reproducible bit for bit, and two processes that differ only in their
    weights are coupled: with the same seed they share ``u`` and every ``x_j``.
    """

    def __init__(
        self,
        weights: Sequence[float],
        components: Sequence[DataGeneratingProcess | str],
    ) -> None:
        comps = [parse_dgp(c) if isinstance(c, str) else c for c in components]
        for j, comp in enumerate(comps):
            if not isinstance(comp, DataGeneratingProcess):
                raise ParameterError(
                    f"mixture component {j} must be a DataGeneratingProcess or a spec string, "
                    f"got {type(comp).__name__}"
                )
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or w.shape[0] != len(comps) or not comps:
            raise ParameterError(
                f"a mixture needs one weight per component: {w.size} weights for "
                f"{len(comps)} components"
            )
        _check_weights(w, allow_zero=True)
        flat_w: list[float] = []
        flat_c: list[DataGeneratingProcess] = []
        for wj, comp in zip(w / w.sum(), comps, strict=True):
            if isinstance(comp, MixtureDGP):
                flat_w.extend(float(wj) * comp.weights)
                flat_c.extend(comp.components)
            else:
                flat_w.append(float(wj))
                flat_c.append(comp)
        # a point mass takes the kind of the components it is mixed with
        kinds = {c.discrete for c in flat_c if not isinstance(c, PointMassDGP)}
        if len(kinds) > 1:
            raise ParameterError(
                "a mixture cannot combine discrete and continuous components: "
                + ", ".join(c.spec for c in flat_c)
            )
        self.weights = np.asarray(flat_w, dtype=np.float64)
        self.components = flat_c
        self.discrete = kinds == {True}
        if self.discrete:
            for c in flat_c:
                if isinstance(c, PointMassDGP) and not float(c.at).is_integer():
                    raise ParameterError(
                        f"a point mass mixed with discrete components must sit at an integer, "
                        f"got {c.spec} among " + ", ".join(d.spec for d in flat_c)
                    )

    def sample(self, size: int | Sequence[int], seed: Seed = None) -> np.ndarray:
        rng = as_rng(seed)
        shape = (int(size),) if np.isscalar(size) else tuple(int(s) for s in size)
        if any(s < 0 for s in shape):
            raise ParameterError(f"sample size must be non-negative, got {shape}")
        u = rng.random(shape)
        draws = [comp.sample(shape, seed=rng) for comp in self.components]
        cum = np.cumsum(self.weights)
        cum[-1] = 1.0
        index = np.searchsorted(cum, u, side="right")
        stacked = np.stack([np.asarray(d, dtype=np.float64) for d in draws], axis=-1)
        return np.take_along_axis(stacked, index[..., None], axis=-1)[..., 0]

    def distribution(self) -> Mixture:
        comps = [
            c.distribution(discrete=self.discrete)
            if isinstance(c, PointMassDGP)
            else c.distribution()
            for c in self.components
        ]
        return Mixture(self.weights, comps, validate_args=False)

    @property
    def spec(self) -> str:
        return " + ".join(
            f"{_fmt_weight(w)} {c.spec}" for w, c in zip(self.weights, self.components, strict=True)
        )


class Contaminated(MixtureDGP):
    r"""Huber's gross-error model :math:`(1-\varepsilon) F + \varepsilon G`.

    ``base`` (``F``) and ``outlier`` (``G``) are processes or spec strings, ``0 <= eps <= 1``.
    Sampling follows :class:`MixtureDGP` with weights ``(1 - eps, eps)``: observation ``i`` is an
    outlier iff ``u_i >= 1 - eps``. For a fixed seed the outlier sets are nested as ``eps`` grows
    and the remaining observations keep their values, which makes comparisons across ``eps``
    paired. ``distribution()`` is the :class:`~likelab.families.mixture.Mixture`.
    (With ``eps`` 0 or 1 the spec has a zero weight, which :func:`parse_dgp` does not accept.)

    >>> c = Contaminated("normal:loc=0,scale=1", "normal:loc=8,scale=1", 0.1)
    >>> c.spec
    '0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1'
    """

    def __init__(
        self, base: DataGeneratingProcess | str, outlier: DataGeneratingProcess | str, eps: float
    ) -> None:
        try:
            eps = float(eps)
        except (TypeError, ValueError):
            raise ParameterError(f"contamination eps must be a number, got {eps!r}") from None
        if not (0.0 <= eps <= 1.0):
            raise ParameterError(f"contamination eps must lie in [0, 1], got {eps:g}")
        super().__init__([1.0 - eps, eps], [base, outlier])
        self.eps = eps


def contaminated(
    base: DataGeneratingProcess | str, outlier: DataGeneratingProcess | str, eps: float
) -> Contaminated:
    """``(1 - eps) base + eps outlier``: see :class:`Contaminated`.

    >>> contaminated("normal:loc=0,scale=1", "cauchy:loc=0,scale=10", 0.05).spec
    '0.95 normal:loc=0,scale=1 + 0.05 cauchy:loc=0,scale=10'
    """
    return Contaminated(base, outlier, eps)


def parse_dgp(text: str) -> DataGeneratingProcess:
    """A process from its spec string.

    ``"normal:loc=0,scale=1"`` gives a :class:`FamilyDGP` (a leading weight, if any, must be 1),
    ``"point:at=8"`` a :class:`PointMassDGP`;
    ``"0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1"`` a :class:`MixtureDGP`: components
    separated by ``+`` with whitespace on both sides, each with its weight first; weights must be
    positive and sum to 1 within ``1e-9``. Every parameter of every family must be given; a key
    that is not a parameter (such as the CLI's sample size ``n=``) raises
    :class:`~likelab.errors.UnknownNameError` naming it (see :func:`split_sample_size`).
    """
    _require_str(text)
    stripped = text.strip()
    if not stripped:
        raise SpecError("empty data-generating process spec")
    parts = _PLUS.split(stripped)
    weighted = [_split_weight(part, j, len(parts), text) for j, part in enumerate(parts)]
    if len(weighted) == 1:
        weight, spec = weighted[0]
        if weight is not None and abs(weight - 1.0) > _WEIGHT_TOL:
            raise ParameterError(
                f"a single-component process has weight 1, got {weight:g} in {text!r}"
            )
        return _family_dgp(spec)
    weights = np.asarray([w for w, _ in weighted], dtype=np.float64)
    _check_weights(weights, allow_zero=False, text=text)
    return MixtureDGP(weights, [_family_dgp(spec) for _, spec in weighted])


def split_sample_size(text: str) -> tuple[str, int]:
    """Pull the sample size ``n=`` out of a spec: ``"normal:loc=0,scale=1,n=10"`` gives
    ``("normal:loc=0,scale=1", 10)``.

    For the CLI's ``--simulate``. In a mixture, ``n=`` may be written in any one component
    (conventionally the last). Raises :class:`~likelab.errors.SpecError` if ``n=`` is missing or
    given twice and :class:`~likelab.errors.ParameterError` unless it is a positive integer.

    >>> split_sample_size("0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1,n=50")
    ('0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1', 50)
    """
    _require_str(text)
    parts = _PLUS.split(text.strip())
    n_values: list[float | str] = []
    rebuilt = []
    for j, part in enumerate(parts):
        weight, spec = _split_weight(part, j, len(parts), text, raw=True)
        parsed = parse_spec(spec, kind="data-generating process")
        kwargs = dict(parsed.kwargs)
        if "n" in kwargs:
            n_values.append(kwargs.pop("n"))
        body = format_spec(parsed.name, kwargs)
        rebuilt.append(body if weight is None else f"{weight} {body}")
    if not n_values:
        raise SpecError(
            f"{text!r} has no sample size: add n=..., e.g. 'normal:loc=0,scale=1,n=100'"
        )
    if len(n_values) > 1:
        raise SpecError(f"{text!r} gives the sample size n= more than once")
    n = n_values[0]
    if isinstance(n, str) or not float(n).is_integer() or n < 1:
        raise ParameterError(f"sample size n must be a positive integer, got {n!r} in {text!r}")
    return " + ".join(rebuilt), int(n)


# ---------------------------------------------------------------------- helpers
def _split_weight(
    part: str, j: int, count: int, text: str, *, raw: bool = False
) -> tuple[Any, str]:
    """``"0.9 normal:loc=0"`` -> ``(0.9, "normal:loc=0")``; no number first -> ``(None, part)``.

    With ``raw=True`` the weight is returned as written (a string)."""
    tokens = part.strip().split(None, 1)
    weight: Any = None
    spec = part.strip()
    if tokens:
        try:
            value = float(tokens[0])
        except ValueError:
            value = None
        if value is not None:
            if len(tokens) < 2:
                raise SpecError(f"component {j + 1} of {text!r} is a weight with no family")
            if not math.isfinite(value):
                raise ParameterError(f"weight {tokens[0]!r} in {text!r} is not finite")
            weight, spec = (tokens[0] if raw else value), tokens[1].strip()
    if weight is None and count > 1:
        raise SpecError(
            f"component {j + 1} ({spec!r}) of the mixture {text!r} needs a weight, "
            "e.g. '0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1'"
        )
    return weight, spec


def _family_dgp(spec: str) -> FamilyDGP | PointMassDGP:
    from likelab.families import get_family

    parsed = parse_spec(spec, kind="data-generating process")
    if parsed.name == POINT:
        return _point_dgp(parsed.kwargs, spec)
    try:
        family = get_family(spec)
    except UnknownNameError as err:
        keys = parsed.kwargs
        if "n" in keys:
            raise UnknownNameError(
                f"{err} ('n' is not a parameter of the distribution; a sample size belongs to "
                "the simulation, e.g. the CLI's --simulate normal:loc=0,scale=1,n=10, which "
                "split_sample_size separates)"
            ) from None
        raise UnknownNameError(f"{err}; or point:at=X, a point mass at X") from None
    return FamilyDGP(family)


def _point_dgp(kwargs: Mapping[str, Any], spec: str) -> PointMassDGP:
    """``point:at=X``: exactly one key, ``at``, a finite number."""
    extra = sorted(set(kwargs) - {"at"})
    if extra:
        hint = (
            " ('n' is a sample size, which belongs to the simulation: split_sample_size "
            "separates it)"
            if extra == ["n"]
            else ""
        )
        raise UnknownNameError(
            f"a point mass has one parameter, at (its location): {', '.join(map(repr, extra))} "
            f"in {spec!r} is not one{hint}"
        )
    if "at" not in kwargs:
        raise ParameterError(
            f"a point mass needs its location: {spec!r} has no at= (e.g. point:at=8)"
        )
    return PointMassDGP(kwargs["at"])


def _require_str(text: object) -> None:
    if not isinstance(text, str):
        raise SpecError(
            f"a data-generating process spec must be a string, got {type(text).__name__}"
        )


def _check_weights(w: np.ndarray, *, allow_zero: bool, text: str | None = None) -> None:
    where = f" in {text!r}" if text else ""
    if not np.all(np.isfinite(w)):
        raise ParameterError(f"mixture weights must be finite, got {w.tolist()}{where}")
    bad = (w < 0) if allow_zero else (w <= 0)
    if np.any(bad):
        need = "non-negative" if allow_zero else "positive"
        raise ParameterError(f"mixture weights must be {need}, got {w.tolist()}{where}")
    if abs(w.sum() - 1.0) > _WEIGHT_TOL:
        raise ParameterError(
            f"mixture weights must sum to 1 (within {_WEIGHT_TOL:g}), they sum to "
            f"{float(w.sum())!r}{where}"
        )


def _fmt_weight(w: float) -> str:
    """Shortest repr that round-trips (``0.9``, ``0.30000000000000004``)."""
    text = repr(float(w))
    return text[:-2] if text.endswith(".0") else text


def _example(fam: Family) -> str:
    return format_spec(
        fam.name,
        {
            **{k: v.item() if v.numel() == 1 else v.tolist() for k, v in fam.fixed.items()},
            **{k: 1 for k in fam.free},
        },
    )


def canonical_dgp(spec: str) -> str:
    """A DGP spec with each component's parameters in name order: the same DGP whatever order
    its parameters were written in. (A study store's DGP strings keep the study file's order;
    the points rebuilt from the store's canonical JSON spec have them sorted: this matches them.)

    >>> canonical_dgp("0.9 student_t:loc=0,scale=1,df=3 + 0.1 normal:scale=1,loc=8")
    '0.9 student_t:df=3,loc=0,scale=1 + 0.1 normal:loc=8,scale=1'
    """
    parts = []
    for part in spec.split(" + "):
        head, colon, rest = part.partition(":")
        items = sorted(filter(None, rest.split(",")), key=lambda kv: kv.partition("=")[0])
        parts.append(head + colon + ",".join(items))
    return " + ".join(parts)
