"""Theory beside simulation in the study summary: the asymptotic SD and ARE of
:func:`likelab.asymptotics` beside the empirical SE × √n and the relative efficiency, computed
once per (DGP point, objective), and a note instead of a number wherever there is no theory."""

import csv
import json
import math
import signal
import time

import duckdb
import pytest
from tests.cli_support import make_study_store, run

from likelab.asymptotics import core
from likelab.errors import LikelabError
from likelab.study import parse_study, run_study, summarise
from likelab.study import summary as summary_module
from likelab.study.summary import NOT_COMPUTED, SUMMARY_COLUMNS, THEORY_COLUMNS, export

# ---------------------------------------------------------------------- theory vs simulation
#: Three (objective, family, truth) settings, each a seeded study at n = 1,000 run through the
#: library's runner (the real pipeline: its data, its batched fits, its store, its summary).
AGREEMENT = {
    # the density power divergence on the normal, both parameters free; log beside it, so
    # that the relative efficiency meets the ARE too
    "dpd-normal": {
        "dgps": [{"family": "normal", "params": {"loc": 0, "scale": 1}}],
        "model": {"family": "normal"},
        "objectives": ["log", "dpd:beta=0.5"],
    },
    # maximum likelihood in another family (the SDs are √ of the inverse Fisher information)
    "log-gamma": {
        "dgps": [{"family": "gamma", "params": {"concentration": 2, "rate": 1}}],
        "model": {"family": "gamma"},
        "objectives": ["log"],
    },
    # a contamination mixture: a robust objective (L2E, dpd with beta = 1) holds the location
    # near 0 while log's moves by eps x 8 = 0.8; the scale is known
    "l2e-contaminated": {
        "dgps": [
            {
                "family": "normal",
                "params": {"loc": 0, "scale": 1},
                "contamination": {"eps": 0.1, "dgp": "normal:loc=8,scale=1"},
            }
        ],
        "model": {"family": "normal", "fixed": {"scale": 1}},
        "objectives": ["log", "l2e"],
    },
}
N, R = 1000, 400


@pytest.mark.parametrize("case", list(AGREEMENT), ids=list(AGREEMENT))
def test_the_asymptotic_sd_agrees_with_the_simulation_at_n_1000(case, tmp_path):
    """√n × EmpSE within 3 Monte Carlo SEs of the asymptotic SD √V_jj, for every objective and
    parameter; likewise the relative efficiency and the ARE, and the bias and θ* − θ.

    Tolerance: the MCSE of EmpSE over R replicates is EmpSE/√(2(R−1)) (Morris et al. 2019,
    Table 6; normal estimates), 3.5% of it at R = 400, so √n × EmpSE has MCSE √n × that. A
    correct theory falls outside 3 MCSEs with probability 0.3% per comparison (two-sided
    normal), while an error of more than about 11% in √V_jj (a √2, an A⁻¹ for A⁻¹BA⁻¹ under
    contamination, a wrong parametrisation) is caught. The theory's own error at n = 1,000 is
    O(1/n), well under the MCSE. The data are seeded: the outcome is the same on every run.
    """
    raw = {
        "name": case,
        "seed": 14,
        "sample_sizes": [N],
        "replicates": R,
        "block": R,
        **AGREEMENT[case],
    }
    store = tmp_path / "s.duckdb"
    run_study(parse_study(raw), store, executor="local")
    rows = summarise(store, theory=True)
    assert rows and all(r["replicates"] == R and r["failure_rate"] == 0.0 for r in rows)
    for r in rows:
        what = (case, r["objective"], r["parameter"])
        assert r["asymptotic_sd"] is not None, (what, r["theory_note"])
        mcse = r["emp_se_root_n_mcse"]
        assert math.isclose(mcse, r["emp_se"] / math.sqrt(2 * (R - 1)) * math.sqrt(N))
        assert abs(r["emp_se_root_n"] - r["asymptotic_sd"]) <= 3 * mcse, (what, r)
        assert r["asymptotic_bias"] is not None
        assert abs(r["bias"] - r["asymptotic_bias"]) <= 3 * r["bias_mcse"], (what, r)
        if r["objective"] != "log":  # log's own ratio is 1 with MCSE 0, its ARE exactly 1
            assert abs(r["rel_eff"] - r["are_vs_log"]) <= 3 * r["rel_eff_mcse"], (what, r)
        else:
            assert r["are_vs_log"] == pytest.approx(1.0, abs=1e-9)
    if case == "l2e-contaminated":  # the theory sees the bias the simulation sees
        log = next(r for r in rows if r["objective"] == "log")
        assert log["asymptotic_bias"] == pytest.approx(0.8, abs=1e-6)
        l2e = next(r for r in rows if r["objective"] == "l2e")
        assert abs(l2e["asymptotic_bias"]) < 1e-3 and "differs" in l2e["theory_note"]


