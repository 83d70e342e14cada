"""Matplotlib figures: landscapes, underflow, properness, training, simulation studies.

Each function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot``: no global
figure registry, no interactive backend, nothing to close), saves it when given a path (by
:func:`save_figure`: the format follows the suffix, PNG where there is none, at 120 dpi, written
whole or not at all) and returns it.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

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
_LABELS = {
    "linear": "sum of likelihoods (linear: -mean f)",
    "product": "product of likelihoods (product: -prod f)",
    "log": "log-product (log: mean NLL)",
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


def _title(spec: str, r, *, wrap: bool = False) -> str:
    k = r.local_minima
    head = _LABELS.get(spec, spec)
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
        ax.set_title(_title(spec, r), fontsize=10)
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
        ax.set_title(_title(spec, r, wrap=True), fontsize=9)
        ax.set_xlabel(px)
        ax.set_ylabel(py)
    fig.suptitle(
        f"{land.family}, n = {land.n}, {land.dtype} (x: local minima, *: global)", fontsize=11
    )
    return fig


def plot_underflow(report: UnderflowReport, path: str | Path | None = None) -> Figure:
    """The naive product and its gradient against the batch size n, per floating type.

    Top: log10 of the product per dtype, the exact log10-product (sum of logs, finite at every
    n), each dtype's smallest normal (``tiny``, dashed) and smallest subnormal (dotted); where the
    product is exactly 0 it is drawn at the bottom row, marked x. Bottom: the per-sample (RMS)
    gradient norm with respect to the logits, of the product per dtype and of the log-product
    (the NLL), zeros drawn the same way.
    """
    n = report.n
    fig = Figure(figsize=(11, 8), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    exact = report.log_product / math.log(10.0)

    floor = _zero_row(
        [math.log10(t["smallest_subnormal"]) for t in report.thresholds.values()]
        + [float(np.min(exact))]
    )
    top.plot(
        n,
        exact,
        color="black",
        ls="--",
        lw=1.0,
        label="exact: sum of log10 l_i (finite at every n)",
    )
    for i, dt in enumerate(report.dtypes):
        color = _COLORS[i % len(_COLORS)]
        t = report.thresholds[dt]
        _log_curve(
            top,
            n,
            report.product[dt],
            floor,
            color,
            f"{dt}: naive product",
            width=_width(i, len(report.dtypes)),
        )
        top.axhline(
            math.log10(t["tiny"]),
            color=color,
            ls="--",
            lw=0.8,
            alpha=0.7,
            label=f"{dt} smallest normal ({t['tiny']:.3g})",
        )
        top.axhline(
            math.log10(t["smallest_subnormal"]),
            color=color,
            ls=":",
            lw=1.0,
            label=f"{dt} smallest subnormal ({t['smallest_subnormal']:.3g})",
        )
        if t["zero_at"] is not None:
            _mark_zero_from(top, t["zero_at"], floor, color, f"{dt}: 0 from n = {t['zero_at']}")
    _floor_axis(top, floor)
    top.set_ylabel("log10 product of likelihoods")
    ls = ", ".join(f"{v:g}" for v in report.likelihoods)
    zeros = [t["zero_at"] for t in report.thresholds.values() if t["zero_at"] is not None]
    verdict = "underflows to exactly 0" if zeros else f"stays above 0 up to n = {report.max_n}"
    top.set_title(f"naive product of likelihoods ({ls}, repeated) {verdict}", fontsize=11)
    top.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    top.grid(alpha=0.3)

    nll = np.log10(report.grad_norm_nll)
    gfloor = _zero_row(
        [
            float(np.log10(a[a > 0]).min())
            for a in report.grad_norm_product.values()
            if (a > 0).any()
        ]
        + [float(np.min(nll))]
    )
    bottom.plot(
        n, nll, color="black", lw=1.5, label="log-product (NLL): RMS ||softmax(z_i) - e_y||"
    )
    for i, dt in enumerate(report.dtypes):
        color = _COLORS[i % len(_COLORS)]
        t = report.thresholds[dt]
        _log_curve(
            bottom,
            n,
            report.grad_norm_product[dt],
            gfloor,
            color,
            f"{dt}: product, RMS ||dP/dz_i||",
            width=_width(i, len(report.dtypes)),
        )
        if t["grad_zero_at"] is not None:
            at = t["grad_zero_at"]
            _mark_zero_from(bottom, at, gfloor, color, f"{dt}: gradient 0 from n = {at}")
    _floor_axis(bottom, gfloor)
    bottom.set_ylabel("log10 gradient norm")
    bottom.set_xlabel("batch size n")
    bottom.set_title(
        f"gradient with respect to the logits ({report.num_classes} classes)", fontsize=11
    )
    bottom.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    bottom.grid(alpha=0.3)
    _save(fig, path)
    return fig


def _width(i: int, count: int) -> float:
    """Line widths decreasing with i, so that coinciding curves stay visible underneath."""
    return 1.3 + 2.5 * (count - 1 - i) / max(1, count - 1)


def _log_curve(
    ax,
    n: np.ndarray,
    values: np.ndarray,
    floor: float,
    color: str,
    label: str,
    *,
    width: float = 1.5,
) -> None:
    """log10 of positive values as a line; exact zeros as x markers on the ``floor`` row."""
    positive = values > 0
    logs = np.full(values.shape, np.nan)
    logs[positive] = np.log10(values[positive])
    ax.plot(n, logs, color=color, lw=width, alpha=0.85, label=label)
    zeros = np.flatnonzero(values == 0)
    if zeros.size:
        step = max(1, math.ceil(n.size / 60))  # about 60 markers across the full axis at most
        shown = zeros[::step]
        ax.plot(
            n[shown],
            np.full(shown.shape, floor),
            "x",
            color=color,
            ms=5,
            label=f"{label.split(':')[0]}: exactly 0",
        )


def _mark_zero_from(ax, n: int, floor: float, color: str, text: str) -> None:
    """A faint vertical line at batch size ``n`` and a label just above the 'exactly 0' row."""
    ax.axvline(n, color=color, lw=0.6, alpha=0.5)
    ax.annotate(
        text, (n, floor), xytext=(4, 16), textcoords="offset points", color=color, fontsize=8
    )


def _zero_row(lowest: list[float]) -> float:
    """The height of the 'exactly 0' row: a round number 15 below the lowest log10 drawn."""
    return math.floor(min(lowest) / 10.0) * 10.0 - 15.0


def _floor_axis(ax, floor: float) -> None:
    """Reserve the bottom row for exact zeros and label it."""
    high = ax.get_ylim()[1]
    ax.set_ylim(floor - 0.04 * (high - floor), max(high, 1.0))
    ax.axhline(floor, color="grey", lw=0.5)
    ticks = [t for t in ax.get_yticks() if floor + 0.06 * (max(high, 1.0) - floor) < t <= high]
    ax.set_yticks([floor, *ticks])
    ax.set_yticklabels(["exactly 0", *(f"{t:g}" for t in ticks)])


def plot_properness(survey, path: str | Path | None = None) -> Figure:
    """Expected score against the forecast's scale (densities) or temperature (classes), one
    panel per objective and setting, marking the truth (dashed line, open circle) and the
    optimum (filled dot, or an arrow at the edge it runs off to). Rows without a verdict's
    evidence (not applicable) are skipped.
    """
    from likelab.properness.survey import NotApplicable, score_profile

    profiles = [score_profile(r) for r in survey.results if not isinstance(r, NotApplicable)]
    if not profiles:
        raise UnsupportedError("nothing to plot: no objective applies in the settings asked")
    cols = min(4, len(profiles))
    rows = -(-len(profiles) // cols)
    fig = Figure(figsize=(4.0 * cols, 2.9 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, prof in zip(axes.ravel(), profiles, strict=False):
        ax.plot(prof.x, prof.values, color="C0", lw=1.4)
        ax.set_xscale("log")
        finite = prof.values[np.isfinite(prof.values)]
        if prof.truth_x is not None:
            ax.axvline(prof.truth_x, color="C2", ls="--", lw=1)
            ax.plot([prof.truth_x], [prof.truth_value], "o", mfc="none", color="C2", label="truth")
        if prof.optimum_x is not None:
            ax.plot([prof.optimum_x], [prof.optimum_value], "o", color="C3", label="optimum")
        elif prof.optimum_at_edge is not None and finite.size:
            where = 0.02 if prof.optimum_at_edge == "left" else 0.98
            arrow = "←" if prof.optimum_at_edge == "left" else "→"
            ax.annotate(
                f"{arrow} optimum beyond the edge",
                xy=(where, 0.06),
                xycoords="axes fraction",
                ha="left" if where < 0.5 else "right",
                color="C3",
                fontsize=8,
            )
        ax.set_title(f"{prof.objective} ({prof.setting})", fontsize=9)
        ax.set_xlabel(prof.xlabel, fontsize=7)
        ax.tick_params(labelsize=7)
        _focus_on_minimum(ax, finite, prof)
    axes.ravel()[0].legend(fontsize=7, loc="upper center")
    for ax in axes.ravel()[len(profiles) :]:
        ax.set_visible(False)
    fig.suptitle("expected score (lower is better): is the truth the minimum?", fontsize=11)
    _save(fig, path)
    return fig


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
            label = f"{spec}: {stop_summary(every)}" if len(every) > 1 else spec
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
        ax.set_title(_wrap(f"{spec}  (ECE {ece_label(row)})", 40), fontsize=9)
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


def _focus_on_minimum(ax, finite: np.ndarray, prof) -> None:
    """Clip the y axis at the 80th percentile of the curve (the log score's blow-up as the
    scale → 0 would flatten the bowl), keeping the truth and the optimum in view."""
    if finite.size < 2:
        return
    marks = [v for v in (prof.truth_value, prof.optimum_value) if v is not None and np.isfinite(v)]
    lo = min(float(finite.min()), *marks) if marks else float(finite.min())
    hi = max(float(np.quantile(finite, 0.8)), *marks) if marks else float(np.quantile(finite, 0.8))
    if hi > lo:
        pad = 0.06 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)


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
        ax.set_title(f"{spec}  (mean |p̂ − p| {_metric_label(rows[spec], 'prob_gap')})", fontsize=9)
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
