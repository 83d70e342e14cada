"""Performance measures: the SQL summary against the same formulas in numpy (Morris et al. 2019)."""

import json
import math
import textwrap

import duckdb
import numpy as np
import pytest
from tests.cli_support import make_study_store

from likelab.errors import LikelabError
from likelab.study import Store, load_study, run_study, summarise
from likelab.study.summary import _measures, _paired, export

STUDY = """
name: summary
seed: 3
dgps:
  - family: normal
    params: {loc: 0, scale: 1}
  - family: normal
    params: {loc: 0, scale: 1}
    contamination: {eps: 0.1, dgp: "normal:loc=6,scale=1"}
sample_sizes: [20]
replicates: 200
model: {family: normal}
objectives: [log, "dpd:beta=0.5", linear]
"""


@pytest.fixture(scope="module")
def study_store(tmp_path_factory):
    return make_study_store(tmp_path_factory.mktemp("summary"), STUDY, "s")[1]


def test_summary_matches_numpy(study_store):
    store = study_store
    with duckdb.connect(str(store), read_only=True) as con:
        raw = con.execute(
            "SELECT dgp, objective, parameter, replicate, truth, estimate, se, converged "
            "FROM results ORDER BY dgp, objective, parameter, replicate"
        ).fetchall()
    table = {}
    for dgp, obj, par, rep, truth, est, se, ok in raw:
        table.setdefault((dgp, obj, par), []).append((rep, truth, est, se, ok))
    rows = summarise(store)
    assert len(rows) == len(table) == 2 * 3 * 2
    for row in rows:
        data = table[(row["dgp"], row["objective"], row["parameter"])]
        ok = [d for d in data if d[4] and np.isfinite(d[2])]
        est = np.array([d[2] for d in ok])
        se = np.array([d[3] for d in ok])
        theta = data[0][1]
        k = len(est)
        assert row["replicates"] == len(data) == 200
        assert np.isclose(row["failure_rate"], 1 - k / len(data), rtol=0, atol=1e-15)
        if k < 2:
            assert row["bias"] is None or k == 1
            continue
        emp = est.std(ddof=1)
        mse = np.mean((est - theta) ** 2)
        cover = np.isfinite(se)
        c = np.mean(np.abs(est[cover] - theta) <= 1.959963984540054 * se[cover])
        expect = {
            "bias": est.mean() - theta,
            "bias_mcse": emp / np.sqrt(k),
            "emp_se": emp,
            "emp_se_mcse": emp / np.sqrt(2 * (k - 1)),
            "mse": mse,
            "mse_mcse": np.sqrt(np.sum(((est - theta) ** 2 - mse) ** 2) / (k * (k - 1))),
            "model_se": np.sqrt(np.mean(se[cover] ** 2)),
            # Morris et al. (2019) Table 6, over the replicates with an SE (here: all of them)
            "model_se_rel_error": np.sqrt(np.mean(se[cover] ** 2)) / est[cover].std(ddof=1) - 1,
            "coverage": c,
            "coverage_mcse": np.sqrt(c * (1 - c) / cover.sum()),
        }
        for key, want in expect.items():
            assert np.isclose(row[key], want, rtol=1e-9, atol=1e-14), (key, row[key], want)
        # relative efficiency against log, paired on the replicates where both converged
        ref = {
            d[0]: d[2]
            for d in table[(row["dgp"], "log", row["parameter"])]
            if d[4] and np.isfinite(d[2])
        }
        mine = {d[0]: d[2] for d in ok}
        common = sorted(set(ref) & set(mine))
        a = np.array([mine[r] for r in common])
        b = np.array([ref[r] for r in common])
        re = (b.std(ddof=1) / a.std(ddof=1)) ** 2
        rho = np.corrcoef(a, b)[0, 1]
        assert np.isclose(row["rel_eff"], re, rtol=1e-9)
        mcse = 2 * re * np.sqrt(max(1 - rho**2, 0) / (len(common) - 1))
        assert np.isclose(row["rel_eff_mcse"], mcse, rtol=1e-6, atol=1e-7)
        # relative MSE against log on the same pairs: it includes bias
        sa, sb = (a - theta) ** 2, (b - theta) ** 2
        rm = sb.mean() / sa.mean()
        assert np.isclose(row["rel_mse"], rm, rtol=1e-12), (row["rel_mse"], rm)
        # the delta method for a ratio of paired means, written in its variance form
        m = len(common)
        c = np.cov(sa, sb, ddof=1)
        var = (c[1, 1] - 2 * rm * c[0, 1] + rm**2 * c[0, 0]) / (m * sa.mean() ** 2)
        assert np.isclose(row["rel_mse_mcse"], np.sqrt(var), rtol=1e-9), row
        if row["objective"] == "log":
            assert row["rel_mse"] == 1.0 and row["rel_mse_mcse"] == 0.0


