"""The asymptotics figure: influence functions and bias curves, one panel per free parameter.

The oracles are closed forms: the influence function of ``log`` at the normal location with
known scale is x - μ, that of the scale ((x - μ)² - σ²)/(2σ); under (1 - ε) N(1, 1) + ε N(-3, 1)
the θ*(ε) of log is the mixture's mean, a bias of -4ε, which passes the default bound (half the
distance between the centres, 2) at ε = 1/2.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from likelab.asymptotics import ContaminationBias, asymptotics
from likelab.errors import OutputError, ParameterError
from likelab.report.asymptotics_figures import plot_asymptotics

FAMILY, TRUTH, AT = "normal:scale=1", "normal:loc=1,scale=1", "normal:loc=-3,scale=1"


pytestmark = pytest.mark.usefixtures("no_pyplot_figures")


@pytest.fixture(scope="module")
def location():
    """log and dpd at the normal location, and log's bias curve as its closed form (-4ε,
    breaking down at 1/2; what contamination_bias computes is tested in
    tests/asymptotics/test_bias.py and, through the CLI, in tests/test_cli_asymptotics.py)."""
    log = asymptotics("log", FAMILY, TRUTH)
    dpd = asymptotics("dpd:beta=0.5", FAMILY, TRUTH)
    eps = [0.25, 0.75]
    bias = ContaminationBias(
        objective="log",
        family=FAMILY,
        truth=TRUTH,
        contamination=AT,
        params=("loc",),
        eps=eps,
        theta_star={"loc": [1.0 - 4.0 * e for e in eps]},
        bias={"loc": [-4.0 * e for e in eps]},
        reasons=["", ""],
        bound=2.0,
        breakdown=0.5,
        breakdown_evidence={"rule": "max_j |bias_j| > 2", "bracket": [0.4995, 0.5]},
    )
    return log, dpd, bias


def _lines(ax):
    """The data lines of a panel (not the reference lines drawn across it)."""
    return [ln for ln in ax.lines if len(ln.get_xdata()) > 2 or ln.get_marker() == "o"]


def _vertical(ax):
    return [
        ln
        for ln in ax.lines
        if len(set(np.atleast_1d(ln.get_xdata()))) == 1 and list(ln.get_ydata()) == [0, 1]
    ]


def _notes(fig) -> str:
    return " ".join(fig._supxlabel.get_text().split()) if fig._supxlabel else ""


def test_influence_and_bias_panels_with_the_breakdown_marked(location, tmp_path):
    log, dpd, bias = location
    path = tmp_path / "asymptotics.png"
    fig = plot_asymptotics([log, dpd], path, bias={"log": bias}, labels={"log": "nll (log)"})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [ax.get_title() for ax in fig.axes] == [
        "influence function: loc",
        "asymptotic bias θ*(ε) − θ*(0): loc",
    ]
    influence, curves = fig.axes
    drawn = _lines(influence)
    assert [ln.get_label() for ln in drawn] == ["nll (log)", "dpd:beta=0.5"]
    x, y = (np.asarray(v, dtype=float) for v in drawn[0].get_data())
    assert y == pytest.approx(x - 1.0, abs=1e-8)  # IF of the mean: x - μ
    assert np.abs(drawn[1].get_ydata()).max() < 2.0  # dpd's is bounded
    (curve,) = _lines(curves)
    # from (0, 0), by definition, and broken at the breakdown point: no line across it
    assert list(curve.get_xdata()) == [0.0, 0.25, 0.5, 0.75]
    y = np.asarray(curve.get_ydata(), dtype=float)
    assert list(y[[0, 1, 3]]) == [0.0, -1.0, -3.0] and np.isnan(y[2])
    (mark,) = _vertical(curves)
    assert mark.get_xdata()[0] == bias.breakdown
    assert mark.get_color() == drawn[0].get_color() and mark.get_linestyle() == ":"
    notes = _notes(fig)
    assert "dpd:beta=0.5: no bias curve drawn, no bias computed" in notes
    assert "nll (log): breaks down at ε in (0.4995, 0.5]" in notes
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["nll (log)", "dpd:beta=0.5", "breakdown point", "bound ±2"]
    assert AT in fig.get_suptitle().replace("\n", "")


def test_one_panel_per_free_parameter_as_svg(tmp_path):
    r = asymptotics("log", "normal", "normal:loc=0,scale=2")
    path = tmp_path / "if.svg"
    fig = plot_asymptotics([r], path)
    assert ET.parse(path).getroot().tag.endswith("svg")
    assert [ax.get_title() for ax in fig.axes] == [
        "influence function: loc",
        "influence function: scale",
    ]
    (scale,) = _lines(fig.axes[1])
    x, y = (np.asarray(v, dtype=float) for v in scale.get_data())
    # IF of the MLE of the normal scale: ((x - μ)² - σ²) / (2σ)
    assert y == pytest.approx(((x - 0.0) ** 2 - 4.0) / 4.0, abs=1e-7)


def test_a_result_without_theta_star_is_not_drawn_and_says_why():
    r = asymptotics("log", "uniform", "uniform:low=0,high=1")
    assert r.reason
    fig = plot_asymptotics([r], failures={"crps": "could not be used: no closed form"})
    assert all(_lines(ax) == [] for ax in fig.axes)
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == [
        "no objective has an influence function here"
    ] * 2
    notes = _notes(fig)
    assert "log: no influence function drawn, no √n asymptotics" in notes
    assert "crps: not drawn, could not be used: no closed form" in notes


def test_bad_arguments_and_paths_are_errors(location, tmp_path):
    log, _, bias = location
    with pytest.raises(ParameterError, match="at least one"):
        plot_asymptotics([])
    other = asymptotics("log", FAMILY, "normal:loc=0,scale=1")
    with pytest.raises(ParameterError, match="share a family and a truth"):
        plot_asymptotics([log, other])
    with pytest.raises(ParameterError, match="no result: quadratic"):
        plot_asymptotics([log], bias={"quadratic": bias})
    with pytest.raises(OutputError, match="directory"):
        plot_asymptotics([log], tmp_path)
    with pytest.raises(OutputError, match="unknown format"):
        plot_asymptotics([log], tmp_path / "a.nope")
    assert list(tmp_path.iterdir()) == []
