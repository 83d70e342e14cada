"""The Dask executor on a real LocalCluster: bit-identical to local, and robust to a lost worker."""

import json
import os
import signal
import socket
import subprocess
import textwrap

import pytest
from tests.study.test_runner import (
    STOPS,
    STUDY,
    _children_gone,
    _cli,
    _env,
    check_stop,
    ctrl_c_after_cells,
    kill_9_after_a_cell_leaves_no_workers,
    results,
)

from likelab.study import load_study, run_study

distributed = pytest.importorskip("distributed")


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(textwrap.dedent(STUDY.replace(", linear]", "]")))
    return load_study(path)


def test_embedded_local_cluster_matches_the_local_executor(tmp_path, spec):
    run_study(spec, tmp_path / "local.duckdb", executor="local")
    report = run_study(spec, tmp_path / "dask.duckdb", executor="dask", workers=2)
    assert report.cells_run == 12
    assert results(tmp_path / "dask.duckdb") == results(tmp_path / "local.duckdb")


def test_a_worker_killed_mid_study_loses_nothing(tmp_path, spec):
    run_study(spec, tmp_path / "local.duckdb", executor="local")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        # a plain scheduler serves HTTP whatever this says (None: on 127.0.0.1:8787, where
        # test_the_embedded_cluster_serves_no_http checks that nothing answers): a free port
        dashboard_address="127.0.0.1:0",
    )
    try:
        # the worker's process ids through a client of our own, closed before the run: a user's
        # run has one client in the process (two sync clients share futures' state across their
        # event loops, and a lost key rescheduled under one of them then fails in the other)
        with distributed.Client(cluster) as client:
            pids = client.run(os.getpid)  # worker address -> its process id
        victim = sorted(pids.values())[0]
        killed = []

        def kill_once(done, total, fits):
            if done >= 2 and not killed:
                os.kill(victim, signal.SIGKILL)
                killed.append(done)

        report = run_study(
            spec,
            tmp_path / "dask.duckdb",
            executor="dask",
            scheduler=cluster.scheduler_address,
            on_cell=kill_once,
        )
    finally:
        cluster.close()
    assert killed and killed[0] < 12 and report.cells_run == 12
    assert results(tmp_path / "dask.duckdb") == results(tmp_path / "local.duckdb")


def _listening_ports(pids):
    import psutil

    ports = set()
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            ports.add(conn.laddr.port)
    return ports


def _answers_http(port):
    """Whether something on 127.0.0.1:port answers an HTTP request as HTTP."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            s.settimeout(2)
            return s.recv(5) == b"HTTP/"
    except OSError:
        return False


def test_the_embedded_cluster_serves_no_http(tmp_path, spec):
    """distributed starts an HTTP server in every scheduler and worker, on 127.0.0.1:8787 for the
    scheduler, whatever the dashboard settings: the embedded cluster's run none."""
    psutil = pytest.importorskip("psutil")
    seen = []
    me = psutil.Process()
    # ports this process listened on before the run (an earlier test's cluster in this process
    # may leave a server behind): only those the run opens are looked at
    before = _listening_ports({me.pid})

    def look(done, total, fits):
        if not seen:
            pids = {me.pid} | {c.pid for c in me.children(recursive=True)}
            ports = _listening_ports(pids) - before
            seen.append((len(pids), ports, {p for p in ports if _answers_http(p)}))

    run_study(spec, tmp_path / "d.duckdb", executor="dask", workers=2, on_cell=look)
    processes, ports, http = seen[0]
    assert processes >= 3 and ports  # this process and its workers, listening for dask comms
    assert 8787 not in ports and http == set()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 8787), timeout=1).close()


def test_ctrl_c_of_a_dask_run_is_clean_and_resumes(tmp_path, spec):
    """SIGINT to the process group of `study run --executor dask`: exit 130 with one line, no
    traceback from the workers, no process left; the resumed run prints no traceback or
    shutdown noise either, and its store equals the local executor's."""
    psutil = pytest.importorskip("psutil")
    path = tmp_path / "study.yaml"
    path.write_text(textwrap.dedent(STUDY.replace(", linear]", "]")))
    store = tmp_path / "dask.duckdb"
    args = ["study", "run", path, "--store", store, "--executor", "dask", "--workers", "2"]
    env = _env()
    code, out, said, children = ctrl_c_after_cells(args, env, 2, psutil, timeout=120)
    assert code == 130 and not out, said
    assert len(said) == 1 and said[0].startswith("interrupted: "), said
    assert "cells kept in" in said[0] and "run the same command again to resume" in said[0]
    assert _children_gone(children, 5)
    resumed = subprocess.run(_cli(*args, "--json"), capture_output=True, text=True, env=env)
    assert resumed.returncode == 0
    noise = [ln for ln in resumed.stderr.splitlines() if not ln.startswith("cell ")]
    assert noise == []  # no heartbeat traceback, no "still alive after 4 s, killing"
    assert json.loads(resumed.stdout)["cells_run"] < 12
    run_study(spec, tmp_path / "local.duckdb", executor="local")
    assert results(store) == results(tmp_path / "local.duckdb")


def test_workers_of_a_killed_dask_run_exit_with_it(tmp_path, spec):
    path = tmp_path / "study.yaml"
    path.write_text(textwrap.dedent(STUDY.replace(", linear]", "]")))
    kill_9_after_a_cell_leaves_no_workers(
        "study", "run", path, "--store", tmp_path / "k.duckdb", "--executor", "dask"
    )


@pytest.mark.parametrize("body", STOPS[:2])
def test_an_objective_stopping_a_dask_run_never_exits_0_silently(
    body, tmp_path, monkeypatch, capsys
):
    check_stop(body, "dask", tmp_path, monkeypatch, capsys)
