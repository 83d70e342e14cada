"""Every registered affine form (likelab.objectives.affine) equals its objective's loss:
S = A(F) + C(F) ψ(log f(y)), also where the power integral diverges (+inf or nan, as the
objective says)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from likelab.families import Logistic
from likelab.objectives import get_objective
from likelab.objectives.affine import _FORMS, AffineForm, affine_form

SPECS = [
    "quadratic",
    "spherical",
    "pseudospherical:gamma=3",
    "pseudospherical:gamma=1.5",
    "power:alpha=2",
    "power:alpha=3.5",
    "dpd:beta=0.5",
    "dpd:beta=0.05",
    "gamma:gamma=0.5",
    "gamma:gamma=1e-4",
]


def _forecasts():
    t = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return {
        "normal": (D.Normal(t(0.0, 1.0, -2.0), t(1.0, 0.3, 4.0)), t(0.5, -3.0, 10.0)),
        "student_t": (D.StudentT(t(3.0, 1.5, 30.0), t(0.0, 1.0, 2.0), t(1.0, 2.0, 0.5)), None),
        "logistic": (Logistic(t(0.0, 1.0, 2.0), t(1.0, 0.5, 3.0)), None),
        "laplace": (D.Laplace(t(0.0, 1.0, 2.0), t(1.0, 0.5, 3.0)), None),
        "gamma": (D.Gamma(t(3.0, 1.2, 0.3), t(2.0, 0.5, 1.0)), t(0.4, 2.0, 0.05)),
        "exponential": (D.Exponential(t(0.5, 2.0, 10.0)), t(0.4, 2.0, 0.05)),
        "poisson": (D.Poisson(t(0.5, 4.0, 60.0)), t(0.0, 3.0, 70.0)),
    }


def test_every_integral_rule_has_a_form():
    get_objective("log")  # the built-in rules (and their forms) are registered on first use
    assert {s.split(":")[0] for s in SPECS} == set(_FORMS)
    assert affine_form(get_objective("crps")) is None
    assert affine_form(get_objective("lq")) is None


@pytest.mark.parametrize("family", list(_forecasts()))
@pytest.mark.parametrize("spec", SPECS)
def test_form_equals_loss(spec, family):
    dist, y = _forecasts()[family]
    if y is None:
        y = dist.loc + dist.scale * torch.tensor([0.3, -2.0, 7.0], dtype=torch.float64)
    obj = get_objective(spec)
    form = affine_form(obj)
    assert isinstance(form, AffineForm) and form.psi.coef == 1.0
    a, c = form.coefficients(dist)
    got = a + c * form.psi(dist.log_prob(y))[0]
    want = obj.loss(dist, y, validate=False)
    same_nonfinite = (got.isnan() & want.isnan()) | (got == want)
    finite = torch.isfinite(want)
    assert torch.all(same_nonfinite | finite), (got, want)
    assert torch.all((got - want)[finite].abs() <= 1e-14 * (1 + want[finite].abs())), (got, want)


@pytest.mark.parametrize(
    ("spec", "expect"),
    [("quadratic", math.inf), ("power:alpha=2", math.inf), ("spherical", math.nan)],
)
def test_form_keeps_the_objectives_verdict_where_the_integral_diverges(spec, expect):
    # a gamma forecast with concentration 0.3: ∫f² = ∞
    dist = D.Gamma(torch.tensor([0.3], dtype=torch.float64), torch.tensor([1.0]).double())
    y = torch.tensor([0.5], dtype=torch.float64)
    form = affine_form(get_objective(spec))
    a, c = form.coefficients(dist)
    got = (a + c * form.psi(dist.log_prob(y))[0]).item()
    assert (math.isnan(got) and math.isnan(expect)) or got == expect
    want = get_objective(spec).loss(dist, y, validate=False).item()
    assert (math.isnan(got) and math.isnan(want)) or got == want
