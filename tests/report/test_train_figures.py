"""Classifier figures: bin counts under the reliability diagrams, labelled learning curves with
seed bands, the training section's stop reasons."""

import numpy as np
import pytest
from matplotlib.collections import PolyCollection


@pytest.fixture(scope="module")
def comparison():
    from likelab.classify import compare

    # moons: predictions spread over many confidence bins; 3 seeds for the bands; crps fails
    return compare(
        "moons:n=300,noise=0.3", ["log", "brier", "crps"], seeds=3, model="mlp:8", epochs=40
    )


def test_reliability_strips_count_the_predictions_in_each_bin(comparison):
    from likelab.report import plot_reliability

    fig = plot_reliability(comparison)
    strips = [ax for ax in fig.axes if ax.get_ylabel() == "predictions"]
    assert len(strips) == 3
    for strip, spec in zip(strips, comparison.objectives, strict=True):
        runs = [r for r in comparison.runs if r.objective == spec and r.ok]
        if not runs:
            assert not strip.patches  # crps failed: no bars, the panel says why
            continue
        conf = np.concatenate([r.probs_test.max(1) for r in runs])
        # an independent count: 15 equal bins on [0, 1], right-closed as the metric bins
        edges = np.linspace(0, 1, 16)
        idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, 14)
        expected = np.bincount(idx, minlength=15)
        heights = {round(p.get_x() + p.get_width() / 2, 6): p.get_height() for p in strip.patches}
        centres = np.round((edges[:-1] + edges[1:]) / 2, 6)
        got = np.array([heights.get(c, 0) for c in centres])
        np.testing.assert_array_equal(got, expected)
        assert sum(got) == len(conf)
        labels = [t.get_text() for t in strip.texts]
        assert labels == [str(int(n)) for n in expected if n]
    assert any("every run failed" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_learning_curves_have_y_labels_and_seed_bands(comparison):
    from likelab.report import plot_learning_curves

    fig = plot_learning_curves(comparison)
    panels = fig.axes[:4]
    assert all(ax.get_ylabel() and ax.get_xlabel() == "epoch" for ax in panels)
    loss = panels[0]
    bands = [c for c in loss.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2  # log and brier, one band each; crps failed and has no curve
    legend = loss.get_legend()
    assert "mean over 3 seed(s)" in legend.get_title().get_text()
    assert "min–max across seeds" in legend.get_title().get_text()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[0].startswith("log: ") and ("epoch limit" in texts[0] or "converged" in texts[0])
    # the band holds every seed's curve: min and max of the per-seed losses at each epoch
    runs = [r for r in comparison.runs if r.objective == "log"]
    curves = np.array([[row["train_loss"] for row in r.history] for r in runs])
    line = loss.get_lines()[0]
    np.testing.assert_allclose(line.get_ydata(), curves.mean(0))
    verts = bands[0].get_paths()[0].vertices[:, 1]
    assert verts.min() == pytest.approx(curves.min()) and verts.max() == pytest.approx(curves.max())


def test_training_section_says_when_and_why_each_run_stopped(comparison, tmp_path):
    from likelab.report import write_train_report
    from likelab.report.sections import training_section

    section = training_section(comparison, id="t", title="t")
    header = section.data["table"].header
    assert header[-1] == "training stopped"
    cells = {row[0].text: row[-1].text for row in section.data["table"].rows}
    for spec, label in (("log", "log"), ("quadratic", "brier (quadratic)")):  # as spelled
        runs = [r for r in comparison.runs if r.objective == spec]
        for r in runs:
            assert f"seed {r.seed}: {r.stop['reason']}" in cells[label]
    assert cells["crps"].startswith("failed: crps cannot train a classifier")
    html = write_train_report(comparison, tmp_path / "page").read_text()
    assert "could not train this model on this data" in html and "training stopped" in html
