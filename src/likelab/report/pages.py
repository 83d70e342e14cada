"""Pages for a study store (``likelab report STORE``) and a training comparison
(``likelab train ... --report DIR``): the same kind of self-contained page as the demo's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_study_report", "write_train_report"]


def write_study_report(
    store: str | Path, out: str | Path, *, figures: str = "png", theory: bool | str = "auto"
) -> Path:
    """Render the study in ``store`` to ``out/index.html``: its performance measures with their
    Monte Carlo SEs, relative efficiency and bias against n (and contamination), with the
    asymptotic theory beside them (``theory``: ``True``, ``False`` or ``"auto"``, see
    :func:`likelab.study.summarise`), the figures embedded as ``figures`` (``png`` or
    ``svg``). Returns the page's path.
    """
    from likelab.report.html import figure_format, render, write_page
    from likelab.report.sections import study_section

    store = Path(store)
    with figure_format(figures):
        # a missing file or a non-store is a SpecError there
        section = study_section(store, theory=theory)
    html = render(
        "page.html",
        title=f"likelab study: {section.data['name']}",
        subtitle=f"Performance measures of the study in {store.name}, with Monte Carlo "
        "standard errors.",
        sections=[section],
    )
    return write_page(out, html)


def write_train_report(comparison: Any, out: str | Path, *, figures: str = "png") -> Path:
    """Render a training comparison (:func:`likelab.classify.compare`) to ``out/index.html``:
    its test metrics, predicted vs true probabilities where known, reliability and learning
    curves, the figures embedded as ``figures`` (``png`` or ``svg``). Returns the page's
    path."""
    from likelab.report.html import figure_format, render, write_page
    from likelab.report.sections import training_section

    with figure_format(figures):
        section = training_section(
            comparison, id="training", title=f"Training on {comparison.dataset}", curves=True
        )
    html = render(
        "page.html",
        title=f"likelab training: {comparison.dataset}",
        subtitle=f"{len(comparison.objectives)} objective(s) compared on the same data: "
        f"{', '.join(map(comparison.label, comparison.objectives))}.",
        sections=[section],
    )
    return write_page(out, html)
