"""``likelab train``: table, JSON, figures and bad input."""

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
