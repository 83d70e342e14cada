"""``likelab asymptotics``: the table and JSON of :func:`likelab.asymptotics` for several
objectives, a row with its reason for one that cannot be used, exit statuses 0 / 1 / 2."""

import csv
import json
import math

import pytest

from cli_support import run

NORMAL_LOC = ("--family", "normal", "--fix", "scale=1", "--truth", "normal:loc=0,scale=1")


def test_dpd_are_and_the_unbounded_log_influence_in_table_and_json(capsys):
    code, out, err = run(
        capsys, "asymptotics", *NORMAL_LOC, "--objectives", "log,dpd:beta=0.5", "--format", "csv"
    )
    assert code == 0, err
    rows = {r["objective"]: r for r in csv.DictReader(out.splitlines())}
    assert rows["log"]["GES"] == "unbounded" and rows["log"]["ARE vs log"] == "1"
    # Basu et al. (1998): the ARE of the DPD at the normal location is (1+2b)^1.5 / (1+b)^3
    assert float(rows["dpd:beta=0.5"]["ARE vs log"]) == pytest.approx(2**1.5 / 1.5**3, rel=1e-3)
    assert rows["dpd:beta=0.5"]["GES"] != "unbounded"
    code, out, err = run(
        capsys, "asymptotics", *NORMAL_LOC, "--objectives", "log,dpd:beta=0.5",
        "--influence-at", "-2,0.5,3", "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["failures"] == [] and [r["objective"] for r in data["results"]] == [
        "log",
        "dpd:beta=0.5",
    ]
    log, dpd = data["results"]
    assert log["parameters"]["loc"]["gross_error_sensitivity"]["value"] is None  # inf in JSON
    assert log["influence_at"]["loc"] == pytest.approx([-2.0, 0.5, 3.0], abs=1e-8)  # x - mu
    ares = dpd["parameters"]["loc"]["are_vs_log"]
    assert ares == pytest.approx(2**1.5 / 1.5**3, abs=1e-8)
    b = 0.5  # IF of the DPD location: (1+b)^1.5 x exp(-b x^2 / 2)
    want = [(1 + b) ** 1.5 * x * math.exp(-b * x * x / 2) for x in (-2.0, 0.5, 3.0)]
    assert dpd["influence_at"]["loc"] == pytest.approx(want, abs=1e-8)
    assert len(dpd["influence"]["x"]) == len(dpd["influence"]["loc"]) > 100


def test_an_objective_that_cannot_be_used_is_a_row_and_exit_1(capsys):
    code, out, err = run(
        capsys, "asymptotics", "--family", "laplace", "--truth", "normal:loc=0,scale=1",
        "--objectives", "log,hyvarinen,crps", "--format", "csv",
    )  # fmt: skip
    assert code == 1 and "hyvarinen could not be used" in err and err.count("\n") == 1, err
    table, notes = out.split("\r\n\r\n")
    rows = list(csv.DictReader(table.splitlines()))
    assert [r["objective"] for r in rows] == ["log", "log", "crps", "crps", "hyvarinen"]
    assert rows[-1]["theta*"].startswith("failed [")
    assert "differentiable" in notes
    # the median's IF is bounded at sqrt(2 pi)/2; the scale's is not
    assert float(rows[0]["GES"]) == pytest.approx(math.sqrt(2 * math.pi) / 2, rel=1e-3)
    assert rows[1]["GES"] == "unbounded"


def test_no_theta_star_is_said_and_exit_1(capsys):
    code, out, err = run(
        capsys, "asymptotics", "--family", "normal", "--truth", "normal:loc=0,scale=1",
        "--objectives", "linear,log", "--format", "csv",
    )  # fmt: skip
    assert code == 1 and "linear has no asymptotics here" in err, err
    table, notes = out.split("\r\n\r\n")
    rows = list(csv.DictReader(table.splitlines()))
    assert rows[0]["objective"].startswith("linear [") and rows[0]["theta*"] == "-"
    assert "no θ*" in notes and rows[2]["asymptotic SD"] not in ("-", "nan")


@pytest.mark.parametrize(
    "args, message",
    [
        (("--objectives", "nope"), "nope"),
        (("--influence-at", "1,x"), "--influence-at"),
        (("--truth", "normal:loc=0,scale=-1"), "scale"),
    ],
    ids=["unknown-objective", "bad-points", "bad-truth"],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    base = {"--family": "normal", "--truth": "normal:loc=0,scale=1"}
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    argv = [item for key, value in {**base, **pairs}.items() for item in (key, value)]
    code, out, err = run(capsys, "asymptotics", *argv)
    assert code == 2 and out == "" and err.startswith("error:") and message in err, err
    assert err.count("\n") == 1
