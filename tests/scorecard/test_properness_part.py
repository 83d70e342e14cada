"""scorecard.properness: verdicts with evidence per setting, and Bernardo's theorem for φ-rules."""

import json

import pytest
import torch

from likelab import objective
from likelab.errors import SpecError
from likelab.scorecard import properness
from likelab.scorecard.properness import bernardo_verdict

PHIS = {
    "phi:-l": "strictly proper",
    "phi:-2*l+3": "strictly proper",
    "phi:-p": "improper",
    "phi:-p**0.3": "improper",
    "phi:(1-p**0.7)/0.7": "improper",
    "phi:0*p+1": "proper",
}


def _unit(spec: str, setting: str) -> dict:
    (unit,) = [u for u in properness.units(spec, quick=True) if u["setting"] == setting]
    return unit


@pytest.mark.parametrize("spec", sorted(PHIS))
def test_bernardo_and_the_numerical_verdict_agree_on_three_or_more_classes(spec):
    b = bernardo_verdict(spec)
    assert b["applies"] and b["verdict"] == PHIS[spec]
    rows = [properness.run(spec, _unit(spec, f"classes K={k}"), seed=0) for k in (2, 3, 10)]
    assert all(r["status"] == "ok" and r["verdict"] == PHIS[spec] for r in rows)
    assert rows[0]["bernardo"] is None and rows[0]["agrees"] is None  # K = 2: no theorem
    for row in rows[1:]:
        assert row["bernardo"]["verdict"] == PHIS[spec] and row["agrees"] is True
    assert properness.summarise(rows)["bernardo_agrees"] is True


def test_bernardo_fits_the_affine_form_with_its_slope():
    b = bernardo_verdict("phi:-2*l+3")
    assert b["affine"] and b["b"] == pytest.approx(-2, abs=1e-12)
    assert b["a"] == pytest.approx(3, abs=1e-12) and b["residual"] <= 1e-9
    assert bernardo_verdict("phi:3*l")["verdict"] == "improper"  # b > 0 rewards the unlikely
    power = bernardo_verdict("phi:-p**0.3")
    assert power["affine"] is False and power["residual"] > 1e-3
    const = bernardo_verdict("phi:0*p+1")
    assert const["affine"] and const["b"] == 0.0
    # a one-argument function of the likelihood, and the built-in local rules
    assert bernardo_verdict(lambda p: -torch_log(p))["verdict"] == "strictly proper"
    assert bernardo_verdict("log")["verdict"] == "strictly proper"
    assert bernardo_verdict("lq:q=0.5")["verdict"] == "improper"
    json.dumps(b)


def torch_log(p):
    return p.log()


def test_bernardo_does_not_judge_what_it_cannot():
    brier = bernardo_verdict("brier")
    assert not brier["applies"] and brier["verdict"] is None
    assert "not written as a function of the likelihood" in brier["reason"]
    # an expression NaN for p < 0.5 is no objective at all: refused when it is built
    with pytest.raises(SpecError, match="NaN at p from"):
        bernardo_verdict("phi:log(p-0.5)")

    def nan_below_half(p):  # a function: judged, and undetermined with the reason
        return torch.log(p - 0.5)

    nan = bernardo_verdict(nan_below_half)
    assert nan["verdict"] == "undetermined" and "not a finite score" in nan["reason"]

    def refuses(p):
        raise ValueError("my φ refuses p")

    raised = bernardo_verdict(refuses)
    assert raised["applies"] and raised["verdict"] == "undetermined"
    assert "my φ refuses p" in raised["reason"]


def test_log_is_strictly_proper_in_every_quick_setting():
    rows = [properness.run("log", u, seed=3) for u in properness.units("log", quick=True)]
    assert {r["kind"] for r in rows} == {"classes", "density"}
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    assert all(r["verdict"] == "strictly proper" for r in rows), [r["verdict"] for r in rows]
    assert all(r["evidence"]["distance"] < 1e-6 for r in rows)
    json.dumps(rows)
    summary = properness.summarise(rows)
    assert summary["proper"] == "strictly proper"
    assert summary["bernardo"] == "strictly proper" and summary["bernardo_agrees"] is True


