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
