r"""Frozen ``scipy.stats`` distributions as likelab forecasts.

A frozen distribution such as ``scipy.stats.norm(0, 1)`` or ``scipy.stats.gamma(2, scale=3)``
names a family and its parameters; :func:`from_scipy` maps it to the likelab :class:`Family` with
every parameter fixed, in likelab's parametrisation, and :func:`to_distribution` to the batched
torch distribution every objective takes. scipy writes most families as a standard shape moved by
``loc`` and stretched by ``scale`` (``pdf(y) = f((y - loc)/scale) / scale``); where likelab (and
torch) use a rate instead the map converts:

============================  ===========================================================
scipy.stats                   likelab family
============================  ===========================================================
``norm(loc, scale)``          ``normal(loc, scale)``
``t(df, loc, scale)``         ``student_t(df, loc, scale)``
``laplace(loc, scale)``       ``laplace(loc, scale)``
``logistic(loc, scale)``      ``logistic(loc, scale)``
``cauchy(loc, scale)``        ``cauchy(loc, scale)``
``uniform(loc, scale)``       ``uniform(low=loc, high=loc + scale)``
``expon(scale=θ)``            ``exponential(rate=1/θ)``               (``loc`` must be 0)
``gamma(a, scale=θ)``         ``gamma(concentration=a, rate=1/θ)``    (``loc`` must be 0)
``poisson(mu)``               ``poisson(rate=mu)``                    (``loc`` must be 0)
``bernoulli(p)``              ``bernoulli(probs=p)``                  (``loc`` must be 0)
============================  ===========================================================

A shifted exponential, gamma or count distribution (``loc`` ≠ 0) has no likelab family and is
refused. Any other scipy distribution raises :class:`~likelab.errors.UnsupportedError` that names
its ``torch.distributions`` equivalent with the parameter map, where torch has one (an objective
can be called on that torch distribution directly), or says that there is none.

>>> import scipy.stats
>>> fam = from_scipy(scipy.stats.gamma(2.0, scale=4.0))
>>> fam.spec
'gamma:concentration=2,rate=0.25'
>>> frozen = scipy.stats.gamma(2.0, scale=4.0)
>>> bool(abs(float(to_distribution(frozen).log_prob(3.0)) - frozen.logpdf(3.0)) < 1e-12)
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from torch.distributions import Distribution

from likelab.errors import LikelabError, ParameterError, UnsupportedError
from likelab.families import FAMILIES, get_family
from likelab.families.base import Family

__all__ = [
    "SCIPY_FAMILIES",
    "TORCH_EQUIVALENTS",
    "as_forecast",
    "from_scipy",
    "is_scipy_frozen",
    "to_distribution",
]

Params = dict[str, np.ndarray]


def _loc_scale(p: Params) -> dict[str, np.ndarray]:
    return {"loc": p["loc"], "scale": p["scale"]}


#: scipy name -> (likelab family, scipy parameters -> likelab parameters, loc must be 0).
SCIPY_FAMILIES: dict[str, tuple[str, Callable[[Params], dict[str, np.ndarray]], bool]] = {
    "norm": ("normal", _loc_scale, False),
    "t": ("student_t", lambda p: {"df": p["df"], **_loc_scale(p)}, False),
    "laplace": ("laplace", _loc_scale, False),
    "logistic": ("logistic", _loc_scale, False),
    "cauchy": ("cauchy", _loc_scale, False),
    "uniform": ("uniform", lambda p: {"low": p["loc"], "high": p["loc"] + p["scale"]}, False),
    "expon": ("exponential", lambda p: {"rate": 1.0 / p["scale"]}, True),
    "gamma": ("gamma", lambda p: {"concentration": p["a"], "rate": 1.0 / p["scale"]}, True),
    "poisson": ("poisson", lambda p: {"rate": p["mu"]}, True),
    "bernoulli": ("bernoulli", lambda p: {"probs": p["p"]}, True),
}

#: scipy distributions likelab has no family for, and their torch equivalent (with the map of
#: parameters; scipy's ``loc`` 0 and ``scale`` 1 unless named).
TORCH_EQUIVALENTS: dict[str, str] = {
    "lognorm": "torch.distributions.LogNormal(loc=log(scale), scale=s) (for loc = 0)",
    "beta": "torch.distributions.Beta(concentration1=a, concentration0=b) (for loc=0, scale=1)",
    "chi2": "torch.distributions.Chi2(df) (for loc=0, scale=1)",
    "gumbel_r": "torch.distributions.Gumbel(loc, scale)",
    "halfnorm": "torch.distributions.HalfNormal(scale) (for loc = 0)",
    "halfcauchy": "torch.distributions.HalfCauchy(scale) (for loc = 0)",
    "pareto": "torch.distributions.Pareto(scale, alpha=b) (for loc = 0)",
    "weibull_min": "torch.distributions.Weibull(scale, concentration=c) (for loc = 0)",
    "invgamma": "torch.distributions.InverseGamma(concentration=a, rate=scale) (for loc = 0)",
    "f": "torch.distributions.FisherSnedecor(df1=dfn, df2=dfd) (for loc=0, scale=1)",
    "vonmises": "torch.distributions.VonMises(loc, concentration=kappa) (for scale = 1)",
    "genpareto": "torch.distributions.GeneralizedPareto(loc, scale, concentration=c)",
    "binom": "torch.distributions.Binomial(total_count=n, probs=p) (for loc = 0)",
    "nbinom": "torch.distributions.NegativeBinomial(total_count=n, probs=1 - p) (for loc = 0; "
    "torch counts the successes before n failures)",
    "geom": "torch.distributions.Geometric(probs=p) of y - 1 (scipy's support starts at 1, "
    "torch's at 0)",
}


def is_scipy_frozen(obj: Any) -> bool:
    """Whether ``obj`` is a frozen univariate ``scipy.stats`` distribution (``norm(0, 1)``)."""
    module = type(obj).__module__ or ""
    if not module.startswith("scipy.stats"):
        return False
    import scipy.stats

    return isinstance(
        getattr(obj, "dist", None), scipy.stats.rv_continuous | scipy.stats.rv_discrete
    )


def _describe(frozen: Any) -> str:
    args = [repr(a) if not isinstance(a, int | float) else f"{a:g}" for a in frozen.args]
    args += [
        f"{k}={v!r}" if not isinstance(v, int | float) else f"{k}={v:g}"
        for k, v in frozen.kwds.items()
    ]
    return f"scipy.stats.{frozen.dist.name}({', '.join(args)})"


def _bind(frozen: Any) -> Params:
    """The frozen distribution's arguments by name: its shapes, ``loc`` (0) and, for continuous
    distributions, ``scale`` (1), each as a float64 array."""
    import scipy.stats

    dist = frozen.dist
    names = [s.strip() for s in (dist.shapes or "").split(",") if s.strip()]
    names += ["loc"] if isinstance(dist, scipy.stats.rv_discrete) else ["loc", "scale"]
    label = _describe(frozen)
    if len(frozen.args) > len(names):
        raise ParameterError(f"{label}: too many arguments (its parameters: {', '.join(names)})")
    bound: dict[str, Any] = dict(zip(names, frozen.args, strict=False))
    for key, value in frozen.kwds.items():
        if key not in names:
            raise ParameterError(
                f"{label}: no parameter {key!r} (its parameters: {', '.join(names)})"
            )
        if key in bound:
            raise ParameterError(f"{label}: parameter {key!r} given twice")
        bound[key] = value
    bound.setdefault("loc", 0.0)
    if "scale" in names:
        bound.setdefault("scale", 1.0)
    missing = [n for n in names if n not in bound]
    if missing:
        raise ParameterError(f"{label}: missing parameter(s) {', '.join(missing)}")
    out: Params = {}
    for key, value in bound.items():
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(
                f"{label}: parameter {key!r} must be numeric, got {value!r}"
            ) from None
        if not np.isfinite(arr).all():
            raise ParameterError(f"{label}: parameter {key!r} must be finite")
        out[key] = arr
    if "scale" in out and not (out["scale"] > 0).all():
        raise ParameterError(f"{label}: scale must be > 0")
    try:
        np.broadcast_shapes(*(v.shape for v in out.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {v.shape}" for k, v in out.items())
        raise ParameterError(f"{label}: parameter shapes do not broadcast ({shapes})") from None
    return out


def from_scipy(frozen: Any) -> Family:
    """The likelab :class:`Family` of a frozen ``scipy.stats`` distribution, every parameter
    fixed at the frozen values (converted to likelab's parametrisation, see the module table).

    Raises :class:`~likelab.errors.UnsupportedError` for a distribution with no likelab family
    (naming its ``torch.distributions`` equivalent, or saying there is none) and
    :class:`~likelab.errors.ParameterError` for invalid parameters.

    >>> import scipy.stats
    >>> from_scipy(scipy.stats.uniform(loc=-1, scale=3)).spec
    'uniform:low=-1,high=2'
    """
    if not is_scipy_frozen(frozen):
        raise LikelabError(
            f"expected a frozen scipy.stats distribution such as scipy.stats.norm(0, 1), got "
            f"{type(frozen).__name__}"
        )
    name = frozen.dist.name
    label = _describe(frozen)
    entry = SCIPY_FAMILIES.get(name)
    if entry is None:
        torch_eq = TORCH_EQUIVALENTS.get(name)
        where = (
            f"; its torch equivalent is {torch_eq}: build that and call the objective on it"
            if torch_eq
            else ", and torch.distributions has no equivalent that likelab knows of"
        )
        raise UnsupportedError(
            f"{label} has no likelab family{where}. scipy distributions likelab maps: "
            f"{', '.join(SCIPY_FAMILIES)} (likelab families: {', '.join(FAMILIES)})"
        )
    family_name, convert, needs_zero_loc = entry
    params = _bind(frozen)
    if needs_zero_loc and (params["loc"] != 0).any():
        raise UnsupportedError(
            f"{label}: scipy.stats.{name} shifted by loc has no likelab family "
            f"({family_name} starts at 0); give loc=0, or shift the observations instead "
            "(score y - loc)"
        )
    try:
        return get_family(family_name, **convert(params))
    except LikelabError as exc:
        raise type(exc)(f"{label} as likelab {family_name}: {exc}") from None


def to_distribution(frozen: Any) -> Distribution:
    """The batched torch distribution (float64) of a frozen ``scipy.stats`` distribution."""
    return from_scipy(frozen).distribution()


def as_forecast(forecast: Any) -> Any:
    """A forecast for an objective: a frozen scipy distribution converted by
    :func:`to_distribution`; anything else as it is (torch distributions, and whatever the
    objective's own checks will refuse)."""
    return to_distribution(forecast) if is_scipy_frozen(forecast) else forecast
