"""``likelab asymptotics``: the table and JSON of :func:`likelab.asymptotics` for several
objectives, a row with its reason for one that cannot be used, exit statuses 0 / 1 / 2; the bias
under contamination and the breakdown point (``--contamination --at``, checked against closed
forms and the library), the figure (``--plot``), bad input, piped output and Ctrl-C."""

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


# ---------------------------------------------------------------------- --contamination, --plot
def test_contamination_json_is_the_librarys_bias_and_log_follows_the_outliers_mean(capsys):
    """Normal location, scale 2 known, contaminated at N(-5, 0.5²): θ*(ε) of log is the mixture's
    mean, so its bias is ε(-5 - 1) exactly; dpd's is the library's contamination_bias."""
    from likelab.asymptotics import contamination_bias

    setting = ("--family", "normal", "--fix", "scale=2", "--truth", "normal:loc=1,scale=2")
    at = "normal:loc=-5,scale=0.5"
    code, out, err = run(
        capsys, "asymptotics", *setting, "--objectives", "log,dpd:beta=0.3",
        "--contamination", "0.2,0.05", "--at", at, "--json",
    )  # fmt: skip
    assert code == 0, err
    log, dpd = json.loads(out)["results"]
    assert log["bias"]["eps"] == dpd["bias"]["eps"] == [0.05, 0.2]
    assert log["bias"]["loc"] == pytest.approx([-6 * 0.05, -6 * 0.2], abs=1e-8)
    assert log["breakdown"] is None and log["contamination"]["bound"] == pytest.approx(3.0)
    want = contamination_bias(
        "dpd:beta=0.3", "normal:scale=2", "normal:loc=1,scale=2", at, [0.05, 0.2]
    )
    assert dpd["bias"] == {"eps": want.eps, **want.bias}
    assert dpd["breakdown"] == want.breakdown
    assert dpd["contamination"]["theta_star"] == want.theta_star
    assert dpd["contamination"]["at"] == at
    # the robust objective moves far less than the mean does (bounded influence)
    assert 0 < -dpd["bias"]["loc"][1] < 0.6 * -log["bias"]["loc"][1]


def test_contamination_table_shows_bias_and_the_breakdown_point(capsys, tmp_path):
    """The issue's setting with a stated bound: log's loc bias is 8ε, so it passes --bound 2 at
    ε = 2/8 = 0.25, found by bisection between the ε given; the figure is written too."""
    figure = tmp_path / "asym.png"
    code, out, err = run(
        capsys, "asymptotics", *NORMAL_LOC, "--objectives", "nll",
        "--contamination", "0.1,0.4", "--at", "normal:loc=8,scale=1", "--bound", "2",
        "--format", "csv", "--plot", figure,
    )  # fmt: skip
    assert code == 0 and err == f"figure written to {figure}\n", err
    main, bias, notes = out.split("\r\n\r\n")
    assert [r["objective"] for r in csv.DictReader(main.splitlines())] == ["nll (log)"]
    (row,) = list(csv.DictReader(bias.splitlines()))
    assert row["objective"] == "nll (log)" and row["param"] == "loc"
    assert float(row["eps=0.1"]) == pytest.approx(0.8, abs=1e-4)
    assert float(row["eps=0.4"]) == pytest.approx(3.2, abs=1e-4)
    point, bracket = row["breakdown [1]"].split(" (in ")
    lo, hi = (float(v) for v in bracket.strip("(])").split(", "))
    assert lo <= 0.25 <= hi == float(point) and hi - lo < 0.3 / 1000
    assert "more than 2 (--bound)" in notes
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_contamination_of_an_objective_without_theta_star_is_null_and_exit_1(capsys):
    """uniform: the support moves with the parameters, no √n asymptotics, so no bias either:
    NaN written as null, the reason beside it, exit status 1."""
    code, out, err = run(
        capsys, "asymptotics", "--family", "uniform", "--truth", "uniform:low=0,high=2",
        "--objectives", "log", "--contamination", "0.1", "--at", "uniform:low=1,high=2",
        "--json",
    )  # fmt: skip
    assert code == 1 and "log has no asymptotics here" in err, err
    assert "NaN" not in out
    (r,) = json.loads(out)["results"]
    assert r["bias"] == {"eps": [0.1], "low": [None], "high": [None]}
    assert r["breakdown"] is None and "support" in r["contamination"]["reason"]


LOC = ("--family", "normal", "--fix", "scale=1", "--truth", "normal:loc=0,scale=1")
AT8 = ("--at", "normal:loc=8,scale=1")


