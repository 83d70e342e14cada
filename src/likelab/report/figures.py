"""Matplotlib figures: landscapes, underflow, properness, training, simulation studies.

Each function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot``: no global
figure registry, no interactive backend, nothing to close), saves it when given a path (by
:func:`save_figure`: the format follows the suffix, PNG where there is none, at 120 dpi, written
whole or not at all) and returns it.
"""

from __future__ import annotations

import contextlib
import math
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter, SymmetricalLogLocator

from likelab._paths import atomic_write
from likelab.errors import OutputError, UnsupportedError
from likelab.landscape import Landscape, UnderflowReport
from likelab.landscape.grid import flat_mask

__all__ = [
    "plot_contamination",
    "plot_landscape",
    "plot_learning_curves",
    "plot_probabilities",
    "plot_properness",
    "plot_reliability",
    "plot_study",
    "plot_underflow",
    "save_figure",
]

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
#: What the seed's three objectives are, and their formula: the head of a landscape panel's title.
_LABELS = {
    "linear": ("sum of likelihoods", "-mean f"),
    "product": ("product of likelihoods", "-prod f"),
    "log": ("log-product", "mean NLL"),
}


def plot_landscape(landscape: Landscape, path: str | Path | None = None) -> Figure:
    """Each objective's risk over the grid, with every local minimum marked.

    1-D grids: one panel per objective, stacked with a shared x axis (the seed's picture: sum of
    likelihoods on top, product below, log-product), local minima marked, their count in the
    title. 2-D grids: one colour map per objective with contour lines, local minima marked and the
    global minimum starred. Loss orientation: lower is better.
    """
    if len(landscape.params) == 1:
        fig = _landscape_1d(landscape)
    else:
        fig = _landscape_2d(landscape)
    _save(fig, path)
    return fig


def _head(land: Landscape, spec: str) -> str:
    """A landscape panel's objective as the user spelled it (:meth:`Landscape.label`:
    ``brier (quadratic)``), with what it is for the seed's three: ``sum (linear: sum of
    likelihoods, -mean f)``, or ``sum of likelihoods (linear: -mean f)`` spelled canonically."""
    if spec not in _LABELS:
        return land.label(spec)
    what, formula = _LABELS[spec]
    spelled = land.given.get(spec, spec)
    if spelled == spec:
        return f"{what} ({spec}: {formula})"
    return f"{spelled} ({spec}: {what}, {formula})"


def _title(head: str, r, *, wrap: bool = False) -> str:
    k = r.local_minima
    if r.minima and r.minima[0].size == r.values.size:
        facts = ["constant over the whole grid (one flat 'minimum', zero gradient everywhere)"]
    else:
        facts = [f"{k} local minim{'um' if k == 1 else 'a'}"]
        if r.minima and r.minima[0].size > 1:
            facts.append(f"the lowest is a plateau of {r.minima[0].size} points")
        if r.flat_fraction > 0:
            facts.append(f"exactly flat on {100 * r.flat_fraction:.0f}% of the grid")
    if r.nonfinite_fraction > 0:
        facts.append(f"non-finite on {100 * r.nonfinite_fraction:.0f}%")
    text = ", ".join(facts)
    wrap = wrap or len(head) + len(text) > 90
    return head + (":\n" if wrap else ": ") + text


