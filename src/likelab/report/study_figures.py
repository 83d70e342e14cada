r"""Figures of a simulation study: the standard views of Morris, White & Crowther (2019,
*Stat. Med.* 38:2074-2102, sec. 6) and of rsimsum's ``autoplot`` (Gasparini 2018, *JOSS* 3:739).

- :func:`plot_study`: one performance measure against n, one panel per (DGP point, parameter),
  with, where asked, what asymptotic theory predicts for it (the asymptotic SD beside
  :math:`\sqrt n` × the empirical SE, the ARE beside the relative efficiency) as a dashed
  line per objective;
- :func:`plot_contamination`: relative efficiency, bias and relative MSE against the
  contamination fraction;
- :func:`plot_nested_loop`: a nested-loop plot (Rücker & Schwarzer 2014, *BMC Med. Res.
  Methodol.* 14:129): a measure over every cell of a factorial design, the cells ordered by
  nested factors, each factor's level drawn as a step line beneath;
- :func:`plot_estimates`: each measure with its Monte Carlo interval, estimate ± 1.96 MCSE, per
  cell and objective (forest style);
- :func:`plot_zip`: the zip plot of confidence-interval coverage (Morris et al. 2019, fig. 4):
  every replicate's 95% Wald interval, ranked by the fractional centile of :math:`|z_i|`,
  :math:`z_i = (\hat\theta_i - \theta)/\widehat{SE}_i`, coloured by whether it covers θ, with
  the nominal 95% and the coverage's Monte Carlo interval marked.

The measures are :func:`likelab.study.summarise` rows. An objective with no value of a measure
anywhere (every fit failed, or it has no SE) is never drawn as a line nor named in a legend:
the figure says beneath the panels that it is missing, with the reason passed in ``failures``
(an objective → one-line reason mapping, such as the report's failure summary), or "no value".
Panel titles are never cut: long DGP specs wrap at their ``,``, ``+`` and ``*`` separators.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from likelab.errors import UnsupportedError
from likelab.families.dgp import canonical_dgp

__all__ = [
    "MEASURE_LABELS",
    "THEORY_OF",
    "canonical_dgp",
    "design_factors",
    "plot_contamination",
    "plot_estimates",
    "plot_nested_loop",
    "plot_study",
    "plot_zip",
    "wrap_label",
]

Z975 = 1.959963984540054

#: measure -> (axis label, figure title, reference value or None)
MEASURE_LABELS: dict[str, tuple[str, str, float | None]] = {
    "bias": ("bias", "bias", 0.0),
    "emp_se": ("empirical SE", "empirical SE (SD of the estimates)", None),
    "emp_se_root_n": ("√n × empirical SE", "√n × empirical SE", None),
    "rel_eff": (
        "rel. efficiency vs log",
        "relative efficiency against log (EmpSE² ratio, paired; ignores bias)",
        1.0,
    ),
    "rel_mse": (
        "relative MSE vs log",
        "relative MSE against log (MSE ratio, paired; includes bias)",
        1.0,
    ),
    "coverage": ("95% coverage", "coverage of the 95% Wald interval", 0.95),
    "model_se_rel_error": (
        "ModSE / EmpSE − 1",
        "relative error of the model SE (ModSE/EmpSE − 1; below 0: SEs too small)",
        0.0,
    ),
}


#: measure -> (the summary's column of what asymptotic theory predicts for it, its label): the
#: limit of the measure as n grows (:func:`likelab.study.summarise` with ``theory``).
THEORY_OF: dict[str, tuple[str, str]] = {
    "emp_se_root_n": ("asymptotic_sd", "asymptotic SD √V_jj"),
    "rel_eff": ("are_vs_log", "ARE vs log, V_log,jj / V_jj"),
    "bias": ("asymptotic_bias", "asymptotic bias θ* − θ"),
}


# ---------------------------------------------------------------------- helpers
def _save(fig: Figure, path: str | Path | None) -> None:
    if path is not None:
        from likelab.report.figures import save_figure

        save_figure(fig, path)


def wrap_label(text: str, width: int = 40) -> str:
    """``text`` broken into lines of at most ``width`` characters where it can be, after a
    space or one of ``, + * | :``; nothing is dropped (joining the lines gives ``text`` back,
    the spaces at the breaks aside).

    >>> wrap_label("0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1", 30)
    '0.9 normal:loc=0,scale=1 +\\n0.1 normal:loc=8,scale=1'
    >>> wrap_label("student_t:loc=0,scale=1,df=3: scale", 20)
    'student_t:loc=0,\\nscale=1,df=3: scale'
    """
    if len(text) > width and " + " in text:  # a mixture: its components on lines of their own
        return "\n".join(wrap_label(part, width) for part in _split_after(text, " + "))
    pieces = re.findall(r"[^,+*|: ]*[,+*|: ]?", text)
    lines, line = [], ""
    for piece in pieces:
        if not piece:
            continue
        if line and len(line) + len(piece.rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += piece
    if line:
        lines.append(line.rstrip())
    return "\n".join(lines)


def _split_after(text: str, sep: str) -> list[str]:
    parts = text.split(sep)
    return [p + sep.rstrip() for p in parts[:-1]] + [parts[-1]]


def _chars(inches: float, fontsize: float = 8) -> int:
    """About how many characters of ``fontsize`` fit on ``inches``."""
    return max(12, int(inches * 72 / (0.6 * fontsize)))


def _value(row: dict, key: str) -> float:
    """``row[key]`` as a float; NaN where it is missing, for a measure whose Monte Carlo SE is
    missing (a bias from one converged replicate: nothing is drawn without its own
    uncertainty), and where fewer than 2 replicates converged."""
    if row.get(key) is None or (f"{key}_mcse" in row and row[f"{key}_mcse"] is None):
        return math.nan
    if "replicates" in row and "failure_rate" in row:
        converged = round(row["replicates"] * (1.0 - row["failure_rate"]))
        if converged < 2:  # a coverage "from" one interval, a ratio of one pair: not drawn
            return math.nan
    return float(row[key])


def _values(rows: Sequence[dict], key: str) -> np.ndarray:
    if key.endswith("_mcse"):
        return np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)
    return np.array([_value(r, key) for r in rows], dtype=float)


def _drawable(rows: Sequence[dict], measures: Sequence[str]) -> tuple[list[str], list[str]]:
    """The objectives with a finite value of some measure (with its MCSE), and those with
    none."""
    objectives = list(dict.fromkeys(r["objective"] for r in rows))
    drawn = [
        o
        for o in objectives
        if any(r["objective"] == o and math.isfinite(_value(r, m)) for r in rows for m in measures)
    ]
    return drawn, [o for o in objectives if o not in drawn]


def _colors(rows: Sequence[dict]) -> dict[str, str]:
    """A fixed colour per objective (its order in the rows), the same in every figure."""
    return {o: f"C{i % 10}" for i, o in enumerate(dict.fromkeys(r["objective"] for r in rows))}


def _missing_note(
    missing: Sequence[str], failures: Mapping[str, str] | None, what: str
) -> list[str]:
    failures = failures or {}
    return [f"{o}: not drawn, {failures.get(o) or f'no {what}'}" for o in missing]


def _finish(
    fig: Figure,
    title: str,
    handles: list,
    notes: Sequence[str],
    path: str | Path | None,
    *,
    width: float,
) -> Figure:
    """Title, one legend for the whole figure and the notes beneath the panels, then save."""
    fig.suptitle(wrap_label(title, _chars(width, 11)), fontsize=11)
    if handles:
        fig.legend(
            handles=handles,
            loc="outside right center",
            fontsize=8,
            frameon=False,
        )
    if notes:
        # beneath the panels, where constrained layout keeps room for it
        text = "\n".join(
            textwrap.fill(n, _chars(width, 9), subsequent_indent="    ") for n in notes
        )
        fig.supxlabel(text, fontsize=9, x=0.01, ha="left", color="0.2", multialignment="left")
    _save(fig, path)
    return fig


_RATIOS = ("rel_eff", "rel_mse")


def _ratio_scale(ax, measure: str, values: np.ndarray, axis: str = "y") -> None:
    """A ratio against log whose ``values`` span more than a factor of 8 on a log axis (where
    twice and half as good are as far from 1)."""
    vals = values[np.isfinite(values)]
    if measure in _RATIOS and vals.size and vals.min() > 0 and vals.max() / vals.min() > 8:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
        # ticks at 1, 2 and 5 times the powers of ten, written as plain numbers (0.5, 1, 2, 20),
        # none on the minor ticks: matplotlib's 2×10⁰, 3×10⁰, ... collide on a short axis
        which = ax.yaxis if axis == "y" else ax.xaxis
        which.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        which.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        which.set_minor_formatter(NullFormatter())


def _handles(objectives: Sequence[str], colors: Mapping[str, str], marker: str = "o") -> list:
    return [
        Line2D([], [], color=colors[o], marker=marker, ms=4, lw=1.2, label=o) for o in objectives
    ]


# ---------------------------------------------------------------------- against n
def plot_study(
    rows: list[dict],
    measure: str,
    path: str | Path | None = None,
    *,
    failures: Mapping[str, str] | None = None,
    max_panels: int = 12,
    theory: bool = False,
) -> Figure:
    """A study's performance ``measure`` against n, one panel per (DGP point, parameter), one
    line per objective with ±1.96 Monte Carlo SE bars: one of :data:`MEASURE_LABELS`
    (``rel_eff``, the EmpSE² ratio against log, ignores bias; ``rel_mse``, the MSE ratio
    against log, includes bias; ``bias``; ``emp_se``; ``emp_se_root_n``, √n × the empirical
    SE; ``coverage``; ``model_se_rel_error``).

    With ``theory`` (a measure of :data:`THEORY_OF`), each objective's asymptotic value, its
    limit as n grows (the asymptotic SD for ``emp_se_root_n``, the ARE for ``rel_eff``, the
    asymptotic bias for ``bias``), is drawn as a dotted horizontal line in the objective's
    colour; where a panel has none, the note beneath says why (the rows' ``theory_note``).

    ``rows`` are :func:`likelab.study.summarise` rows; at most ``max_panels`` panels are drawn
    (the first DGP points in the rows' order; the title says how many there are).
    """
    if measure not in MEASURE_LABELS:
        raise UnsupportedError(
            f"measure must be one of {', '.join(MEASURE_LABELS)}, got {measure!r}"
        )
    if theory and measure not in THEORY_OF:
        raise UnsupportedError(f"theory is drawn for {', '.join(THEORY_OF)}, not for {measure!r}")
    label, title, ref = MEASURE_LABELS[measure]
    column = THEORY_OF[measure][0] if theory else None
    lacking: dict[str, dict[str, int]] = {}  # objective -> why it has no line -> panels
    lines = 0
    every = list(dict.fromkeys((r["dgp"], r["parameter"]) for r in rows))
    panels = every[:max_panels]
    drawn, missing = _drawable(rows, [measure])
    colors = _colors(rows)
    cols = min(3, max(1, len(panels)))
    nrows = max(1, -(-len(panels) // cols))
    width = 4.4 * cols
    fig = Figure(figsize=(width, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax, (dgp, param) in zip(axes.ravel(), panels, strict=False):
        for obj in drawn:
            sel = sorted(
                (
                    r
                    for r in rows
                    if (r["dgp"], r["parameter"], r["objective"]) == (dgp, param, obj)
                ),
                key=lambda r: r["n"],
            )
            y = _values(sel, measure)
            if not np.isfinite(y).any():
                continue
            n = np.array([r["n"] for r in sel], dtype=float)
            se = _values(sel, f"{measure}_mcse")
            ax.errorbar(
                n, y, yerr=Z975 * se, marker="o", ms=3, lw=1.2, capsize=2, color=colors[obj],
                label=obj,
            )  # fmt: skip
            if column is not None:
                limit = next((r[column] for r in sel if r.get(column) is not None), None)
                if limit is not None:
                    ax.axhline(limit, color=colors[obj], lw=1.6, ls=":")
                    lines += 1
                else:
                    why = next((r["theory_note"] for r in sel if r.get("theory_note")), None)
                    why = why or "no value"
                    lacking.setdefault(obj, {}).setdefault(why, 0)
                    lacking[obj][why] += 1
        if ref is not None:
            ax.axhline(ref, color="grey", lw=0.8, ls="--")
        here = [r for r in rows if (r["dgp"], r["parameter"]) == (dgp, param)]
        limits = _values(here, column) if column is not None else np.array([])
        _ratio_scale(ax, measure, np.concatenate([_values(here, measure), limits]))
        ax.set_xscale("log")
        sizes = sorted({r["n"] for r in rows if (r["dgp"], r["parameter"]) == (dgp, param)})
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(wrap_label(f"{dgp}: {param}", _chars(4.2)), fontsize=8)
        ax.set_xlabel("n", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    more = f" (the first {len(panels)} of {len(every)} panels)" if len(every) > len(panels) else ""
    handles = _handles(drawn, colors)
    notes = _missing_note(missing, failures, label)
    if column is not None:
        theory_label = THEORY_OF[measure][1]
        title += f" beside the {theory_label} (dotted)"
        if lines:
            handles.append(Line2D([], [], color="0.3", lw=1.6, ls=":", label="theory (n → ∞)"))
        for obj, whys in lacking.items():
            for why, k in whys.items():
                where = "" if k == len(panels) and len(whys) == 1 else f" in {k} panel(s)"
                notes.append(f"{obj}: no dotted line{where}: {why}")
    return _finish(
        fig,
        f"{title} against n; bars: ±1.96 Monte Carlo SE{more}",
        handles,
        notes,
        path,
        width=width,
    )


def plot_contamination(
    rows: list[dict],
    levels: dict[str, tuple[str, float]],
    n: int,
    path: str | Path | None = None,
    *,
    failures: Mapping[str, str] | None = None,
) -> Figure:
    """Relative efficiency (EmpSE² ratio, ignores bias), bias and relative MSE (MSE ratio,
    includes bias) against the contamination fraction at sample size ``n``.

    ``levels`` maps a DGP point's spec to (its uncontaminated base's spec, its eps); one row of
    three panels per (base, parameter), one line per objective.
    """
    keys = ("rel_eff", "bias", "rel_mse")
    bases = list(dict.fromkeys(b for b, _ in levels.values()))
    params = list(dict.fromkeys(r["parameter"] for r in rows))
    here = [r for r in rows if r["n"] == n and r["dgp"] in levels]
    drawn, missing = _drawable(here, keys)
    colors = _colors(rows)
    panels = [(b, p) for b in bases for p in params][:6]
    width = 13.0
    fig = Figure(figsize=(width, 3.2 * max(1, len(panels))), layout="constrained")
    axes = fig.subplots(max(1, len(panels)), 3, squeeze=False)
    for (base, param), row_axes in zip(panels, axes, strict=False):
        for obj in drawn:
            sel = sorted(
                (
                    r
                    for r in here
                    if r["parameter"] == param
                    and r["objective"] == obj
                    and levels[r["dgp"]][0] == base
                ),
                key=lambda r: levels[r["dgp"]][1],
            )
            eps = np.array([levels[r["dgp"]][1] for r in sel], dtype=float)
            for ax, key in zip(row_axes, keys, strict=True):
                ax.plot(eps, _values(sel, key), marker="o", ms=3, lw=1.2, color=colors[obj],
                        label=obj)  # fmt: skip
        for ax, key in zip(row_axes, keys, strict=True):
            ylabel = {
                "rel_eff": "rel. efficiency vs log (ignores bias)",
                "bias": "bias",
                "rel_mse": "relative MSE vs log (includes bias)",
            }[key]
            ax.set_title(wrap_label(f"{base}: {param}, n = {n}", _chars(4.0)), fontsize=8)
            ax.set_xlabel("contamination fraction eps", fontsize=8)
            ax.set_ylabel(ylabel, fontsize=8)
            ax.axhline(MEASURE_LABELS[key][2], color="grey", lw=0.8, ls="--")
            _ratio_scale(ax, key, _values([r for r in here if r["parameter"] == param], key))
            ax.tick_params(labelsize=7)
    return _finish(
        fig,
        "what contamination does to each objective's estimates",
        _handles(drawn, colors),
        _missing_note(missing, failures, "value"),
        path,
        width=width,
    )


# ---------------------------------------------------------------------- nested loop
def design_factors(points: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """The factors of a study's design per DGP point (keyed by :func:`canonical_dgp` of its
    spec): its family, each parameter of its (uncontaminated) DGP and the contamination
    fraction ``eps``, keeping only those that vary across ``points``
    (:class:`~likelab.study.design.DGPPoint`). A parameter that some points' family lacks
    (a Student t's ``df`` beside normals) is ``None`` there, drawn as a level of its own."""
    raw: dict[str, dict[str, Any]] = {}
    for p in points:
        family, _, rest = p.base.partition(":")
        levels: dict[str, Any] = {"family": family}
        for item in filter(None, rest.split(",")):
            k, _, v = item.partition("=")
            try:
                levels[k] = float(v)
            except ValueError:
                levels[k] = v
        levels["eps"] = p.eps
        raw[canonical_dgp(p.spec)] = levels
    # the family outermost, then the DGP's parameters as first written, the contamination last
    params = dict.fromkeys(k for lv in raw.values() for k in lv if k not in ("family", "eps"))
    names = ["family", *params, "eps"]
    varying = [k for k in names if len({repr(lv.get(k)) for lv in raw.values()}) > 1]
    return {spec: {k: lv.get(k) for k in varying} for spec, lv in raw.items()}


def _level_text(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:g}" if isinstance(v, float) else str(v)


def plot_nested_loop(
    rows: list[dict],
    factors: Mapping[str, Mapping[str, Any]],
    measures: Sequence[str] = ("bias", "emp_se", "coverage"),
    path: str | Path | None = None,
    *,
    failures: Mapping[str, str] | None = None,
) -> Figure:
    """A nested-loop plot (Rücker & Schwarzer 2014): each of ``measures`` over every cell of
    the design, one step line per objective, one column of panels per parameter.

    The cells are (DGP point, n); ``factors`` maps each DGP point's spec to its factor levels
    (:func:`design_factors`), and n is the innermost factor. The cells are sorted by the
    factors in that order (the first varies slowest), and each factor's level is drawn beneath
    as a step line of its own, so that a jump of a measure can be read against the factor that
    changed there.
    """
    for m in measures:
        if m not in MEASURE_LABELS:
            raise UnsupportedError(f"measure must be one of {', '.join(MEASURE_LABELS)}, got {m!r}")
    names = list(dict.fromkeys(k for lv in factors.values() for k in lv))
    if len({r["n"] for r in rows}) > 1 or not names:
        names.append("n")

    def level(dgp: str, n: int, name: str) -> Any:
        return n if name == "n" else factors.get(canonical_dgp(dgp), {}).get(name)

    # each factor's levels in order: numbers ascending (None, "not a parameter here", first),
    # words as they first appear
    order: dict[str, list[Any]] = {}
    for name in names:
        seen = list(dict.fromkeys(level(r["dgp"], r["n"], name) for r in rows))
        numbers = [v for v in seen if isinstance(v, int | float)]
        if len(numbers) == len([v for v in seen if v is not None]):
            order[name] = [None] * (None in seen) + sorted(numbers)
        else:
            order[name] = seen
    scenarios = sorted(
        dict.fromkeys((r["dgp"], r["n"]) for r in rows),
        key=lambda s: tuple(order[k].index(level(*s, k)) for k in names),
    )
    position = {s: i for i, s in enumerate(scenarios)}
    params = list(dict.fromkeys(r["parameter"] for r in rows))
    drawn, missing = _drawable(rows, measures)
    colors = _colors(rows)
    steps = np.arange(len(scenarios) + 1)
    width = min(18.0, max(9.0, (1.5 + 0.14 * len(scenarios)) * max(1, len(params))))
    heights = [2.1] * len(measures) + [0.5 * len(names) + 0.3]
    fig = Figure(figsize=(width, sum(heights) + 1.0), layout="constrained")
    axes = fig.subplots(
        len(measures) + 1, len(params), squeeze=False, sharex=True,
        gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    for c, param in enumerate(params):
        for r_i, m in enumerate(measures):
            ax = axes[r_i, c]
            for obj in drawn:
                y = np.full(len(scenarios), np.nan)
                for r in rows:
                    if r["objective"] == obj and r["parameter"] == param:
                        y[position[(r["dgp"], r["n"])]] = _value(r, m)
                if np.isfinite(y).any():
                    ax.stairs(y, steps, color=colors[obj], lw=1.3, label=obj, baseline=None)
            ref = MEASURE_LABELS[m][2]
            if ref is not None:
                ax.axhline(ref, color="grey", lw=0.8, ls="--")
            _ratio_scale(ax, m, _values([r for r in rows if r["parameter"] == param], m))
            ax.set_ylabel(MEASURE_LABELS[m][0], fontsize=8)
            ax.tick_params(labelsize=7)
            if r_i == 0:
                ax.set_title(f"parameter {param}", fontsize=9)
        # the factors beneath: one step line each, in its own band, labelled with its levels
        ax = axes[-1, c]
        for j, name in enumerate(names):
            levels = order[name]
            idx = np.array([levels.index(level(*s, name)) for s in scenarios], dtype=float)
            band = len(names) - 1 - j  # the outermost factor on top
            y = band + 0.5 * (idx / max(1, len(levels) - 1))
            ax.stairs(y, steps, color="0.2", lw=1.1, baseline=None, label=f"factor {name}")
            ax.text(
                0.005, band + 0.58, f"{name}: {', '.join(_level_text(v) for v in levels)}",
                transform=ax.get_yaxis_transform(), ha="left", va="bottom", fontsize=7,
            )  # fmt: skip
        ax.set_ylim(-0.1, len(names))
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        ax.set_xlim(0, len(scenarios))
        ax.set_xticks(np.arange(len(scenarios)) + 0.5, [str(i + 1) for i in range(len(scenarios))])
        ax.tick_params(labelsize=6)
        ax.set_xlabel(f"cell (of {len(scenarios)}), ordered by {' > '.join(names)}", fontsize=8)
    return _finish(
        fig,
        "nested-loop plot: each measure over every cell of the design",
        _handles(drawn, colors, marker=""),
        _missing_note(missing, failures, "value"),
        path,
        width=width,
    )


# ---------------------------------------------------------------------- forest
def plot_estimates(
    rows: list[dict],
    parameter: str,
    measures: Sequence[str] = ("bias", "emp_se", "rel_mse", "coverage", "model_se_rel_error"),
    path: str | Path | None = None,
    *,
    failures: Mapping[str, str] | None = None,
    max_cells: int = 24,
) -> Figure:
    """Each measure of ``parameter`` with its Monte Carlo interval, estimate ± 1.96 MCSE, one
    row per (cell, objective), grouped by cell (forest style; Morris et al. 2019, sec. 6). The
    dashed line is the measure's target (bias 0, relative MSE 1, coverage 0.95, relative error
    of the model SE 0); an interval that misses it is a difference the simulation can see.
    At most ``max_cells`` cells are drawn (the first in the rows' order; the title says how
    many there are)."""
    for m in measures:
        if m not in MEASURE_LABELS:
            raise UnsupportedError(f"measure must be one of {', '.join(MEASURE_LABELS)}, got {m!r}")
    sel = [r for r in rows if r["parameter"] == parameter]
    if not sel:
        raise UnsupportedError(f"no rows for the parameter {parameter!r}")
    every = list(dict.fromkeys((r["dgp"], r["n"]) for r in sel))
    cells = every[:max_cells]
    sel = [r for r in sel if (r["dgp"], r["n"]) in set(cells)]
    drawn, missing = _drawable(sel, measures)
    colors = _colors(rows)
    k = max(1, len(drawn))
    gap = 1.0
    # y position of (cell, objective): cells top to bottom, objectives within a cell
    ypos = {
        (cell, o): -(c * (k + gap) + j) for c, cell in enumerate(cells) for j, o in enumerate(drawn)
    }
    rows_tall = 0.14 * len(cells) * (k + gap)
    # a short forest folds its panels onto rows of three; a tall one keeps them side by side
    cols = min(3, len(measures)) if rows_tall < 5 else len(measures)
    if cols > 3:
        rows_tall = 0.1 * len(cells) * (k + gap)
    nrows = -(-len(measures) // cols)
    width = 2.2 + (2.7 if cols <= 3 else 2.0) * cols
    fig = Figure(figsize=(width, nrows * max(2.4, rows_tall + 0.6) + 0.6), layout="constrained")
    grid = fig.subplots(nrows, cols, squeeze=False, sharey=True)
    for ax in grid.ravel()[len(measures) :]:
        ax.set_visible(False)
    axes = grid.ravel()[: len(measures)]
    for ax, m in zip(axes, measures, strict=True):
        for o in drawn:
            mine = [r for r in sel if r["objective"] == o]
            y = np.array([ypos[((r["dgp"], r["n"]), o)] for r in mine], dtype=float)
            x = _values(mine, m)
            se = _values(mine, f"{m}_mcse")
            ok = np.isfinite(x)
            ax.errorbar(
                x[ok], y[ok], xerr=Z975 * np.where(np.isfinite(se[ok]), se[ok], 0.0),
                fmt="o", ms=3, lw=1.0, capsize=1.5, color=colors[o], label=o,
            )  # fmt: skip
        ref = MEASURE_LABELS[m][2]
        if ref is not None:
            ax.axvline(ref, color="grey", lw=0.8, ls="--")
        _ratio_scale(ax, m, _values(sel, m), "x")
        for c in range(1, len(cells)):
            ax.axhline(-(c * (k + gap)) + (gap + 1) / 2, color="0.85", lw=0.6)
        ax.set_title(wrap_label(MEASURE_LABELS[m][0], 24), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", color="0.93", lw=0.6)
    centres = [-(c * (k + gap)) - (k - 1) / 2 for c in range(len(cells))]
    axes[0].set_yticks(centres, [f"{wrap_label(d, 30)}\nn = {n}" for d, n in cells], fontsize=7)
    axes[0].set_ylim(-(len(cells) * (k + gap)) + gap / 2, gap / 2 + 0.3)
    return _finish(
        fig,
        f"{parameter}: each measure with its Monte Carlo interval (± 1.96 MCSE), per cell and "
        "objective"
        + (f" (the first {len(cells)} of {len(every)} cells)" if len(every) > len(cells) else ""),
        _handles(drawn, colors),
        _missing_note(missing, failures, "value"),
        path,
        width=width,
    )


# ---------------------------------------------------------------------- zip
def zip_data(store: str | Path, dgp: str, n: int) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """The converged replicates with a finite SE at (``dgp``, ``n``) of a study store: per
    (objective, parameter) their estimates, SEs and the true value."""
    from likelab.study.store import Store

    with Store(store, read_only=True) as db:
        cols = db.con.execute(
            "SELECT objective, parameter, truth, estimate, se FROM results WHERE dgp = ? AND "
            "n = ? AND converged AND isfinite(estimate) AND se IS NOT NULL AND isfinite(se) "
            "ORDER BY objective, parameter, replicate",
            [dgp, n],
        ).fetchall()
    out: dict[tuple[str, str], dict[str, list]] = {}
    for obj, par, truth, est, se in cols:
        d = out.setdefault((obj, par), {"estimate": [], "se": [], "truth": truth})
        d["estimate"].append(est)
        d["se"].append(se)
    return {
        k: {"estimate": np.array(v["estimate"]), "se": np.array(v["se"]), "truth": v["truth"]}
        for k, v in out.items()
    }


def plot_zip(
    data: Mapping[tuple[str, str], Mapping[str, Any]],
    objectives: Sequence[str],
    path: str | Path | None = None,
    *,
    where: str = "",
    failures: Mapping[str, str] | None = None,
) -> Figure:
    r"""Zip plot of 95% Wald-interval coverage (Morris et al. 2019, fig. 4), one panel per
    (parameter, objective) with an SE.

    ``data`` maps (objective, parameter) to the converged replicates' ``estimate`` and ``se``
    arrays and the ``truth`` (:func:`zip_data`). Each replicate's interval
    :math:`\hat\theta_i \pm 1.96\,\widehat{SE}_i` is a horizontal line at the fractional
    centile of its :math:`|z_i|` (so the intervals that miss θ, the largest :math:`|z_i|`, are
    at the top), blue where it covers θ, red where not. The dashed line is the nominal 95%;
    the two yellow lines are the coverage's Monte Carlo interval, coverage ± 1.96 MCSE. Where
    the colours change, the coverage is read off the y axis. A (parameter, objective) with fewer
    than 2 such replicates has no panel; an objective with none is named beneath.
    """
    # an interval from fewer than 2 replicates is no coverage to read: no panel
    data = {k: v for k, v in data.items() if len(v["estimate"]) >= 2}
    params = list(dict.fromkeys(p for _, p in data))
    panels = [(p, o) for p in params for o in objectives if (o, p) in data]
    missing = [o for o in objectives if not any((o, p) in data for p in params)]
    cols = min(4, max(1, len({o for _, o in panels}) or 1))
    nrows = max(1, -(-len(panels) // cols))
    width = 3.4 * cols
    fig = Figure(figsize=(width, 3.3 * nrows), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax, (param, obj) in zip(axes.ravel(), panels, strict=False):
        d = data[(obj, param)]
        est, se, theta = np.asarray(d["estimate"]), np.asarray(d["se"]), float(d["truth"])
        k = len(est)
        z = np.abs(est - theta) / se
        rank = np.empty(k)
        rank[np.argsort(z, kind="stable")] = np.arange(1, k + 1)
        centile = 100.0 * rank / k
        lo, hi = est - Z975 * se, est + Z975 * se
        covers = (lo <= theta) & (theta <= hi)
        segs = np.stack([np.column_stack([lo, centile]), np.column_stack([hi, centile])], axis=1)
        lw = max(0.3, min(1.5, 250.0 / k))
        for mask, color, label in ((covers, "tab:blue", "covers"), (~covers, "tab:red", "misses")):
            if mask.any():
                ax.add_collection(LineCollection(segs[mask], colors=color, lw=lw, label=label))
        c = float(covers.mean())
        mcse = math.sqrt(c * (1 - c) / k)
        ax.axvline(theta, color="black", lw=0.9)
        ax.axhline(95.0, color="grey", lw=1.0, ls="--")
        for b in (c - Z975 * mcse, c + Z975 * mcse):
            ax.axhline(100 * min(1.0, max(0.0, b)), color="gold", lw=1.2)
        # the x range of the central intervals: a few very wide ones do not squash the rest
        left, right = np.quantile(lo, 0.02), np.quantile(hi, 0.98)
        left, right = min(left, theta), max(right, theta)
        pad = 0.05 * (right - left or 1.0)
        ax.set_xlim(left - pad, right + pad)
        ax.set_ylim(0, 100)
        low, high = 100 * max(0.0, c - Z975 * mcse), 100 * min(1.0, c + Z975 * mcse)
        ax.set_title(
            f"{wrap_label(f'{obj}, {param}: {k} replicates', _chars(2.6))}\n"
            f"coverage {100 * c:.1f}%, MC interval {low:.1f}–{high:.1f}%",
            fontsize=8,
        )
        ax.set_xlabel(f"95% interval for {param} (true value {theta:g})", fontsize=8)
        ax.set_ylabel("centile of |z|", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    handles = [
        Line2D([], [], color="tab:blue", lw=1.5, label="interval covers the truth"),
        Line2D([], [], color="tab:red", lw=1.5, label="interval misses it"),
        Line2D([], [], color="grey", ls="--", label="nominal 95%"),
        Line2D([], [], color="gold", lw=1.2, label="coverage ± 1.96 MCSE"),
    ]
    notes = _missing_note(missing, failures, "converged fit with an SE")
    head = "zip plot of 95% interval coverage" + (f": {where}" if where else "")
    return _finish(fig, head, handles if panels else [], notes, path, width=width)
