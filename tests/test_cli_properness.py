"""``likelab properness``: the verdict table, its JSON, the figure and bad input."""

import csv
import json

import pytest
from tests.cli_support import run, run_json


def test_json_has_one_row_per_objective_and_setting(capsys):
    data = run_json(capsys, "properness", "--objectives", "log,linear,lq:q=0.5", "--classes", "3")
    rows = data["results"]
    assert [(r["objective"], r["setting"]) for r in rows] == [
        ("log", "classes:3"),
        ("linear", "classes:3"),
        ("lq:q=0.5", "classes:3"),
    ]
    assert [r["verdict"] for r in rows] == ["strictly proper", "improper", "improper"]
    assert all(r["agrees_with_claim"] for r in rows)
    assert {"worst_truth", "optimum", "gap", "how"} <= set(rows[1])


def test_density_json_and_evidence(capsys):
    data = run_json(
        capsys, "properness", "--objectives", "linear,crps", "--truth", "normal:loc=0,scale=1"
    )
    linear, crps = data["results"]
    assert linear["setting"] == "density" and linear["verdict"] == "improper"
    assert "scale → 0" in linear["how"] and linear["family"] == "normal"
    assert crps["verdict"] == "strictly proper"
    assert abs(crps["optimum"]["scale"] - 1) < 1e-6


def test_all_marks_what_does_not_apply_and_outside_family_has_no_verdict(capsys):
    data = run_json(
        capsys,
        "properness",
        "--truth",
        "0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1",
        "--family",
        "normal",
    )
    rows = {r["objective"]: r for r in data["results"]}
    assert "product" not in rows and len(rows) >= 14
    assert all(r["verdict"] is None for r in rows.values())
    assert abs(rows["log"]["optimum"]["loc"] - 0.8) < 1e-6
    assert "Kullback-Leibler" in rows["log"]["how"]
    data = run_json(capsys, "properness", "--classes", "2")
    na = {r["objective"]: r for r in data["results"] if r["verdict"] is None}
    assert set(na) == {"crps", "hyvarinen"} and "Categorical" in na["crps"]["not_applicable"]


def test_table_and_plot(tmp_path, capsys):
    fig = tmp_path / "prop.png"
    code, out, err = run(
        capsys,
        "properness",
        "--objectives",
        "log,linear",
        "--truth",
        "student_t:loc=0,scale=1,df=5",
        "--plot",
        fig,
    )
    assert code == 0, err
    assert "strictly proper" in out and "improper" in out and "= improper" in out
    assert fig.stat().st_size > 10_000 and "figure written" in err
    code, out, _ = run(capsys, "properness", "--objectives", "log", "--classes", "4")
    assert code == 0 and "classes:4" in out


def test_user_objective_by_import_path(tmp_path, capsys, monkeypatch):
    (tmp_path / "cli_scores.py").write_text(
        "def sharp(dist, y):\n    return -dist.log_prob(y).exp() ** 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    data = run_json(capsys, "properness", "--objectives", "cli_scores:sharp", "--classes", "3")
    (row,) = data["results"]
    assert row["objective"] == "cli_scores:sharp" and row["verdict"] == "improper"
    assert row["claimed"] is None


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--objectives", "nope"], "nope"),
        (["--classes", "1"], "K must be an integer >= 2"),
        (["--truth", "normal:loc=0,scale=1", "--family", "exponential"], "outside the support"),
        (["--family", "normal"], "give --truth too"),
        (["--truth", "normal:loc=0,scale=-1"], "scale"),
        (["--truth", "0.5 normal:loc=0,scale=1 + 0.5 normal:loc=3,scale=1"], "forecast family"),
        (["--objectives", "log,all"], "give it alone"),
        (["--objectives", "log", "--objective", "nll"], "same objective"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(capsys, args, fragment):
    code, out, err = run(capsys, "properness", *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err


# ---------------------------------------------------------------- failures are rows, exit 1
@pytest.mark.parametrize(
    ("args", "failed", "fragment"),
    [
        (["--objectives", "crps,log", "--truth", "cauchy:loc=0,scale=1"], "crps", "cauchy"),
        (["--objectives", "log,crps", "--classes", "3"], "crps", "class forecasts"),
        (["--objective", "product", "--objective", "brier", "--classes", "3"], "product", "batch"),
    ],
)
def test_an_objective_that_cannot_be_judged_is_a_row_and_exit_1(capsys, args, failed, fragment):
    code, out, err = run(capsys, "properness", *args, "--format", "csv")
    assert code == 1, err
    assert f"{failed} could not be judged" in err and err.count("\n") == 1, err
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["objective", "setting", "verdict", "claim", "evidence"]
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name[failed][2] == "failed" and fragment in by_name[failed][4]
    others = [r for name, r in by_name.items() if name != failed]
    assert others and all(r[2] in ("strictly proper", "proper", "improper") for r in others)
    code, out, _ = run(capsys, "properness", *args, "--json")
    assert code == 1
    row = next(r for r in json.loads(out)["results"] if r["objective"] == failed)
    assert row["verdict"] is None and fragment in row["error"]


def test_a_user_objective_that_raises_is_a_failed_row(tmp_path, capsys, monkeypatch):
    (tmp_path / "cli_broken.py").write_text(
        "def score(dist, y):\n"
        "    if y.numel() > 50:  # fine on likelab's probe, raises on the setting's batch\n"
        "        raise KeyError('not today')\n"
        "    return -dist.log_prob(y)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = run(
        capsys, "properness", "--objectives", "cli_broken:score,log", "--classes", "3", "--json"
    )
    assert code == 1, err
    broken, log = json.loads(out)["results"]
    assert "not today" in broken["error"] and log["verdict"] == "strictly proper"


def test_all_keeps_not_applicable_rows_and_exits_0(capsys):
    data = run_json(capsys, "properness", "--objectives", "all", "--classes", "3")
    rows = {r["objective"]: r for r in data["results"]}
    assert rows["crps"]["verdict"] is None and "not_applicable" in rows["crps"]
    assert not any("error" in r for r in rows.values())


def test_properness_progress_callback_reaches_every_row(capsys, monkeypatch):
    import contextlib

    import likelab.cli as cli

    calls = []

    def fake_bar(label, total):
        calls.append((label, total))
        return contextlib.nullcontext(), lambda done, of: calls.append((done, of))

    monkeypatch.setattr(cli, "_progress_bar", fake_bar)
    monkeypatch.setattr(type(cli._err), "is_terminal", property(lambda self: True))
    code, _, err = run(capsys, "properness", "--objectives", "log,crps,brier", "--classes", "3")
    assert code == 1, err  # crps cannot be judged on classes
    assert calls[0] == ("properness", 3)
    done = [c[0] for c in calls[1:]]
    assert done == sorted(done) and done[-1] == 3 and any(0 < d < 1 for d in done)


def test_the_figure_draws_the_judged_rows_when_one_failed(capsys, tmp_path):
    fig = tmp_path / "p.png"
    code, out, err = run(
        capsys, "properness", "--objectives", "log,crps", "--classes", "3", "--plot", fig
    )
    assert code == 1 and fig.stat().st_size > 1000, err
    assert "without the objectives that failed" in err and "failed" in out
    fig.unlink()
    code, _, err = run(
        capsys, "properness", "--objectives", "crps", "--classes", "3", "--plot", fig
    )
    assert code == 1 and not fig.exists() and "no figure" in err
