"""The fast path of likelab.asymptotics against its general path.

Where the truth is a member of the family and the objective is claimed strictly proper, θ* is
taken to be the truth's parameters once the numbers verify it (a regular stationary point), with
no search from several starts; log's θ* and V are computed once per (family, truth). Elsewhere
(a smooth family, a continuous truth) the search runs on one fixed rule and its answer is kept
only once verified by the adaptive rule. These tests check that both give the answers of the
general path (the search of check_density through the adaptive rule, then the polish) to 1e-9,
that they are really taken where they apply and not elsewhere, and that a false claim of strict
properness (θ* is not the truth) falls back to the search instead of reporting the truth.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from likelab.asymptotics import asymptotics, core
from likelab.families import get_family
from likelab.families.dgp import parse_dgp
from likelab.objectives import Properties, get_objective
from likelab.properness.density import density_setting

CLOSE = 1e-9


def _both(objective, family: str, truth: str, fixed=None):
    obj = get_objective(objective) if isinstance(objective, str) else objective
    fam = get_family(family)
    if fixed:
        fam = fam.fix(**fixed)
    dgp, fam, p_dist, sample = density_setting(parse_dgp(truth), fam)
    fast = core._core(obj, fam, dgp, p_dist, fast=True, sample=sample)
    slow = core._core(obj, fam, dgp, p_dist, fast=False)
    return fast, slow


def _same(fast, slow) -> None:
    assert fast["reason"] == slow["reason"]
    names = list(slow["theta"])
    t_fast = np.array([fast["theta"][k] for k in names])
    t_slow = np.array([slow["theta"][k] for k in names])
    assert np.allclose(t_fast, t_slow, rtol=0, atol=CLOSE * (1 + np.abs(t_slow).max()))
    for key in ("A", "B", "V"):
        a, b = fast[key].numpy(), slow[key].numpy()
        assert np.allclose(a, b, rtol=CLOSE, atol=CLOSE * np.abs(b).max()), (key, a, b)


@pytest.mark.parametrize(
    ("objective", "family", "truth"),
    [
        ("dpd:beta=0.3", "normal", "normal:loc=1.5,scale=2"),
        ("crps", "normal", "normal:loc=-3,scale=0.5"),
        ("quadratic", "student_t:df=5", "student_t:df=5,loc=2,scale=3"),
    ],
)
def test_strictly_proper_at_a_member_fast_equals_search(objective, family, truth):
    fast, slow = _both(objective, family, truth)
    assert not fast["reason"]
    _same(fast, slow)
    # the fast θ* is the truth: exactly, or after a polish of quadrature size
    theta_p = parse_dgp(truth).family.fixed
    for k, v in fast["theta"].items():
        assert abs(v - float(theta_p[k])) <= 1e-8 * (1 + abs(float(theta_p[k])))


@pytest.mark.parametrize(
    ("objective", "family", "truth", "fixed"),
    [
        ("lq:q=0.7", "normal", "normal:loc=0.5,scale=2", None),  # improper: θ* ≠ truth
        # the truth is not in the family
        (
            "dpd:beta=0.5",
            "normal",
            "0.9 normal:loc=0,scale=1 + 0.1 normal:loc=6,scale=1",
            {"scale": 1},
        ),
    ],
)
def test_where_the_shortcut_does_not_apply_the_answers_are_the_search(
    objective, family, truth, fixed
):
    fast, slow = _both(objective, family, truth, fixed)
    assert not slow["reason"]
    _same(fast, slow)


def test_the_shortcut_is_taken_only_where_it_applies(monkeypatch):
    calls = []
    search, frozen = core._theta_star, core._search_frozen

    def spy(obj, fam, dgp):
        calls.append(("search", obj.spec))
        return search(obj, fam, dgp)

    def spy_frozen(obj, fam, dgp, p_dist, sample):
        calls.append(("frozen", obj.spec))
        return frozen(obj, fam, dgp, p_dist, sample)

    monkeypatch.setattr(core, "_theta_star", spy)
    monkeypatch.setattr(core, "_search_frozen", spy_frozen)
    core._LOG_CACHE.clear()
    asymptotics("gamma:gamma=0.5", "normal", "normal:loc=1,scale=2")
    assert calls == []  # neither gamma nor log searched: both strictly proper, truth in family
    asymptotics("lq:q=0.7", "normal", "normal:loc=1,scale=2")
    # improper: searched on the fixed rule, verified; log's reference came from the cache
    assert calls == [("frozen", "lq:q=0.7")]
    calls.clear()
    asymptotics("lq:q=0.7", "laplace", "laplace:loc=1,scale=2")  # a kink: the full search
    assert ("search", "lq:q=0.7") in calls
    calls.clear()
    r = asymptotics("linear", "normal", "normal:loc=0,scale=1")  # no θ*: the full search says so
    assert calls == [("frozen", "linear"), ("search", "linear")]
    assert r.reason.startswith("no θ*")


@pytest.mark.parametrize(
    ("objective", "family", "truth", "fixed"),
    [
        ("gce:q=0.5", "student_t:df=5", "student_t:df=5,loc=0,scale=1", None),
        ("focal:gamma=2", "normal", "0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1", None),
        ("lq:q=0.8", "gamma", "gamma:concentration=3,rate=2", None),
        ("dpd:beta=0.4", "normal", "0.8 normal:loc=0,scale=1 + 0.2 point:at=5", None),
        ("spherical", "student_t", "normal:loc=1,scale=2", {"df": 4}),
    ],
)
def test_the_search_on_a_fixed_rule_equals_the_full_search(
    objective, family, truth, fixed, monkeypatch
):
    searched = []
    full = core._theta_star
    monkeypatch.setattr(core, "_theta_star", lambda *a: searched.append(a) or full(*a))
    fam = get_family(family).fix(**fixed) if fixed else get_family(family)
    dgp, fam, p_dist, sample = density_setting(parse_dgp(truth), fam)
    fast = core._core(get_objective(objective), fam, dgp, p_dist, fast=True, sample=sample)
    assert not searched  # the fixed-rule search's answer was verified and kept
    slow = core._core(get_objective(objective), fam, dgp, p_dist, fast=False)
    assert searched and not slow["reason"]
    _same(fast, slow)


def test_a_false_claim_of_strict_properness_falls_back_to_the_search():
    # lq is improper (θ* of the scale differs from the truth); claim the opposite
    liar = dataclasses.replace(
        get_objective("lq:q=0.7"), properties=Properties(proper=True, strictly_proper=True)
    )
    dgp, fam, p_dist, _ = density_setting(parse_dgp("normal:loc=0.5,scale=2"), get_family("normal"))
    fast = core._core(liar, fam, dgp, p_dist, fast=True)
    honest = core._core(get_objective("lq:q=0.7"), fam, dgp, p_dist, fast=False)
    _same(fast, honest)
    assert abs(fast["theta"]["scale"] - 2.0) > 1e-3  # not the truth


def test_log_cache_gives_the_same_numbers_and_cannot_be_altered():
    core._LOG_CACHE.clear()
    first = asymptotics("dpd:beta=0.5", "student_t:df=5", "student_t:df=5,loc=0,scale=1")
    first.log_theta_star["loc"] = 99.0  # a caller altering its result
    again = asymptotics("dpd:beta=0.5", "student_t:df=5", "student_t:df=5,loc=0,scale=1")
    core._LOG_CACHE.clear()
    fresh = asymptotics("dpd:beta=0.5", "student_t:df=5", "student_t:df=5,loc=0,scale=1")
    assert again.log_theta_star == fresh.log_theta_star
    assert again.log_theta_star["loc"] != 99.0
    assert again.to_dict() == fresh.to_dict()