def test_relative_mse_sees_the_bias_that_relative_efficiency_ignores(study_store):
    """Under 10% contamination at loc=6, log's location estimate is biased by about 0.6:
    its EmpSE is no worse than the robust dpd's, but its MSE is far larger."""
    rows = summarise(study_store)
    dirty = [r for r in rows if r["dgp"].startswith("0.9") and r["parameter"] == "loc"]
    dpd = next(r for r in dirty if r["objective"] == "dpd:beta=0.5")
    log = next(r for r in dirty if r["objective"] == "log")
    assert abs(log["bias"]) > 0.4 and abs(dpd["bias"]) < 0.2
    assert dpd["rel_mse"] > 3 and dpd["rel_mse"] - 3 * dpd["rel_mse_mcse"] > 1
    assert dpd["rel_eff"] < dpd["rel_mse"] / 2


def test_relative_mse_mcse_matches_the_spread_of_the_ratio_over_simulated_studies():
    """The delta-method MCSE against the standard deviation of the relative MSE over 4,000
    independent simulated studies of m = 300 paired replicates (correlated, biased estimates).
    The SD of 4,000 draws has a relative Monte Carlo error of about 1/sqrt(2 * 3999) = 1.1%;
    the mean of the reported MCSEs is closer still; the delta method's own error is O(1/m).
    A 5% tolerance is over 4 of those standard errors."""
    rng = np.random.default_rng(20261201)
    studies, m, theta = 4000, 300, 1.0
    z = rng.standard_normal((studies, m, 2))
    b = theta + 0.3 + z[..., 0]  # "log": biased by 0.3, SD 1
    a = theta + 0.05 + 0.8 * z[..., 0] + 0.9 * z[..., 1]  # correlated, SD about 1.2
    out = [_paired(a[s], b[s], theta) for s in range(studies)]
    ratios = np.array([o["rel_mse"] for o in out])
    mcse = np.array([o["rel_mse_mcse"] for o in out])
    sd = ratios.std(ddof=1)
    assert abs(np.mean(mcse) / sd - 1) < 0.05, (np.mean(mcse), sd)
    # and the ratio is centred on the population value (1 + 0.3^2) / (0.05^2 + 0.8^2 + 0.9^2)
    truth = (1 + 0.09) / (0.0025 + 0.64 + 0.81)
    assert abs(ratios.mean() - truth) < 4 * sd / math.sqrt(studies) + 2 * sd**2 / truth


def test_model_se_relative_error_and_its_mcse_match_simulated_studies():
    """ModSE/EmpSE - 1 over 4,000 independent simulated studies of k = 200 replicates whose
    model SEs are 20% too small on average and noisy (a scaled chi distribution): the studies'
    mean recovers the population value and the SD of the 4,000 relative errors matches the mean
    of the reported Table 6 MCSEs (relative MC error of the SD about 1.1%; 5% tolerance)."""
    rng = np.random.default_rng(20261202)
    studies, k, df = 4000, 200, 8
    est = rng.standard_normal((studies, k))  # EmpSE 1
    se = 0.8 * np.sqrt(rng.chisquare(df, (studies, k)) / df)  # ModSE 0.8: relative error -0.2
    out = [_measures(est[s], se[s], 0.0) for s in range(studies)]
    err = np.array([o["model_se_rel_error"] for o in out])
    mcse = np.array([o["model_se_rel_error_mcse"] for o in out])
    # the same number from numpy, independently, on the first study
    want = np.sqrt(np.mean(se[0] ** 2)) / est[0].std(ddof=1) - 1
    assert np.isclose(err[0], want, rtol=1e-12)
    sd = err.std(ddof=1)
    assert abs(np.mean(mcse) / sd - 1) < 0.05, (np.mean(mcse), sd)
    assert abs(err.mean() - (-0.2)) < 4 * sd / math.sqrt(studies) + 0.01
    # fewer than two replicates with an SE: undetermined, not a number
    one = _measures(np.array([0.1, 0.2]), np.array([0.5, np.nan]), 0.0)
    assert one["model_se_rel_error"] is None and one["model_se_rel_error_mcse"] is None


