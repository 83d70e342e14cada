"""Figures and pages name each objective as the user spelled it (``l2e``, not only its canonical
``quadratic``), the canonical spec in brackets where the two differ, as the CLI's tables do."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.text import Text

from likelab.objectives.naming import objective_label, spellings

pytestmark = pytest.mark.usefixtures("no_pyplot_figures")


def _texts(fig) -> list[str]:
    """Every piece of text the figure shows: titles, labels, legends, notes."""
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _never_bare(texts: list[str], canonical: str, spelled: str) -> None:
    """Wherever ``canonical`` is named, the user's ``spelled`` is named with it."""
    named = [t for t in texts if re.search(rf"\b{re.escape(canonical)}\b", t)]
    assert named, f"{canonical!r} is nowhere in the figure"
    for t in named:
        assert spelled in t, f"{t!r} names {canonical!r} without {spelled!r}"


def test_spellings_and_labels():
    given = spellings(["l2e", "logarithmic", "dpd:beta=.5", "spherical", "nope:x=1"])
    assert given == {
        "quadratic": "l2e",
        "log": "logarithmic",
        "dpd:beta=0.5": "dpd:beta=.5",
        "spherical": "spherical",
    }
    assert objective_label("quadratic", given) == "l2e (quadratic)"
    assert objective_label("dpd:beta=0.5", given) == "dpd:beta=.5 (dpd:beta=0.5)"
    assert objective_label("spherical", given) == "spherical"
    assert objective_label("linear", given) == "linear"  # no spelling given: the spec
    assert spellings(["brier", "quadratic"]) == {"quadratic": "brier"}  # the first one wins


def test_landscape_figures_name_the_objectives_as_spelled():
    from likelab.landscape import evaluate
    from likelab.report import plot_landscape

    y = np.array([-0.4, 0.3, 1.7, 0.9, -1.1])
    land = evaluate(
        y, "normal:scale=0.5", ["logarithmic", "l2e", "joint"], {"loc": np.linspace(-2, 2, 41)}
    )
    assert list(land.results) == ["log", "quadratic", "product"]  # keys stay canonical
    assert set(land.to_dict()["objectives"]) == {"log", "quadratic", "product"}
    titles = [ax.get_title() for ax in plot_landscape(land).axes]
    assert titles[0].startswith("logarithmic (log: log-product, mean NLL): ")
    assert titles[1].startswith("l2e (quadratic): ")
    assert titles[2].startswith("joint (product: product of likelihoods, -prod f): ")

    land2 = evaluate(
        y, "normal", ["dpd:beta=.5", "nll"], {"loc": np.linspace(-1, 2, 9), "scale": [0.5, 1, 2]}
    )
    texts = _texts(plot_landscape(land2))
    _never_bare(texts, "log", "nll")
    _never_bare(texts, "dpd:beta=0.5", "dpd:beta=.5")


def test_properness_figure_and_section_name_the_objectives_as_spelled():
    from likelab.properness import survey
    from likelab.report import plot_properness
    from likelab.report.html import render
    from likelab.report.sections import properness_section

    result = survey(["l2e", "sum", "logarithmic"], classes=2)
    assert [r.objective for r in result.results] == ["quadratic", "linear", "log"]
    legend = [t.get_text() for leg in plot_properness(result).legends for t in leg.get_texts()]
    assert {"l2e (quadratic)", "sum (linear)", "logarithmic (log)"} <= set(legend)
    section = properness_section(result)
    cells = [row[0].text for t in section.data["tables"] for row in t.rows]
    assert cells == ["l2e (quadratic)", "sum (linear)", "logarithmic (log)"]
    html = render("page.html", title="t", subtitle="s", sections=[section])
    assert "<code>sum (linear)</code>, is improper" in html  # the page's sentence on linear
    assert "<code>l2e (quadratic)</code>" in html and "<code>logarithmic (log)</code>" in html


@pytest.fixture(scope="module")
def comparison():
    from likelab.classify import compare

    # two seeds (bands, the stop summary in the legend); the truth is known (probabilities)
    return compare("xor:repeat=20,flip=0.2", ["brier", "nll"], seeds=2, model="logistic", epochs=5)


def test_comparison_remembers_the_spelling(comparison):
    assert comparison.objectives == ["quadratic", "log"]  # keys stay canonical
    assert comparison.given == {"quadratic": "brier", "log": "nll"}
    assert [r["objective"] for r in comparison.to_dict()["results"]] == ["quadratic", "log"]


@pytest.mark.parametrize("name", ["plot_learning_curves", "plot_reliability", "plot_probabilities"])
def test_classifier_figures_name_the_objectives_as_spelled(comparison, name):
    from likelab.report import figures

    texts = _texts(getattr(figures, name)(comparison))
    _never_bare(texts, "quadratic", "brier")
    # "log" is also a word of the axes ("log scale"): titles and legend entries start with the
    # objective's name, as spelled
    assert any(t.startswith("nll (log)") for t in texts)
    assert not any(re.match(r"log\b", t) for t in texts)


def test_train_report_names_the_objectives_as_spelled(comparison, tmp_path):
    from likelab.report import write_train_report

    html = write_train_report(comparison, tmp_path / "page").read_text()
    assert "<code>brier (quadratic)</code>" in html and "<code>nll (log)</code>" in html
    assert "brier (quadratic), nll (log)." in html  # the page's subtitle
    cells = re.findall(r"<td[^>]*>(?:<[^>]+>)*([^<]*quadratic[^<]*)<", html)
    assert cells and all("brier" in c for c in cells)