# ---------------------------------------------------------------------- a store to summarise
STUDY = """
name: theory
seed: 5
dgps:
  - family: normal
    params: {loc: 0, scale: [1, 2]}
  - family: student_t
    params: {loc: 0, scale: 1, df: 2}
sample_sizes: [20, 50, 100]
replicates: 20
model: {family: normal, fixed: {scale: 1}, truth: {loc: 0}}
objectives: [log, "dpd:beta=0.5"]
"""
# 3 DGP points x 2 objectives: 6 theory computations for 18 rows (3 sample sizes each).
# The model's scale is held at 1: under the normal of scale 2 it is wrong, and the sandwich
# (not the inverse information, 1) gives log's asymptotic SD: the data's SD, 2.
# Under the t with 2 degrees of freedom, log (the mean) has no θ* (the expected log score of
# N(mu, 1) is infinite): no theory for log, and no ARE for dpd, whose SD is finite.


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_study_store(tmp_path_factory.mktemp("theory"), STUDY, "theory")[1]


@pytest.fixture(scope="module")
def theory(store):
    """The store's summary with theory, from an empty cache, counting the calls of
    :func:`likelab.asymptotics` and the progress calls; then a second summary. The results
    stay in the process's cache for the module's other tests."""
    summary_module._CACHE.clear()
    calls, progress = [], []
    real = core.asymptotics

    def counted(objective, family, truth, fixed=None, **kw):
        calls.append((objective.spec, family, truth.spec, dict(fixed or {})))
        return real(objective, family, truth, fixed, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(core, "asymptotics", counted)
        rows = summarise(store, theory=True, on_theory=lambda done, total: progress.append(done))
        first = list(calls)
        again = summarise(store, theory=True)
    return rows, first, progress, again, calls


def test_theory_is_computed_once_per_dgp_point_and_objective(theory):
    rows, calls, progress, again, after = theory
    assert len(rows) == 18
    assert len(calls) == 6 == len(set(map(repr, calls)))  # not once per n, nor per replicate
    assert progress == [1, 2, 3, 4, 5, 6]
    assert {c[2] for c in calls} == {
        "normal:loc=0,scale=1",
        "normal:loc=0,scale=2",
        "student_t:df=2,loc=0,scale=1",  # the point rebuilt from the stored spec: sorted
    }
    assert all(c[1] == "normal" and c[3] == {"scale": 1.0} for c in calls)
    # the same theory in each of a point's cells, whatever n
    by_pair = {}
    for r in rows:
        by_pair.setdefault((r["dgp"], r["objective"]), set()).add(
            (r["asymptotic_sd"], r["are_vs_log"], r["asymptotic_bias"], r["theory_note"])
        )
    assert len(by_pair) == 6 and all(len(v) == 1 for v in by_pair.values())
    # normal location, known scale: log's SD is 1, dpd's ARE (1+2b)^{3/2}/(1+b)^3 (Basu et al.)
    for r in rows:
        if r["dgp"] == "normal:loc=0,scale=1":
            want = 1.0 if r["objective"] == "log" else 2**1.5 / 1.5**3
            assert r["are_vs_log"] == pytest.approx(want, abs=1e-8)
        if r["dgp"].startswith("normal"):
            assert r["asymptotic_bias"] == pytest.approx(0.0, abs=1e-8)
            assert r["theory_note"] is None
        if r["dgp"] == "normal:loc=0,scale=2" and r["objective"] == "log":
            assert r["asymptotic_sd"] == pytest.approx(2.0, abs=1e-8)
        assert r["emp_se_root_n"] == pytest.approx(r["emp_se"] * math.sqrt(r["n"]), rel=1e-15)
    # a second summary (an export, a report) computes nothing again
    assert after == calls and again == rows


def test_no_theory_is_none_with_the_reason_never_an_error(theory):
    rows = theory[0]
    t = [r for r in rows if r["dgp"].startswith("student_t")]
    log = [r for r in t if r["objective"] == "log"]
    dpd = [r for r in t if r["objective"] == "dpd:beta=0.5"]
    for r in log:  # no θ*: nothing, and why
        assert r["asymptotic_sd"] is None and r["are_vs_log"] is None
        assert r["theory_note"].startswith("no asymptotics: no θ*"), r["theory_note"]
        assert r["emp_se"] is not None and r["rel_eff"] == 1.0  # the simulation's measures stand
    for r in dpd:  # its own SD, but no ARE against a log without asymptotics
        assert r["asymptotic_sd"] is not None and r["are_vs_log"] is None
        assert r["theory_note"].startswith("no ARE vs log: log has no asymptotics here")


@pytest.mark.parametrize(
    ("text", "objective", "reason"),
    [
        # the model's support moves with its parameters: no √n asymptotics
        (
            "dgps: [{family: uniform, params: {low: 0, high: 2}}]\n"
            "model: {family: uniform}\nobjectives: [log, crps]",
            "crps",
            "no asymptotics: no √n asymptotics: the support of 'uniform' moves",
        ),
        # an objective the quadrature cannot integrate (nor the estimator fit): the error
        (
            "dgps: [{family: laplace, params: {loc: 0, scale: 1}}]\n"
            "model: {family: laplace}\nobjectives: [hyvarinen]",
            "hyvarinen",
            "no theory: hyvarinen cannot score laplace forecasts",
        ),
    ],
    ids=["support-moves", "cannot-integrate"],
)
def test_a_setting_without_theory_is_a_note(tmp_path, text, objective, reason):
    body = f"name: none\nseed: 1\nsample_sizes: [20]\nreplicates: 4\n{text}\n"
    store = make_study_store(tmp_path, body, "none")[1]
    rows = [r for r in summarise(store, theory=True) if r["objective"] == objective]
    assert rows
    for r in rows:
        assert r["asymptotic_sd"] is None and r["are_vs_log"] is None
        assert r["asymptotic_bias"] is None
        assert r["theory_note"].startswith(reason), r["theory_note"]


def test_a_failing_or_exiting_computation_is_a_note(store, monkeypatch):
    """Whatever the computation raises (an internal error, a user objective's sys.exit()) is the
    note; the measures are those of a summary without theory."""
    monkeypatch.setattr(summary_module, "_CACHE", {})

    def flaky(objective, family, truth, fixed=None, **kw):
        if objective.spec == "log" and truth.spec == "normal:loc=0,scale=2":
            raise RuntimeError("quadrature\nblew up")
        if objective.spec == "log":
            raise SystemExit(3)
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(core, "asymptotics", flaky)
    rows = summarise(store, theory=True)
    plain = summarise(store)
    for r, p in zip(rows, plain, strict=True):
        assert {k: r[k] for k in SUMMARY_COLUMNS if k not in THEORY_COLUMNS[2:]} == {
            k: p[k] for k in SUMMARY_COLUMNS if k not in THEORY_COLUMNS[2:]
        }
        assert r["asymptotic_sd"] is None and r["are_vs_log"] is None
        if r["objective"] != "log":
            assert r["theory_note"] == "no theory: ZeroDivisionError: float division by zero"
        elif r["dgp"] == "normal:loc=0,scale=2":
            assert r["theory_note"] == "no theory: RuntimeError: quadrature blew up"
        else:
            assert r["theory_note"] == "no theory: SystemExit: 3"


def test_without_theory_the_columns_say_not_computed(store, monkeypatch):
    calls = []
    monkeypatch.setattr(core, "asymptotics", lambda *a, **k: calls.append(a))
    for rows in (summarise(store), summarise(store, theory=False)):
        assert all(r["theory_note"] == f"{NOT_COMPUTED} (theory off)" for r in rows)
        assert all(r["asymptotic_sd"] is None and r["are_vs_log"] is None for r in rows)
        assert all(r["emp_se_root_n"] is not None for r in rows)
    # "auto": the study's 6 pairs over a limit of 5 are not computed, and the note says how
    monkeypatch.setattr(summary_module, "THEORY_AUTO_MAX", 5)
    rows = summarise(store, theory="auto")
    assert all(r["asymptotic_sd"] is None for r in rows)
    assert rows[0]["theory_note"].startswith(f"{NOT_COMPUTED}: the study has 6 (DGP point")
    assert "--theory" in rows[0]["theory_note"]
    assert calls == []
    for bad in ("yes", 1, None):
        with pytest.raises(LikelabError, match="theory must be True, False or 'auto'"):
            summarise(store, theory=bad)


def test_auto_stops_a_long_computation_at_its_time_budget(store, monkeypatch):
    """A pair still running when the automatic budget is spent is stopped (SIGALRM) and noted,
    the pairs after it are noted too; the alarm is left as it was; a later automatic summary
    does not try the stopped pair again, ``theory=True`` does (without a limit)."""
    monkeypatch.setattr(summary_module, "_CACHE", {})
    monkeypatch.setattr(summary_module, "_STOPPED", {})
    monkeypatch.setattr(summary_module, "THEORY_AUTO_SECONDS", 0.5)
    calls, slow = [], {"seconds": 30.0}

    def hanging(objective, family, truth, fixed=None, **kw):
        calls.append(objective.spec)
        deadline = time.monotonic() + slow["seconds"]
        while time.monotonic() < deadline:  # a Python loop: stopped between bytecodes
            pass
        raise ArithmeticError(f"finished after {slow['seconds']:g} s")

    monkeypatch.setattr(core, "asymptotics", hanging)
    handler = signal.getsignal(signal.SIGALRM)
    start = time.monotonic()
    rows = summarise(store, theory="auto")
    assert time.monotonic() - start < 10
    assert signal.getsignal(signal.SIGALRM) is handler
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert len(calls) == 1  # the first pair, stopped; the others never started
    notes = [r["theory_note"] for r in rows]
    assert all(n.startswith(NOT_COMPUTED) for n in notes)
    assert any("stopped after" in n for n in notes) and any("was spent before" in n for n in notes)
    assert all(r["asymptotic_sd"] is None for r in rows)
    # with no more time than it had, the stopped pair is not tried again; the next one is
    monkeypatch.setattr(summary_module, "THEORY_AUTO_SECONDS", 0.3)
    summarise(store, theory="auto")
    assert len(calls) == 2
    # asked for, every pair is computed to its end, however long it takes
    slow["seconds"] = 0.05
    rows = summarise(store, theory=True)
    assert len(calls) == 2 + 6
    assert all(
        r["theory_note"] == "no theory: ArithmeticError: finished after 0.05 s" for r in rows
    )


# ---------------------------------------------------------------------- exports and the CLI
def test_exports_and_json_carry_the_theory_exactly(store, tmp_path, capsys):
    want = summarise(store, theory=True)
    assert list(want[0]) == list(SUMMARY_COLUMNS)
    code, out, err = run(capsys, "study", "summary", store, "--json", "--theory")
    assert code == 0, err
    data = json.loads(out)
    assert data["rows"] == json.loads(json.dumps(want))
    for key in THEORY_COLUMNS:
        assert key in data["measures"] or key.endswith("_mcse")
    code, _, err = run(
        capsys,
        "study",
        "summary",
        store,
        "--theory",
        "--csv",
        tmp_path / "s.csv",
        "--parquet",
        tmp_path / "s.pq",
    )
    assert code == 0, err
    with open(tmp_path / "s.csv", newline="") as fh:
        got = list(csv.DictReader(fh))
    for g, w in zip(got, want, strict=True):
        for key in THEORY_COLUMNS:
            value = None if g[key] == "" else g[key]
            if key != "theory_note" and value is not None:
                value = float(value)
            assert value == w[key], key  # exact round trip, the notes' text included
    with duckdb.connect() as con:
        rows = con.execute("SELECT * FROM read_parquet(?)", [str(tmp_path / "s.pq")]).fetchall()
        quoted = str(tmp_path / "s.pq").replace("'", "''")
        described = f"DESCRIBE SELECT * FROM read_parquet('{quoted}')"
        types = dict(con.execute(f"SELECT column_name, column_type FROM ({described})").fetchall())
    assert [dict(zip(SUMMARY_COLUMNS, r, strict=True)) for r in rows] == want
    assert types["theory_note"] == "VARCHAR" and types["asymptotic_sd"] == "DOUBLE"
    # the library's export of the same rows, given or recomputed, is the same file
    export(store, tmp_path / "lib.csv", "csv", theory=True)
    export(store, tmp_path / "rows.csv", "csv", rows=want)
    assert (tmp_path / "lib.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()
    assert (tmp_path / "rows.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()


def _csv_table(text):
    tables = text.replace("\r\n", "\n").strip().split("\n\n")
    return [list(csv.reader(t.splitlines())) for t in tables]


def test_the_table_shows_the_theory_beside_the_simulation_with_notes(store, capsys):
    summarise(store, theory=True)  # computed once for the module (the CLI runs in-process)
    code, text, err = run(capsys, "study", "summary", store, "--format", "csv")
    assert code == 0, err
    table, notes = _csv_table(text)
    head = table[0]
    assert head == [
        "dgp",
        "n",
        "objective",
        "param",
        "bias",
        "emp SE",
        "√n·emp SE",
        "asy SD",
        "RE vs log",
        "ARE vs log",
        "rel MSE vs log",
        "coverage",
        "fail",
    ]
    body = [dict(zip(head, r, strict=True)) for r in table[1:]]
    assert len(body) == 18
    ref = {n[0]: n[1] for n in notes[1:]}
    for r in body:
        if r["dgp"].startswith("student_t") and r["objective"].startswith("log"):
            assert r["asy SD"].startswith("- [")
            assert ref[r["asy SD"].split()[-1]].startswith("no asymptotics: no θ*")
        if r["dgp"] == "normal:loc=0,scale=1" and r["objective"] == "dpd:beta=0.5":
            assert r["ARE vs log"] == "0.838" and "[" not in r["asy SD"]
    # the rich table holds the same cells, never cut
    code, out, err = run(capsys, "study", "summary", store)
    assert code == 0 and "…" not in out
    assert "asymptotic SD √V_jj" in " ".join(out.split())
    # without the theory: the table as before, nothing said about it
    code, text, err = run(capsys, "study", "summary", store, "--format", "csv", "--no-theory")
    assert code == 0, err
    (table,) = _csv_table(text)
    assert "asy SD" not in table[0] and "ARE vs log" not in table[0]


def test_the_help_states_the_automatic_limits(capsys):
    from likelab.study.summary import THEORY_AUTO_MAX, THEORY_AUTO_SECONDS

    for command in (["study", "summary"], ["report"]):
        code, out, _ = run(capsys, *command, "--help")
        flat = " ".join(out.split())
        assert code == 0 and "--theory / --no-theory" in flat
        assert f"at most {THEORY_AUTO_MAX} such pairs, within {THEORY_AUTO_SECONDS:g} s" in flat


def test_auto_over_the_limit_says_how_to_get_the_theory(store, capsys, monkeypatch):
    monkeypatch.setattr(summary_module, "THEORY_AUTO_MAX", 2)
    code, out, err = run(capsys, "study", "summary", store)
    assert code == 0, err
    flat = " ".join(out.split())
    assert "asy SD" not in out
    assert "asymptotic theory not computed: the study has 6 (DGP point, objective) pairs" in flat
    assert "--theory" in flat
