"""scorecard.efficiency: ARE against log by theory, no number without a θ*."""

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from likelab import objective
from likelab.scorecard import efficiency


def _unit(setting: str) -> dict:
    (unit,) = [u for u in efficiency.units("log", quick=False) if u["setting"] == setting]
    return unit


NORMAL_LOCATION = "family normal:scale=1 / truth normal:loc=0,scale=1"
NORMAL_BOTH = "family normal / truth normal:loc=0,scale=1"


def _linear_are_by_quadrature() -> float:
    # ψ(z) = z exp(-z²/2) for S = -φ(y - μ); ARE = A² / B with A = E ψ', B = E ψ² under N(0, 1)
    a = integrate.quad(lambda z: (1 - z * z) * np.exp(-z * z / 2) * stats.norm.pdf(z), -40, 40)
    b = integrate.quad(lambda z: z * z * np.exp(-z * z) * stats.norm.pdf(z), -40, 40)
    return a[0] ** 2 / b[0]


def test_linear_at_the_normal_location_has_the_seeds_are():
    row = efficiency.run("linear", _unit(NORMAL_LOCATION), seed=0)
    assert row["status"] == "ok" and row["params"] == ["loc"]
    closed = (1 + 2 * 1.0) ** 1.5 / (1 + 1.0) ** 3  # (1+2b)^{3/2}/(1+b)^3 at b = 1
    assert closed == pytest.approx(_linear_are_by_quadrature(), rel=1e-10)
    assert row["are"]["loc"] == pytest.approx(closed, rel=1e-7)
    assert round(row["are"]["loc"], 2) == 0.65
    assert efficiency.summarise([row])["min_are"] == pytest.approx(closed, rel=1e-7)
    json.dumps(row)


def test_linear_with_both_parameters_free_has_no_are_and_says_why():
    row = efficiency.run("linear", _unit(NORMAL_BOTH), seed=0)
    assert row["status"] == "not applicable"
    assert "no θ*" in row["reason"] and "scale" in row["reason"]
    assert all(math.isnan(v) for v in row["are"].values())
    s = efficiency.summarise([row])
    assert s["min_are"] is None and s["min_are_at"] is None
    assert "no θ*" in s["min_are_reason"]


def test_log_is_its_own_reference_in_every_quick_setting():
    units = efficiency.units("log", quick=True)
    rows = [efficiency.run("log", u, seed=0) for u in units]
    assert len(rows) == len(units) >= 4 and all(r["status"] == "ok" for r in rows)
    for r in rows:
        assert all(v == pytest.approx(1.0, abs=1e-9) for v in r["are"].values()), r
        assert r["theta_star_differs"] is False
    assert efficiency.summarise(rows)["min_are"] == pytest.approx(1.0, abs=1e-9)
    # deterministic: the same row again
    assert efficiency.run("log", units[0], seed=0) == rows[0]


def test_summarise_leaves_out_an_are_around_another_limit():
    rows = [
        {"setting": "a", "status": "ok", "are": {"loc": 0.9}, "theta_star_differs": False},
        {"setting": "b", "status": "ok", "are": {"rate": 0.5}, "theta_star_differs": True},
        {"setting": "c", "status": "not applicable", "reason": "no θ*", "are": {"x": math.nan}},
        {"setting": "d", "status": "failed", "reason": "boom"},
    ]
    s = efficiency.summarise(rows)
    assert s["min_are"] == 0.9 and s["min_are_at"] == {"setting": "a", "param": "loc"}
    assert "b" in s["min_are_note"]
    s = efficiency.summarise(rows[1:])
    assert s["min_are"] is None
    assert "θ* differs" in s["min_are_reason"] and "boom" in s["min_are_reason"]


@objective("sc1_eff_raises", replace=True)
def _raises(dist, y):
    raise ValueError("efficiency cannot use me")


def test_a_user_objective_that_raises_is_a_failed_row_with_its_message():
    row = efficiency.run("sc1_eff_raises", _unit(NORMAL_LOCATION), seed=0)
    assert row["status"] == "failed" and "efficiency cannot use me" in row["reason"]
    assert row["are"] is None
    assert set(efficiency.ROW_KEYS) | set(_unit(NORMAL_LOCATION)) == set(row)


def test_phi_minus_p_has_linears_are():
    unit = _unit(NORMAL_LOCATION)
    a, b = efficiency.run("phi:-p", unit, seed=0), efficiency.run("linear", unit, seed=0)
    assert a["are"]["loc"] == pytest.approx(b["are"]["loc"], rel=1e-12)
    assert a["theta_star"]["loc"] == pytest.approx(b["theta_star"]["loc"], abs=1e-12)