def test_same_seed_same_row_and_the_setting_names_the_stream():
    unit = _unit("linear", "classes K=3")
    first = properness.run("linear", unit, seed=11)
    assert properness.run("linear", unit, seed=11) == first
    density = _unit("linear", "truth exponential:rate=1 / family exponential")
    assert properness.run("gce:q=0.5", density, seed=5) == properness.run(
        "gce:q=0.5", density, seed=5
    )
    again = properness.run("lq:q=0.5", unit, seed=11)
    other = properness.run("lq:q=0.5", unit, seed=12)
    # the truths come from (seed, part, setting), not from the objective: the same count,
    # and another seed draws other random truths
    assert again["evidence"]["truths"] == first["evidence"]["truths"]
    assert json.dumps(other) != json.dumps(again)


@objective("sc1_raises_on_forecasts", replace=True)
def _raises(dist, y):
    raise RuntimeError("my objective refuses this forecast")


def test_a_user_objective_that_raises_is_a_failed_row_with_its_message():
    row = properness.run("sc1_raises_on_forecasts", _unit("log", "classes K=3"), seed=0)
    assert row["status"] == "failed"
    assert "my objective refuses this forecast" in row["reason"]
    assert row["verdict"] is None and row["setting"] == "classes K=3"
    assert set(properness.ROW_KEYS) | set(_unit("log", "classes K=3")) == set(row)
    json.dumps(row)


def test_a_malicious_expression_is_a_failed_row_and_nothing_runs():
    for spec in ("phi:__import__('os')", "phi:p.__class__", "phi:p**", "phi:"):
        row = properness.run(spec, _unit("log", "classes K=2"), seed=0)
        assert row["status"] == "failed" and row["reason"].startswith("phi:"), row


def test_a_rule_undefined_on_classes_is_not_applicable():
    row = properness.run("crps", _unit("crps", "classes K=3"), seed=0)
    assert row["status"] == "not applicable" and "crps" in row["reason"]


def _row(setting, verdict, status="ok", agrees=None, bernardo=None):
    return {
        "setting": setting,
        "status": status,
        "verdict": verdict,
        "reason": "" if status == "ok" else "boom",
        "bernardo": bernardo,
        "agrees": agrees,
    }


def test_summarise_reports_the_worst_verdict_and_never_one_without_evidence():
    b = {"verdict": "improper"}
    rows = [
        _row("a", "strictly proper"),
        _row("b", "improper", agrees=True, bernardo=b),
        _row("c", "proper"),
    ]
    s = properness.summarise(rows)
    assert s["proper"] == "improper" and "b" in s["proper_reason"]
    assert s["bernardo"] == "improper" and s["bernardo_agrees"] is True
    s = properness.summarise([_row("a", "strictly proper"), _row("b", None, status="failed")])
    assert s["proper"] == "undetermined" and "boom" in s["proper_reason"]
    s = properness.summarise([_row("a", None, status="failed")])
    assert s["proper"] is None and "no setting has a verdict" in s["proper_reason"]
    assert s["bernardo"] is None and s["bernardo_agrees"] is None
    rows = [_row("k3", "improper", agrees=False, bernardo={"verdict": "proper"})]
    assert properness.summarise(rows)["bernardo_agrees"] is False


@pytest.mark.parametrize(("phi", "builtin"), [("phi:-p", "linear"), ("phi:-l", "log")])
def test_a_phi_spec_gives_its_builtins_rows(phi, builtin):
    for setting in ("classes K=3", "truth poisson:rate=3 / family poisson"):
        a = properness.run(phi, _unit(phi, setting), seed=0)
        b = properness.run(builtin, _unit(builtin, setting), seed=0)
        assert a["claimed"] is None  # a φ-spec claims nothing; everything else is the same
        for row in (a, b):
            del row["claimed"], row["agrees_with_claim"]
        assert a == b
