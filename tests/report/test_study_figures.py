"""The simulation-study figures and section, on a small factorial study store.

The store: a normal model's (loc, scale) fitted by ``log``, ``linear`` and ``dpd:beta=0.5`` to
normal data (scale 1 and 2, clean and with 10% outliers) and to a Student t written with its
parameters out of name order. ``linear`` has no minimum with a free scale (its risk -mean f
falls without bound as the scale shrinks onto a data point), so its fits fail: it must appear in
no figure as a line or legend entry, and the page must say why.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.patches import StepPatch
from tests.cli_support import make_study_store

from likelab.report.study_figures import (
    canonical_dgp,
    design_factors,
    plot_contamination,
    plot_estimates,
    plot_nested_loop,
    plot_study,
    plot_zip,
    zip_data,
)
from likelab.study import StudySpec, summarise
from likelab.study.design import dgp_points
from likelab.study.store import Store

STUDY = """
name: figures
seed: 11
dgps:
  - family: normal
    params: {loc: 0, scale: [1, 2]}
    contamination: {eps: [0, 0.1], dgp: "normal:loc=8,scale=1"}
  - family: student_t
    params: {loc: 0, scale: 1, df: 5}
sample_sizes: [20, 50]
replicates: 24
block: 24
model: {family: normal, truth: {loc: 0, scale: 1}}
objectives: [log, linear, "dpd:beta=0.5"]
"""
Z = 1.959963984540054


pytestmark = pytest.mark.usefixtures("no_pyplot_figures")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    store = make_study_store(tmp_path_factory.mktemp("figs"), STUDY, "figs")[1]
    with Store(store, read_only=True) as db:
        spec = StudySpec.model_validate_json(db.study()["spec_json"])
    return store, summarise(store), dgp_points(spec)


def _texts(fig) -> list[str]:
    """Every piece of text a figure shows: titles, labels, ticks, legends, notes."""
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]


def _legend(fig) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def _labelled(fig) -> set[str]:
    """The labels of every line, step line and error bar drawn in the figure's panels."""
    out = set()
    for ax in fig.axes:
        out |= {a.get_label() for a in (*ax.lines, *ax.patches, *ax.containers)}
    return out


def test_linear_fails_here_for_the_reason_the_page_gives(study):
    """The premise, from the store: linear's failed fits drive the scale to about 0."""
    store, rows, _ = study
    with duckdb.connect(str(store), read_only=True) as con:
        failed, total, tiny = con.execute(
            "SELECT count(*) FILTER (WHERE NOT converged), count(*), "
            "count(*) FILTER (WHERE NOT converged AND estimate < 1e-4 * truth) "
            "FROM results WHERE objective = 'linear' AND parameter = 'scale'"
        ).fetchone()
    assert failed >= 0.95 * total and tiny >= 0.9 * failed
    assert all(r["failure_rate"] == 0 for r in rows if r["objective"] == "log")


def test_a_failed_objective_is_no_line_and_no_legend_entry_but_a_note(study):
    store, rows, points = study
    note = {"linear": "every fit failed, because of a test"}
    levels = {
        d: (p.base, p.eps)
        for p in points
        for d in {r["dgp"] for r in rows}
        if canonical_dgp(d) == canonical_dgp(p.spec)
    }
    figures = [
        plot_study(rows, "rel_eff", failures=note),
        plot_study(rows, "coverage", failures=note),
        plot_study(rows, "model_se_rel_error", failures=note),
        plot_contamination(rows, levels, 50, failures=note),
        plot_nested_loop(rows, design_factors(points), failures=note),
        plot_estimates(rows, "scale", failures=note),
        plot_zip(zip_data(store, rows[0]["dgp"], 50), ["log", "linear", "dpd:beta=0.5"],
                 failures=note),
    ]  # fmt: skip
    for fig in figures:
        assert "linear" not in _legend(fig) and "linear" not in _labelled(fig)
        assert any("linear: not drawn, every fit failed, because of a test" in t.replace(
            "\n", " ").replace("     ", " ") for t in _texts(fig))  # fmt: skip
    # the objectives that have results are in every legend but the zip plot's (colours mean
    # covers / misses there)
    for fig in figures[:-1]:
        assert {"log", "dpd:beta=0.5"} <= set(_legend(fig))


