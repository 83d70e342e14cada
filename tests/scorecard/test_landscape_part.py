"""Scorecard part 2 (landscape): shares of multimodal risks and of minima farther than the MLE's."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from likelab.families import get_family
from likelab.landscape import evaluate, find_local_minima
from likelab.landscape.grid import significant_minima
from likelab.landscape.grid import summarise as summarise_landscape
from likelab.objectives import get_objective
from likelab.scorecard import battery
from likelab.scorecard import landscape as part


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The orchestrator's workers run one torch thread; so do these tests (on a shared 2-core
    machine two threads spin against other processes and run 10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _unit(truth: str, n: int, kind: str, *, quick: bool = True, datasets: int | None = None):
    (unit,) = [
        u
        for u in part.units("log", quick=quick)
        if u["truth"] == truth and u["n"] == n and u["kind"] == kind
    ]
    return {**unit, "datasets": datasets} if datasets is not None else unit


NORMAL = "normal:loc=0,scale=1"


def test_units_cover_the_battery_with_unique_settings():
    for quick in (True, False):
        units = part.units("linear", quick=quick)
        assert len(units) == (
            len(battery.LANDSCAPE_TRUTHS) * len(battery.LANDSCAPE_N) * len(battery.LANDSCAPE_KINDS)
        )
        assert len({u["setting"] for u in units}) == len(units)
        assert units == part.units("dpd:beta=0.5", quick=quick)  # the same scans for everyone
        json.dumps(units)
    narrow = _unit(NORMAL, 10, "location-narrow")
    assert narrow["family"] == "normal:scale=0.1"  # the seed's N(mu, 0.1²)
    assert _unit("student_t:df=5,loc=0,scale=1", 10, "location-scale")["family"] == (
        "student_t:df=5"
    )


@pytest.mark.parametrize("kind", ["location", "location-narrow", "location-scale"])
@pytest.mark.parametrize("n", [10, 100])
def test_log_on_the_normal_has_one_minimum_on_every_dataset(kind, n):
    # -mean log N(y; mu, s²) = log s + ((ybar - mu)² + S²) / (2 s²) + const: convex in mu, one
    # stationary point in (mu, s); the grid never shows a second minimum.
    row = part.run("log", _unit(NORMAL, n, kind), seed=3)
    assert row["status"] == "ok", row["reason"]
    assert row["evaluated"] == row["datasets"] > 0
    assert row["multimodal"] == 0 and row["max_minima"] == 1
    assert row["multimodal_share"] == 0.0 and row["multimodal_se"] == 0.0
    assert row["evidence"] is None
    # paired with itself: never farther, always tied
    assert row["farther"] == 0 and row["ties"] == row["compared"] == row["datasets"]


def test_linear_is_multimodal_at_the_seeds_narrow_scale_and_log_is_not():
    # The seed's picture: ten N(0, 1) draws, model N(mu, 0.1²). -mean f is a kernel density
    # estimate with bandwidth 0.1 (negated): one bump per isolated observation.
    unit = _unit(NORMAL, 10, "location-narrow")
    linear = part.run("linear", unit, seed=0)
    log = part.run("log", unit, seed=0)
    assert linear["status"] == log["status"] == "ok"
    assert linear["multimodal_share"] >= 0.8
    assert linear["multimodal_se"] == pytest.approx(
        math.sqrt(linear["multimodal_share"] * (1 - linear["multimodal_share"]) / 40)
    )
    assert log["multimodal"] == 0
    # at the truth's scale the same sum is a KDE with bandwidth 1: oversmoothed, unimodal here
    wide = part.run("linear", _unit(NORMAL, 10, "location"), seed=0)
    assert wide["multimodal_share"] < linear["multimodal_share"]
    # linear's mode-seeking minima are farther from the truth than the sample mean, mostly
    assert linear["farther_share"] > 0.5
    assert linear["median_distance"] > linear["mle_median_distance"]


def test_the_evidence_is_reproduced_by_the_landscape_module_on_the_named_dataset():
    unit = _unit(NORMAL, 10, "location-narrow")
    row = part.run("linear", unit, seed=0)
    ev = row["evidence"]
    assert ev is not None and ev["local_minima"] > 1
    assert "--seed " + str(ev["seed"]) in ev["command"]
    assert "--family normal:scale=0.1" in ev["command"]
    # the dataset the seed names, evaluated one at a time by likelab.landscape.evaluate
    y = get_family("normal").sample(10, seed=ev["seed"], loc=0.0, scale=1.0)
    land = evaluate(y, unit["family"], ["linear"], {"loc": np.linspace(-5.0, 5.0, 501)})
    minima = land.results["linear"].minima
    assert len(minima) == ev["local_minima"]
    for got, want in zip(ev["minima"], minima, strict=False):
        assert got["params"]["loc"] == pytest.approx(want.params["loc"], abs=1e-12)
        assert got["value"] == pytest.approx(want.value, rel=1e-12)


def test_the_grid_minimum_of_logs_location_scan_is_the_sample_mean():
    unit = _unit(NORMAL, 10, "location", datasets=25)
    data, _ = part._datasets(unit, 5)
    fam = get_family(unit["family"])
    lo, hi, k = unit["grid"]["loc"]
    axes = {"loc": np.linspace(lo, hi, k)}
    per = part._evaluate({"log": get_objective("log")}, fam, fam.check_data(data), ("loc",), axes)
    step = (hi - lo) / (k - 1)
    argmins = np.array([d["argmin"]["loc"] for d in per["log"]])
    assert np.abs(argmins - data.mean(axis=1)).max() <= step / 2 + 1e-12


def test_the_batched_risk_equals_one_dataset_at_a_time():
    unit = _unit("student_t:df=5,loc=0,scale=1", 10, "location-scale", datasets=6)
    data, _ = part._datasets(unit, 1)
    fam = get_family(unit["family"])
    axes = {p: np.linspace(lo, hi, k) for p, (lo, hi, k) in unit["grid"].items()}
    objs = {"dpd:beta=0.5": get_objective("dpd:beta=0.5"), "log": get_objective("log")}
    per = part._evaluate(objs, fam, fam.check_data(data), ("loc", "scale"), axes)
    for j, y in enumerate(data):
        land = evaluate(y, fam, list(objs), axes)
        for spec in objs:
            assert per[spec][j]["argmin"] == land.results[spec].argmin


def test_rounding_plateaus_are_one_minimum():
    # Laplace log on n = 10 (even): the risk is exactly flat between the two middle order
    # statistics, and its floating-point values there differ by rounding noise, which the plain
    # plateau rule reads as several minima. The row (and likelab.landscape) must say one.
    unit = _unit("laplace:loc=0,scale=1", 10, "location", datasets=40)
    row = part.run("log", unit, seed=0)
    assert row["multimodal"] == 0
    data, _ = part._datasets(unit, 0)
    axes = {"loc": np.linspace(*unit["grid"]["loc"][:2], unit["grid"]["loc"][2])}
    lands = [evaluate(y, unit["family"], ["log"], axes).results["log"] for y in data]
    assert all(land.local_minima == 1 for land in lands)
    raw = [len(find_local_minima(land.values)) for land in lands]
    assert max(raw) > 1  # the fault the merge closes is really there


def test_significant_minima_keeps_deep_minima_and_merges_shallow_ones():
    axes = {"x": np.arange(7.0)}
    genuine = np.array([3.0, 1.0, 2.0, 0.5, 2.0, 0.8, 4.0])
    land = summarise_landscape("t", genuine, ("x",), axes, eps=0.0)
    assert len(significant_minima(genuine, land.minima, 1e-9)) == 3
    noisy = np.array([3.0, 1.0, 1.0 + 4e-16, 1.0 + 2e-16, 1.0 + 4e-16, 1.0, 4.0])
    land = summarise_landscape("t", noisy, ("x",), axes, eps=0.0)
    assert land.local_minima > 1
    kept = significant_minima(noisy, land.minima, 1e-12)
    assert len(kept) == 1 and kept[0] is land.minima[0]
    # summarise at float64's epsilon merges them itself
    assert summarise_landscape("t", noisy, ("x",), axes).local_minima == 1
    # 2-D: two pits joined by a pass 0.5 high stay two at tol 0.1, merge at tol 1
    grid = np.full((5, 5), 3.0)
    grid[1, 1], grid[3, 3], grid[2, 2] = 0.0, 0.2, 0.7
    land = summarise_landscape(
        "t", grid, ("a", "b"), {"a": np.arange(5.0), "b": np.arange(5.0)}, eps=0.0
    )
    assert len(significant_minima(grid, land.minima, 0.1)) == 2
    assert len(significant_minima(grid, land.minima, 1.0)) == 1


def test_rows_are_deterministic_json_ready_and_seeded_by_name():
    unit = _unit(NORMAL, 10, "location-narrow", datasets=8)
    a = part.run("lq:q=0.5", unit, seed=11)
    b = part.run("lq:q=0.5", unit, seed=11)
    assert json.dumps(a) == json.dumps(b)
    other = part.run("lq:q=0.5", unit, seed=12)
    assert json.dumps(other) != json.dumps(a)
    # the datasets depend on (seed, truth, n, index), not on the scan or its size
    d1, s1 = part._datasets(unit, 11)
    d2, s2 = part._datasets({**_unit(NORMAL, 10, "location-scale"), "datasets": 4}, 11)
    assert s1[:4] == s2 and np.array_equal(d1[:4], d2)
    assert set(a) == set(part._EMPTY) | set(unit)


@pytest.mark.parametrize(("phi", "builtin"), [("phi:-p", "linear"), ("phi:-l", "log")])
def test_phi_objectives_give_the_builtins_numbers(phi, builtin):
    for kind in ("location-narrow", "location-scale"):
        unit = _unit("student_t:df=5,loc=0,scale=1", 10, kind, datasets=10)
        want = part.run(builtin, unit, seed=2)
        got = part.run(phi, unit, seed=2)
        for key in ("multimodal", "farther", "ties", "boundary", "median_distance", "max_minima"):
            assert got[key] == want[key], (kind, key)


def test_an_objective_that_cannot_be_evaluated_is_a_row_not_an_exception():
    unit = _unit("laplace:loc=0,scale=1", 10, "location", datasets=4)
    row = part.run("hyvarinen", unit, seed=0)
    assert row["status"] == "not applicable"
    assert "Laplace" in row["reason"] and "\n" not in row["reason"]
    assert math.isnan(row["multimodal_share"]) and row["evidence"] is None
    json.dumps(row)
    bad = part.run("no-such-objective", unit, seed=0)
    assert bad["status"] == "failed" and "no-such-objective" in bad["reason"]
    nan = part.run("phi:log(p-0.5)", unit, seed=0)  # NaN for p < 0.5: a recorded failure
    assert nan["status"] == "failed" and "NaN at p from" in nan["reason"]


def test_a_grid_that_does_not_fit_in_memory_is_refused_before_allocating(monkeypatch):
    monkeypatch.setenv("LIKELAB_MEMORY_LIMIT", "1MB")
    row = part.run("log", _unit(NORMAL, 100, "location-scale", quick=False), seed=0)
    assert row["status"] == "failed"
    assert "memory" in row["reason"] and "LIKELAB_MEMORY_LIMIT" in row["reason"]


def test_summarise_pools_the_ok_rows_and_says_why_when_nothing_is_determined():
    rows = [
        {"kind": "location", "status": "ok", "evaluated": 10, "multimodal": 2, "compared": 10,
         "farther": 5},
        {"kind": "location-scale", "status": "ok", "evaluated": 30, "multimodal": 30,
         "compared": 20, "farther": 15},
        {"kind": "location", "status": "failed", "reason": "boom", "evaluated": 0,
         "multimodal": 0, "compared": 0, "farther": 0},
    ]  # fmt: skip
    s = part.summarise(rows)
    assert s["multimodal_rate"] == pytest.approx(32 / 40)
    assert s["farther_than_mle_rate"] == pytest.approx(20 / 30)
    assert s["multimodal_rate_by_kind"] == {"location": 0.2, "location-scale": 1.0}
    none = part.summarise(rows[2:])
    assert none["multimodal_rate"] is None and "boom" in none["multimodal_rate_reason"]
    assert none["farther_than_mle_rate"] is None
