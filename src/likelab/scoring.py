r"""A functional score API in the style of ``scoringrules``: one score per observation.

:func:`score` evaluates a scoring rule :math:`S(F, y)` (in loss orientation: lower is better) for
a forecast :math:`F` given by a family and its parameters, and returns a numpy array, e.g.

.. math:: \mathrm{CRPS}(\mathcal N(\mu, \sigma^2), y)
          = \sigma\big[z(2\Phi(z) - 1) + 2\varphi(z) - 1/\sqrt\pi\big],\quad z = (y - \mu)/\sigma

(Gneiting, Raftery, Westveld & Goldman 2005, eq. 5), the value of
``scoringrules.crps_normal(y, mu, sigma)``. It is a thin wrapper: the objective is the registry's
(:func:`likelab.get_objective`), the forecast the family's
(:meth:`likelab.Family.distribution`), and every value is the objective's own per-observation
loss (:meth:`likelab.Objective.loss`), converted to float64 numpy.

Names differ from ``scoringrules`` where likelab's families differ: parameters are the family's
(``loc``/``scale`` rather than ``mu``/``sigma``; ``rate`` for the exponential, gamma and Poisson),
and ``brier`` is likelab's quadratic score :math:`\sum_j p_j^2 - 2 p_y`, the Brier score less 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.distributions import Distribution

from likelab.errors import DataError, LikelabError, ParameterError, UnsupportedError
from likelab.families import Family, get_family
from likelab.families.scipy_bridge import from_scipy, is_scipy_frozen
from likelab.objectives import Objective, get_objective

__all__ = ["score"]


def score(
    objective: str | Objective | Any,
    family: str | Family | Distribution | Any,
    y: Any,
    **params: Any,
) -> np.ndarray:
    r"""Per-observation scores :math:`S(F, y_i)` of ``objective`` for the forecast ``family``
    at ``params``, as a float64 numpy array.

    ``objective`` is a spec string (``"crps"``, ``"dpd:beta=0.5"``, ``"phi:-log(p)"``), an
    :class:`~likelab.Objective` or a user callable; its own parameters belong in the spec.
    ``family`` is a family spec as the CLI takes it (``"normal"``, ``"student_t:df=3"``,
    ``"categorical"``) or a :class:`~likelab.Family`, with ``params`` its free parameters
    (numbers or arrays); or a forecast that holds its parameters: a torch distribution or a
    frozen ``scipy.stats`` distribution (:mod:`likelab.families.scipy_bridge`), with no
    ``params``. Parameters broadcast against ``y`` (for ``categorical``, ``probs`` has the
    classes on its last axis); the result has the broadcast shape.

    Errors are likelab's (:class:`~likelab.LikelabError`): an unknown objective, family or
    parameter, a missing parameter, a value outside its domain, observations that are NaN,
    infinite or outside the family's support, shapes that do not broadcast, and
    :class:`~likelab.UnsupportedError` where the objective is not defined for the family
    (the CRPS of a categorical forecast, the Hyvärinen score of a Laplace one, the batch-level
    ``product``).

    >>> import numpy as np
    >>> score("crps", "normal", np.array([0.0, 1.0]), loc=0.0, scale=1.0).round(6)
    array([0.233695, 0.602441])
    >>> score("log", "poisson", [0, 3], rate=2.0).round(6)  # -log(e^-2 2^y / y!)
    array([2.      , 1.712318])
    >>> p = np.array([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1]])
    >>> score("brier", "categorical", [0, 2], probs=p).round(6)  # Σ p_j² - 2 p_y
    array([-0.86,  0.34])
    >>> import scipy.stats
    >>> score("log", scipy.stats.norm(0, 1), [0.0]).round(6)
    array([0.918939])
    """
    obj = get_objective(objective)
    if obj.batch_level:
        raise UnsupportedError(
            f"objective {obj.spec!r} is defined on a whole batch only (the product of the "
            "likelihoods), not per observation; 'log' is its per-observation counterpart "
            "(-log f(y_i), whose sum is -log of the product)"
        )
    fam, dist = _forecast(obj, family, params)
    y_t = _observations(fam, dist, y)
    with torch.no_grad():
        try:
            values = obj.loss(dist, y_t)
        except UnsupportedError as exc:
            label = fam.spec if fam is not None else type(dist).__name__
            raise UnsupportedError(f"{obj.spec} cannot score {label} forecasts: {exc}") from None
    out = values.detach().to(torch.float64).cpu().numpy()
    shape = torch.broadcast_shapes(tuple(y_t.shape), tuple(dist.batch_shape))
    return np.broadcast_to(out, shape).copy() if out.shape != shape else out


def _forecast(
    obj: Objective, family: Any, params: dict[str, Any]
) -> tuple[Family | None, Distribution]:
    """The family (``None`` for a bare torch distribution) and the batched forecast."""
    if isinstance(family, Distribution) or is_scipy_frozen(family):
        if params:
            raise ParameterError(
                f"the forecast {_label(family)} already holds its parameters; do not pass "
                f"{', '.join(params)}"
            )
        if isinstance(family, Distribution):
            return None, family
        fam = from_scipy(family)
        return fam, fam.distribution()
    if isinstance(family, str):
        fam = get_family(family)
    elif isinstance(family, Family):
        fam = family
    else:
        raise LikelabError(
            "family must be a family spec such as 'normal', a likelab Family, a torch "
            f"distribution or a frozen scipy.stats distribution, got {type(family).__name__}"
        )
    unknown = [k for k in params if k not in fam.param_names]
    if unknown:
        hint = ""
        hypers = [k for k in unknown if k in obj.hyper]
        if hypers:
            hint = (
                f"; {', '.join(hypers)} is a parameter of the objective: give it in the spec, "
                f"e.g. {obj.name}:{hypers[0]}={params[hypers[0]]}"
            )
        raise ParameterError(
            f"family {fam.spec!r} has no parameter {', '.join(map(repr, unknown))} "
            f"(its parameters: {', '.join(fam.param_names)}){hint}"
        )
    shapes = {k: _batch_shape(fam, k, v) for k, v in params.items()}
    try:
        np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = ", ".join(f"{k} {s}" for k, s in shapes.items())
        raise ParameterError(f"parameter shapes do not broadcast: {listed}") from None
    return fam, fam.distribution(**params)


def _batch_shape(fam: Family, name: str, value: Any) -> tuple[int, ...]:
    try:
        shape = np.shape(value)
    except ValueError:  # a ragged nested list
        raise ParameterError(f"{fam.name} parameter {name!r} is a ragged array") from None
    return shape[:-1] if fam.param(name).domain == "simplex" else shape


def _observations(fam: Family | None, dist: Distribution, y: Any) -> torch.Tensor:
    """``y`` checked (finite, in the family's support, broadcasting with the forecast) as a
    float64 tensor."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"observations must be numeric, got {type(y).__name__}") from None
    y_t = fam.check_data(arr) if fam is not None else torch.as_tensor(arr)
    try:
        torch.broadcast_shapes(tuple(y_t.shape), tuple(dist.batch_shape))
    except RuntimeError:
        raise DataError(
            f"observations of shape {tuple(y_t.shape)} do not broadcast against the "
            f"parameters' shape {tuple(dist.batch_shape)}"
        ) from None
    return y_t


def _label(forecast: Any) -> str:
    if is_scipy_frozen(forecast):
        return f"scipy.stats.{forecast.dist.name}"
    return type(forecast).__name__
