r"""Properness: is an objective's expected score minimised by the true distribution?

Two settings (Gneiting & Raftery 2007, JASA 102:359-378):

- **classes** (:func:`check_classes`): forecasts over the whole K-simplex, many true
  distributions q; :math:`\sum_k q_k S(p, k)` minimised over p;
- **densities** (:func:`check_density`): a true distribution P and a forecast family
  :math:`Q_\theta`; :math:`E_{Y \sim P} S(Q_\theta, Y)` by quadrature
  (:func:`expected_score`), minimised over θ.

:func:`check_properness` is the single entry point: a verdict (``"strictly proper"``,
``"proper"``, ``"improper"``, ``"undetermined"`` when the evidence cannot decide: non-finite
expected scores or no converged start, or ``None`` when P is outside the forecast family) with
its evidence, for any objective of the registry, the user's own included. No verdict rests on
an empty set or a non-finite number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from likelab.errors import ParameterError
from likelab.families import Family
from likelab.families.dgp import DataGeneratingProcess
from likelab.objectives import Objective
from likelab.properness.classes import (
    UNDETERMINED,
    VERDICTS,
    ClassesVerdict,
    Verdict,
    check_classes,
    claim_of,
    class_truths,
    classes_cost,
)
from likelab.properness.density import DensityVerdict, check_density
from likelab.properness.expected import (
    ExpectedScore,
    expected_score,
    expected_score_details,
    truth_mass,
)
from likelab.properness.survey import (
    Failed,
    NotApplicable,
    PropernessSurvey,
    ScoreProfile,
    score_profile,
    survey,
)

__all__ = [
    "UNDETERMINED",
    "VERDICTS",
    "ClassesVerdict",
    "DensityVerdict",
    "ExpectedScore",
    "Failed",
    "NotApplicable",
    "PropernessSurvey",
    "ScoreProfile",
    "Verdict",
    "check_classes",
    "check_density",
    "check_properness",
    "claim_of",
    "class_truths",
    "classes_cost",
    "expected_score",
    "expected_score_details",
    "score_profile",
    "survey",
    "truth_mass",
]


def check_properness(
    objective: str | Objective | Callable[..., torch.Tensor],
    *,
    classes: int | None = None,
    truth: str | DataGeneratingProcess | None = None,
    family: str | Family | None = None,
    seed: int = 0,
    **options: Any,
) -> ClassesVerdict | DensityVerdict:
    """Judge ``objective`` on K classes (``classes=K``) or against a truth (``truth=SPEC``,
    optionally ``family=F``); with neither, on 3 classes. ``options`` go to
    :func:`check_classes` (``n_truths``, ``starts``, ``max_iter``) or :func:`check_density`
    (``starts``, ``max_iter``).

    >>> check_properness("log", classes=3).verdict
    'strictly proper'
    >>> v = check_properness("lq:q=0.5", truth="normal:loc=0,scale=1")
    >>> v.verdict, round(v.optimum["scale"] ** 2, 6)  # the optimum scale is sqrt(q)
    ('improper', 0.5)
    """
    if truth is not None and classes is not None:
        raise ParameterError("give either classes=K or truth=SPEC (with family=F), not both")
    if family is not None and truth is None:
        raise ParameterError("family= names the forecast family for a truth: give truth=SPEC too")
    if truth is not None:
        return check_density(objective, truth, family, seed=seed, **options)
    return check_classes(objective, 3 if classes is None else classes, seed=seed, **options)
