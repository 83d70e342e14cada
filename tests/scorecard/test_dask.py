"""The scorecard on Dask: against a running scheduler, the same rows as the local executor
(units through likelab.study.runner.run_tasks, the efficiency studies through run_study)."""

from __future__ import annotations

import pytest

from likelab.scorecard.core import scorecard

distributed = pytest.importorskip("distributed")

PARTS = ["landscape", "efficiency"]


def test_a_running_scheduler_gives_the_local_rows(tmp_path):
    local = scorecard(
        ["phi:-p"], against=["log"], store=tmp_path / "local.duckdb", quick=True, parts=PARTS
    )
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
        remote = scorecard(
            ["phi:-p"],
            against=["log"],
            store=tmp_path / "dask.duckdb",
            quick=True,
            parts=PARTS,
            executor="dask",
            scheduler=cluster.scheduler_address,
        )
    finally:
        cluster.close()
    assert remote.units_run == local.units_run == local.units_total
    assert remote.objectives == local.objectives
