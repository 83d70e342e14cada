"""The study page's theory beside simulation: √n × EmpSE beside the asymptotic SD and the
relative efficiency beside the ARE, against n, in the figures and the tables."""

import pytest
from matplotlib.colors import to_hex
from tests.cli_support import make_study_store

from likelab.errors import UnsupportedError
from likelab.report.study_figures import plot_study

Z = 1.959963984540054


pytestmark = pytest.mark.usefixtures("no_pyplot_figures")


def _row(dgp, n, objective, emp, sd, note=None, rel=None, are=None):
    """A summary row with what the figures read (the other measures absent)."""
    return {
        "dgp": dgp,
        "n": n,
        "objective": objective,
        "parameter": "loc",
        "emp_se_root_n": emp,
        "emp_se_root_n_mcse": 0.05,
        "asymptotic_sd": sd,
        "rel_eff": rel,
        "rel_eff_mcse": None if rel is None else 0.04,
        "are_vs_log": are,
        "theory_note": note,
        "replicates": 200,
        "failure_rate": 0.0,
    }


NO_THETA = "no asymptotics: no θ*: the expected score has no minimum (a test's reason)"
ROWS = [
    _row("normal:loc=0,scale=1", 50, "log", 1.03, 1.0, rel=1.0, are=1.0),
    _row("normal:loc=0,scale=1", 500, "log", 1.01, 1.0, rel=1.0, are=1.0),
    _row("normal:loc=0,scale=1", 50, "dpd:beta=0.5", 1.12, 1.0924, rel=0.82, are=0.838),
    _row("normal:loc=0,scale=1", 500, "dpd:beta=0.5", 1.09, 1.0924, rel=0.84, are=0.838),
    _row("normal:loc=0,scale=1", 50, "my_rule", 1.4, None, NO_THETA, rel=0.5),
    _row("normal:loc=0,scale=1", 500, "my_rule", 1.5, None, NO_THETA, rel=0.45),
]


def _dotted(fig):
    """The dotted horizontal lines of the figure's panels: (colour, y)."""
    out = []
    for ax in fig.axes:
        for line in ax.lines:
            y = line.get_ydata()
            if line.get_linestyle() == ":" and len(set(y)) == 1:
                out.append((to_hex(line.get_color()), float(y[0])))
    return sorted(out)


def _texts(fig):
    return " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def test_the_asymptotic_sd_is_a_dotted_line_in_each_objectives_colour():
    fig = plot_study(ROWS, "emp_se_root_n", theory=True)
    # log C0, dpd C1 (the rows' order); my_rule (C2) has no theory: no line, a note
    assert _dotted(fig) == sorted([(to_hex("C0"), 1.0), (to_hex("C1"), 1.0924)])
    text = " ".join(_texts(fig).split())
    assert "√n × empirical SE beside the asymptotic SD √V_jj (dotted) against n" in text
    assert f"my_rule: no dotted line: {NO_THETA}" in text
    legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert legend == ["log", "dpd:beta=0.5", "my_rule", "theory (n → ∞)"]
    # the simulation's points with their ±1.96 MCSE bars, as before
    (ax,) = fig.axes
    bars = [c for c in ax.containers if c.get_label() == "dpd:beta=0.5"]
    assert len(bars) == 1
    (segments,) = bars[0].lines[2]
    lo, hi = segments.get_segments()[0][:, 1]
    assert hi - lo == pytest.approx(2 * Z * 0.05)


def test_the_are_is_drawn_beside_the_relative_efficiency():
    fig = plot_study(ROWS, "rel_eff", theory=True)
    assert (to_hex("C1"), 0.838) in _dotted(fig)
    assert "ARE vs log" in _texts(fig)
    plain = plot_study(ROWS, "rel_eff")
    assert _dotted(plain) == [] and "theory" not in _texts(plain)


def test_theory_only_for_a_measure_it_predicts():
    with pytest.raises(UnsupportedError, match="not for 'coverage'"):
        plot_study(ROWS, "coverage", theory=True)


STUDY = """
name: theory-page
seed: 4
dgps:
  - family: normal
    params: {loc: 0, scale: 1}
sample_sizes: [30, 90]
replicates: 40
model: {family: normal, fixed: {scale: 1}}
objectives: [log, "dpd:beta=0.5"]
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_study_store(tmp_path_factory.mktemp("page"), STUDY, "page")[1]


def test_the_study_page_has_the_theory_in_its_tables_and_figures(store):
    from likelab.report.sections import _STUDY_HEADER, _THEORY_HEADER, study_section

    with_theory = study_section(store, theory=True)
    without = study_section(store, theory=False)
    header = with_theory.data["tables"][0].header
    assert header[:6] == [*_STUDY_HEADER[:4], *_THEORY_HEADER[:2]]
    assert header[header.index(_STUDY_HEADER[5]) + 1] == _THEORY_HEADER[2]
    assert without.data["tables"][0].header == _STUDY_HEADER
    assert with_theory.data["theory"]["computed"] and not without.data["theory"]["computed"]
    # normal location, known scale: log's SD is 1 and dpd's ARE (1+2b)^{3/2}/(1+b)^3
    rows = {r[0].text: [c.text for c in r] for r in with_theory.data["tables"][0].rows}
    assert rows["log"][5] == "1" and rows["dpd:beta=0.5"][8] == "0.838"
    alts = [f.alt for f in with_theory.data["figures"]]
    assert len(alts) == len(without.data["figures"]) + 1
    assert "√n times the empirical SE against n, beside the asymptotic SD" in alts
    assert any(a.endswith("beside the asymptotic relative efficiency") for a in alts)
