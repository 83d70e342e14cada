"""The Dask executor on a real LocalCluster: bit-identical to local, and robust to a lost worker."""

import os
import signal
import textwrap

import pytest
from tests.study.test_runner import STUDY, results

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
        dashboard_address=None,
    )
    try:
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
