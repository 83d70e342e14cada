"""The scorecard's page (``likelab scorecard --out DIR``: ``DIR/index.html``) and its figure.

One self-contained page in the report's conventions (figures embedded, real tables, no scripts):
the summary table, one row per objective, and the efficiency-against-robustness figure with the
Pareto front; then one section per part of the battery, with every row the part produced
(status and reason included: a failed or not-applicable unit is shown, never dropped).
Objectives are labelled as the user spelled them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure as MplFigure

from likelab.report.study_figures import wrap_label

__all__ = ["plot_pareto", "write_scorecard_report"]

#: Titles of the parts' sections, in the page's order.
PART_TITLES = {
    "properness": "Properness: is the truth the best forecast?",
    "landscape": "Landscape: how many minima does the empirical risk have?",
    "efficiency": "Efficiency at the model: asymptotic relative efficiency against log",
    "efficiency_simulation": "Efficiency in a finite sample: a paired study at n = 100",
    "robustness": "Robustness: influence, bias under contamination, breakdown",
    "classification": "Classification with noisy labels",
}
#: Keys of a row never shown as columns (nested evidence, repeated identity).
_HIDDEN = {"setting", "status", "reason", "evidence"}


def plot_pareto(
    objectives: Sequence[Mapping[str, Any]],
    front: Sequence[str],
    left_out: Mapping[str, str],
    *,
    robustness: str = "max_bias_10",
    path: str | Path | None = None,
) -> MplFigure:
    """Worst-case ARE against log (x, higher is better) against the largest asymptotic bias
    under 10% contamination (y, lower is better): a point per objective with a position, the
    Pareto front (objectives no other beats on both) joined by a line; the objectives without a
    position are named beneath with the reason."""
    fig = MplFigure(figsize=(7.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    xs, ys = {}, {}
    for entry in objectives:
        name = entry["objective"]
        if name in left_out:
            continue
        s = entry["summary"]
        xs[name], ys[name] = float(s["min_are"]), float(s[robustness])
    for name in xs:
        on = name in front
        ax.plot(
            xs[name],
            ys[name],
            "o",
            color="C3" if on else "C0",
            markersize=7 if on else 5,
            zorder=3,
        )
        ax.annotate(
            wrap_label(name, 28),
            (xs[name], ys[name]),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    if front:
        fx = [xs[n] for n in front if n in xs]
        fy = [ys[n] for n in front if n in ys]
        ax.plot(fx, fy, "-", color="C3", linewidth=1.2, label="Pareto front", zorder=2)
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("worst-case ARE against log (higher: more efficient)")
    ax.set_ylabel("largest |bias|, 10% contamination\n(lower: more robust)")
    ax.grid(alpha=0.3)
    if left_out:
        text = "not placed: " + "; ".join(f"{k}: {v}" for k, v in left_out.items())
        fig.text(0.01, 0.0, wrap_label(text, 110), fontsize=7, va="bottom")
        fig.get_layout_engine().set(rect=(0, 0.06 * (1 + len(text) // 110), 1, 1))
    if path is not None:
        fig.savefig(path)
    return fig


def _cell(value: Any) -> str:
    from likelab.report.html import fmt

    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return fmt(float(value), 4) if not isinstance(value, int) else str(value)
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def _part_table(part: str, objectives: Sequence[Mapping[str, Any]]):
    """Every row of ``part`` for every objective: objective, setting, status, the row's own
    scalar entries (the union over the rows, in first-seen order), and the reason."""
    from likelab.report.html import Cell, Table

    columns: list[str] = []
    for entry in objectives:
        for row in entry.get(part, []):
            for key in row:
                if key not in _HIDDEN and key not in columns:
                    columns.append(key)
    table = Table(["objective", "setting", "status", *columns, "reason"])
    for entry in objectives:
        for row in entry.get(part, []):
            status = str(row.get("status", ""))
            table.add(
                Cell(entry["objective"], "text"),
                Cell(str(row.get("setting", "")), "text"),
                Cell(status, "yes" if status == "ok" else "no"),
                *(_cell(row.get(k)) for k in columns),
                Cell(str(row.get("reason") or ""), "text"),
            )
    return table


def write_scorecard_report(
    result: Mapping[str, Any], out: str | Path, *, figures: str = "png"
) -> Path:
    """Render a scorecard (:meth:`~likelab.scorecard.core.ScorecardResult.to_dict`) to
    ``out/index.html``; returns the page's path."""
    from likelab.report.html import Cell, Figure, Section, Table, figure_format, render, write_page
    from likelab.scorecard.summary import SUMMARY_KEYS

    objectives = result["objectives"]
    pareto = result["pareto"]
    summary = Table(["objective", *SUMMARY_KEYS, pareto["robustness"], "on the Pareto front"])
    for entry in objectives:
        s = entry["summary"]
        summary.add(
            Cell(entry["objective"], "text"),
            *(_cell(s.get(k)) for k in SUMMARY_KEYS),
            _cell(s.get(pareto["robustness"])),
            "yes" if entry["objective"] in pareto["front"] else "",
        )
    with figure_format(figures):
        fig = plot_pareto(
            objectives, pareto["front"], pareto["left_out"], robustness=pareto["robustness"]
        )
        figure = Figure.from_matplotlib(
            fig,
            alt="Efficiency against robustness, one point per objective, Pareto front joined",
            caption="Worst-case ARE against log (x) and the largest asymptotic bias under 10% "
            "contamination (y); red: the Pareto front.",
        )
    reasons = [
        f"{e['objective']}: {key[: -len('_reason')]}: {why}"
        for e in objectives
        for key, why in e["summary"].items()
        if key.endswith("_reason") and why
    ]
    sections = [
        Section(
            "summary",
            "Summary",
            {"kind": "scorecard", "tables": [summary], "figure": figure, "reasons": reasons},
        )
    ]
    for part, title in PART_TITLES.items():
        if any(part in e for e in objectives):
            data = {"kind": "scorecard", "tables": [_part_table(part, objectives)]}
            sections.append(Section(part, title, {**data, "figure": None, "reasons": []}))
    size = "quick sizes" if result.get("quick") else "full sizes"
    html = render(
        "page.html",
        title="likelab scorecard: " + ", ".join(e["objective"] for e in objectives),
        subtitle=f"Every objective through the whole battery ({size}, seed {result.get('seed')}); "
        f"{result.get('units_total')} units.",
        sections=sections,
        seconds=result.get("seconds"),
    )
    return write_page(out, html)