def _landscape_1d(land: Landscape) -> Figure:
    name = land.params[0]
    x = land.axes[name]
    m = len(land.results)
    fig = Figure(figsize=(8, 2.6 * m + 0.6), layout="constrained")
    axes = fig.subplots(m, 1, sharex=True, squeeze=False)[:, 0]
    for i, (ax, (spec, r)) in enumerate(zip(axes, land.results.items(), strict=True)):
        color = _COLORS[i % len(_COLORS)]
        vals = np.where(np.isfinite(r.values), r.values, np.nan)
        ax.plot(x, vals, color=color, lw=1.2)
        flat = flat_mask(r.values)
        if flat.any():
            ax.fill_between(
                x,
                0,
                1,
                where=flat,
                step="mid",
                color="grey",
                alpha=0.18,
                lw=0,
                transform=ax.get_xaxis_transform(),
                label="exactly flat (zero gradient)",
            )
        if r.minima:
            idx = np.array([mn.index[0] for mn in r.minima])
            ax.plot(x[idx], vals[idx], "v", color="black", ms=6, label="local minimum")
            best = r.minima[0].index[0]
            ax.plot(x[best], vals[best], "*", color="red", ms=12, label="global minimum")
        if r.minima or flat.any():
            ax.legend(loc="best", fontsize=8, frameon=False)
        ax.set_title(_title(_head(land, spec), r), fontsize=10)
        ax.set_ylabel("risk (lower is better)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel(name)
    fig.suptitle(f"{land.family}, n = {land.n}, {land.dtype}", fontsize=11)
    return fig


def _landscape_2d(land: Landscape) -> Figure:
    px, py = land.params
    x, y = land.axes[px], land.axes[py]
    m = len(land.results)
    ncols = min(3, m)
    nrows = math.ceil(m / ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.9 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[m:]:
        ax.set_visible(False)
    for ax, (spec, r) in zip(axes, land.results.items(), strict=False):
        z = np.ma.masked_invalid(r.values.T)  # rows: second parameter, columns: first
        finite = r.values[np.isfinite(r.values)]
        vmax = None
        if finite.size:
            # Risks often span orders of magnitude near the edge of the domain (scale -> 0):
            # colour the lower 95% and let the rest saturate, so that the minima stay visible.
            vmax = float(np.quantile(finite, 0.95))
            if vmax <= finite.min():
                vmax = None
        mesh = ax.pcolormesh(x, y, z, shading="auto", cmap="viridis", vmax=vmax)
        fig.colorbar(mesh, ax=ax, shrink=0.85, extend="max" if vmax is not None else "neither")
        if finite.size and finite.max() > finite.min() and min(len(x), len(y)) > 1:
            levels = np.unique(np.quantile(finite, np.linspace(0.02, 0.9, 10)))
            if levels.size > 1:
                ax.contour(
                    x,
                    y,
                    z,
                    levels=levels,
                    colors="white",
                    linewidths=0.5,
                    alpha=0.7,
                    linestyles="solid",
                )
        if r.minima:
            mx = [mn.params[px] for mn in r.minima]
            my = [mn.params[py] for mn in r.minima]
            ax.plot(mx, my, "x", color="red", ms=7, mew=1.5, ls="none", clip_on=False)
            ax.plot(mx[0], my[0], "*", color="red", ms=13, ls="none", clip_on=False)
        ax.set_title(_title(_head(land, spec), r, wrap=True), fontsize=9)
        ax.set_xlabel(px)
        ax.set_ylabel(py)
    fig.suptitle(
        f"{land.family}, n = {land.n}, {land.dtype} (x: local minima, *: global)", fontsize=11
    )
    return fig


def plot_underflow(report: UnderflowReport, path: str | Path | None = None) -> Figure:
    """The naive product and its gradient against the batch size n, per floating type.

    Top panel: the product per dtype on a log scale, the exact product (from the sum of logs,
    finite at every n), each dtype's smallest normal (``tiny``, dashed) and smallest subnormal
    (dotted). Bottom panel: the per-sample (RMS) gradient norm with respect to the logits, of
    the product per dtype and of the log-product (the NLL). Zero has no place on a log scale:
    below each log axis, past an axis break (the // marks), a strip with one row per curve
    shows the batch sizes at which it is exactly 0.
    """
    n = report.n
    fig = Figure(figsize=(11, 9), layout="constrained")
    dtypes = len(report.dtypes)
    axes = fig.subplots(
        4, 1, sharex=True, height_ratios=[6.0, _strip(dtypes), 6.0, _strip(dtypes + 1)]
    )
    colors = {dt: _COLORS[i % len(_COLORS)] for i, dt in enumerate(report.dtypes)}
    widths = {dt: _width(i, len(report.dtypes)) for i, dt in enumerate(report.dtypes)}

    top, top_zero = _broken_log_axes(*axes[:2])
    exact = report.log_product / math.log(10.0)
    top.plot(n, exact, color="black", ls="--", lw=1.0, label="exact, from the sum of logs")
    for dt in report.dtypes:
        t = report.thresholds[dt]
        _log_curve(top, n, report.product[dt], colors[dt], f"{dt}: naive product", widths[dt])
        top.axhline(
            math.log10(t["tiny"]),
            color=colors[dt],
            ls="--",
            lw=0.8,
            alpha=0.7,
            label=f"{dt} smallest normal ({t['tiny']:.3g})",
        )
        top.axhline(
            math.log10(t["smallest_subnormal"]),
            color=colors[dt],
            ls=":",
            lw=1.0,
            label=f"{dt} smallest subnormal ({t['smallest_subnormal']:.3g})",
        )
    _zero_strip(top_zero, n, [(dt, report.product[dt], colors[dt]) for dt in report.dtypes])
    top.set_ylabel("product of likelihoods\n(log scale)")
    ls = ", ".join(f"{v:g}" for v in report.likelihoods)
    zeros = [t["zero_at"] for t in report.thresholds.values() if t["zero_at"] is not None]
    verdict = "underflows to exactly 0" if zeros else f"stays above 0 up to n = {report.max_n}"
    top.set_title(f"the naive product of likelihoods ({ls}, repeated) {verdict}", fontsize=11)
    top.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)

    bottom, bottom_zero = _broken_log_axes(*axes[2:])
    bottom.plot(
        n,
        np.log10(report.grad_norm_nll),
        color="black",
        lw=1.5,
        label="log-product (NLL): RMS ||softmax(z_i) - e_y||",
    )
    for dt in report.dtypes:
        _log_curve(
            bottom,
            n,
            report.grad_norm_product[dt],
            colors[dt],
            f"{dt}: product, RMS ||dP/dz_i||",
            widths[dt],
        )
    _zero_strip(
        bottom_zero,
        n,
        [(dt, report.grad_norm_product[dt], colors[dt]) for dt in report.dtypes]
        + [("NLL", report.grad_norm_nll, "black")],
    )
    bottom.set_ylabel("gradient norm\n(log scale)")
    bottom_zero.set_xlabel("batch size n")
    bottom.set_title(
        f"its gradient with respect to the logits ({report.num_classes} classes)", fontsize=11
    )
    bottom.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    _save(fig, path)
    return fig


def _width(i: int, count: int) -> float:
    """Line widths decreasing with i, so that coinciding curves stay visible underneath."""
    return 1.3 + 2.5 * (count - 1 - i) / max(1, count - 1)


def _strip(rows: int) -> float:
    """The height of a strip of exact zeros with ``rows`` rows, relative to its log axis's 6."""
    return 0.55 + 0.32 * rows


def _broken_log_axes(log_ax, zero_ax):
    """A log axis (log10 values, ticks shown as powers of ten) over a strip for exact zeros,
    sharing x, with the standard broken-axis marks (//) on both sides of the gap between them:
    zero is not a point of the log scale, so it gets its own axis."""
    log_ax.spines["bottom"].set_visible(False)
    zero_ax.spines["top"].set_visible(False)
    log_ax.tick_params(bottom=False, labelbottom=False)
    log_ax.yaxis.set_major_formatter(FuncFormatter(_power_of_ten))
    log_ax.grid(alpha=0.3)
    zero_ax.grid(alpha=0.3, axis="x")
    marks = {
        "marker": [(-1, -0.5), (1, 0.5)],
        "markersize": 10,
        "linestyle": "none",
        "color": "k",
        "mec": "k",
        "mew": 1,
        "clip_on": False,
    }
    log_ax.plot([0, 1], [0, 0], transform=log_ax.transAxes, **marks)
    zero_ax.plot([0, 1], [1, 1], transform=zero_ax.transAxes, **marks)
    return log_ax, zero_ax


def _power_of_ten(value: float, _pos=None) -> str:
    """A tick at log10 value k, labelled as the number it stands for: 10^k."""
    if abs(value - round(value)) > 1e-9:
        return ""
    k = round(value)
    return "1" if k == 0 else f"$10^{{{k}}}$"


def _log_curve(ax, n: np.ndarray, values: np.ndarray, color: str, label: str, width: float):
    """log10 of the positive values as a line; exact zeros are left out (see _zero_strip)."""
    logs = np.full(values.shape, np.nan)
    positive = values > 0
    logs[positive] = np.log10(values[positive])
    ax.plot(n, logs, color=color, lw=width, alpha=0.85, label=label)


def _zero_strip(ax, n: np.ndarray, curves: list[tuple[str, np.ndarray, str]]) -> None:
    """One row per curve: a bar over every run of batch sizes at which it is exactly 0, the row
    labelled with where that starts ("never" where it is not 0 at any n drawn)."""
    labels = []
    for row, (name, values, color) in enumerate(curves):
        y = len(curves) - 1 - row  # the first curve on top
        zero = np.asarray(values) == 0
        if zero.any():
            edges = np.flatnonzero(np.diff(np.concatenate([[0], zero.astype(int), [0]])))
            for start, stop in zip(edges[::2], edges[1::2], strict=True):
                ax.hlines(y, n[start] - 0.5, n[stop - 1] + 0.5, color=color, lw=6)
            first = int(n[np.flatnonzero(zero)[0]])
            ax.axvline(first, color=color, lw=0.6, alpha=0.5)
            labels.append((y, f"{name}: exactly 0 from n = {first}", color))
        else:
            labels.append((y, f"{name}: never 0 (n ≤ {int(n[-1])})", color))
    ax.set_ylim(-0.7, len(curves) - 0.3)
    ax.set_yticks([y for y, _, _ in labels], [text for _, text, _ in labels], fontsize=9)
    for tick, (_, _, color) in zip(ax.get_yticklabels(), labels, strict=True):
        tick.set_color(color)
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(n[0] - 0.02 * (n[-1] - n[0]) - 0.5, n[-1] + 0.02 * (n[-1] - n[0]) + 0.5)


def plot_properness(survey, path: str | Path | None = None) -> Figure:
    """Each objective's score divergence along a line of forecasts through the truth: the
    expected score of the forecast minus its value at the truth, d(P, Q) = E_P S(Q) - E_P S(P)
    (Gneiting & Raftery 2007, sec. 2.2; proper: d >= 0, strictly proper: d = 0 only at Q = P).

    One column per setting (K classes: the tempered forecast q^(1/T) of the objective's worst
    truth q, T = 1 the truth; a density: the forecast's scale, the other parameters at the
    truth's values), all objectives of a kind overlaid, one colour per objective:

    - top row, objectives the survey found proper: d on a log axis over the whole path (a
      divergence of 1e-7 left of the truth is as visible as one of 1 right of it, and the
      curve plunges off the bottom where d = 0, at the truth);
    - middle row, the same near the truth (half to twice its value);
    - bottom row, improper (or undetermined) objectives: d on a symmetric log axis, the region
      d < 0 (a forecast beats the truth) shaded, each optimum marked (a dot, or a triangle at
      the edge the optimum runs off to).

    Where the truth is not in the forecast family, d is measured from the family's best
    forecast instead. Within a panel, objectives listed earlier are drawn wider, so that curves
    that coincide stay visible. Rows without a verdict's evidence (not applicable) are skipped.
    """
    from likelab.properness.survey import NotApplicable, score_profile

    rows = [r for r in survey.results if not isinstance(r, NotApplicable)]
    if not rows:
        raise UnsupportedError("nothing to plot: no objective applies in the settings asked")
    settings = list(dict.fromkeys(r.setting for r in rows))
    curves = [_Divergence(score_profile(r), r) for r in rows]
    styles = _objective_styles(list(dict.fromkeys(r.objective for r in rows)))
    proper = [[c for c in curves if c.setting == s and c.proper] for s in settings]
    other = [[c for c in curves if c.setting == s and not c.proper] for s in settings]
    near = [  # the same objectives again, on a finer path from half to twice the truth
        [
            _Divergence(score_profile(r, 41, window=2.0), r)
            for r in rows
            if r.setting == s and _found_proper(r)
        ]
        for s in settings
    ]
    kinds = []
    if any(proper):
        kinds += [("proper", proper, False), ("proper", near, True)]
    if any(other):
        kinds.append(("other", other, False))
    fig = Figure(
        figsize=(4.4 * len(settings) + 2.6, 3.4 * len(kinds) + 0.6), layout="constrained", dpi=100
    )
    axes = fig.subplots(len(kinds), len(settings), squeeze=False)
    for j, setting in enumerate(settings):
        head = _setting_title(setting, [r for r in rows if r.setting == setting])
        for i, (kind, groups, zoom) in enumerate(kinds):
            ax = axes[i, j]
            group = groups[j]
            if kind == "proper":
                _draw_proper(ax, group, styles, zoom=zoom)
                what = "near the truth" if zoom else "whole path"
                label = _proper_label(group)
                ax.set_title(f"{head}\n{label}: {what}" if i == 0 else f"{label}: {what}")
            else:
                _draw_improper(ax, group, styles)
                ax.set_title(f"{head}\n{_other_label(group)}" if i == 0 else _other_label(group))
            ax.set_xlabel(_column_xlabel(group or [c for c in curves if c.setting == setting]))
            ax.tick_params(labelsize=10)
            from_truth = all(c.from_truth for c in group)
            if j == 0 or not from_truth:
                scale = "symmetric log scale" if kind == "other" else "log scale"
                ref = "its value at the truth" if from_truth else "its minimum in the family"
                ax.set_ylabel(f"expected score minus\n{ref} ({scale})")
    handles = [
        Line2D([], [], color=color, ls=ls, lw=1.6, label=survey.label(name))
        for name, (color, ls) in styles.items()
    ]
    lower = [c for group in other for c in group]
    marks = (
        (any(c.centre is not None for c in curves), "--", "", "the truth"),
        (any(c.optimum is not None for c in lower), "none", "o", "optimum"),
        (any(c.edge is not None for c in lower), "none", "<", "optimum beyond the edge"),
    )
    handles += [
        Line2D([], [], color="0.3", ls=ls, marker=marker, lw=1, label=label)
        for shown, ls, marker, label in marks
        if shown
    ]
    fig.legend(handles=handles, loc="outside right center", fontsize=10, frameon=False)
    if all(c.from_truth for c in curves):
        fig.suptitle("Is the truth the minimum? Expected score minus its value at the truth")
    else:
        fig.suptitle("Expected score minus its value at the truth, or at the family's best")
    _save(fig, path)
    return fig


@dataclass(frozen=True)
class _Divergence:
    """One objective's score divergence along a profile: ``d = values - ref`` where ``ref`` is
    the expected score at the truth (or, the truth not in the family, at the best forecast)."""

    objective: str
    setting: str
    xlabel: str
    x: np.ndarray
    d: np.ndarray
    centre: float | None  # the truth's x, where it lies on the path
    optimum: tuple[float, float] | None  # (x, d) of the optimum where it lies on the path
    edge: str | None  # "left"/"right": the optimum lies beyond that end of the path
    proper: bool
    verdict: str | None
    from_truth: bool  # d is measured from the truth's expected score (else the best forecast's)

    def __init__(self, prof, result) -> None:
        at_truth = prof.truth_value is not None and np.isfinite(prof.truth_value)
        from_truth = prof.truth_x is not None and at_truth
        if from_truth:
            ref = float(prof.truth_value)
        elif prof.optimum_value is not None and np.isfinite(prof.optimum_value):
            ref = float(prof.optimum_value)
        else:
            finite = prof.values[np.isfinite(prof.values)]
            ref = float(finite.min()) if finite.size else 0.0
        opt = None
        if prof.optimum_x is not None and prof.optimum_value is not None:
            opt = (float(prof.optimum_x), float(prof.optimum_value) - ref)
        fields = {
            "objective": prof.objective,
            "setting": prof.setting,
            "xlabel": prof.xlabel,
            "x": np.asarray(prof.x, dtype=float),
            "d": np.asarray(prof.values, dtype=float) - ref,
            "centre": None if prof.truth_x is None else float(prof.truth_x),
            "optimum": opt,
            "edge": prof.optimum_at_edge,
            "proper": _found_proper(result),
            "verdict": getattr(result, "verdict", None),
            "from_truth": from_truth,
        }
        for key, value in fields.items():
            object.__setattr__(self, key, value)


def _found_proper(result) -> bool:
    return getattr(result, "verdict", None) in ("strictly proper", "proper")


def _objective_styles(names: list[str]) -> dict[str, tuple[str, str]]:
    """One (colour, line style) per objective, the same in every panel: the ten tab10 colours,
    solid, then dashed, then dash-dotted."""
    dashes = ("-", "--", "-.", ":")
    return {name: (f"C{k % 10}", dashes[(k // 10) % len(dashes)]) for k, name in enumerate(names)}


def _setting_title(setting: str, results: list) -> str:
    if setting.startswith("classes:"):
        return f"{setting.split(':', 1)[1]} classes (each objective at its worst truth q)"
    truth = getattr(results[0], "truth", None) if results else None
    from likelab.report.study_figures import wrap_label  # whole, in lines: never cut

    return wrap_label(f"density: truth {truth}", 48) if truth else setting


def _column_xlabel(curves: list) -> str:
    labels = list(dict.fromkeys(c.xlabel for c in curves))
    return textwrap.fill(labels[0] if len(labels) == 1 else "forecast parameter", 46)


def _proper_label(group: list) -> str:
    return "proper" if group else "none found proper"


def _other_label(group: list) -> str:
    if not group:
        return "none found improper"
    if all(c.verdict == "improper" for c in group):
        return "improper: a forecast beats the truth"
    if all(c.verdict is None for c in group):
        return "the truth is not in the forecast family"
    return "improper or undetermined"


def _no_curves(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def _truth_line(ax, group: list) -> float | None:
    centres = {c.centre for c in group if c.centre is not None}
    for centre in centres:
        ax.axvline(centre, color="0.35", ls="--", lw=1, zorder=1)
    return next(iter(centres)) if len(centres) == 1 else None


def _draw_proper(ax, group: list, styles: dict, *, zoom: bool) -> None:
    """Score divergences of proper objectives on a log y axis; where d = 0 (at the truth) the
    curve leaves the axis at the bottom, as log d -> -inf. ``zoom``: half to twice the truth."""
    if not group:
        _no_curves(ax, "none")
        return
    ax.set_xscale("log")
    ax.set_yscale("log", nonpositive="clip")
    centre = _truth_line(ax, group)
    positive = []
    for k, c in enumerate(group):
        x, d = c.x, c.d
        color, ls = styles[c.objective]
        ax.plot(x, d, color=color, ls=ls, lw=_width(k, len(group)) * 0.8)
        off_truth = np.ones(x.shape, bool)
        if c.centre is not None:
            off_truth = np.abs(np.log(x / c.centre)) > 1e-6
        positive.append(d[off_truth & np.isfinite(d) & (d > 0)])
    values = np.concatenate(positive)
    if values.size:
        top = float(values.max()) * 3.0
        ax.set_ylim(max(float(values.min()) / 3.0, top * 1e-14), top)
    if zoom and centre is not None:
        ax.annotate(
            "0 at the truth:\nbelow any log axis",
            xy=(centre, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(6, -6),
            textcoords="offset points",
            va="top",
            fontsize=9,
            color="0.3",
        )
        ax.set_xlim(centre / 2.0, centre * 2.0)
        ticks = [centre * f for f in (0.5, 0.7, 1.0, 1.4, 2.0)]
        ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3, which="major")


def _draw_improper(ax, group: list, styles: dict) -> None:
    """Score divergences of improper (or undetermined) objectives on a symmetric log y axis,
    the region d < 0 shaded, each optimum marked."""
    if not group:
        _no_curves(ax, "none")
        return
    ax.set_xscale("log")
    _truth_line(ax, group)
    finite = []
    for k, c in enumerate(group):
        color, ls = styles[c.objective]
        ax.plot(c.x, c.d, color=color, ls=ls, lw=_width(k, len(group)) * 0.8)
        ok = np.isfinite(c.d)
        finite.append(c.d[ok])
        if c.centre is not None:
            ax.plot([c.centre], [0.0], "o", mfc="white", color="0.2", ms=6, zorder=3)
        if c.optimum is not None:
            ax.plot(*c.optimum, "o", color=color, ms=7, zorder=4)
        elif c.edge is not None and ok.any():
            i = int(np.flatnonzero(ok)[0 if c.edge == "left" else -1])
            marker = "<" if c.edge == "left" else ">"
            ax.plot(c.x[i], c.d[i], marker, color=color, ms=9, zorder=4, clip_on=False)
    values = np.concatenate(finite)
    if not values.size:
        return
    low, high = float(values.min()), float(values.max())
    span = max(abs(low), abs(high), 1e-300)
    # dips below 0 set the linear range; rounding noise (at the reference itself) does not
    negative = [float(-v.min()) for v in finite if v.size and v.min() < -span * 1e-9]
    small = min(negative) if negative else span * 1e-3
    linthresh = 10.0 ** math.floor(math.log10(max(small / 2.0, span * 1e-12)))
    ax.set_yscale("symlog", linthresh=linthresh, linscale=0.5)
    ticks = SymmetricalLogLocator(base=10, linthresh=linthresh)
    ticks.set_params(numticks=9)  # at most about nine labelled decades, readable at 10 pt
    ax.yaxis.set_major_locator(ticks)
    bottom = 2.0 * low if low < 0 else -linthresh
    ax.set_ylim(bottom, 2.0 * high if high > 0 else linthresh)
    ax.axhline(0.0, color="0.3", lw=0.8)
    if not all(c.from_truth for c in group):
        ax.grid(alpha=0.3, which="major")
        return  # measured from the family's best forecast: nothing can be below 0
    ax.axhspan(bottom, 0.0, color="tab:red", alpha=0.07, lw=0, zorder=0)
    ax.text(
        0.98,
        0.03,
        "below 0: beats the truth",
        ha="right",
        transform=ax.transAxes,
        color="tab:red",
        fontsize=9,
    )
    ax.grid(alpha=0.3, which="major")


def plot_learning_curves(comparison, path: str | Path | None = None) -> Figure:
    """Per epoch, for each objective: the mean over seeds (line) and the range across seeds
    (band, min to max) of the objective's own training loss, the gradient norm of the training
    risk (log scale: a vanishing gradient shows as a drop; over the whole training set where it
    was computed, else the mean over the epoch's mini-batches), test accuracy and test NLL
    (at the epochs the history recorded them). The legend says when and why the runs stopped.
    Runs that failed have no history and are left out."""
    from likelab.classify.trainer import stop_summary

    fig = Figure(figsize=(11, 7.5), layout="constrained")
    axes = fig.subplots(2, 2)
    panels = [
        ("train_loss", "training loss (its own objective)", "mean loss on the training set", False),
        ("grad_norm", "gradient norm of the training risk", "‖∇ risk‖ (log scale)", True),
        ("test_accuracy", "test accuracy", "accuracy (clean test set)", False),
        ("test_nll", "test NLL", "NLL (clean test set)", False),
    ]
    drawn = False
    for i, spec in enumerate(comparison.objectives):
        every = [r for r in comparison.runs if r.objective == spec]
        runs = [r for r in every if r.failed is None and r.history]
        if not runs:
            continue
        color = f"C{i % 10}"
        for ax, (key, _title, _ylabel, log) in zip(axes.ravel(), panels, strict=True):
            series = [_series(r.history, key) for r in runs]
            epochs = sorted({e for s in series for e in s})
            if not epochs:
                continue
            curves = np.array([[s.get(e, np.nan) for e in epochs] for s in series], dtype=float)
            curves[~np.isfinite(curves)] = np.nan
            if log:
                curves[curves <= 0] = np.nan
            x = np.asarray(epochs, dtype=float)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an epoch every run lacks
                mean = np.nanmean(curves, axis=0)
                lo, hi = np.nanmin(curves, axis=0), np.nanmax(curves, axis=0)
            name = comparison.label(spec)
            label = f"{name}: {stop_summary(every)}" if len(every) > 1 else name
            ax.plot(x, mean, color=color, lw=1.3, label=label)
            if len(runs) > 1:
                ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
            drawn = True
    for ax, (_key, title, ylabel, log) in zip(axes.ravel(), panels, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.tick_params(labelsize=8)
        if log and ax.has_data():
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())  # decades only, no 4×10⁻¹ clutter
    if drawn:
        seeds = len(comparison.seeds)
        band = "; band: min–max across seeds" if seeds > 1 else ""
        axes[0, 0].legend(
            fontsize=7, title=f"line: mean over {seeds} seed(s){band}", title_fontsize=7
        )
    noise = f", label noise {comparison.noise}" if comparison.noise else ""
    fig.suptitle(_wrap(f"{comparison.dataset}{noise}: {comparison.model}", 110), fontsize=11)
    _save(fig, path)
    return fig


def _series(history: list[dict], key: str) -> dict[int, float]:
    """``{epoch: value}`` of ``key`` in a run's history (``full_grad_norm`` preferred for the
    gradient norm, where it was computed)."""
    out = {}
    for row in history:
        value = row.get("full_grad_norm", row.get(key)) if key == "grad_norm" else row.get(key)
        if value is not None:
            out[int(row["epoch"])] = float(value)
    return out


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def plot_reliability(comparison, path: str | Path | None = None) -> Figure:
    """Reliability diagrams (Guo et al. 2017): accuracy against confidence in 15 bins, test
    predictions of every seed pooled, one panel per objective, with the number of predictions
    in each bin in a strip below it (log scale; a bin with few predictions has a noisy
    accuracy).

    The ECE in each panel's title is the comparison's own (:meth:`Comparison.rows`: the mean over
    seeds of each run's ECE, the number the table shows), not recomputed from the pooled bins.
    Runs that diverged or failed have no predictions and are left out; an objective with no run
    left gets an empty panel saying why."""
    from likelab.classify import reliability

    specs = comparison.objectives
    rows = {row["objective"]: row for row in comparison.rows()}
    cols = min(4, len(specs))
    nrows = -(-len(specs) // cols)
    fig = Figure(figsize=(3.4 * cols, 4.5 * nrows), layout="constrained")
    grid = fig.add_gridspec(2 * nrows, cols, height_ratios=[3.2, 1] * nrows)
    for k, spec in enumerate(specs):
        r, c = divmod(k, cols)
        ax = fig.add_subplot(grid[2 * r, c])
        strip = fig.add_subplot(grid[2 * r + 1, c], sharex=ax)
        row = rows[spec]
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy", fontsize=8)
        ax.tick_params(labelsize=7, labelbottom=False)
        strip.set_xlabel("confidence (top-class probability)", fontsize=8)
        strip.set_ylabel("predictions", fontsize=8)
        strip.tick_params(labelsize=7)
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1)
        runs = [x for x in comparison.runs if x.objective == spec and x.ok]
        ax.set_title(_wrap(f"{comparison.label(spec)}  (ECE {ece_label(row)})", 40), fontsize=9)
        if not runs:
            why = "every run failed" if row.get("failed") == row["seeds"] else "no run trained"
            if not row.get("failed"):
                why = "every run diverged"
            ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=9)
            strip.set_yticks([])
            continue
        probs = np.concatenate([x.probs_test for x in runs])
        y = np.concatenate([x.y_test for x in runs])
        b = reliability(probs, y)
        centres = (b["edges"][:-1] + b["edges"][1:]) / 2
        full = b["count"] > 0
        width = 1 / len(centres)
        ax.bar(
            centres[full],
            b["accuracy"][full],
            width=width,
            color="C0",
            edgecolor="white",
            alpha=0.8,
        )
        strip.bar(centres[full], b["count"][full], width=width, color="grey", edgecolor="white")
        strip.set_yscale("log")
        strip.set_ylim(0.7, max(float(b["count"].max()), 1.0) * 3)
        for xc, n in zip(centres[full], b["count"][full], strict=True):
            strip.text(xc, n * 1.15, f"{int(n)}", ha="center", va="bottom", fontsize=5.5)
    seeds = len(comparison.seeds)
    fig.suptitle(
        _wrap(
            f"reliability on the clean test set: {comparison.dataset} (predictions of "
            f"{seeds} seed(s) pooled; bars: accuracy per confidence bin, below: predictions "
            "per bin)",
            40 * cols,
        ),
        fontsize=10,
    )
    _save(fig, path)
    return fig


def ece_label(row: dict) -> str:
    """A comparison row's ECE as the table and the reliability figure both print it."""
    return _metric_label(row, "ece")


def _metric_label(row: dict, key: str) -> str:
    value = row.get(key)
    return "undetermined" if value is None else f"{value:.3f}"


def _save(fig: Figure, path: str | Path | None) -> None:
    if path is not None:
        save_figure(fig, path)


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to exactly ``path``, whole or not at all, and return the path.

    The format follows the suffix (``.png``, ``.pdf``, ``.svg``, ...; PNG where there is none,
    still written to ``path`` itself, never to ``path + ".png"``). Missing parent directories are
    created. The figure is drawn into a temporary file in the target directory and renamed over
    ``path`` (:func:`os.replace`, atomic on POSIX), so a failure leaves no partial file and no
    directory this call created. An unknown suffix, a path that is a directory or lies under a
    file, or a directory that cannot be written raise :class:`~likelab.errors.OutputError`.
    """
    path = Path(path)
    if not str(path).strip() or path.name in ("", ".", ".."):
        raise OutputError(f"cannot write a figure to {str(path)!r}: not a file name")
    fmt = path.suffix[1:].lower() or "png"
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise OutputError(
            f"cannot write a figure to {str(path)!r}: unknown format {path.suffix!r}; "
            f"use one of {', '.join('.' + k for k in sorted(supported))}"
        )
    if path.is_dir():
        raise OutputError(f"cannot write a figure to {str(path)!r}: it is a directory")
    created = []
    written = False
    try:
        for parent in reversed(path.parents):
            if not parent.exists():
                parent.mkdir()
                created.append(parent)
            elif not parent.is_dir():
                raise NotADirectoryError(20, f"{str(parent)!r} is a file, not a directory")
        with atomic_write(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=120)
        written = True
    except OSError as exc:
        raise OutputError(
            f"cannot write a figure to {str(path)!r}: {exc.strerror or exc}"
            + (f" ({exc.filename})" if getattr(exc, "filename", None) else "")
        ) from None
    finally:
        if not written:  # leave no directory this call created
            for directory in reversed(created):
                with contextlib.suppress(OSError):
                    directory.rmdir()
    return path


def plot_probabilities(comparison, path: str | Path | None = None) -> Figure:
    """Predicted against true class probabilities on the test set, one panel per objective.

    Every (test example, class) pair is a point (x: the dataset's true probability, y: the
    network's), every seed pooled; a proper objective trained to its optimum puts them on the
    diagonal. Needs a dataset whose true probabilities are known (``xor``, ``xor-gauss``,
    ``next-word``).
    """
    specs = comparison.objectives
    if any(r.p_test is None for r in comparison.runs):
        raise UnsupportedError(
            f"{comparison.dataset}: the true class probabilities are unknown, so predicted and "
            "true probabilities cannot be compared"
        )
    rows = {row["objective"]: row for row in comparison.rows()}
    fig, axes = _objective_panels(len(specs))
    for i, (ax, spec) in enumerate(zip(axes.ravel(), specs, strict=False)):
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1)
        gap = _metric_label(rows[spec], "prob_gap")
        ax.set_title(_wrap(f"{comparison.label(spec)}  (mean |p̂ − p| {gap})", 40), fontsize=9)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("true probability", fontsize=8)
        ax.set_ylabel("predicted probability", fontsize=8)
        runs = [r for r in comparison.runs if r.objective == spec and r.ok]
        if not runs:
            why = "every run failed" if rows[spec].get("failed") else "every run diverged"
            ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=9)
            continue
        truth = np.concatenate([r.p_test.ravel() for r in runs])
        pred = np.concatenate([r.probs_test.ravel() for r in runs])
        keep = truth > 0
        ax.scatter(truth[keep], pred[keep], s=14, alpha=0.25, color=f"C{i % 10}", lw=0)
    return _finish_panels(
        fig, axes, len(specs), f"predicted vs true class probabilities: {comparison.dataset}", path
    )


def _objective_panels(count: int):
    """A figure with one square panel per objective, at most 4 to a row."""
    cols = min(4, count)
    rows = -(-count // cols)
    fig = Figure(figsize=(3.3 * cols, 3.3 * rows), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _finish_panels(fig: Figure, axes, used: int, title: str, path) -> Figure:
    """Hide the panels left over, title the figure, save it when given a path."""
    for ax in axes.ravel()[used:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    _save(fig, path)
    return fig


# the study figures live in likelab.report.study_figures; imported here for the names above
from likelab.report.study_figures import plot_contamination, plot_study  # noqa: E402
