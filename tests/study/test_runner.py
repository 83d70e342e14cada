"""Running studies: paired and reproducible cells, executors, resumption, failures as data."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pytest

from likelab.errors import SpecError
from likelab.study import cells, generate, load_study, run_study
from likelab.study.summary import THEORY_COLUMNS

STUDY = """
name: runner
seed: 7
dgps:
  - family: normal
    params: {loc: 1, scale: 2}
  - family: normal
    params: {loc: 0, scale: 1}
    contamination: {eps: 0.1, dgp: "normal:loc=8,scale=1"}
sample_sizes: [15, 40]
replicates: 30
block: 10
model: {family: normal}
objectives: [log, "dpd:beta=0.5", linear]
fit: {multistart: 2}
"""


def study_file(tmp_path, text=STUDY, name="study.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def results(store):
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute(
            "SELECT cell_key, dgp, n, replicate, objective, parameter, truth, estimate, se, "
            "value, converged, reason FROM results "
            "ORDER BY cell_key, objective, parameter, replicate"
        ).fetchall()


def test_local_and_process_pool_give_identical_bits(tmp_path):
    spec = load_study(study_file(tmp_path))
    a = run_study(spec, tmp_path / "a.duckdb", executor="local")
    b = run_study(spec, tmp_path / "b.duckdb", executor="process", workers=2)
    assert a.cells_run == b.cells_run == 12 and a.fits == 12 * 10 * 3
    ra, rb = results(tmp_path / "a.duckdb"), results(tmp_path / "b.duckdb")
    assert len(ra) == 2 * 2 * 30 * 3 * 2 and ra == rb  # float equality: bit for bit


def test_a_cells_data_depend_on_its_key_not_its_position(tmp_path):
    spec = load_study(study_file(tmp_path))
    bigger = load_study(
        study_file(tmp_path, STUDY.replace("[15, 40]", "[5, 15, 40]"), "bigger.yaml")
    )
    mine = {c.key: c for c in cells(spec)}
    for c in cells(bigger):
        if c.key in mine:
            ya, sa = generate(spec.seed, mine[c.key])
            yb, sb = generate(bigger.seed, c)
            assert np.array_equal(ya, yb) and sa == sb
    # and every objective sees the same datasets: log's and dpd's rows share replicates
    run_study(spec, tmp_path / "s.duckdb", executor="local")
    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as con:
        counts = con.execute(
            "SELECT objective, count(DISTINCT cell_key || replicate) FROM results GROUP BY 1"
        ).fetchall()
    assert {c for _, c in counts} == {120}


def test_resume_skips_finished_cells_and_the_store_refuses_another_spec(tmp_path):
    path = study_file(tmp_path)
    spec = load_study(path)
    store = tmp_path / "s.duckdb"
    first = run_study(spec, store, executor="local")
    again = run_study(spec, store, executor="local")
    assert first.cells_run == 12 and again.cells_run == 0 and again.cells_skipped == 12
    changed = load_study(study_file(tmp_path, STUDY.replace("seed: 7", "seed: 8"), "c.yaml"))
    with pytest.raises(SpecError, match="different spec"):
        run_study(changed, store, executor="local")
    other = load_study(study_file(tmp_path, STUDY.replace("name: runner", "name: x"), "o.yaml"))
    with pytest.raises(SpecError, match="holds the study 'runner'"):
        run_study(other, store, executor="local")


def test_failures_are_recorded_as_data(tmp_path, monkeypatch):
    (tmp_path / "failing_scores.py").write_text(
        # fails on the study's datasets (n = 15 and 40), not on likelab's 4-observation probe: a
        # failure on the data, recorded as data (an objective failing on the probe is refused
        # before the run: test_an_objective_broken_on_the_probe_is_refused_before_the_run)
        "def boom(dist, y):\n"
        "    if y.shape[-1] > 4:\n"
        "        raise RuntimeError('no fit today')\n"
        "    return -dist.log_prob(y)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    text = STUDY.replace(
        'objectives: [log, "dpd:beta=0.5", linear]', 'objectives: [log, "failing_scores:boom"]'
    )
    spec = load_study(study_file(tmp_path, text))
    report = run_study(spec, tmp_path / "f.duckdb", executor="local")
    assert report.cells_run == 12
    with duckdb.connect(str(tmp_path / "f.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT objective, bool_or(converged), min(reason), count(*) FROM results GROUP BY 1 "
            "ORDER BY 1"
        ).fetchall()
    boom = rows[0]
    assert boom[0] == "failing_scores:boom" and boom[1] is False and boom[3] == 240
    assert "no fit today" in boom[2]
    from likelab.study import summarise

    rates = {r["objective"]: r["failure_rate"] for r in summarise(tmp_path / "f.duckdb")}
    assert rates == {"failing_scores:boom": 1.0, "log": 0.0}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("raise RuntimeError('broken everywhere 31')", "broken everywhere 31"),
        ("return -dist.log_prob(y).mean()", "a mean or sum?"),
        ("return (-dist.log_prob(y)).long()", "not floating point"),
    ],
)
def test_an_objective_broken_on_the_probe_is_refused_before_the_run(
    body, fragment, tmp_path, monkeypatch, capsys
):
    from tests.cli_support import run

    name = f"broken_{abs(hash(body)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(f"def score(dist, y):\n    {body}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    text = STUDY.replace(
        'objectives: [log, "dpd:beta=0.5", linear]', f'objectives: [log, "{name}:score"]'
    )
    store = tmp_path / "runner.duckdb"
    code, out, err = run(capsys, "study", "run", study_file(tmp_path, text), "--executor", "local")
    assert code == 2 and not out and err.count("\n") == 1, err
    assert err.startswith(f"error: user objective {name}:score") and fragment in err, err
    assert not store.exists()


def _env():
    """The environment of a ``likelab`` subprocess: it imports the likelab under test."""
    import likelab

    src = Path(likelab.__file__).resolve().parents[1]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(Path.cwd())])}


def _cli(*args):
    return [
        sys.executable,
        "-c",
        "import sys; from likelab.cli import main; sys.exit(main(sys.argv[1:]))",
        *map(str, args),
    ]


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path):
    text = STUDY.replace("[15, 40]", "[15, 40, 100]").replace(", linear]", "]")
    path = study_file(tmp_path, text)
    total = len(cells(load_study(path)))
    killed = tmp_path / "killed.duckdb"
    env = _env()
    proc = subprocess.Popen(
        _cli("study", "run", path, "--store", killed, "--executor", "local"),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    done = 0
    for line in proc.stderr:
        if line.startswith("cell "):
            done = int(line.split()[1].split("/")[0])
            if done >= 3:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and 3 <= done < total
    resumed = subprocess.run(
        _cli("study", "run", path, "--store", killed, "--executor", "local", "--json"),
        capture_output=True,
        text=True,
        env=env,
    )
    assert resumed.returncode == 0, resumed.stderr
    import json

    report = json.loads(resumed.stdout)
    assert report["cells_skipped"] >= 3 and report["cells_skipped"] + report["cells_run"] == total
    whole = tmp_path / "whole.duckdb"
    run_study(load_study(path), whole, executor="local")
    a, b = results(killed), results(whole)
    assert a == b  # same rows, same bits, none lost, none twice
    assert len(set(a)) == len(a)
    with duckdb.connect(str(killed), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM cells").fetchone()[0] == total


def test_cli_run_and_summary(tmp_path, capsys):
    from tests.cli_support import run, run_json

    path = study_file(tmp_path)
    code, out, err = run(capsys, "study", "run", path, "--executor", "local")
    assert code == 0, err
    assert "12 cells run" in out and (tmp_path / "runner.duckdb").exists()
    data = run_json(capsys, "study", "summary", tmp_path / "runner.duckdb")
    keys = {
        "dgp",
        "n",
        "objective",
        "parameter",
        "bias",
        "bias_mcse",
        "emp_se",
        "emp_se_mcse",
        "mse",
        "mse_mcse",
        "rel_eff",
        "rel_eff_mcse",
        "rel_mse",
        "rel_mse_mcse",
        "model_se",
        "model_se_rel_error",
        "model_se_rel_error_mcse",
        "coverage",
        "coverage_mcse",
        "failure_rate",
        "replicates",
    } | set(THEORY_COLUMNS)  # theory beside simulation: present, null where not computed
    assert len(data["rows"]) == 2 * 2 * 3 * 2 and set(data["rows"][0]) == keys
    code, out, _ = run(
        capsys,
        "study",
        "summary",
        tmp_path / "runner.duckdb",
        "--csv",
        tmp_path / "s.csv",
        "--parquet",
        tmp_path / "s.parquet",
    )
    assert code == 0 and (tmp_path / "s.csv").read_text().startswith("dgp,n,objective")
    assert (tmp_path / "s.parquet").stat().st_size > 0
    for args, frag in (
        (["study", "summary", tmp_path / "none.duckdb"], "does not exist"),
        (["study", "run", path, "--executor", "threads"], "executor"),
        (["study", "run", path, "--workers", "0"], "workers"),
    ):
        code, out, err = run(capsys, *args)
        assert code == 2 and frag in err and err.count("\n") == 1, err


def test_batches_are_sized_from_timed_cells_and_shrink_for_the_tail():
    from likelab.study.runner import BATCH_SECONDS, _Batcher

    todo = list(range(400))
    b = _Batcher(todo, workers=2)
    assert [len(b.next()) for _ in range(4)] == [1, 1, 1, 1]  # untimed: one cell at a time
    for _ in range(4):
        b.record(BATCH_SECONDS / 5)  # cells of a fifth of the target
    assert len(b.next()) == 5
    sizes, handed = [], 4 + 5
    while b:
        sizes.append(len(b.next()))
        handed += sizes[-1]
    assert handed == 400  # every cell handed out once
    assert max(sizes) == 5 and sizes[-1] == 1  # the tail is split across the workers
    slow = _Batcher(list(range(50)), workers=2)
    slow.record(10.0)  # slow cells: one per batch
    assert [len(slow.next()) for _ in range(3)] == [1, 1, 1]


def _children_gone(children, seconds):
    """Whether every process in ``children`` (psutil processes) has exited within
    ``seconds``."""
    import time

    import psutil

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def interrupted_study(tmp_path_factory):
    """A study of 18 cells and the store of its uninterrupted local run."""
    folder = tmp_path_factory.mktemp("interrupt")
    text = STUDY.replace("[15, 40]", "[15, 40, 100]").replace(", linear]", "]")
    path = study_file(folder, text)
    whole = folder / "whole.duckdb"
    run_study(load_study(path), whole, executor="local")
    return path, whole, len(cells(load_study(path)))


@pytest.mark.parametrize("executor", ["local", "process"])
def test_ctrl_c_exits_130_says_what_was_kept_and_resumes_to_the_same_store(
    executor, interrupted_study, tmp_path
):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it: exit status 130, one
    line naming what the store keeps and how to resume, no worker left; running the command
    again finishes the study, and the store equals an uninterrupted run's bit for bit."""
    psutil = pytest.importorskip("psutil")
    path, whole, total = interrupted_study
    store = tmp_path / "cut.duckdb"
    env = _env()
    args = ["study", "run", path, "--store", store, "--executor", executor, "--workers", "2"]
    code, out, said, children = ctrl_c_after_cells(args, env, 3, psutil, timeout=60)
    assert code == 130, said
    assert len(said) == 1 and not out, said
    kept = int(said[0].split()[1])
    assert said[0].startswith(f"interrupted: {kept} of {total} cells kept in {store}")
    assert "run the same command again to resume" in said[0] and 3 <= kept < total
    assert _children_gone(children, 5)
    with duckdb.connect(str(store), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM cells").fetchone()[0] == kept
    resumed = subprocess.run(_cli(*args, "--json"), capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    import json

    report = json.loads(resumed.stdout)
    assert report["cells_skipped"] == kept and report["cells_run"] == total - kept
    assert results(store) == results(whole)


def test_workers_of_a_killed_run_exit_with_it(interrupted_study, tmp_path):
    """kill -9 of `study run --executor process` runs none of its cleanup: its workers notice
    their parent is gone and exit by themselves."""
    path = interrupted_study[0]
    kill_9_after_a_cell_leaves_no_workers(
        "study", "run", path, "--store", tmp_path / "k.duckdb", "--workers", "2"
    )


def kill_9_after_a_cell_leaves_no_workers(*args) -> None:
    """Run ``likelab ARGS``, kill -9 it once a cell is reported done, and check that its worker
    processes (at least two) are gone within 5 s."""
    psutil = pytest.importorskip("psutil")
    proc = subprocess.Popen(
        _cli(*args), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=_env()
    )
    for line in proc.stderr:
        if line.startswith("cell "):
            break
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 2
    proc.kill()
    proc.wait()
    assert _children_gone(children, 5), [c.pid for c in children if c.is_running()]


def ctrl_c_after_cells(args, env, cells, psutil, *, timeout, progress="cell "):
    """Run ``likelab ARGS`` in its own process group and send the group SIGINT, as a terminal's
    Ctrl-C does, once ``cells`` cells (progress lines starting with ``progress``: "unit " for
    the scorecard) are reported done: (exit status, stdout, the stderr lines other than
    progress, the child processes it had)."""
    proc = subprocess.Popen(
        _cli(*args),
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, signalled like a terminal's
    )
    lines, children = [], []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(progress) and int(line.split()[1].split("/")[0]) >= cells:
            children = psutil.Process(proc.pid).children(recursive=True)
            os.killpg(proc.pid, signal.SIGINT)
            break
    out, rest = proc.communicate(timeout=timeout)
    said = [ln for ln in lines + rest.splitlines(keepends=True) if not ln.startswith(progress)]
    return proc.returncode, out, said, children


def _user_objective(tmp_path, monkeypatch, body):
    name = f"stopping_{abs(hash(body)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(f"def score(dist, y):\n    {body}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{name}:score"


def test_an_objective_raising_keyboardinterrupt_interrupts_the_study(tmp_path, monkeypatch):
    from likelab.study import StudyInterrupted

    objective = _user_objective(tmp_path, monkeypatch, "raise KeyboardInterrupt")
    text = STUDY.replace(
        'objectives: [log, "dpd:beta=0.5", linear]', f'objectives: [log, "{objective}"]'
    )
    spec = load_study(study_file(tmp_path, text))
    with pytest.raises(StudyInterrupted) as info:
        run_study(spec, tmp_path / "ki.duckdb", executor="local")
    assert info.value.cells_done == 0 and info.value.cells_total == 12
    assert not (tmp_path / "ki.duckdb").exists()  # nothing kept, no store claimed


STOPS = ["raise KeyboardInterrupt", "raise SystemExit(0)", "import sys; sys.exit()"]


@pytest.mark.parametrize("executor", ["local", "process"])
@pytest.mark.parametrize("body", STOPS)
def test_an_objective_stopping_never_exits_0_silently(
    body, executor, tmp_path, monkeypatch, capsys
):
    """In every executor (a pool worker would otherwise die of it, a Dask one lose it): a
    KeyboardInterrupt stops the run (130, one line, no store left); a sys.exit() is an error of
    the user's code, found by the check before the run (exit 2, one line, no store)."""
    check_stop(body, executor, tmp_path, monkeypatch, capsys)


def check_stop(body, executor, tmp_path, monkeypatch, capsys):
    from tests.cli_support import run

    objective = _user_objective(tmp_path, monkeypatch, body)
    text = STUDY.replace(
        'objectives: [log, "dpd:beta=0.5", linear]', f'objectives: [log, "{objective}"]'
    )
    path = study_file(tmp_path, text)
    store = tmp_path / "runner.duckdb"
    got, out, err = run(capsys, "study", "run", path, "--executor", executor, "--workers", "2")
    if "KeyboardInterrupt" in body:
        assert got == 130 and not out and err.count("\n") == 1, err
        assert err.startswith("interrupted: 0 of 12 cells finished, nothing kept"), err
        assert not store.exists()
        return
    # sys.exit() in user code breaks the objective's contract: the study is refused before
    # anything is written (the objective is checked once, on one dataset of the first cell)
    assert got == 2 and not out and err.count("\n") == 1, err
    assert err.startswith("error: user objective") and "SystemExit" in err, err
    assert not store.exists()
