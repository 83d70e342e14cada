"""Figures: they draw, save a PNG, have the expected panels, and leave no pyplot state."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from likelab.landscape import evaluate, seed_example, underflow
from likelab.report import plot_landscape, plot_underflow

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.exists() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


pytestmark = pytest.mark.usefixtures("no_pyplot_figures")


def test_landscape_1d(tmp_path):
    land = seed_example(0, points=400)
    path = tmp_path / "sub" / "landscape.png"
    fig = plot_landscape(land, path)
    assert isinstance(fig, Figure) and _is_png(path)
    assert len(fig.axes) == 3  # one panel per objective, stacked
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("sum of likelihoods") and "local minima" in titles[0]
    assert f"{land.results['linear'].local_minima} local minima" in titles[0]
    assert "1 local minimum" in titles[2]
    # shared x axis
    assert fig.axes[0].get_shared_x_axes().joined(fig.axes[0], fig.axes[2])


def test_landscape_1d_float32_constant_product(tmp_path):
    land = seed_example(0, points=200, dtype=torch.float32)
    fig = plot_landscape(land, tmp_path / "l32.png")
    assert "constant over the whole grid" in fig.axes[1].get_title()


def test_landscape_2d(tmp_path):
    y = np.random.default_rng(0).normal(1.0, 2.0, size=30)
    land = evaluate(
        y,
        "normal",
        ["log", "linear"],
        {"loc": np.linspace(-2, 4, 25), "scale": np.linspace(0.3, 4, 20)},
    )
    path = tmp_path / "l2.png"
    fig = plot_landscape(land, path)
    assert _is_png(path)
    assert len(fig.axes) == 4  # two maps and their two colour bars
    assert fig.axes[0].get_xlabel() == "loc" and fig.axes[0].get_ylabel() == "scale"


def test_landscape_without_path_does_not_write(tmp_path):
    fig = plot_landscape(seed_example(0, points=50))
    assert isinstance(fig, Figure) and list(tmp_path.iterdir()) == []


def _break_marks(ax, y: float) -> int:
    """How many broken-axis marks (//: unclipped markers in axes coordinates) sit at height y."""
    return sum(
        1
        for line in ax.lines
        if line.get_transform() == ax.transAxes
        and not line.get_clip_on()
        and np.allclose(line.get_ydata(), y)
    )


@pytest.mark.parametrize(
    "likelihoods,dtypes,max_n",
    [((0.3, 0.2, 0.1), ("float32", "float64"), 512), ((0.05, 0.6), ("float32",), 200)],
)
def test_underflow_figure_keeps_zero_off_the_log_axis(tmp_path, likelihoods, dtypes, max_n):
    rep = underflow(likelihoods, dtypes=dtypes, max_n=max_n)
    path = tmp_path / "underflow.png"
    fig = plot_underflow(rep, path)
    assert _is_png(path)
    top, top_zero, bottom, bottom_zero = fig.axes  # each log axis over its strip of zeros
    assert bottom_zero.get_xlabel() == "batch size n"
    for log_ax, zero_ax in ((top, top_zero), (bottom, bottom_zero)):
        # a broken axis: // marks on both sides of the gap, the facing spines hidden
        assert _break_marks(log_ax, 0.0) == 1 and _break_marks(zero_ax, 1.0) == 1
        assert not log_ax.spines["bottom"].get_visible()
        assert not zero_ax.spines["top"].get_visible()
        # no tick of the log axis claims to be zero
        assert all(
            "0" != t.get_text() and "exactly" not in t.get_text() for t in log_ax.get_yticklabels()
        )
    for dt in dtypes:
        t = rep.thresholds[dt]
        assert t["zero_at"] is not None  # these likelihoods underflow in every dtype asked
        # where the product is exactly 0, its curve on the log axis has no point at all
        curve = next(ln for ln in top.lines if ln.get_label() == f"{dt}: naive product")
        y = np.asarray(curve.get_ydata(), dtype=float)
        assert np.isnan(y[rep.product[dt] == 0]).all()
        assert np.isfinite(y[rep.product[dt] > 0]).all()
        # the strip says from where, and draws a bar from there to the last n
        labels = [t_.get_text() for t_ in top_zero.get_yticklabels()]
        assert f"{dt}: exactly 0 from n = {t['zero_at']}" in labels
        spans = [seg for coll in top_zero.collections for seg in coll.get_segments()]
        assert any(
            np.isclose(seg[0][0], t["zero_at"] - 0.5) and np.isclose(seg[1][0], max_n + 0.5)
            for seg in spans
        )
    grad_labels = [t_.get_text() for t_ in bottom_zero.get_yticklabels()]
    assert f"NLL: never 0 (n ≤ {max_n})" in grad_labels


def test_underflow_figure_without_any_zero(tmp_path):
    # nothing underflows within max_n: empty strips that say so, still a valid figure
    rep = underflow((0.9,), dtypes=("float64",), max_n=64)
    fig = plot_underflow(rep, tmp_path / "u.png")
    assert _is_png(tmp_path / "u.png") and len(fig.axes) == 4
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["float64: never 0 (n ≤ 64)"]
    assert not fig.axes[1].collections


def test_underflow_caption_says_where_the_panels_are():
    from likelab.report.sections import underflow_section

    rep = underflow((0.3, 0.2, 0.1), max_n=128)
    fig = plot_underflow(rep)
    top, _, bottom, _ = fig.axes
    # stacked, not side by side: the caption says top and bottom
    assert top.get_position().y0 > bottom.get_position().y1
    caption = underflow_section(rep, fig).data["figure"].caption
    assert caption.startswith("Top:") and "Bottom:" in caption
    assert "left" not in caption.lower() and "right" not in caption.lower()


# ---------------------------------------------------------------------- properness profiles
@pytest.fixture(scope="module")
def class_survey():
    from likelab.properness import survey

    # 4 classes (not the demo's 3): proper, strictly proper and improper objectives
    return survey(["log", "linear", "spherical", "pseudospherical:gamma=3", "gce"], classes=4)


def test_properness_figure_has_few_large_labelled_panels(class_survey):
    from likelab.report import plot_properness

    fig = plot_properness(class_survey)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) <= 6
    fig.canvas.draw()  # lay it out
    width, height = fig.get_size_inches()
    for ax in panels:
        box = ax.get_position()
        assert box.width * width >= 3.0 and box.height * height >= 2.0  # inches
        assert ax.get_xlabel()  # what the forecast parameter is
        assert min(t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels()) >= 10
        if ax.get_subplotspec().is_first_col():
            assert "minus its value at the truth" in " ".join(ax.get_ylabel().split())