@pytest.mark.parametrize(
    "args, message",
    [
        (AT8, "--at names the contaminating distribution of --contamination"),
        (("--contamination", "0.1"), "--contamination needs --at"),
        (("--contamination", "0.1,1", *AT8), "[0, 1), got 1"),
        (("--contamination", "-0.05", *AT8), "[0, 1), got -0.05"),
        (("--contamination", "nan", *AT8), "[0, 1), got nan"),
        (("--contamination", "0.1,ten", *AT8), "got 'ten'"),
        (("--contamination", ",", *AT8), "--contamination takes fractions"),
        (("--contamination", "0.1", "--at", "nan"), "a point mass needs a finite location"),
        (("--contamination", "0.1", "--at", "-inf"), "a point mass needs a finite location"),
        (("--contamination", "0.1", "--at", "point"), "--at 'point': a point mass needs"),
        (("--contamination", "0.1", "--at", "point:at=8,scale=1"), "'scale' in"),
        (("--contamination", "0.1", "--at", "0"), "same centre as the truth"),
        (("--contamination", "0.1", "--at", "normal:loc=8"), "--at 'normal:loc=8': "),
        (("--contamination", "0.1", "--at", "nope:x=1"), "unknown family 'nope'"),
        (("--contamination", "0.1", "--at", "normal:loc=0,scale=3"), "give --bound"),
        (("--contamination", "0.1", *AT8, "--bound", "0"), "--bound must be a positive"),
        (("--contamination", "0.1", *AT8, "--bound", "inf"), "--bound must be a positive"),
        (("--bound", "2"), "--bound is the breakdown bound of --contamination"),
        (("--plot", "."), "is a directory"),
        (("--plot", "missing/fig.png"), "does not exist"),
        (("--plot", "fig.jpg2"), "extension '.jpg2'"),
        (("--plot", "fig"), "no extension"),
    ],
    ids=[
        "at-alone", "contamination-alone", "eps-1", "eps-negative", "eps-nan", "eps-text",
        "eps-empty", "at-nan", "at-minus-inf", "at-point-no-location", "at-point-extra-key",
        "at-point-same-centre", "at-incomplete", "at-unknown", "at-same-centre", "bound-0",
        "bound-inf", "bound-alone", "plot-dir", "plot-missing-parent", "plot-extension",
        "plot-no-extension",
    ],
)  # fmt: skip
def test_bad_contamination_or_plot_is_one_line_exit_2_and_writes_nothing(
    capsys, tmp_path, monkeypatch, args, message
):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "asymptotics", *LOC, "--objectives", "log", *args)
    assert code == 2 and out == "" and err.startswith("error:") and message in err, err
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_at_a_bare_number_is_a_point_mass_end_to_end(capsys):
    """--at 8 is point:at=8: log's loc bias is exactly 8ε (the mean of (1-ε) N(0,1) + ε δ_8),
    the library's bias for the same point-mass spec, and the default bound is 8/2."""
    from likelab.asymptotics import contamination_bias

    code, out, err = run(
        capsys, "asymptotics", *LOC, "--objectives", "log,dpd:beta=0.5",
        "--contamination", "0.3,0.05", "--at", "8", "--json",
    )  # fmt: skip
    assert code == 0, err
    log, dpd = json.loads(out)["results"]
    assert log["contamination"]["at"] == dpd["contamination"]["at"] == "point:at=8"
    assert log["bias"]["eps"] == [0.05, 0.3]
    assert log["bias"]["loc"] == pytest.approx([0.4, 2.4], abs=1e-8)
    assert log["contamination"]["bound"] == 4.0 and log["breakdown"] is None
    want = contamination_bias("dpd:beta=0.5", "normal:scale=1", LOC[-1], "point:at=8", [0.05, 0.3])
    assert dpd["bias"] == {"eps": want.eps, **want.bias}
    assert 0 < dpd["bias"]["loc"][1] < 1e-5  # e^{-16}-small pull of an outlier 8 sd away


def test_at_a_point_outside_the_family_support_is_bad_input(capsys):
    code, out, err = run(
        capsys, "asymptotics", "--family", "gamma", "--truth", "gamma:concentration=2,rate=1",
        "--contamination", "0.1", "--at", "-1",
    )  # fmt: skip
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("error: --at 'point:at=-1': ") and "support" in err


def test_at_outside_the_family_support_is_bad_input(capsys):
    code, out, err = run(
        capsys, "asymptotics", "--family", "gamma", "--truth", "gamma:concentration=2,rate=1",
        "--contamination", "0.1", "--at", "normal:loc=8,scale=1",
    )  # fmt: skip
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("error: --at 'normal:loc=8,scale=1': ") and "support" in err


def _cli(*args: str, **popen) -> subprocess.Popen:
    import likelab

    src = Path(likelab.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(Path.cwd())])}
    env.update(popen.pop("env", {}))
    code = "import sys, likelab_entry; sys.exit(likelab_entry.main())"  # the installed script
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **popen,
    )


def test_piped_tables_are_whole(tmp_path):
    """Off a terminal (| cat), on a narrow COLUMNS: every cell of both tables is there whole."""
    proc = _cli(
        "asymptotics", *LOC, "--objectives", "nll,dpd:beta=0.25",
        "--contamination", "0.05", "--at", "normal:loc=8,scale=1",
        env={"COLUMNS": "40"},
    )  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and err == "", err
    assert "…" not in out and "..." not in out
    lines = out.splitlines()
    bias_row = next(ln for ln in lines if "nll (log)" in ln and "0.4 " in ln)
    assert "none up to 0.05" in bias_row
    assert sum("dpd:beta=0.25" in ln and " loc " in ln for ln in lines) == 2  # both tables
    assert "breakdown point: the smallest eps at which some parameter has moved by more than 4" in (
        " ".join(out.split())
    )


def test_ctrl_c_during_contamination_exits_130_and_writes_no_figure(tmp_path):
    figure = tmp_path / "asym.svg"
    proc = _cli(
        "asymptotics", "--family", "normal", "--truth", "normal:loc=0,scale=1",
        "--objectives", "log,dpd:beta=0.5,gamma:gamma=0.5", "--contamination",
        "0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4,0.45", "--at", "normal:loc=8,scale=1",
        "--plot", str(figure),
        start_new_session=True,
    )  # fmt: skip
    time.sleep(5)  # imports, checks, and into the quadrature (a Ctrl-C during imports is 130 too)
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and out == "" and err == "interrupted\n", err
    assert list(tmp_path.iterdir()) == []
