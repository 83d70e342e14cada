"""The scorecard's orchestration: units through the executors into the store, resumable.

Checked on the landscape part (fast in its quick sizes): an interrupted run keeps whole units and
the next run completes it with the rows of an uninterrupted run; a process pool gives the same
rows as the local executor; a store of another seed or size, or a file that is no store, is
refused; bad arguments raise before any work; a φ-objective spelled as the user wrote it is
judged with linear's numbers.
"""

from __future__ import annotations

import pytest

from likelab.errors import ParameterError, StoreError, UnknownNameError
from likelab.scorecard.core import ScorecardInterrupted, scorecard

PARTS = ["landscape"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    store = tmp_path_factory.mktemp("sc") / "whole.duckdb"
    return scorecard(["phi:-p"], against=["log"], store=store, quick=True, parts=PARTS)


def test_a_phi_objective_is_judged_as_spelled_with_linears_numbers(uninterrupted):
    names = [o["objective"] for o in uninterrupted.objectives]
    assert names == ["phi:-p", "log"]
    phi = uninterrupted.objectives[0]
    again = scorecard(
        ["linear"],
        against=[],
        store=uninterrupted.store.replace("whole", "lin"),
        quick=True,
        parts=PARTS,
    )

    def numbers(rows):  # the evidence's command names the objective as spelled
        out = []
        for r in rows:
            r = dict(r)
            if isinstance(r.get("evidence"), dict):
                r["evidence"] = {k: v for k, v in r["evidence"].items() if k != "command"}
            out.append(r)
        return out

    assert numbers(phi["landscape"]) == numbers(again.objectives[0]["landscape"])
    assert any("phi:-p" in str(r.get("evidence")) for r in phi["landscape"])
    assert (
        phi["summary"]["multimodal_rate"]
        > 0.5
        > uninterrupted.objectives[1]["summary"]["multimodal_rate"]
    )


def test_an_interrupted_scorecard_resumes_to_the_uninterrupted_rows(uninterrupted, tmp_path):
    store = tmp_path / "cut.duckdb"
    seen = []

    def stop_after_five(done, total):
        seen.append(done)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(ScorecardInterrupted) as info:
        scorecard(
            ["phi:-p"],
            against=["log"],
            store=store,
            quick=True,
            parts=PARTS,
            on_unit=stop_after_five,
        )
    assert info.value.units_done == 5 and "5 of" in str(info.value)
    resumed = scorecard(["phi:-p"], against=["log"], store=store, quick=True, parts=PARTS)
    assert resumed.units_run == uninterrupted.units_total - 5
    assert resumed.objectives == uninterrupted.objectives
    assert resumed.front == uninterrupted.front and resumed.left_out == uninterrupted.left_out


def test_a_process_pool_gives_the_local_rows(uninterrupted, tmp_path):
    pooled = scorecard(
        ["phi:-p"],
        against=["log"],
        store=tmp_path / "pool.duckdb",
        quick=True,
        parts=PARTS,
        executor="process",
        workers=2,
    )
    assert pooled.objectives == uninterrupted.objectives


def test_stores_of_other_runs_and_files_that_are_no_store_are_refused(uninterrupted, tmp_path):
    with pytest.raises(StoreError, match="seed 0 and --quick"):
        scorecard(["phi:-p"], against=["log"], store=uninterrupted.store, quick=False, parts=PARTS)
    with pytest.raises(StoreError, match="seed 0"):
        scorecard(
            ["phi:-p"], against=["log"], store=uninterrupted.store, quick=True, seed=3, parts=PARTS
        )
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    with pytest.raises(StoreError, match="not a DuckDB file, so not a likelab scorecard store"):
        scorecard(["log"], store=junk, quick=True, parts=PARTS)
    with pytest.raises(StoreError, match="is a directory"):
        scorecard(["log"], store=tmp_path, quick=True, parts=PARTS)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"objectives": ["nope"]}, UnknownNameError, "nope"),
        ({"objectives": ["phi:__import__('os')"]}, Exception, "phi"),
        ({"objectives": [""]}, ParameterError, "non-empty"),
        ({"objectives": ["log"], "parts": ["nonsense"]}, ParameterError, "parts must be"),
        ({"objectives": ["log"], "executor": "threads"}, ParameterError, "executor"),
        ({"objectives": ["log"], "workers": 0}, ParameterError, "workers"),
        ({"objectives": ["log"], "seed": -1}, ParameterError, "seed"),
        ({"objectives": ["log"], "scheduler": "tcp://x:1"}, ParameterError, "dask"),
    ],
)
def test_bad_arguments_raise_before_any_work(tmp_path, kwargs, error, match):
    store = tmp_path / "never.duckdb"
    with pytest.raises(error, match=match):
        scorecard(store=store, quick=True, **{"parts": PARTS, **kwargs})
    assert not store.exists()


def test_the_efficiency_check_by_simulation_agrees_with_the_theory_and_resumes(tmp_path):
    # the paired study at n = 100 (200 datasets in quick mode) beside the ARE by quadrature:
    # dpd:beta=0.5 on the normal (both parameters free), within 3 Monte Carlo SEs; log's own
    # relative efficiency is 1 with no Monte Carlo error (the same fits)
    store = tmp_path / "eff.duckdb"
    first = scorecard(
        ["dpd:beta=0.5"], against=["log"], store=store, quick=True, parts=["efficiency"]
    )
    dpd = first.objectives[0]
    theory = next(r for r in dpd["efficiency"] if r["family"] == "normal" and r["status"] == "ok")
    sim = next(r for r in dpd["efficiency_simulation"] if "normal" in r["setting"])
    for p in ("loc", "scale"):
        assert abs(sim[p]["rel_eff"] - theory["are"][p]) <= 3 * sim[p]["rel_eff_mcse"], (p, sim)
    log = first.objectives[1]["efficiency_simulation"][0]
    assert log["loc"]["rel_eff"] == 1.0 and log["loc"]["rel_eff_mcse"] == 0.0
    again = scorecard(
        ["dpd:beta=0.5"], against=["log"], store=store, quick=True, parts=["efficiency"]
    )
    assert again.units_run == 0 and again.objectives == first.objectives
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "eff-efficiency-normal.duckdb",
        "eff-efficiency-student_t.duckdb",
        "eff.duckdb",
    ]


def test_the_scorecard_of_linear_says_what_the_seed_says(tmp_path):
    # the sum of likelihoods: improper, multimodal at the seed's small scale, ARE 0.65 for the
    # normal location (3^{3/2}/8, the dpd closed form at beta = 1), bounded influence, and
    # probabilities pushed to 0 and 1 on XOR with 20% flipped labels
    r = scorecard(["linear"], against=[], store=tmp_path / "lin.duckdb", quick=True)
    s = r.objectives[0]["summary"]
    assert s["proper"] == "improper"
    assert s["multimodal_rate_by_kind"]["location-narrow"] == 1.0
    assert abs(s["min_are"] - 3**1.5 / 8) < 1e-8
    assert s["bounded_influence"] is True
    assert s["prob_gap"] > 0.15 and s["extreme_share"] > 0.9