def test_undefined_ratios_are_none_not_numbers():
    same = np.array([1.0, 1.0, 1.0])
    out = _paired(same, np.array([0.5, 1.5, 1.0]), 1.0)  # the objective hits the truth exactly
    assert out == {"rel_eff": None, "rel_eff_mcse": None, "rel_mse": None, "rel_mse_mcse": None}
    assert _paired(np.array([1.0]), np.array([2.0]), 0.0)["rel_mse"] is None


def _copy_rows(source, target, order):
    """A store holding the same study and rows as ``source``, inserted in ``order``."""
    with duckdb.connect(str(source), read_only=True) as con:
        study = con.execute("SELECT name, spec_hash, spec_json, likelab_version FROM study")
        study = study.fetchone()
        cols = con.execute("SELECT * FROM results").fetchnumpy()
        cells = con.execute("SELECT * FROM cells").fetchall()
    perm = order(len(cols["cell_key"]))
    frame = {k: np.asarray(v)[perm] for k, v in cols.items()}  # noqa: F841
    Store(target).close()  # likelab's schema
    with duckdb.connect(str(target)) as con:
        con.execute("INSERT INTO study VALUES (?, ?, ?, ?, current_timestamp)", list(study))
        con.executemany(f"INSERT INTO cells VALUES ({', '.join('?' * 8)})", cells)
        con.execute("INSERT INTO results SELECT * FROM frame")


def test_summary_is_the_same_bit_for_bit_whatever_order_the_rows_were_written(
    study_store, tmp_path
):
    """The same rows in three stores, inserted in the original, a reversed and a shuffled
    order: every measure equal with ==, not isclose."""
    rng = np.random.default_rng(7)
    stores = []
    for name, order in (
        ("reversed", lambda k: np.arange(k)[::-1]),
        ("shuffled", lambda k: rng.permutation(k)),
        ("shuffled-again", lambda k: rng.permutation(k)),
    ):
        target = tmp_path / f"{name}.duckdb"
        _copy_rows(study_store, target, order)
        stores.append(target)
    want = summarise(study_store)
    assert any(r["rel_mse"] is not None and r["rel_mse"] != 1.0 for r in want)
    for target in stores:
        got = summarise(target)
        for g, w in zip(got, want, strict=True):
            assert g == w, {k: (g[k], w[k]) for k in g if g[k] != w[k]}
        assert [r["rel_mse"] for r in got] == [r["rel_mse"] for r in want]


def test_cli_summary_labels_each_comparison_with_log(study_store, capsys):
    from tests.cli_support import run

    # the theory beside the simulation has tests of its own (test_summary_theory.py)
    code, out, err = run(capsys, "study", "summary", study_store, "--json", "--no-theory")
    assert code == 0, err
    data = json.loads(out)
    assert data["rows"] == json.loads(json.dumps(summarise(study_store)))
    assert "ignores bias" in data["measures"]["rel_eff"]
    assert "includes bias" in data["measures"]["rel_mse"]
    code, out, err = run(capsys, "study", "summary", study_store, "--no-theory")
    assert code == 0, err
    flat = " ".join(out.split())
    assert "EmpSE² ratio EmpSE_log²/EmpSE² (ignores bias)" in flat
    assert "MSE ratio MSE_log/MSE (includes bias)" in flat
    assert "…" not in out  # folded, never truncated


def test_log_spelled_by_its_alias_is_still_the_reference(tmp_path):
    path = tmp_path / "s.yaml"
    text = textwrap.dedent(STUDY).replace("replicates: 200", "replicates: 20")
    text = text.replace(
        'objectives: [log, "dpd:beta=0.5", linear]', 'objectives: [nll, "dpd:beta=0.5"]'
    )
    path.write_text(text)
    store = tmp_path / "s.duckdb"
    run_study(load_study(path), store, executor="local")
    rows = summarise(store)
    assert {r["objective"] for r in rows} == {"nll", "dpd:beta=0.5"}
    for r in rows:
        assert r["rel_eff"] is not None and r["rel_mse"] is not None, r
        if r["objective"] == "nll":
            assert r["rel_mse"] == 1.0


