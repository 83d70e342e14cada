"""The data options shared by ``likelab fit`` and ``likelab landscape``: the file as FILE or
``--data FILE``, ``--column``, ``--missing error|drop`` (the dropped count on stderr and as
``dropped_missing`` in ``--json``), on a multi-column CSV with missing values."""

import json

import numpy as np
import pytest

from cli_support import run, run_json

# rows (1-based line numbers in the file: the header is line 1) whose cell is missing, and how
MISSING_HEIGHT = {4: "NA", 9: "", 15: "nan", 22: "N/A", 30: "null", 31: "NaN", 37: ""}
MISSING_WEIGHT = {2: "", 11: "NA"}  # never in the chosen column below: must not matter


@pytest.fixture
def table(tmp_path):
    """A 40-row CSV (id, height, weight, group) with missing cells; the kept heights."""
    rng = np.random.default_rng(7)
    height = rng.normal(1.72, 0.09, 40)
    weight = rng.normal(70.0, 8.0, 40)
    lines = ["id,height,weight,group"]
    for i in range(40):
        line = i + 2
        h = MISSING_HEIGHT.get(line, repr(float(height[i])))
        w = MISSING_WEIGHT.get(line, repr(float(weight[i])))
        lines.append(f"{i},{h},{w},{'ab'[i % 2]}")
    path = tmp_path / "people.csv"
    path.write_text("\n".join(lines) + "\n")
    kept = np.array([height[i] for i in range(40) if i + 2 not in MISSING_HEIGHT])
    return path, kept


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def drop_line(err: str) -> str:
    """The one stderr line that reports what --missing drop left out."""
    lines = [line for line in err.splitlines() if line.startswith("--missing drop:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("how", ["file", "--data"])
def test_fit_drops_the_missing_rows_of_the_chosen_column(capsys, table, how):
    path, kept = table
    where = [path] if how == "file" else ["--data", path]
    code, out, err = run(capsys, "fit", *where, "--column", "height", "--missing", "drop", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["dropped_missing"] == len(MISSING_HEIGHT) == 7
    assert data["n"] == 33 == kept.size
    # oracle: the normal MLE in closed form on the kept rows (mean, RMS deviation with divisor n)
    fit = data["fits"][0]
    np.testing.assert_allclose(fit["params"]["loc"], kept.mean(), rtol=1e-8)
    np.testing.assert_allclose(fit["params"]["scale"], kept.std(), rtol=1e-7)
    assert drop_line(err) == (
        "--missing drop: dropped 7 of 40 rows of people.csv with a missing value in "
        "column 2 ('height') (lines 4, 9, 15, 22, 30 and 2 more)"
    )
    # the table says the same on stderr; stdout holds the table alone
    code, out, err2 = run(capsys, "fit", *where, "--column", "1", "--missing", "drop")
    assert code == 0 and drop_line(err2) == drop_line(err) and "--missing" not in out


def test_landscape_takes_file_column_and_missing_like_fit(capsys, table):
    path, kept = table
    grid = ["--family", "normal", "--fix", "scale=0.1", "--param", "loc=1.5:2.0:501"]
    args = ["--column", "height", "--missing", "drop", "--objectives", "log", *grid]
    by_file = run_json(capsys, "landscape", path, *args)
    by_data = run_json(capsys, "landscape", "--data", path, *args)
    assert by_file == by_data
    assert by_file["dropped_missing"] == 7 and by_file["n"] == 33
    # oracle: the mean normal NLL with scale s at loc, in closed form on the kept rows
    loc = np.linspace(1.5, 2.0, 501)
    s = 0.1
    nll = 0.5 * np.log(2 * np.pi * s**2) + ((kept[None, :] - loc[:, None]) ** 2).mean(1) / (
        2 * s**2
    )
    log = by_file["objectives"]["log"]
    np.testing.assert_allclose(log["values"], nll, rtol=1e-12)
    assert log["local_minima"] == 1
    assert log["argmin"]["loc"] == pytest.approx(loc[np.argmin(np.abs(loc - kept.mean()))])
    # the keys it had before are all still there
    assert {"family", "n", "dtype", "params", "grid", "objectives"} < set(by_file)


def test_missing_values_in_other_columns_do_not_matter(capsys, table):
    path, _ = table
    code, out, err = run(capsys, "fit", path, "--column", "id", "--family", "normal", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["n"] == 40 and data["dropped_missing"] == 0
    code, _, err = run(capsys, "fit", path, "--column", "id", "--missing", "drop")
    assert code == 0
    assert drop_line(err) == (
        "--missing drop: dropped 0 of 40 rows of people.csv with a missing value in column 1 ('id')"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["fit"],
        ["landscape", "--fix", "scale=0.1", "--param", "loc=1.5:2:11", "--objectives", "log"],
    ],
)
def test_by_default_a_missing_value_is_one_error_line_listing_rows_and_count(
    capsys, table, command
):
    path, _ = table
    code, out, err = run(capsys, *command[:1], path, *command[1:], "--column", "height")
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert line == (
        "error: people.csv, column 2 ('height'): 7 rows have a missing value: lines 4 ('NA'), "
        "9 (''), 15 ('nan'), 22 ('N/A'), 30 ('null') and 2 more; pass --missing drop "
        "(missing='drop' in Python) to leave such rows out, or fill them in"
    )
    code, _, err = run(
        capsys, *command[:1], path, *command[1:], "--column", "height", "--missing", "error"
    )
    assert code == 2 and one_error_line(err) == line


def test_landscape_reads_a_multi_column_csv_only_with_column(capsys, tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("a,b\n0.5,3\n-0.25,4\n1.5,5\n")
    grid = ["--fix", "scale=1", "--param", "loc=-1:1:5", "--objectives", "log"]
    code, _, err = run(capsys, "landscape", path, *grid)
    assert code == 2 and "has 2 columns (a, b); choose one" in one_error_line(err)
    data = run_json(capsys, "landscape", path, "--column", "a", *grid)
    assert data["n"] == 3 and data["dropped_missing"] == 0
    # nothing was missing and nothing was asked: no line about dropping
    code, _, err = run(capsys, "landscape", path, "--column", "a", *grid)
    assert code == 0 and "--missing" not in err


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["fit"], "Missing argument 'FILE'"),
        (["fit", "{p}", "--data", "{p}"], "give the data file once"),
        (
            ["landscape", "{p}", "--data", "{p}", "--fix", "scale=1", "--param", "loc=0:1:3"],
            "give the data file once",
        ),
        (
            ["fit", "{p}", "--column", "height", "--missing", "skip"],
            "--missing must be error or drop",
        ),
        (
            [
                "landscape",
                "--simulate",
                "normal:loc=0,scale=1,n=5",
                "--column",
                "a",
                "--fix",
                "scale=1",
                "--param",
                "loc=0:1:3",
            ],
            "--column and --missing apply to a data file",
        ),
        (
            [
                "landscape",
                "--simulate",
                "normal:loc=0,scale=1,n=5",
                "--missing",
                "drop",
                "--fix",
                "scale=1",
                "--param",
                "loc=0:1:3",
            ],
            "--column and --missing apply to a data file",
        ),
        (
            ["landscape", "--fix", "scale=1", "--param", "loc=0:1:3"],
            "give exactly one of a data file",
        ),
        (["landscape", "--seed-example", "--column", "a"], "--seed-example sets data"),
        (["landscape", "--seed-example", "{p}"], "--seed-example sets data"),
    ],
)
def test_bad_data_options_are_one_error_line(capsys, table, args, fragment):
    path, _ = table
    argv = [str(path) if a == "{p}" else a for a in args]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert fragment in one_error_line(err)


def test_a_column_with_no_value_is_an_error_even_with_drop(capsys, tmp_path):
    path = tmp_path / "empty_col.csv"
    path.write_text("x,y\n1,\n2,NA\n3,nan\n")
    code, _, err = run(capsys, "fit", path, "--column", "y", "--missing", "drop")
    assert code == 2
    assert "every data row (3) has a missing value" in one_error_line(err)


def test_a_command_failing_after_a_drop_prints_its_error_line_alone(capsys, table):
    """The dropped-rows note is printed once the command has succeeded: a command that fails
    later (here, heights outside the support of a uniform on [5, 6]) says one line."""
    path, _ = table
    code, out, err = run(
        capsys,
        "fit",
        path,
        "--column",
        "id",
        "--missing",
        "drop",
        "--family",
        "uniform",
        "--fix",
        "low=5",
        "--fix",
        "high=6",
    )
    assert code == 2 and not out
    one_error_line(err)
