"""What the table commands print off a terminal: never cut, every column there, in every
``--format``; objectives as the user spelled them."""

import csv
import io
import json
import re

import pytest

from cli_support import make_study_store, run

STUDY = """
name: piped
seed: 1
dgps:
  - family: normal
    params: {loc: 0, scale: 1}
    contamination: {eps: 0.25, dgp: "normal:loc=123456.789,scale=98765.4321"}
sample_sizes: [12]
replicates: 6
model: {family: normal}
objectives: [nll, "dpd:beta=0.25"]
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_study_store(tmp_path_factory.mktemp("piped"), STUDY, "piped")[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "a-rather-long-file-name-for-the-title.txt"
    path.write_text("\n".join(str(v) for v in (0.31, -1.2, 0.7, 2.4, -0.05, 1.1, 0.4, -0.6)))
    return path


def _commands(data, store):
    """Every command that prints a table, with arguments that make wide cells; and the columns
    its (first) table must show."""
    return {
        "objectives": (["objectives"], ["spec", "formula", "proper", "strict", "local", "robust"]),
        "families": (["families"], ["name", "parameters", "support", "torch"]),
        "landscape": (
            [
                "landscape",
                "--simulate",
                "normal:loc=0,scale=1,n=15",
                "--fix",
                "scale=1",
                "--param",
                "loc=-2:2:21",
                "--objectives",
                "nll,dpd:beta=0.125,power:alpha=2.5,linear",
            ],
            ["objective", "local minima", "global argmin", "min risk", "flat grid"],
        ),
        "fit": (
            ["fit", data, "--objective", "brier,nll,dpd:beta=0.125,crps"],
            ["brier (quadratic)", "nll (log)", "dpd:beta=0.125", "crps"],
        ),
        "properness": (
            ["properness", "--classes", "3", "--objectives", "brier,nll,linear,spherical"],
            ["objective", "setting", "verdict", "claim", "evidence"],
        ),
        "train": (
            [
                "train",
                "--dataset",
                "xor:flip=0.2",
                "--objectives",
                "brier,nll,dpd:beta=0.5",
                "--epochs",
                "2",
                "--seeds",
                "1",
                "--model",
                "logistic",
            ],
            ["objective", "accuracy", "nll", "brier", "ece", "confidence", "prob_gap"],
        ),
        "summary": (
            # the theory's columns: tests/study/test_summary_theory.py (here its quadrature of
            # a mixture of scales 1 and 98765 would take minutes)
            ["study", "summary", store, "--no-theory"],
            ["dgp", "n", "objective", "param", "bias", "emp SE", "RE vs log", "rel MSE vs log"],
        ),
        "underflow": (
            ["underflow", "--likelihoods", "0.3,0.2,0.1"],
            ["dtype", "subnormal at n", "exactly 0 at n", "gradient 0 at n", "log-product there"],
        ),
    }


def _rich_rows(out: str) -> list[list[str]]:
    """The header and body rows of the first rich table in ``out`` (one line per row)."""
    rows = []
    for line in out.splitlines():
        line = line.strip()
        if line[:1] in ("┃", "│"):
            rows.append([c.strip() for c in line.strip("┃│").split(line[0])])
        elif rows and line[:1] == "└":
            break
    return rows


def _markdown_rows(out: str) -> list[list[str]]:
    rows = []
    for line in out.splitlines():
        if line.startswith("|"):
            inner = re.split(r"(?<!\\)\|", line.strip()[1:-1])
            cells = [c.strip().replace("\\|", "|") for c in inner]
            if not all(set(c) <= set("-:") for c in cells):
                rows.append(cells)
        elif rows:
            break
    return rows


def _csv_rows(out: str) -> list[list[str]]:
    first = out.replace("\r\n", "\n").split("\n\n")[0]
    return list(csv.reader(io.StringIO(first)))


COMMANDS = [
    "objectives",
    "families",
    "landscape",
    "fit",
    "properness",
    "train",
    "summary",
    "underflow",
]


@pytest.mark.parametrize("name", COMMANDS)
def test_piped_tables_are_never_cut_and_hold_every_column(name, data, store, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # what a pipe reports; the table must not follow it
    args, columns = _commands(data, store)[name]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "…" not in out
    rows = _rich_rows(out)
    assert rows, out
    header = rows[0]
    for col in columns:
        assert col in header, (col, header)
    assert all(len(r) == len(header) for r in rows), rows
    # the same cells as the csv, which nothing can cut: every table row whole, on one line
    code, text, err = run(capsys, *args, "--format", "csv")
    assert code == 0, err
    assert rows == _csv_rows(text)


@pytest.mark.parametrize("name", COMMANDS)
def test_markdown_and_csv_hold_the_same_rows(name, data, store, capsys):
    args, _ = _commands(data, store)[name]
    code, md, err = run(capsys, *args, "--format", "markdown")
    assert code == 0, err
    code, text, err = run(capsys, *args, "--format", "csv")
    assert code == 0, err
    md_rows, csv_rows = _markdown_rows(md), _csv_rows(text)
    assert len(csv_rows) >= 2
    assert md_rows == csv_rows


def test_summary_shows_the_whole_dgp_and_json_is_the_same_rows(store, capsys):
    code, text, err = run(capsys, "study", "summary", store, "--format", "csv", "--no-theory")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(text)))
    out = run(capsys, "study", "summary", store, "--format", "json", "--no-theory")[1]
    data = json.loads(out)["rows"]
    assert len(rows) == len(data) == 2 * 2  # 2 objectives x 2 parameters
    for row, d in zip(rows, data, strict=True):
        assert row["dgp"] == d["dgp"]
        assert "123456.789" in row["dgp"] and "98765.4321" in row["dgp"]
        assert row["n"] == str(d["n"]) and row["param"] == d["parameter"]
        assert row["objective"].split(" (")[0] == d["objective"]
    assert {r["objective"] for r in rows} == {"nll (log)", "dpd:beta=0.25"}


def test_json_alias_and_format_json_print_the_same(data, capsys):
    a = run(capsys, "fit", data, "--objective", "brier,nll", "--json")
    b = run(capsys, "fit", data, "--objective", "brier,nll", "--format", "json")
    c = run(capsys, "fit", data, "--objective", "brier,nll", "--format=json")
    assert a[0] == b[0] == c[0] == 0
    assert json.loads(a[1]) == json.loads(b[1]) == json.loads(c[1])


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["families", "--format", "html"], "--format must be one of"),
        (["families", "--json", "--format", "csv"], "--json is --format json"),
    ],
)
def test_bad_format_is_one_line(args, fragment, capsys):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1


def test_properness_json_matches_the_table(capsys):
    args = ["properness", "--classes", "3", "--objectives", "brier,nll,linear"]
    code, text, err = run(capsys, *args, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(text)))
    d = json.loads(run(capsys, *args, "--json")[1])
    results = d["results"] if isinstance(d, dict) and "results" in d else d
    assert [r["objective"] for r in rows] == ["brier (quadratic)", "nll (log)", "linear"]
    assert [r["objective_given"] for r in results] == ["brier", "nll", "linear"]
    assert [r["verdict"] for r in rows] == [r["verdict"] for r in results]
    assert all(r["evidence"] for r in rows)


def test_objectives_are_shown_as_spelled(data, capsys):
    code, text, err = run(capsys, "fit", data, "--objective", "brier", "--format", "csv")
    assert code == 0, err
    assert next(csv.reader(io.StringIO(text))) == ["", "brier (quadratic)"]
    fits = json.loads(run(capsys, "fit", data, "--objective", "brier", "--json")[1])["fits"]
    assert [(f["objective"], f["objective_given"]) for f in fits] == [("quadratic", "brier")]
    args = ["--epochs", "1", "--seeds", "1", "--model", "logistic"]
    code, text, err = run(
        capsys, "train", "--dataset", "xor", "--objectives", "brier,log", *args, "--format", "csv"
    )
    assert code == 0, err
    results = text.split("\r\n\r\n")[0]  # the results; the stops table follows
    assert [r["objective"] for r in csv.DictReader(io.StringIO(results))] == [
        "brier (quadratic)",
        "log",
    ]
    land = json.loads(
        run(
            capsys,
            "landscape",
            "--simulate",
            "normal:loc=0,scale=1,n=10",
            "--fix",
            "scale=1",
            "--param",
            "loc=-1:1:5",
            "--objectives",
            "nll,crps",
            "--json",
        )[1]
    )
    assert land["objectives"]["log"]["objective_given"] == "nll"
    assert land["objectives"]["crps"]["objective_given"] == "crps"


def test_on_a_terminal_long_cells_fold_and_are_never_cut():
    from rich.console import Console

    from likelab._tables import TableData, render

    long = "the optimum is the truth (within 4.3e-09); " * 4
    table = TableData("narrow", ["objective", "evidence"])
    table.add_row("dpd:beta=0.125", long)
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=40, color_system=None)
    render([table], "table", console)
    out = buf.getvalue()
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 40
    cells = "".join(r[1] for r in _rich_rows(out)[1:])
    assert cells.replace(" ", "") == long.replace(" ", "")


def test_off_a_terminal_a_table_is_as_wide_as_its_widest_row():
    from rich.console import Console

    from likelab._tables import TableData, render

    wide = "x" * 300
    table = TableData("wide", ["a", "b"])
    table.add_row("1", wide)
    buf = io.StringIO()
    render([table], "table", Console(file=buf, width=80))
    rows = _rich_rows(buf.getvalue())
    assert rows == [["a", "b"], ["1", wide]]


def test_figures_name_the_objectives_as_spelled(data, capsys, monkeypatch, tmp_path):
    """``--plot`` figures name each objective as the command line spelled it, also the
    properness figure drawn without the rows that failed."""
    from matplotlib.text import Text

    import likelab.cli
    import likelab.report.figures

    drawn = []
    monkeypatch.setattr(likelab.cli, "_write_figure", lambda fig, path: drawn.append(fig))

    def texts():
        out = [t.get_text() for t in drawn.pop().findobj(Text)]
        assert not drawn
        return out

    grid = ["--family", "normal:scale=1", "--param", "loc=-1:2:7"]
    args = ["landscape", data, *grid, "--objectives", "nll,l2e", "--plot", tmp_path / "l.png"]
    assert run(capsys, *args)[0] == 0
    shown = texts()
    assert any(t.startswith("nll (log: log-product, mean NLL): ") for t in shown)
    assert any(t.startswith("l2e (quadratic): ") for t in shown)
    args = ["properness", "--classes", "2", "--objectives", "l2e,crps,sum"]
    code, _, err = run(capsys, *args, "--plot", tmp_path / "p.png")
    assert code == 1 and "without the objectives that failed" in err  # crps: not on classes
    assert {"l2e (quadratic)", "sum (linear)"} <= set(texts())
    monkeypatch.setattr(likelab.report.figures, "save_figure", lambda fig, path: drawn.append(fig))
    args = ["train", "--dataset", "xor", "--objectives", "brier,nll", "--epochs", "1"]
    code, _, err = run(capsys, *args, "--seeds", "1", "--model", "logistic", "--plot", tmp_path)
    assert code == 0, err
    assert len(drawn) == 2 and all(
        "brier (quadratic)" in " ".join(t.get_text() for t in fig.findobj(Text)) for fig in drawn
    )