def test_titles_are_whole_never_cut(study):
    """Every panel title holds its whole DGP spec (wrapped, not cut); no '…' anywhere."""
    _, rows, points = study
    fig = plot_study(rows, "bias")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    want = [f"{d}: {p}" for d, p in dict.fromkeys((r["dgp"], r["parameter"]) for r in rows)]
    assert ["".join(t.split()) for t in titles] == ["".join(w.split()) for w in want]
    # a DGP spec far longer than a panel is wide wraps onto lines within the panel
    long = "0.8 student_t:loc=0,scale=1,df=3 + 0.15 normal:loc=8,scale=1 + 0.05 cauchy:loc=-20"
    fig_long = plot_study([{**r, "dgp": long} for r in rows if r["dgp"] == rows[0]["dgp"]], "bias")
    fig_long.canvas.draw()
    for ax in fig_long.axes:
        title = ax.title
        assert (
            "".join(title.get_text().split())
            == "".join(f"{long}: {ax.title.get_text()[-3:]}".split())
            or "\n" in title.get_text()
        )
        assert title.get_window_extent().width <= ax.get_window_extent().width * 1.15
    for f in (fig, plot_nested_loop(rows, design_factors(points)), plot_estimates(rows, "loc")):
        assert not any("…" in t for t in _texts(f))


def test_nested_loop_draws_one_step_line_per_factor_and_the_measure_per_cell(study):
    _, rows, points = study
    factors = design_factors(points)
    # loc is the same everywhere, so it is no factor; df exists for the t only
    assert set(next(iter(factors.values()))) == {"family", "scale", "df", "eps"}
    fig = plot_nested_loop(rows, factors, measures=("bias", "coverage"))
    bottom = fig.axes[4]  # rows bias, coverage, factors; columns loc, scale
    steps = [p for p in bottom.patches if isinstance(p, StepPatch)]
    assert [p.get_label() for p in steps] == [
        "factor family",
        "factor scale",
        "factor df",
        "factor eps",
        "factor n",
    ]
    # the cells are sorted by the factors: n varies fastest, family slowest
    cells = len({(r["dgp"], r["n"]) for r in rows})
    n_line = steps[-1].get_data().values
    assert len(n_line) == cells and list(n_line[:2]) != [n_line[0]] * 2
    family = steps[0].get_data().values
    assert np.all(np.diff(family) >= 0)  # normal first, then student_t, never back
    # the bias steps are the rows' biases in that order
    log = next(p for p in fig.axes[0].patches if p.get_label() == "log")
    got = sorted(log.get_data().values.tolist())
    want = sorted(r["bias"] for r in rows if r["objective"] == "log" and r["parameter"] == "loc")
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_estimates_with_monte_carlo_intervals(study):
    _, rows, _ = study
    fig = plot_estimates(rows, "loc", measures=("bias", "coverage"))
    bias_ax = fig.axes[0]
    dpd = next(c for c in bias_ax.containers if c.get_label() == "dpd:beta=0.5")
    mine = [r for r in rows if r["objective"] == "dpd:beta=0.5" and r["parameter"] == "loc"]
    np.testing.assert_allclose(
        np.sort(dpd.lines[0].get_xdata()), np.sort([r["bias"] for r in mine]), rtol=1e-12
    )
    # each bar spans bias ± 1.96 MCSE
    segs = dpd.lines[2][0].get_segments()
    widths = sorted((s[1][0] - s[0][0]) / 2 for s in segs)
    np.testing.assert_allclose(widths, sorted(Z * r["bias_mcse"] for r in mine), rtol=1e-9)