def test_exports_hold_the_summary_exactly_and_failures_write_nothing(study_store, tmp_path, capsys):
    import csv

    from tests.cli_support import run

    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run(
        capsys,
        "study",
        "summary",
        study_store,
        "--no-theory",
        "--csv",
        out / "s.csv",
        "--parquet",
        out / "s.pq",
    )
    assert code == 0, err
    want = summarise(study_store)
    with open(out / "s.csv", newline="") as fh:
        got = list(csv.DictReader(fh))
    for g, w in zip(got, want, strict=True):
        for key in ("bias", "emp_se", "rel_eff", "rel_mse", "rel_mse_mcse", "coverage"):
            assert (None if g[key] == "" else float(g[key])) == w[key]  # exact round trip
    with duckdb.connect() as con:
        rows = con.execute("SELECT * FROM read_parquet(?)", [str(out / "s.pq")]).fetchall()
    assert [dict(zip(want[0], r, strict=True)) for r in rows] == want
    assert sorted(p.name for p in out.iterdir()) == ["s.csv", "s.pq"]
    for target in (out, out / "missing" / "s.csv"):
        code, stdout, err = run(capsys, "study", "summary", study_store, "--csv", target)
        assert code == 2 and stdout == "" and err.count("\n") == 1, err
        assert err.startswith("error: --csv: "), err  # checked before anything is computed
        # the library's own export refuses the same paths, writing nothing either
        with pytest.raises(LikelabError, match="cannot write the summary to"):
            export(study_store, target, "csv")
    assert sorted(p.name for p in out.iterdir()) == ["s.csv", "s.pq"]


def test_a_missing_se_is_no_coverage_at_all(tmp_path):
    """The uniform's ends under log are not regular (no sandwich SE; NULL in the store): their
    coverage and model SE are undetermined (None), never computed from NULLs read as 0."""
    path = tmp_path / "u.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: uniform-se
            seed: 3
            dgps:
              - family: uniform
                params: {low: 0, high: 2}
            sample_sizes: [30]
            replicates: 40
            model: {family: uniform}
            objectives: [log, crps]
            """
        )
    )
    store = tmp_path / "u.duckdb"
    run_study(load_study(path), store, executor="local")
    with duckdb.connect(str(store), read_only=True) as con:
        null_se = con.execute(
            "SELECT count(*) FROM results WHERE objective = 'log' AND se IS NULL"
        ).fetchone()[0]
    assert null_se == 80  # 40 replicates x 2 parameters: no SE could be given
    rows = {(r["objective"], r["parameter"]): r for r in summarise(store)}
    for p in ("low", "high"):
        log = rows[("log", p)]
        assert log["coverage"] is None and log["coverage_mcse"] is None
        assert log["model_se"] is None
        assert log["failure_rate"] == 0.0 and log["bias"] is not None
        crps = rows[("crps", p)]  # smooth: its sandwich SEs are there and cover
        assert crps["model_se"] is not None and 0.7 < crps["coverage"] <= 1.0


def test_null_columns_are_nan_not_the_mask_fill_value():
    from likelab.study.summary import _floats

    masked = np.ma.masked_array([1.5, 0.0, 2.0], mask=[False, True, False])
    got = _floats(masked)
    assert got[0] == 1.5 and np.isnan(got[1]) and got[2] == 2.0
    assert np.array_equal(_floats(np.array([1.0, 2.0])), [1.0, 2.0])


FAILING = """
name: failing
seed: 5
dgps:
  - family: cauchy
    params: {loc: 0, scale: 1}