def _curve_points(ax):
    return [np.asarray(ln.get_ydata(), float) for ln in ax.lines if len(ln.get_xdata()) > 5]


def test_properness_figure_shows_the_minimum_at_the_truth(class_survey):
    from likelab.report import plot_properness

    fig = plot_properness(class_survey)
    full, near, improper = fig.axes  # one setting: three rows, one column
    strict = [r for r in class_survey.results if r.verdict == "strictly proper"]
    assert len(_curve_points(full)) == len(_curve_points(near)) == len(strict) == 3
    assert near.get_xlim() == pytest.approx((0.5, 2.0))
    for ax in (full, near):
        assert ax.get_yscale() == "log"
        low, high = ax.get_ylim()
        for d in _curve_points(ax):
            positive = d[np.isfinite(d) & (d > 0)]
            # every point off the truth is in view: a curve that is flat on one side of the
            # truth on a linear axis (spherical, pseudospherical: 1e-7 left of it) is not here
            assert positive.size >= d.size - 1
            assert low <= positive.min() and positive.max() <= high
    # the improper row: linear and gce go below 0 and the axis shows it
    assert improper.get_yscale() == "symlog"
    lows = [np.nanmin(d) for d in _curve_points(improper)]
    assert len(lows) == 2 and max(lows) < 0
    assert improper.get_ylim()[0] <= min(lows)


