r"""Figures of M-estimator asymptotics (:mod:`likelab.asymptotics`): influence functions and
asymptotic bias under contamination.

- Top row, one panel per free parameter: each objective's influence function
  :math:`\mathrm{IF}_j(x) = -[A^{-1}\nabla_\theta S(Q_{\theta^*}, x)]_j` over a grid of x
  (:meth:`~likelab.asymptotics.AsymptoticsResult.influence_grid`, the truth's centre ± 6 scales).
  A bounded, redescending IF (``dpd``, ``gamma``) is what makes an estimator robust; the IF of
  ``log`` at the normal location is the straight line x − μ (Hampel et al. 1986, *Robust
  Statistics: The Approach Based on Influence Functions*, sec. 2.1).
- Bottom row, when contamination results are given, one panel per free parameter: the asymptotic
  bias :math:`\theta^*_j(\varepsilon) - \theta^*_j(0)` under
  :math:`(1-\varepsilon)P + \varepsilon G` against ε (from ε = 0, where it is 0 by
  definition), one line per objective, broken at its numerical breakdown point
  (:func:`likelab.asymptotics.contamination_bias`), which a dotted vertical line in its colour
  marks; the bound that defines breakdown is drawn as grey dashed lines where some curve comes
  within a factor 4 of it (Huber 1964, Ann. Math. Statist. 35:73-101).

An objective with no influence function (no θ*, a singular A: ``reason``) or no bias curve is
never drawn as a line: the figure says beneath the panels why it is missing. Objectives are
labelled as the user spelled them (``labels``), panel titles are never cut.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from likelab.asymptotics import AsymptoticsResult, ContaminationBias
from likelab.errors import ParameterError
from likelab.report.study_figures import _chars, _finish, wrap_label

__all__ = ["plot_asymptotics"]

_PANEL_W = 4.4  # inches per parameter column
_PANEL_H = 3.4  # inches per row


def plot_asymptotics(
    results: Sequence[AsymptoticsResult],
    path: str | Path | None = None,
    *,
    bias: Mapping[str, ContaminationBias] | None = None,
    labels: Mapping[str, str] | None = None,
    failures: Mapping[str, str] | None = None,
) -> Figure:
    """Influence functions (one panel per free parameter) and, with ``bias``, the bias curves
    under contamination (a second row, one panel per free parameter); saved to ``path`` when
    given (:func:`likelab.report.figures.save_figure`: format from the suffix, written whole or
    not at all) and returned.

    ``results`` share one family and truth (those of :func:`likelab.asymptotics` for several
    objectives); ``bias`` maps an objective's spec (``result.objective``) to its
    :func:`likelab.asymptotics.contamination_bias` (all against one contamination); ``labels``
    maps a spec to how it is shown (the user's spelling; the spec itself where absent);
    ``failures`` maps a spec to why it has no result at all (named beneath the panels).

    >>> from likelab.asymptotics import asymptotics
    >>> fig = plot_asymptotics([asymptotics("log", "normal:scale=1", "normal:loc=0,scale=1")])
    >>> [ax.get_title() for ax in fig.axes]
    ['influence function: loc']
    """
    results = list(results)
    if not results:
        raise ParameterError("no asymptotics to draw: give at least one result")
    families = {r.family for r in results}
    truths = {r.truth for r in results}
    if len(families) > 1 or len(truths) > 1:
        raise ParameterError(
            "the results to draw in one figure must share a family and a truth, got "
            f"{sorted(families)} and {sorted(truths)}"
        )
    bias = dict(bias or {})
    labels = dict(labels or {})
    specs = [r.objective for r in results]
    unknown = [s for s in bias if s not in specs]
    if unknown:
        raise ParameterError(f"bias given for objectives with no result: {', '.join(unknown)}")
    outliers = {b.contamination for b in bias.values()}
    if len(outliers) > 1:
        raise ParameterError(
            f"the bias curves of one figure share a contamination, got {sorted(outliers)}"
        )

    def label(spec: str) -> str:
        return labels.get(spec, spec)

    params = list(results[0].params)
    colors = {r.objective: f"C{i % 10}" for i, r in enumerate(results)}
    cols = max(1, len(params))
    rows = 2 if bias else 1
    width = max(7.0, _PANEL_W * cols)  # room for the legend beside a single column
    fig = Figure(figsize=(width, _PANEL_H * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    notes: list[str] = []
    drawn: list[str] = []

    # influence functions
    grids = {}
    for r in results:
        if r.reason:
            notes.append(f"{label(r.objective)}: no influence function drawn, {r.reason}")
            continue
        grid = r.influence_grid()
        if not any(np.isfinite(np.asarray(grid[k], dtype=float)).any() for k in params):
            notes.append(f"{label(r.objective)}: no influence function drawn, no finite value")
            continue
        grids[r.objective] = grid
    for ax, name in zip(axes[0], params, strict=True):
        for spec, grid in grids.items():
            x = np.asarray(grid["x"], dtype=float)
            y = np.asarray(grid[name], dtype=float)
            ax.plot(x, y, lw=1.4, color=colors[spec], label=label(spec))
        ax.axhline(0.0, color="grey", lw=0.8, ls="--")
        ax.set_title(wrap_label(f"influence function: {name}", _chars(_PANEL_W - 0.2)), fontsize=9)
        ax.set_xlabel("x (an observation)", fontsize=8)
        ax.set_ylabel(f"IF(x) of {name}", fontsize=8)
        ax.tick_params(labelsize=7)
        if not grids:
            _empty(ax, "no objective has an influence function here")
    drawn += list(grids)

    # bias under contamination
    if bias:
        first = next(iter(bias.values()))
        curves = {}
        for r in results:
            b = bias.get(r.objective)
            if b is None:
                why = r.reason or "no bias computed"
                notes.append(f"{label(r.objective)}: no bias curve drawn, {why}")
                continue
            if not any(np.isfinite(np.asarray(b.bias[k], dtype=float)).any() for k in params):
                why = next((w for w in b.reasons if w), "no finite value")
                notes.append(f"{label(r.objective)}: no bias curve drawn, {why}")
                continue
            curves[r.objective] = b
        for ax, name in zip(axes[1], params, strict=True):
            for spec, b in curves.items():
                eps, y = _curve(b, name)
                ax.plot(eps, y, marker="o", ms=3, lw=1.4, color=colors[spec], label=label(spec))
                if b.breakdown is not None:
                    ax.axvline(b.breakdown, color=colors[spec], lw=1.2, ls=":")
            bound = first.bound
            values = np.abs([v for b in curves.values() for v in b.bias[name]], dtype=float)
            reach = values[np.isfinite(values)]
            if reach.size and reach.max() >= 0.25 * bound:  # else it would flatten the curves
                for sign in (-1.0, 1.0):
                    ax.axhline(sign * bound, color="grey", lw=0.8, ls="--")
            ax.axhline(0.0, color="grey", lw=0.6)
            ax.set_title(
                wrap_label(f"asymptotic bias θ*(ε) − θ*(0): {name}", _chars(_PANEL_W - 0.2)),
                fontsize=9,
            )
            ax.set_xlabel("contamination fraction ε", fontsize=8)
            ax.set_ylabel(f"bias of {name}", fontsize=8)
            ax.tick_params(labelsize=7)
            if not curves:
                _empty(ax, "no objective has a bias curve here")
        for spec, b in curves.items():
            if b.breakdown is None:
                notes.append(
                    f"{label(spec)}: no breakdown up to ε = {max(b.eps):g} "
                    f"(|bias| ≤ {b.bound:g} throughout)"
                )
            else:
                lo, hi = b.breakdown_evidence.get("bracket", [math.nan, b.breakdown])
                notes.append(f"{label(spec)}: breaks down at ε in ({lo:.4g}, {hi:.4g}]")
        drawn += [s for s in curves if s not in drawn]
    for spec, why in (failures or {}).items():
        notes.append(f"{label(spec)}: not drawn, {why}")

    handles = [Line2D([], [], color=colors[s], lw=1.4, label=label(s)) for s in specs if s in drawn]
    title = f"asymptotics of {results[0].family} fitted to {results[0].truth}"
    if bias:
        handles.append(Line2D([], [], color="0.3", lw=1.2, ls=":", label="breakdown point"))
        handles.append(
            Line2D([], [], color="grey", lw=0.8, ls="--", label=f"bound ±{first.bound:g}")
        )
        title += f"; bias under (1−ε)·truth + ε·{first.contamination}"
    return _finish(fig, title, handles, notes, path, width=width)


def _curve(b: ContaminationBias, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The bias of ``name`` against ε, from (0, 0) (θ*(0) − θ*(0), by definition) and broken
    (a NaN) at the breakdown point: past it the estimate has run away, and a straight line
    between the ε on either side would draw values that were never computed across a jump."""
    eps = [float(e) for e in b.eps]
    y = [float(v) for v in b.bias[name]]
    if 0.0 not in eps:
        eps, y = [0.0, *eps], [0.0, *y]
    if b.breakdown is not None:
        k = next((i for i, e in enumerate(eps) if e >= b.breakdown), len(eps))
        if 0 < k < len(eps):
            eps.insert(k, b.breakdown)
            y.insert(k, math.nan)
    return np.asarray(eps, dtype=float), np.asarray(y, dtype=float)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, transform=ax.transAxes)
