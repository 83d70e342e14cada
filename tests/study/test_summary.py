"""Performance measures: the SQL summary against the same formulas in numpy (Morris et al. 2019)."""

import textwrap

import duckdb
import numpy as np

from likelab.study import load_study, run_study, summarise

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


def test_summary_matches_numpy(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(STUDY))
    store = tmp_path / "s.duckdb"
    run_study(load_study(path), store, executor="local")
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