def test_properness_figure_of_a_truth_outside_the_family():
    """No verdict (the question does not arise), so no truth to measure from: the curve is
    measured from the family's best forecast, and the panel and its axis say so."""
    from likelab.properness.density import DensityVerdict
    from likelab.properness.survey import PropernessSurvey
    from likelab.report import plot_properness

    verdict = DensityVerdict(
        objective="log",
        setting="density",
        verdict=None,
        claimed="strictly proper",
        truth="normal:loc=0,scale=1",
        family="laplace",
        truth_params=None,
        # E log-score of Laplace(0, b) under N(0, 1): log(2b) + sqrt(2/pi)/b, least at
        # b = sqrt(2/pi), where it is log(2b) + 1
        optimum={"loc": 0.0, "scale": math.sqrt(2 / math.pi)},
        value=math.log(2 * math.sqrt(2 / math.pi)) + 1,
        at_truth=None,
        gap=None,
        distance=None,
        how="the truth is not in the family",
        reason="",
    )
    fig = plot_properness(PropernessSurvey([verdict]))
    (ax,) = fig.axes
    assert ax.get_title().endswith("the truth is not in the forecast family")
    assert "its minimum in the family" in " ".join(ax.get_ylabel().split())
    assert "beats the truth" not in [t.get_text() for t in ax.texts]
    (d,) = _curve_points(ax)
    # nothing beats the best forecast on its own path, which passes through it
    assert -1e-9 <= np.nanmin(d) < 1e-3


def test_properness_caption_names_the_rows_drawn(class_survey):
    from likelab.properness.survey import PropernessSurvey
    from likelab.report.sections import _properness_caption

    both = _properness_caption(class_survey)
    assert "Top:" in both and "Bottom:" in both
    proper = [r for r in class_survey.results if r.verdict != "improper"]
    only_proper = _properness_caption(PropernessSurvey(proper))
    assert "Top:" in only_proper and "Bottom" not in only_proper


# ---------------------------------------------------------------------- training and study figures
@pytest.fixture(scope="module")
def xor_comparison():
    from likelab.classify import compare

    return compare("xor:flip=0.1", ["log", "linear"], seeds=[0, 1], model="mlp:4", epochs=3)