def test_zip_plot_ranks_the_intervals_and_marks_the_coverage(study):
    store, rows, _ = study
    dgp = next(r["dgp"] for r in rows if r["dgp"].startswith("normal:loc=0,scale=1"))
    data = zip_data(store, dgp, 50)
    fig = plot_zip(data, ["log", "linear", "dpd:beta=0.5"])
    # independently: the replicates from the store, the coverage by counting
    with duckdb.connect(str(store), read_only=True) as con:
        est, se, truth = (
            con.execute(
                "SELECT estimate, se, truth FROM results WHERE dgp = ? AND n = 50 AND objective = "
                "'log' AND parameter = 'scale' AND converged ORDER BY replicate",
                [dgp],
            )
            .fetchnumpy()
            .values()
        )
    misses = int(np.count_nonzero(np.abs(est - truth) > Z * se))
    ax = next(a for a in fig.axes if a.get_title().startswith("log, scale"))
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    red = [c for c in lines if c.get_label() == "misses"]
    blue = next(c for c in lines if c.get_label() == "covers")
    assert len(blue.get_segments()) + sum(len(c.get_segments()) for c in red) == len(est)
    assert sum(len(c.get_segments()) for c in red) == misses
    if red:  # the misses are the largest |z|: above every interval that covers
        assert min(s[0][1] for s in red[0].get_segments()) > max(
            s[0][1] for s in blue.get_segments()
        )
    c = 1 - misses / len(est)
    mcse = math.sqrt(c * (1 - c) / len(est))
    gold = sorted(ln.get_ydata()[0] for ln in ax.lines if ln.get_color() == "gold")
    np.testing.assert_allclose(
        gold, [100 * max(0, c - Z * mcse), 100 * min(1, c + Z * mcse)], rtol=1e-12
    )
    assert f"coverage {100 * c:.1f}%" in ax.get_title().replace("\n", " ")


def test_the_study_page_says_why_linear_failed_in_words(study, tmp_path):
    from likelab.report.pages import write_study_report

    store, _, _ = study
    # the page's theory beside the simulation: tests/report/test_study_theory.py
    html = write_study_report(store, tmp_path / "page", theory=False).read_text()
    text = " ".join(html.split())
    with duckdb.connect(str(store), read_only=True) as con:
        fits, failed = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT ok) FROM (SELECT cell_key, replicate, "
            "bool_and(converged) AS ok FROM results WHERE objective = 'linear' GROUP BY ALL)"
        ).fetchone()
    head = f"all {fits:,} fits failed" if failed == fits else f"{failed:,} of {fits:,} fits failed"
    assert f"<code>linear</code>: {head}" in text
    assert "stopped at the iteration limit without converging" in text
    assert "its risk has no minimum with the scale free: the scale runs to 0" in text.lower()
    assert "dpd:beta=0.5</code>: " not in text or "fits failed" in text
    # the Student t written loc, scale, df is matched to the design's point: its cells come
    # after the normal ones, as in the study file, not last by accident of spelling
    assert text.index("student_t:loc=0,scale=1,df=5, n = 20") > text.index(
        "0.9 normal:loc=0,scale=2 + 0.1 normal:loc=8,scale=1, n = 50"
    )
    assert "…" not in text
    # the new views are on the page
    for alt in ("nested-loop plot", "zip plot", "Monte Carlo interval", "model SE"):
        assert alt in text


def test_failure_reasons_in_words():
    from likelab.report.sections import _reason_words

    assert (
        _reason_words("error: ValueError: no density") == "raised an error (ValueError: no density)"
    )
    assert _reason_words("boundary").startswith("ran to the edge of the parameter space")
    assert _reason_words("gtol") == "converged to a non-finite estimate"
    assert "'weird'" in _reason_words("weird")


def test_an_objective_that_raises_is_reported_with_its_error(tmp_path):
    """Another failure than linear's: hyvarinen refuses the Laplace model (its log-density has
    a kink); the page quotes the error, and the objective is in no figure."""
    from likelab.report.sections import study_section

    store = make_study_store(
        tmp_path,
        """
        name: kink
        seed: 2
        dgps: [{family: laplace, params: {loc: 0, scale: 1}}]
        sample_sizes: [20, 40]
        replicates: 8
        model: {family: laplace}
        objectives: [log, hyvarinen]
        """,
        "kink",
    )[1]
    section = study_section(store)
    (fail,) = section.data["failures"]
    assert fail["objective"] == "hyvarinen" and fail["all"] and fail["failed"] == 16
    assert fail["text"].startswith("all 16 fits failed: 16 raised an error (UnsupportedError: ")
    assert "twice differentiable" in fail["text"] and fail["why"] == ""
    rows = summarise(store)
    fig = plot_study(rows, "bias", failures={"hyvarinen": fail["note"]})
    assert _legend(fig) == ["log"]
