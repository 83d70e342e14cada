r"""Many objectives, one or two settings: the verdict table behind ``likelab properness``.

:func:`survey` runs :func:`~likelab.properness.check_properness` for every objective asked
(``"all"``: every built-in scoring rule) in the classes setting, the density setting or both, and
keeps a row for an objective that is not defined in a setting (``crps`` on classes, ``hyvarinen``
for a Laplace forecast) with the reason instead of a verdict. :func:`score_profile` gives the
curve that the figure draws: the expected score along the forecast's scale (densities) or
temperature (classes), with the truth and the optimum on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from likelab.errors import LikelabError, ParameterError, UnsupportedError, UserContractError
from likelab.families import get_family
from likelab.families.dgp import parse_dgp
from likelab.objectives import Objective, get_objective, list_objectives
from likelab.objectives.naming import objective_label, spellings
from likelab.properness.classes import (
    ClassesVerdict,
    _check_size,
    check_classes,
    expected_class_score,
)
from likelab.properness.density import DensityVerdict, check_density, density_setting
from likelab.properness.expected import expected_score

__all__ = ["Failed", "NotApplicable", "PropernessSurvey", "ScoreProfile", "score_profile", "survey"]

DEFAULT_TRUTH = "normal:loc=0,scale=1"


@dataclass(frozen=True)
class NotApplicable:
    """An objective that is not defined in a setting, and why."""

    objective: str
    setting: str
    reason: str
    verdict: None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "setting": self.setting,
            "verdict": None,
            "not_applicable": self.reason,
        }


@dataclass(frozen=True)
class Failed:
    """An objective asked for by name that could not be judged in a setting, and why (the
    message of the error :func:`~likelab.properness.check_properness` raised for it alone)."""

    objective: str
    setting: str
    reason: str
    verdict: None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "setting": self.setting,
            "verdict": None,
            "error": self.reason,
        }


Result = ClassesVerdict | DensityVerdict | NotApplicable | Failed


@dataclass(frozen=True)
class PropernessSurvey:
    """The rows of a survey, in the order asked (objectives within settings)."""

    results: list[Result] = field(default_factory=list)
    #: How each objective was spelled, keyed by canonical spec (``{"quadratic": "brier"}``):
    #: figures and pages name it so (:meth:`label`).
    given: dict[str, str] = field(default_factory=dict)

    def label(self, spec: str) -> str:
        """The objective ``spec`` as it was spelled, the canonical spec in brackets where they
        differ (``brier (quadratic)``): :func:`likelab.objectives.naming.objective_label`."""
        return objective_label(spec, self.given)

    @property
    def failures(self) -> list[Failed]:
        """The rows of objectives that could not be judged."""
        return [r for r in self.results if isinstance(r, Failed)]

    def to_dict(self) -> dict[str, Any]:
        return {"results": [r.to_dict() for r in self.results]}


def survey(
    objectives: str | Sequence[str | Objective | Callable[..., torch.Tensor]] = "all",
    *,
    classes: int | None = None,
    truth: str | None = None,
    family: str | None = None,
    seed: int = 0,
    on_progress: Callable[[float, int], None] | None = None,
) -> PropernessSurvey:
    """Judge each objective on ``classes`` classes and/or against ``truth`` (with the forecast
    ``family``); with neither, on 3 classes and against N(0, 1) with a normal family.

    ``objectives`` is ``"all"`` (every built-in scoring rule; those not defined in a setting get
    a :class:`NotApplicable` row) or a list of specs or objectives. An objective that cannot be
    judged in a setting (it raises a :class:`~likelab.errors.LikelabError` for itself alone:
    ``crps`` on classes when asked by name, a user objective that raises in this setting) gets a
    :class:`Failed` row with the reason, and the others are still judged. What the settings
    themselves get wrong (an unknown objective, a bad truth or family, K too large) raises
    before any work; a user objective that breaks its contract whatever the input
    (:class:`~likelab.errors.UserContractError`) raises too.
    ``on_progress(done, total)`` counts rows (objectives × settings; ``done`` grows by
    fractions within one).

    >>> rows = survey(["log", "linear"], classes=2).results
    >>> [(r.objective, r.verdict) for r in rows]
    [('log', 'strictly proper'), ('linear', 'improper')]
    """
    if family is not None and truth is None:
        raise ParameterError("--family names the forecast family for a truth: give --truth too")
    everything = isinstance(objectives, str) and objectives.strip() == "all"
    given: dict[str, str] = {}
    if everything:
        objs = [
            get_objective(name)
            for name in list_objectives(include_user=False)
            if not get_objective(name).batch_level
        ]
    elif isinstance(objectives, str):
        raise ParameterError(f"objectives must be 'all' or a list of specs, got {objectives!r}")
    else:
        objectives = list(objectives)
        objs = [get_objective(o) for o in objectives]
        if not objs:
            raise ParameterError("no objectives given")
        given = spellings(objectives)
    settings: list[tuple[str, dict[str, Any]]] = []
    if classes is None and truth is None:
        classes, truth = 3, DEFAULT_TRUTH
    if classes is not None:
        settings.append((f"classes:{classes}", {"classes": classes}))
    if truth is not None:
        settings.append(("density", {"truth": truth, "family": family}))
    for _setting, kwargs in settings:  # the settings' own errors, before any objective
        if "classes" in kwargs:
            defaults = check_classes.__kwdefaults__  # with which check_classes is called below
            _check_size(kwargs["classes"], defaults["n_truths"], defaults["starts"])
        else:
            density_setting(kwargs["truth"], kwargs["family"], seed)
    results: list[Result] = []
    total = len(settings) * len(objs)
    for setting, kwargs in settings:
        for obj in objs:
            inner = None
            if on_progress is not None:
                row = len(results)
                on_progress(row, total)

                def inner(done: int, of: int, row: int = row) -> None:
                    on_progress(row + done / max(of, 1), total)

            try:
                if "classes" in kwargs:
                    results.append(
                        check_classes(obj, kwargs["classes"], seed=seed, on_progress=inner)
                    )
                else:
                    results.append(
                        check_density(
                            obj, kwargs["truth"], kwargs["family"], seed=seed, on_progress=inner
                        )
                    )
            except UserContractError:  # broken whatever the data (likelab's probe)
                raise
            except UnsupportedError as exc:
                reason = " ".join(str(exc).split())
                row_type = NotApplicable if everything else Failed
                results.append(row_type(obj.spec, setting, reason))
            except LikelabError as exc:  # this objective alone; anything else is a bug
                results.append(Failed(obj.spec, setting, " ".join(str(exc).split())))
    if on_progress is not None:
        on_progress(total, total)
    return PropernessSurvey(results, given)


@dataclass(frozen=True)
class ScoreProfile:
    """The expected score along one coordinate of the forecast: ``x`` (the forecast's scale,
    or the temperature T of :math:`p \\propto q^{1/T}` on classes), ``values``, and where the
    truth and the optimum lie (``optimum_x`` is ``None`` when the optimum is not on this path,
    ``optimum_at_edge`` when it lies beyond its left or right end)."""

    objective: str
    setting: str
    xlabel: str
    x: np.ndarray
    values: np.ndarray
    truth_x: float | None
    truth_value: float | None
    optimum_x: float | None
    optimum_value: float | None
    optimum_at_edge: str | None


def score_profile(
    result: ClassesVerdict | DensityVerdict, points: int = 81, *, window: float | None = None
) -> ScoreProfile:
    """The curve that ``likelab properness --plot`` draws for one verdict.

    Densities: the family's ``scale`` (or first free positive parameter) over a log grid around
    the truth's and the optimum's values, the other parameters at the truth's values (or the
    optimum's, when the truth is not in the family); the optimum is marked at its own scale and
    expected score, on the curve when its other parameters are the truth's. Classes: the worst
    truth q, tempered, :math:`p_T \\propto q^{1/T}` for :math:`T \\in [0.05, 20]`; T = 1 is the
    truth and T → 0 puts all mass on the mode.

    ``window`` (> 1) zooms in: the path from 1/window to window times the truth's value (the
    optimum's, where the truth is not in the family; T from 1/window to window on classes).
    """
    if window is not None and not (math.isfinite(window) and window > 1):
        raise ParameterError(f"window must be a finite number > 1, got {window!r}")
    if isinstance(result, ClassesVerdict):
        return _classes_profile(result, points, window)
    if isinstance(result, DensityVerdict):
        return _density_profile(result, points, window)
    raise ParameterError(f"no profile for {type(result).__name__}")


def _classes_profile(v: ClassesVerdict, points: int, window: float | None) -> ScoreProfile:
    obj = get_objective(v.objective)
    q = torch.tensor(v.worst_truth, dtype=torch.float64)
    temps = (
        np.geomspace(0.05, 20.0, points)
        if window is None
        else np.geomspace(1 / window, window, points)
    )
    t = torch.as_tensor(temps).unsqueeze(-1)
    logits = torch.log(q.clamp(min=1e-300)) / t
    with torch.no_grad():
        values = expected_class_score(obj, logits, q.expand_as(logits), logits=True).numpy()
        at_truth = float(expected_class_score(obj, q[None], q[None])[0])
    finite = np.isfinite(values)
    best = int(np.nanargmin(np.where(finite, values, np.nan))) if finite.any() else None
    edge = None
    if best is not None:
        edge = "left" if best == 0 else ("right" if best == points - 1 else None)
    return ScoreProfile(  # no finite expected score (best is None): nothing to mark
        objective=v.objective,
        setting=v.setting,
        xlabel="temperature T of q^(1/T) (T < 1 sharper)",
        x=temps,
        values=values,
        truth_x=1.0,
        truth_value=at_truth,
        optimum_x=None if best is None or edge else float(temps[best]),
        optimum_value=None if best is None else float(values[best]),
        optimum_at_edge=edge,
    )


def _density_profile(v: DensityVerdict, points: int, window: float | None) -> ScoreProfile:
    fam = get_family(v.family)
    positive = [n for n in fam.free if fam.param(n).domain == "positive"]
    if not positive:
        raise UnsupportedError(f"family {fam.spec!r} has no free scale-like parameter to plot")
    name = "scale" if "scale" in positive else positive[0]
    opt = dict(v.optimum)
    ref = v.truth_params[name] if v.truth_params is not None else opt[name]
    span = [ref / (window or 30), ref * (window or 30)]
    edge = None
    if opt[name] < span[0]:
        edge = "left"
    elif opt[name] > span[1]:
        edge = "right"
    elif window is None:
        span = [min(span[0], opt[name] / 3), max(span[1], opt[name] * 3)]
    x = np.geomspace(span[0], span[1], points)
    base = v.truth_params if v.truth_params is not None else opt
    params = {k: torch.full((points,), float(base[k]), dtype=torch.float64) for k in fam.free}
    params[name] = torch.as_tensor(x)
    truth = parse_dgp(v.truth)
    with torch.no_grad():
        values = expected_score(v.objective, truth, fam.distribution(**params)).numpy()
    others = "the truth's" if v.truth_params is not None else "the optimum's"
    return ScoreProfile(
        objective=v.objective,
        setting=v.setting,
        xlabel=f"forecast {name} ({fam.name}; other parameters at {others} values)",
        x=x,
        values=values,
        truth_x=None if v.truth_params is None else float(v.truth_params[name]),
        truth_value=v.at_truth,
        optimum_x=None if edge else float(opt[name]),
        optimum_value=v.value,
        optimum_at_edge=edge,
    )
