"""Parametric families: torch distributions, unconstrained maps, ``∫ f^k``, samplers.

>>> from likelab.families import get_family
>>> fam = get_family("normal:scale=0.1")
>>> fam.free
('loc',)
>>> round(float(fam.distribution(loc=0.0).log_prob(0.0).exp()), 4)
3.9894
"""

from __future__ import annotations

from likelab._spec import parse_spec
from likelab.errors import LikelabError, ParameterError, UnknownNameError
from likelab.families.base import Family, Param, as_tensor
from likelab.families.continuous import (
    Cauchy,
    Exponential,
    Gamma,
    Laplace,
    LogisticFamily,
    Normal,
    StudentT,
    Uniform,
)
from likelab.families.dgp import (
    Contaminated,
    DataGeneratingProcess,
    FamilyDGP,
    MixtureDGP,
    PointMassDGP,
    contaminated,
    parse_dgp,
    split_sample_size,
)
from likelab.families.discrete import Bernoulli, CategoricalFamily, Poisson
from likelab.families.distributions import Logistic
from likelab.families.integrals import power_integral, register_power_integral
from likelab.families.mixture import Mixture, PointMass
from likelab.families.quadrature import numerical_power_integral

__all__ = [
    "FAMILIES",
    "Contaminated",
    "DataGeneratingProcess",
    "Family",
    "FamilyDGP",
    "Logistic",
    "Mixture",
    "MixtureDGP",
    "Param",
    "PointMass",
    "PointMassDGP",
    "as_family",
    "as_tensor",
    "contaminated",
    "get_family",
    "list_families",
    "numerical_power_integral",
    "parse_dgp",
    "power_integral",
    "register_family",
    "register_power_integral",
    "split_sample_size",
]

FAMILIES: dict[str, type[Family]] = {}


def register_family(cls: type[Family]) -> type[Family]:
    """Register a :class:`Family` subclass under ``cls.name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Family)):
        raise LikelabError(f"register_family expects a Family subclass, got {cls!r}")
    FAMILIES[cls.name] = cls
    return cls


for _cls in (
    Normal,
    StudentT,
    Laplace,
    LogisticFamily,
    Cauchy,
    Uniform,
    Exponential,
    Gamma,
    Poisson,
    Bernoulli,
    CategoricalFamily,
):
    register_family(_cls)


def list_families() -> list[str]:
    """Registered family names, in registration order."""
    return list(FAMILIES)


def as_family(family: str | Family) -> Family:
    """``family`` as a :class:`Family`: a spec string is looked up (:func:`get_family`), a Family
    is returned as is; anything else is a :class:`~likelab.errors.ParameterError`."""
    if isinstance(family, str):
        return get_family(family)
    if not isinstance(family, Family):
        raise ParameterError(f"family must be a spec string or a Family, got {family!r}")
    return family


def get_family(spec: str | Family, **fixed) -> Family:
    """A family from a spec string (``"normal"``, ``"normal:scale=0.1"``) or a Family.

    Keyword arguments hold more parameters fixed. Unknown names raise
    :class:`~likelab.errors.UnknownNameError` listing the known ones.
    """
    if isinstance(spec, Family):
        return spec.fix(**fixed) if fixed else spec
    parsed = parse_spec(spec, kind="family")
    cls = FAMILIES.get(parsed.name)
    if cls is None:
        raise UnknownNameError(
            f"unknown family {parsed.name!r}; known families: {', '.join(FAMILIES)}"
        )
    both = sorted(set(parsed.kwargs) & set(fixed))
    if both:
        raise ParameterError(
            f"family {spec!r} already fixes {', '.join(both)}; give each parameter once "
            "(in the spec or as a fixed value, not both)"
        )
    return cls(**{**parsed.kwargs, **fixed})
