"""scorecard.robustness: gross-error sensitivity, bias under contamination, breakdown."""

import json
import math

import pytest

from likelab import objective
from likelab.scorecard import robustness

LOCATION = "family normal:scale=1 / truth normal:loc=0,scale=1 / contamination point:at=8"
BOTH = "family normal / truth normal:loc=0,scale=1 / contamination point:at=8"


def _unit(setting: str, quick: bool = True) -> dict:
    (unit,) = [u for u in robustness.units("log", quick=quick) if u["setting"] == setting]
    return unit


def test_log_location_bias_is_eps_times_the_outlier_and_its_influence_unbounded():
    row = robustness.run("log", _unit(LOCATION), seed=0)
    assert row["status"] == "ok" and row["eps"] == [0.05, 0.1, 0.2]
    # Huber's model with G = δ_8: θ*(ε) = (1 - ε)·0 + ε·8
    assert row["bias"]["loc"] == pytest.approx([8 * e for e in row["eps"]], abs=1e-8)
    assert row["ges"]["loc"]["bounded"] is False and row["ges"]["loc"]["value"] == math.inf
    # quick: the first ε of the grid whose bias exceeds 1 (8ε > 1), with its bracket
    assert row["breakdown"] == 0.2 and row["breakdown_evidence"]["bracket"] == [0.1, 0.2]
    s = robustness.summarise([row])
    assert s["bounded_influence"] is False and s["max_bias_10"] == pytest.approx(0.8, abs=1e-8)
    json.dumps(row)


def test_the_full_breakdown_is_bisected_to_where_eight_eps_reaches_the_bound():
    unit = _unit(LOCATION, quick=False)
    assert unit["bisect"] == 10
    row = robustness.run("log", unit, seed=0)
    assert row["breakdown"] == pytest.approx(1 / 8, abs=0.1 / 2**10)


def test_linear_location_influence_is_bounded_with_its_closed_form():
    row = robustness.run("linear", _unit(LOCATION), seed=0)
    assert row["status"] == "ok"
    # IF(z) = z exp(-z²/2) / A with A = 2^{-3/2}: sup at z = 1
    assert row["ges"]["loc"]["bounded"] is True
    assert row["ges"]["loc"]["value"] == pytest.approx(2**1.5 * math.exp(-0.5), rel=1e-6)
    # the outlier at 8 is ignored: no bias, no breakdown up to 0.2
    assert max(abs(b) for b in row["bias"]["loc"]) < 1e-6
    assert row["breakdown"] is None
    assert robustness.run("linear", _unit(LOCATION), seed=0) == row  # deterministic
    s = robustness.summarise([row])
    assert s["bounded_influence"] is True and s["breakdown"] is None
    assert "no ε up to 0.2 breaks" in s["breakdown_note"]


def test_linear_with_a_free_scale_is_not_applicable_and_summarise_invents_nothing():
    row = robustness.run("linear", _unit(BOTH), seed=0)
    assert row["status"] == "not applicable" and "no θ*" in row["reason"]
    assert row["ges"] is None and row["bias"] is None
    s = robustness.summarise([row])
    assert s["bounded_influence"] is None and s["max_bias_10"] is None
    assert "no θ*" in s["bounded_influence_reason"]


@objective("sc1_rob_raises", replace=True)
def _raises(dist, y):
    raise ArithmeticError("robustness cannot use me")


def test_a_user_objective_that_raises_is_a_failed_row_with_its_message():
    row = robustness.run("sc1_rob_raises", _unit(LOCATION), seed=0)
    assert row["status"] == "failed" and "robustness cannot use me" in row["reason"]
    assert set(robustness.ROW_KEYS) | set(_unit(LOCATION)) == set(row)
    assert robustness.summarise([row])["bounded_influence"] is None