def test_probabilities_figure_plots_every_pair_against_its_truth(xor_comparison, tmp_path):
    from likelab.report import plot_probabilities

    fig = plot_probabilities(xor_comparison, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0
    for ax, spec in zip(fig.axes, xor_comparison.objectives, strict=False):
        runs = [r for r in xor_comparison.runs if r.objective == spec]
        truth = np.concatenate([r.p_test.ravel() for r in runs])
        pred = np.concatenate([r.probs_test.ravel() for r in runs])
        points = ax.collections[0].get_offsets()
        np.testing.assert_array_equal(points[:, 0], truth[truth > 0])
        np.testing.assert_array_equal(points[:, 1], pred[truth > 0])
        assert f"{np.abs(pred - truth).mean():.3f}" in ax.get_title()


def test_probabilities_figure_needs_known_probabilities():
    from likelab.classify import compare
    from likelab.errors import UnsupportedError
    from likelab.report import plot_probabilities

    iris = compare("iris", ["log"], seeds=1, model="logistic", epochs=1)
    with pytest.raises(UnsupportedError, match="true class probabilities are unknown"):
        plot_probabilities(iris)


def _rows():
    rows = []
    for dgp, eps in (("clean", 0.0), ("dirty", 0.1)):
        for n in (20, 100):
            for obj, re in (("log", 1.0), ("dpd", 0.8 + eps + n / 1000)):
                rows.append(
                    {
                        "dgp": dgp,
                        "n": n,
                        "objective": obj,
                        "parameter": "loc",
                        "rel_eff": re,
                        "rel_eff_mcse": 0.01,
                        "rel_mse": re + 10 * eps,
                        "rel_mse_mcse": 0.03,
                        "bias": eps * (obj == "log"),
                        "bias_mcse": 0.02,
                    }
                )
    return rows


def test_study_figure_draws_each_measure_against_n():
    from likelab.errors import UnsupportedError
    from likelab.report import plot_study

    rows = _rows()
    fig = plot_study(rows, "rel_eff")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["20", "100"]
    dpd = next(c for c in ax.containers if c.get_label() == "dpd").lines[0]
    np.testing.assert_allclose(dpd.get_xdata(), [20, 100])
    np.testing.assert_allclose(dpd.get_ydata(), [0.82, 0.9])
    # the relative MSE has its own figure, labelled as including bias
    fig = plot_study(rows, "rel_mse")
    assert "includes bias" in fig.get_suptitle()
    dpd = next(c for c in fig.axes[0].containers if c.get_label() == "dpd").lines[0]
    np.testing.assert_allclose(dpd.get_ydata(), [0.82, 0.9])
    assert "ignores bias" in plot_study(rows, "rel_eff").get_suptitle()
    with pytest.raises(
        UnsupportedError, match="bias, emp_se, emp_se_root_n, rel_eff, rel_mse, coverage"
    ):
        plot_study(rows, "median")


def test_contamination_figure_puts_eps_on_the_x_axis():
    from likelab.report import plot_contamination

    levels = {"clean": ("base", 0.0), "dirty": ("base", 0.1)}
    fig = plot_contamination(_rows(), levels, 100)
    rel, bias, rel_mse = fig.axes[:3]
    assert "ignores bias" in rel.get_ylabel() and "includes bias" in rel_mse.get_ylabel()
    dpd_rm = next(line for line in rel_mse.get_lines() if line.get_label() == "dpd")
    np.testing.assert_allclose(dpd_rm.get_ydata(), [0.9, 2.0])
    log_bias = next(line for line in bias.get_lines() if line.get_label() == "log")
    np.testing.assert_allclose(log_bias.get_xdata(), [0.0, 0.1])
    np.testing.assert_allclose(log_bias.get_ydata(), [0.0, 0.1])
    dpd = next(line for line in rel.get_lines() if line.get_label() == "dpd")
    np.testing.assert_allclose(dpd.get_ydata(), [0.9, 1.0])


# ---------------------------------------------------------------------- one ECE per page
def _ece_oracle(probs, y, bins=15):
    """ECE written out bin by bin (Guo et al. 2017), independent of likelab's metrics."""
    conf, pred = probs.max(1), probs.argmax(1)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (conf > lo) & (conf <= hi) if b else (conf >= lo) & (conf <= hi)
        if inside.any():
            total += inside.sum() * abs((pred[inside] == y[inside]).mean() - conf[inside].mean())
    return total / len(y)


@pytest.mark.parametrize(
    ("dataset", "noise"), [("wine", "symmetric:0.3"), ("moons:noise=0.3", "pairflip:0.2")]
)
def test_reliability_titles_show_the_tables_ece(dataset, noise):
    from likelab.classify import compare
    from likelab.report import plot_reliability
    from likelab.report.sections import training_section

    comp = compare(dataset, ["log", "linear"], seeds=3, noise=noise, model="logistic", epochs=10)
    section = training_section(comp, id="t", title="t")
    header = section.data["table"].header
    column = header.index("ECE")
    table = {row[0].text: row[column].text for row in section.data["table"].rows}
    titles = [ax.get_title() for ax in plot_reliability(comp).axes if ax.get_title()]
    pooled_differs = False
    for spec, title in zip(comp.objectives, titles, strict=True):
        runs = [r for r in comp.runs if r.objective == spec]
        mean = np.mean([_ece_oracle(r.probs_test, r.y_test) for r in runs])
        assert title == f"{spec}  (ECE {mean:.3f})"
        assert table[spec].startswith(f"{mean:.3f} ± ")
        pooled = _ece_oracle(
            np.concatenate([r.probs_test for r in runs]), np.concatenate([r.y_test for r in runs])
        )
        pooled_differs |= f"{pooled:.3f}" != f"{mean:.3f}"
    assert pooled_differs  # the old title (pooled predictions) would have disagreed here


def test_figures_of_a_comparison_with_diverged_runs(tmp_path):
    from likelab.classify import Comparison, compare
    from likelab.report import plot_learning_curves, plot_probabilities, plot_reliability

    kwargs = {"model": "mlp:4", "epochs": 4, "batch_size": 400}
    good = compare("xor:flip=0.1", ["log", "brier"], seeds=[0], **kwargs)
    bad = compare("xor:flip=0.1", ["log"], seeds=[1], lr=1e30, **kwargs)
    comp = Comparison("xor:flip=0.1", None, "mlp:4", [0, 1], good.runs + bad.runs)
    blown = compare("xor:flip=0.1", ["linear"], seeds=[0], lr=1e30, **kwargs)
    comp.runs += blown.runs
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" from the padded curves
        rel = plot_reliability(comp, tmp_path / "r.png")
        plot_learning_curves(comp, tmp_path / "l.png")
        prob = plot_probabilities(comp)
    titles = [ax.get_title() for ax in rel.axes if ax.get_title()]  # not the count strips
    rows = {r["objective"]: r for r in comp.rows()}
    assert titles[0] == f"log  (ECE {rows['log']['ece']:.3f})"  # the one run that did not diverge
    assert rows["log"]["ece"] == good.runs[0].metrics["ece"]
    assert titles[2] == "linear  (ECE undetermined)"
    assert "undetermined" in [ax.get_title() for ax in prob.axes][2]
    assert _is_png(tmp_path / "r.png") and _is_png(tmp_path / "l.png")
    from likelab.report import write_train_report

    html = write_train_report(comp, tmp_path / "page").read_text()
    assert "Some runs diverged" in html and "undetermined" in html
    assert f"<code>linear</code> (seed 0: {blown.runs[0].diverged})" in html
    assert ">nan<" not in html.lower()


# ---------------------------------------------------------------------- writing figures
def _figure():
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    return fig


def test_save_figure_writes_exactly_the_path_asked(tmp_path):
    from likelab.report import save_figure

    target = tmp_path / "new" / "deeper" / "curve"  # no suffix: PNG, at that very path
    assert save_figure(_figure(), target) == target
    assert _is_png(target) and sorted(p.name for p in target.parent.iterdir()) == ["curve"]
    save_figure(_figure(), tmp_path / "c.svg")
    assert (tmp_path / "c.svg").read_bytes().lstrip().startswith(b"<?xml")


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d: d / "fig.xyz", r"unknown format '\.xyz'; use one of .*\.pdf, .*\.png"),
        (lambda d: d, "it is a directory"),
        (lambda d: (d / "file.txt", (d / "file.txt").write_text("x"))[0] / "f.png", "is a file"),
        (lambda d: (d / "f.txt", (d / "f.txt").write_text("x"))[0] / "a" / "f.png", "is a file"),
        (lambda d: d / "", "it is a directory"),
        (lambda d: "", "not a file name"),
    ],
)
def test_save_figure_refuses_bad_paths_and_writes_nothing(tmp_path, make, fragment):
    from likelab.errors import LikelabError, OutputError
    from likelab.report import save_figure

    target = make(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(OutputError, match=fragment) as info:
        save_figure(_figure(), target)
    assert isinstance(info.value, LikelabError)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_save_figure_failing_midway_leaves_nothing_behind(tmp_path, monkeypatch):
    from likelab.errors import OutputError
    from likelab.report import save_figure

    fig = _figure()

    def fail(target, **kwargs):  # half a picture in the file it was given, then a full disk
        Path(target).write_bytes(b"\x89PNG half a picture")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fig, "savefig", fail)
    old = tmp_path / "old.png"
    save_figure(_figure(), old)
    kept = old.read_bytes()
    with pytest.raises(OutputError, match="No space left on device"):
        save_figure(fig, tmp_path / "new" / "fig.png")
    with pytest.raises(OutputError, match="No space left on device"):
        save_figure(fig, old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.png"]  # no temp file, no new/
    assert old.read_bytes() == kept  # the previous figure is untouched


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_save_figure_into_a_read_only_directory(tmp_path):
    from likelab.errors import OutputError
    from likelab.report import save_figure

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="cannot write a figure"):
            save_figure(_figure(), locked / "f.png")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_save_figure_permission_denied_is_an_output_error(tmp_path, monkeypatch):
    """What a read-only directory does for a user who is not root, simulated for every user."""
    from likelab.errors import OutputError
    from likelab.report import figures

    def denied(**kwargs):
        raise PermissionError(13, "Permission denied", str(kwargs["dir"]))

    from likelab import _paths

    monkeypatch.setattr(_paths.tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match=r"'.*out.png': Permission denied \(.*sub\)"):
        figures.save_figure(_figure(), tmp_path / "sub" / "out.png")
    assert list(tmp_path.iterdir()) == []  # the directory it created is gone again
