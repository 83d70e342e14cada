"""Figures: they draw, save a PNG, have the expected panels, and leave no pyplot state."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from likelab.landscape import evaluate, seed_example, underflow
from likelab.report import plot_landscape, plot_underflow

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.exists() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before  # the library never opens pyplot figures


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


def test_underflow_figure(tmp_path):
    rep = underflow((0.3, 0.2, 0.1), max_n=512)
    path = tmp_path / "underflow.png"
    fig = plot_underflow(rep, path)
    assert _is_png(path)
    assert len(fig.axes) == 2
    top, bottom = fig.axes
    assert top.get_yticklabels()[0].get_text() == "exactly 0"
    assert bottom.get_xlabel() == "batch size n"


def test_underflow_figure_without_any_zero(tmp_path):
    # nothing underflows within max_n: no zero row markers, still a valid figure
    rep = underflow((0.9,), dtypes=("float64",), max_n=64)
    fig = plot_underflow(rep, tmp_path / "u.png")
    assert _is_png(tmp_path / "u.png") and len(fig.axes) == 2


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
    with pytest.raises(UnsupportedError, match="rel_eff, rel_mse, bias"):
        plot_study(rows, "coverage")


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
