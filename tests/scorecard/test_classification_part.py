"""Scorecard part 5 (classification): gaps to the true probabilities, extremeness, noisy digits."""

from __future__ import annotations

import json

import pytest
import torch

from likelab import objective
from likelab.scorecard import battery
from likelab.scorecard import classification as part

XOR = "xor:flip=0.2"


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The orchestrator's workers run one torch thread; so do these tests (on a shared 2-core
    machine two threads spin against other processes and run 10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _unit(setting: str, *, quick: bool = True, **change):
    (unit,) = [u for u in part.units("log", quick=quick) if u["setting"] == setting]
    return {**unit, **change}


def test_units_are_the_three_settings_quick_smaller_than_full():
    quick, full = part.units("log", quick=True), part.units("log", quick=False)
    assert [u["setting"] for u in quick] == [u["setting"] for u in full]
    assert {u["setting"] for u in quick} == {XOR, "next-word", "digits / noise symmetric:0.4"}
    for q, f in zip(quick, full, strict=True):
        assert q["epochs"] * q["seeds"] < f["epochs"] * f["seeds"]
    assert _unit("digits / noise symmetric:0.4")["noise"] == "symmetric:0.4"
    json.dumps(quick)


def test_log_learns_xors_probabilities_and_linear_pushes_them_to_0_and_1():
    # The truth is known in closed form: P(Y=1|x) = 0.8 where XOR is 1, 0.2 elsewhere, so
    # mean |p - 1/2| = 0.3 and no true probability is within 0.01 of 0 or 1.
    unit = _unit(XOR)
    log = part.run("log", unit, seed=0)
    linear = part.run("linear", unit, seed=0)
    assert log["status"] == linear["status"] == "ok"
    assert log["true_extremeness"] == pytest.approx(0.3)
    assert log["true_extreme_share"] == 0.0
    assert log["prob_gap"] < 0.02 < 0.15 < linear["prob_gap"]
    assert log["prob_gap"] < linear["prob_gap"]
    assert log["extremeness"] == pytest.approx(0.3, abs=0.02)
    assert linear["extremeness"] > 0.45 and linear["extreme_share"] >= 0.9
    assert log["extreme_share"] == 0.0
    # the same accuracy: only the probabilities differ
    assert log["accuracy"] == pytest.approx(linear["accuracy"], abs=0.05)
    # two classes: the total variation is the mean |p̂ - p|, which is the trainer's prob_gap
    assert log["tv"] == pytest.approx(log["prob_gap"], abs=1e-12)


def test_next_word_gap_to_the_corpus_frequencies():
    unit = _unit("next-word")
    log = part.run("log", unit, seed=0)
    linear = part.run("linear", unit, seed=0)
    assert log["status"] == linear["status"] == "ok"
    assert log["tv"] < 0.05 < 0.2 < linear["tv"]
    assert log["tv_max"] >= log["tv"]
    assert linear["extreme_share"] > log["extreme_share"]


def test_noisy_digits_give_accuracy_and_ece_on_clean_labels():
    row = part.run("log", _unit("digits / noise symmetric:0.4"), seed=0)
    assert row["status"] == "ok"
    assert 0.1 < row["accuracy"] <= 1.0 and 0.0 <= row["ece"] <= 1.0
    assert row["prob_gap"] is None and row["tv"] is None  # the truth is unknown here
    assert row["accuracy_sd"] is None  # one seed: no spread is claimed


def test_rows_are_deterministic_and_seeded_by_name():
    unit = _unit(XOR, epochs=40)
    torch.manual_seed(123)  # the global stream must not matter
    a = part.run("gce:q=0.7", unit, seed=4)
    torch.manual_seed(999)
    b = part.run("gce:q=0.7", unit, seed=4)
    assert json.dumps(a) == json.dumps(b)
    c = part.run("gce:q=0.7", unit, seed=5)
    assert c["seeds"] != a["seeds"]
    assert a["seeds"] == [battery.stream_seed(4, "classification", f"{XOR} / seed 0")]
    two = part.run("gce:q=0.7", {**unit, "seeds": 2}, seed=4)
    assert two["seeds"][0] == a["seeds"][0] and two["runs"] == two["ok_runs"] == 2
    assert two["accuracy_sd"] is not None


@pytest.mark.parametrize(("phi", "builtin"), [("phi:-p", "linear"), ("phi:-l", "log")])
def test_phi_objectives_train_like_the_builtins(phi, builtin):
    # the same rule through the φ machinery: the same network to float32 rounding
    unit = _unit(XOR)
    want, got = part.run(builtin, unit, seed=1), part.run(phi, unit, seed=1)
    assert got["status"] == want["status"] == "ok"
    assert got["stops"][0]["epoch"] == want["stops"][0]["epoch"]
    for key in ("accuracy", "prob_gap", "extremeness", "extreme_share"):
        assert got[key] == pytest.approx(want[key], abs=1e-6), key


@pytest.mark.parametrize("spec", ["crps", "hyvarinen"])
def test_an_objective_that_cannot_train_a_classifier_is_not_applicable(spec):
    for unit in part.units(spec, quick=True):
        row = part.run(spec, unit, seed=0)
        assert row["status"] == "not applicable"
        assert "cannot train a classifier" in row["reason"] and "\n" not in row["reason"]
        assert all(row[m] is None for m in part.METRICS)
        json.dumps(row)


def test_failures_are_rows_with_their_reason():
    unit = _unit(XOR, epochs=20)
    unknown = part.run("no-such-objective", unit, seed=0)
    assert unknown["status"] == "failed" and "no-such-objective" in unknown["reason"]

    @objective("scorecard_test_broken", replace=True)
    def broken(dist, y):
        raise RuntimeError("boom")

    row = part.run("scorecard_test_broken", unit, seed=0)
    assert row["status"] == "failed" and "boom" in row["reason"]
    diverged = part.run("log", {**unit, "lr": 1e30}, seed=0)
    assert diverged["status"] == "failed", diverged["reason"]
    assert "diverged" in diverged["reason"] and diverged["accuracy"] is None
    json.dumps([unknown, row, diverged])


def test_summarise_takes_each_entry_from_its_setting_and_says_why_when_missing():
    rows = [
        {"setting": XOR, "status": "ok", "prob_gap": 0.2, "extremeness": 0.5,
         "extreme_share": 1.0},
        {"setting": "next-word", "status": "ok", "tv": 0.3},
        {"setting": "digits / noise symmetric:0.4", "status": "not applicable",
         "reason": "no formula"},
    ]  # fmt: skip
    s = part.summarise(rows)
    assert s["prob_gap"] == 0.2 and s["extreme_share"] == 1.0 and s["next_word_tv"] == 0.3
    assert s["ece"] is None and "no formula" in s["ece_reason"]
    assert s["noisy_accuracy"] is None
    assert part.summarise([])["prob_gap"] is None
