"""``likelab landscape`` with objectives that fail: a row with its reason, the others evaluated,
exit status 1; ``--objectives`` repeatable with ``--objective`` as its alias."""

import csv
import json

import numpy as np

from cli_support import run, run_json


def _counts(tmp_path):
    path = tmp_path / "counts.txt"
    path.write_text("".join(f"{v}\n" for v in np.random.default_rng(6).poisson(3.0, 40)))
    return path


def test_a_failing_objective_is_a_row_with_its_reason_and_exit_1(capsys, tmp_path):
    path = _counts(tmp_path)
    args = ("landscape", path, "--family", "poisson", "--param", "rate=1:6:11")
    code, out, err = run(capsys, *args, "--objectives", "hyvarinen,log", "--format", "csv")
    assert code == 1 and "hyvarinen could not be evaluated" in err and err.count("\n") == 1, err
    table, notes = out.split("\r\n\r\n")
    rows = list(csv.reader(table.splitlines()))
    assert [r[0] for r in rows[1:]] == ["log", "hyvarinen"]
    assert rows[2][1] == "failed [1]" and rows[1][1] == "1"  # log: one local minimum
    assert list(csv.reader(notes.splitlines()))[1][0] == "[1]" and "differentiable" in notes
    code, out, _ = run(capsys, *args, "--objective", "hyvarinen", "--objective", "log", "--json")
    data = json.loads(out)
    assert code == 1 and list(data["objectives"]) == ["log"]
    (failed,) = data["failures"]
    assert failed["objective"] == "hyvarinen" and "differentiable" in failed["error"]


def test_no_figure_when_every_objective_failed(capsys, tmp_path):
    path = _counts(tmp_path)
    fig = tmp_path / "f.png"
    code, out, err = run(
        capsys, "landscape", path, "--family", "poisson", "--param", "rate=1:6:5",
        "--objectives", "hyvarinen", "--plot", fig,
    )  # fmt: skip
    assert code == 1 and not fig.exists() and "no figure" in err
    assert "failed [1]" in out and "Traceback" not in err


def test_objectives_and_objective_are_the_same_option(capsys):
    a = run_json(capsys, "landscape", "--seed-example", "--objectives", "log,linear")
    b = run_json(capsys, "landscape", "--seed-example", "--objective", "log", "--objective", "sum")
    assert list(a["objectives"]) == list(b["objectives"]) == ["log", "linear"]
    for spec in ("log", "linear"):
        assert a["objectives"][spec]["values"] == b["objectives"][spec]["values"]
    assert b["objectives"]["linear"]["objective_given"] == "sum"  # as spelled
    assert a["failures"] == b["failures"] == []


def test_a_global_minimum_on_the_grid_edge_carries_a_note(capsys, tmp_path):
    # gamma-distributed data and a free normal scale: the sum of likelihoods keeps falling as
    # the scale shrinks, so its lowest grid point is at the smallest scale; log's is inside
    path = tmp_path / "y.txt"
    path.write_text("".join(f"{v}\n" for v in np.random.default_rng(2).gamma(3.0, 2.0, 80)))
    code, out, err = run(
        capsys, "landscape", path, "--family", "normal", "--param", "loc=2:10:33",
        "--param", "scale=0.3:6:24", "--objectives", "log,linear", "--format", "csv",
    )  # fmt: skip
    assert code == 0, err
    table, notes = out.split("\r\n\r\n")
    rows = {r["objective"]: r for r in csv.DictReader(table.splitlines())}
    assert rows["linear"]["global argmin"].endswith("scale = 0.3 [1]")
    assert "[" not in rows["log"]["global argmin"]
    assert "edge" in notes and len(list(csv.reader(notes.splitlines()))) == 2
    data = run_json(capsys, "landscape", path, "--family", "normal", "--param", "loc=2:10:33",
                    "--param", "scale=0.3:6:24", "--objectives", "log,linear")  # fmt: skip
    assert data["objectives"]["linear"]["minima"][0]["on_boundary"] is True
    assert data["objectives"]["log"]["minima"][0]["on_boundary"] is False
