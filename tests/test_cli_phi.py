"""``phi:EXPR`` on the command line: the spec is the objective's name in every table and JSON
(fit, landscape, properness, study store and summary, train), a comma inside a function call
stays inside the spec, and expressions outside the grammar are one line and exit status 2."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from tests.cli_support import run, run_json

SPEC = "phi:-p**0.3"
SPACED = "phi: -p ** 0.3"  # the same objective, spelled with whitespace


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "y.txt"
    y = np.random.default_rng(3).standard_t(4, 40)
    path.write_text("\n".join(repr(float(v)) for v in y) + "\n")
    return path


def test_fit_json_and_table_name_the_spec(capsys, data_file):
    data = run_json(capsys, "fit", data_file, "--objectives", f"{SPEC},log")
    assert [f["objective"] for f in data["fits"]] == [SPEC, "log"]
    code, out, err = run(capsys, "fit", data_file, "--objectives", f"{SPEC},log")
    assert code == 0, err
    assert SPEC in out
    # spelled with spaces: the canonical spec, and the spelling beside it
    data = run_json(capsys, "fit", data_file, "--objectives", SPACED)
    assert data["fits"][0]["objective"] == SPEC
    assert data["fits"][0]["objective_given"] == SPACED


def test_the_same_expression_twice_is_refused(capsys, data_file):
    code, _, err = run(capsys, "fit", data_file, "--objectives", f"{SPEC},{SPACED}")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "the same objective" in err


def test_a_comma_inside_a_call_stays_in_the_spec(capsys, data_file):
    data = run_json(capsys, "fit", data_file, "--objectives", "phi:maximum(-p, -0.3),log")
    assert [f["objective"] for f in data["fits"]] == ["phi:maximum(-p,-0.3)", "log"]
    assert data["fits"][0]["objective_given"] == "phi:maximum(-p, -0.3)"


def test_landscape_and_properness_json_name_the_spec(capsys, data_file):
    land = run_json(
        capsys,
        "landscape",
        data_file,
        "--family",
        "normal:scale=1",
        "--objectives",
        f"{SPEC},linear",
        "--param",
        "loc=-2:2:21",
    )
    assert list(land["objectives"]) == [SPEC, "linear"]
    props = run_json(capsys, "properness", "--objectives", f"{SPEC},log", "--classes", 3)
    assert [r["objective"] for r in props["results"]] == [SPEC, "log"]
    assert props["results"][0]["verdict"] == "improper"


def test_study_store_summary_and_train_name_the_spec(capsys, tmp_path):
    path = tmp_path / "phi.yaml"
    path.write_text(
        "name: phi\nseed: 1\ndgps:\n  - family: normal\n    params: {loc: 0, scale: 1}\n"
        "sample_sizes: [12]\nreplicates: 3\nmodel: {family: normal, estimand: [loc]}\n"
        f'objectives: [log, "{SPEC}"]\n'
    )
    code, _, err = run(capsys, "study", "run", path, "--executor", "local")
    assert code == 0, err
    store = tmp_path / "phi.duckdb"
    with duckdb.connect(str(store), read_only=True) as con:
        stored = {r[0] for r in con.execute("SELECT DISTINCT objective FROM results").fetchall()}
    assert stored == {"log", SPEC}
    summary = run_json(capsys, "study", "summary", store)
    assert {r["objective"] for r in summary["rows"]} == {"log", SPEC}
    train = run_json(
        capsys,
        "train",
        "--dataset",
        "xor:repeat=5",
        "--objectives",
        f"{SPEC},log",
        "--epochs",
        "3",
        "--seeds",
        "1",
        "--model",
        "mlp:4",
    )
    assert [r["objective"] for r in train["results"]] == [SPEC, "log"]


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("__import__('os')", "'__import__' is not allowed (an unknown function)"),
        ("p.__class__", "'p.__class__' is not allowed (attribute access)"),
        ("p**", "it ends early, after 'p**'"),
        ("", "give an expression after 'phi:'"),
        ("q+1", "'q' is not allowed (an unknown name"),
        ("log(p-0.5)", "is NaN at p from"),
        ("sqrt(p-0.5)", "is NaN at p from"),
        ("(lambda: p)()", "is not allowed"),
        ("p[0]", "'p[0]' is not allowed (a subscript)"),
        ("[l for l in p]", "is not allowed (a comprehension)"),
        ("log(p, base=2)", "is not allowed (keyword arguments)"),
        ("'p'", "is not allowed (a str constant)"),
    ],
)
def test_malformed_expressions_are_one_line_exit_2(capsys, data_file, expr, fragment):
    for args in (
        ("properness", "--objectives", f"phi:{expr}", "--classes", 3),
        ("fit", data_file, "--objectives", f"phi:{expr}"),
    ):
        code, _, err = run(capsys, *args)
        assert code == 2, (args, err)
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err and fragment in err, err
