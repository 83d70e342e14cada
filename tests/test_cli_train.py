"""``likelab train``: table, JSON, figures and bad input."""

import json
import re

import pytest
from tests.cli_support import run, run_json


def test_json_rows_are_means_and_sds_over_seeds(capsys):
    data = run_json(
        capsys,
        "train",
        "--dataset",
        "xor:flip=0.2",
        "--objectives",
        "log,linear",
        "--batch-size",
        "0",
        "--epochs",
        "300",
        "--seeds",
        "2",
    )
    assert data["dataset"] == "xor:flip=0.2" and data["seeds"] == [0, 1]
    rows = {r["objective"]: r for r in data["results"]}
    assert set(rows) == {"log", "linear"}
    for key in ("accuracy", "nll", "brier", "ece", "confidence", "prob_gap"):
        assert key in rows["log"] and f"{key}_sd" in rows["log"]
    assert rows["log"]["prob_gap"] < 0.03 and rows["linear"]["prob_gap"] > 0.17
    assert rows["log"]["seeds"] == 2


def test_table_noise_and_plots(tmp_path, capsys):
    code, out, err = run(
        capsys,
        "train",
        "--dataset",
        "iris",
        "--noise",
        "symmetric:0.2",
        "--objectives",
        "log,mae",
        "--model",
        "logistic",
        "--epochs",
        "5",
        "--seeds",
        "1",
        "--plot",
        tmp_path,
    )
    assert code == 0, err
    assert "label noise symmetric:0.2" in out and "mae" in out and "prob_gap" not in out
    for name in ("learning_curves.png", "reliability.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_next_word_uses_its_model_by_default(capsys):
    data = run_json(
        capsys,
        "train",
        "--dataset",
        "next-word",
        "--objectives",
        "log",
        "--epochs",
        "2",
        "--seeds",
        "1",
    )
    assert data["model"] == "next-word:16"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--dataset", "nope"], "unknown dataset"),
        (["--dataset", "xor", "--noise", "symmetric:1.2"], "[0, 1)"),
        (["--dataset", "xor", "--objectives", "crps"], "cannot train a classifier"),
        (["--dataset", "xor", "--model", "mlp:x"], "integers"),
        (["--dataset", "xor", "--seeds", "0"], "--seeds"),
        (["--dataset", "xor", "--optimizer", "rmsprop"], "optimizer"),
        (["--objectives", "log"], "--dataset"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(capsys, args, fragment):
    code, out, err = run(capsys, "train", "--epochs", "1", "--seeds", "1", *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err


_FAST = ["--epochs", "1", "--seeds", "1", "--model", "mlp:4"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--dataset", "xor", "--lr", "1e308"], "lr must be a number in (0, 3.4e+37]"),
        (["--dataset", "xor", "--lr", "0"], "--lr must be a finite number > 0"),
        (["--dataset", "xor", "--lr", "nan"], "--lr must be a finite number > 0"),
        (["--dataset", "xor", "--lr", "inf"], "--lr must be a finite number > 0"),
        (["--dataset", "xor", "--epochs", "0"], "--epochs must be an integer >= 1"),
        (["--dataset", "xor", "--batch-size", "-3"], "--batch-size must be >= 1, or 0"),
        (["--dataset", "xor", "--seeds", "1000000000"], "--seeds must be an integer in [1, 1000]"),
        (["--dataset", "xor:flip=abc"], "flip must be a number in [0, 0.5), got 'abc'"),
        (["--dataset", "xor:flip=0.5"], "flip must be a number in [0, 0.5)"),
        (["--dataset", "moons:n=lots"], "n must be an integer >= 8"),
        (["--dataset", "iris:flip=0.1"], "'iris' takes no parameters"),
        (["--dataset", "xor-gauss:n=1e10"], "would hold 10,000,000,000 examples"),
        (["--dataset", "xor", "--noise", "pairflip:x"], "must be a number in [0, 1)"),
        (["--dataset", "xor", "--noise", "symmetric:1"], "must be a number in [0, 1)"),
        (["--dataset", "xor", "--model", "mlp:0"], "positive"),
        (["--dataset", "xor", "--model", "mlp:abc"], "integers"),
        (["--dataset", "next-word", "--model", "next-word:-1"], "positive"),
        (["--dataset", "xor", "--model", "mlp:100000,100000"], "~160 GB to train"),
        (["--dataset", "unknown-set"], "unknown dataset 'unknown-set'; choose one of: xor"),
    ],
)
def test_bad_training_options_are_one_line_and_exit_2(capsys, tmp_path, args, fragment):
    code, out, err = run(capsys, "train", *_FAST, *args, "--plot", tmp_path / "figs")
    assert code == 2 and out == "", err
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err
    assert not (tmp_path / "figs").exists()


def test_every_run_diverging_is_one_error_line(capsys, tmp_path):
    code, out, err = run(
        capsys, "train", "--dataset", "circles", "--objectives", "log,spherical", "--lr", "1e30",
        "--epochs", "3", "--seeds", "2", "--model", "mlp:8", "--plot", tmp_path / "figs",
    )  # fmt: skip
    assert code == 2 and out == "", err
    assert err.count("\n") == 1 and err.startswith("error: every run diverged (4 of 4; seed 0: ")
    assert "(non-finite loss)" in err and "try a smaller --lr than 1e+30" in err
    assert not (tmp_path / "figs").exists()


def test_some_runs_diverging_are_data_not_numbers(capsys, tmp_path):
    args = ["train", "--dataset", "moons:noise=0.3", "--objectives", "log,linear", "--lr", "5"]
    args += ["--optimizer", "sgd", "--epochs", "3", "--seeds", "1", "--batch-size", "64"]
    code, out, err = run(capsys, *args, "--json")
    assert code == 1, err  # a run diverged: the results, then exit status 1
    data = json.loads(out)
    assert data["failed"] is True
    rows = {r["objective"]: r for r in data["results"]}
    assert rows["log"]["diverged"] == 1 and rows["log"]["accuracy"] is None
    assert rows["log"]["divergence"][0].startswith("seed 0: diverged at epoch ")
    assert rows["linear"]["diverged"] == 0 and 0 < rows["linear"]["accuracy"] <= 1
    code, out, err = run(capsys, *args, "--plot", tmp_path)
    assert code == 1, err
    log_row = next(line for line in out.splitlines() if "│ log" in line)
    assert not re.search(r"\bnan\b", out) and log_row.count("undetermin") == 5  # may fold
    assert "warning: log: 1 of 1 run(s) diverged (seed 0: diverged at epoch" in err
    assert (tmp_path / "reliability.png").stat().st_size > 10_000


def test_plot_into_a_file_is_refused_before_training(capsys, tmp_path):
    target = tmp_path / "figs.png"
    target.write_bytes(b"keep me")
    code, _, err = run(capsys, "train", "--dataset", "xor", *_FAST, "--plot", target)
    assert code == 2 and err.count("\n") == 1
    assert "--plot" in err and "exists and is not a directory" in err
    assert target.read_bytes() == b"keep me" and sorted(tmp_path.iterdir()) == [target]


def test_plot_under_a_file_writes_nothing(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err = run(
        capsys, "train", "--dataset", "xor", *_FAST, "--plot", tmp_path / "file" / "figs"
    )
    assert code == 2 and err.count("\n") == 1 and "is a file" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ---------------------------------------------------------------------- --data, stops, failures
def _table(tmp_path, *, gaps=False):
    lines = ["length,width,species"]
    for i in range(60):
        kind = ["alpha", "beta", "gamma"][i % 3]
        lines.append(f"{1 + (i % 3) + 0.01 * i},{(i * 7) % 11 / 10},{kind}")
    if gaps:
        lines[5] = "NA,0.3,gamma"
        lines[9] = "2.0,,gamma"
    path = tmp_path / "plants.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_data_and_target_train_on_a_users_csv(capsys, tmp_path):
    path = _table(tmp_path, gaps=True)
    args = ["train", "--data", path, "--target", "species", "--objectives", "log,brier"]
    args += ["--seeds", "2", "--model", "logistic", "--missing", "drop", "--noise", "symmetric:0.1"]
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["classes"] == ["alpha", "beta", "gamma"] and data["target"] == "species"
    assert data["features"] == ["length", "width"] and data["dropped_missing"] == 2
    assert data["dataset"] == "plants.csv" and data["noise"] == "symmetric:0.1"
    assert "dropped 2 of 60 rows of plants.csv" in err and "line 6, line 10" in err
    rows = {r["objective"]: r for r in data["results"]}
    assert rows["log"]["accuracy"] > 0.9 and "prob_gap" not in rows["log"]
    assert all(s["reason"] for s in rows["log"]["stops"]) and len(rows["log"]["stops"]) == 2
    code, out, err = run(capsys, "train", "--data", path, "--target", "species", "--seeds", "1")
    assert code == 2 and "2 rows have a missing value: line 6 ('NA' in 'length')" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--dataset", "xor", "--data", "DATA", "--target", "species"], "exactly one of"),
        (["--data", "DATA"], "needs --target COLUMN"),
        (["--dataset", "xor", "--target", "species"], "apply to --data"),
        (["--data", "DATA", "--target", "colour"], "has no column 'colour'"),
        (["--data", "DATA", "--target", "length"], "'species': 'alpha' is text"),
        (["--data", "DATA", "--target", "species", "--missing", "maybe"], "--missing must be"),
        (["--data", "DATA", "--target", "species", "--noise", "pairflip:2"], "[0, 1)"),
        (["--data", "SMALL", "--target", "species"], "too few rows"),
        (["--dataset", "xor", "--tol", "-1"], "--tol must be a finite number >= 0"),
    ],
)
def test_bad_data_options_are_one_line_and_exit_2(capsys, tmp_path, args, fragment):
    small = tmp_path / "small.csv"
    small.write_text("x,species\n1,a\n2,a\n3,a\n4,b\n")
    path = _table(tmp_path)
    args = [str(path) if a == "DATA" else str(small) if a == "SMALL" else a for a in args]
    code, out, err = run(capsys, "train", *_FAST, *args)
    assert code == 2 and out == "", err
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err


def test_a_failing_objective_is_a_row_the_others_run_and_the_status_is_1(capsys):
    args = ["train", "--dataset", "xor:repeat=10", "--objectives", "log,crps", "--seeds", "2"]
    code, out, err = run(capsys, *args, "--model", "mlp:8")
    assert code == 1, err
    crps = next(line for line in out.splitlines() if "│ crps" in line)
    assert crps.count("failed") >= 6 and "failed 2/2" in crps
    assert "crps cannot train a classifier" in out  # the stop table gives the reason
    assert "warning: crps: 2 of 2 run(s) failed (every seed: crps cannot train" in err
    log = next(line for line in out.splitlines() if line.startswith("│ log"))
    assert "failed" not in log and re.search(r"\d\.\d{3}±\d\.\d{3}", log)


def test_table_says_when_and_why_each_run_stopped(capsys):
    code, out, err = run(
        capsys, "train", "--dataset", "xor:flip=0.25,repeat=20", "--objectives", "log,linear",
        "--seeds", "1", "--format", "csv",
    )  # fmt: skip
    assert code == 0, err
    assert "when and why each run stopped" in out or "objective,seed,epoch,stopped" in out
    assert re.search(r"log,0,\d+,converged at epoch \d+: gradient norm [0-9.e-]+ <= tol 1e-05", out)