sample_sizes: [5, 30]
replicates: 200
block: 50
model: {family: cauchy}
objectives: [log, "dpd:beta=0.5"]
fit: {max_iter: 4}
"""


def test_a_group_fetched_range_by_range_gives_the_same_summary(tmp_path, monkeypatch):
    """A large group is fetched by ranges of replicates into arrays made once (bounded
    memory): with ranges of 7 replicates (29 queries a group here) every measure is the same,
    bit for bit, as with the group fetched whole; with failures of both objectives (Cauchy
    fits stopped early), so that some replicates are unpaired."""
    from likelab.study import summary

    store = make_study_store(tmp_path, FAILING, "failing")[1]
    want = summarise(store)
    assert any(0 < r["failure_rate"] < 1 for r in want if r["objective"] == "log")
    assert any(0 < r["failure_rate"] < 1 for r in want if r["objective"] != "log")
    monkeypatch.setattr(summary, "_FETCH_REPLICATES", 7)
    assert summarise(store) == want


@pytest.mark.parametrize("spread", [1, 3, 1000])
def test_pairs_are_every_shared_replicate_in_any_order(spread):
    """``_pairs``: the positions of the replicates two groups share, whatever order each was
    fetched in; dense replicate numbers (a table) and sparse ones (sorting) alike."""
    from likelab.study.summary import _pairs

    rng = np.random.default_rng(spread)
    for _ in range(20):
        pool = rng.choice(500 * spread, size=500, replace=False).astype(np.int32)
        rep = rng.permutation(pool[rng.random(500) < 0.8])
        ref = rng.permutation(pool[rng.random(500) < rng.choice([0.8, 1.0])])
        i, j = _pairs(rep, ref)
        got = rep if i is None else rep[i]
        assert np.array_equal(got, ref[j])
        assert sorted(got.tolist()) == sorted(set(rep.tolist()) & set(ref.tolist()))
    i, j = _pairs(np.arange(5, dtype=np.int32), np.arange(10, dtype=np.int32)[::-1].copy())
    assert i is None and np.array_equal(j, [9, 8, 7, 6, 5])
    i, j = _pairs(np.zeros(0, np.int32), np.arange(3, dtype=np.int32))
    assert len(i) == len(j) == 0


def test_a_summary_holds_one_groups_columns_at_a_time(tmp_path, monkeypatch):
    """Memory is bounded by a few columns of one (objective, parameter) group, not by a
    design point's rows: a summary of 10⁷ replicates held a whole point, 3.5 GB. Measured
    with tracemalloc (numpy's arrays are traced; DuckDB's buffers are capped apart): under
    120 bytes per replicate of a group where a design point of 4 groups held 330."""
    import tracemalloc

    from likelab.study import summary
    from likelab.study.spec import parse_study
    from likelab.study.store import CellRows

    r, block = 100_000, 25_000
    spec = parse_study(
        {
            "name": "big",
            "seed": 1,
            "dgps": [{"family": "normal", "params": {"loc": 0, "scale": 1}}],
            "sample_sizes": [20],
            "replicates": r,
            "block": block,
            "model": {"family": "normal"},
            "objectives": ["log", "dpd:beta=0.5"],
        }
    )
    store = tmp_path / "big.duckdb"
    rng = np.random.default_rng(0)
    with Store(store, spec) as db:
        from likelab.study.design import cells

        for cell in cells(spec):
            reps = np.arange(cell.first, cell.first + block, dtype=np.int32)
            truth = np.repeat([0.0, 1.0, 0.0, 1.0], block)
            est = truth + rng.normal(size=4 * block) / 5
            cols = {
                "replicate": np.tile(reps, 4),
                "objective": np.repeat(np.arange(2, dtype=np.int16), 2 * block),
                "parameter": np.tile(np.repeat(np.arange(2, dtype=np.int16), block), 2),
                "truth": truth,
                "estimate": est,
                "se": np.full(4 * block, 0.2),
                "value": est,
                "converged": rng.random(4 * block) < 0.99,
                "reason": np.zeros(4 * block, dtype=np.int16),
                "fit_seconds": np.full(4 * block, 1e-5),
            }
            rows = CellRows(cols, ["log", "dpd:beta=0.5"], ["loc", "scale"], ["gtol"])
            db.write_cell(cell, rows, 1.0)
    monkeypatch.setattr(summary, "_FETCH_REPLICATES", 8192)
    want = summarise(store)  # and everything imported
    tracemalloc.start()
    try:
        got = summarise(store)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == want and [g["replicates"] for g in got] == [r] * 4
    assert peak / r < 120, peak / r
