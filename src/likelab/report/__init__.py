"""Figures and self-contained HTML reports built from likelab's results.

- ``plot_*`` return a :class:`matplotlib.figure.Figure` and save it when given a path;
- :func:`run_demo` computes the whole story (``likelab demo``) and writes ``index.html``;
- :func:`write_study_report` and :func:`write_train_report` render a study store or a training
  comparison as the same kind of page.

Nothing is shown or printed.
"""

from __future__ import annotations

from likelab.report.demo import DemoReport, run_demo
from likelab.report.figures import (
    plot_contamination,
    plot_landscape,
    plot_learning_curves,
    plot_probabilities,
    plot_properness,
    plot_reliability,
    plot_study,
    plot_underflow,
    save_figure,
)
from likelab.report.pages import write_study_report, write_train_report
from likelab.report.study_figures import plot_estimates, plot_nested_loop, plot_zip

__all__ = [
    "DemoReport",
    "plot_contamination",
    "plot_estimates",
    "plot_landscape",
    "plot_learning_curves",
    "plot_nested_loop",
    "plot_probabilities",
    "plot_properness",
    "plot_reliability",
    "plot_study",
    "plot_underflow",
    "plot_zip",
    "run_demo",
    "save_figure",
    "write_study_report",
    "write_train_report",
]
