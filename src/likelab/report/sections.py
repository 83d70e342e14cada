"""The sections of an HTML report, each built from a result the library computed.

Every function takes what a run produced (an underflow report, a landscape, a properness survey,
a training comparison, a study store) and returns a :class:`~likelab.report.html.Section`: the
figures as embedded PNGs, the tables as rows of text, and the numbers the section's template puts
into its prose. Nothing here is typed in: change the run and the page changes with it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from likelab.errors import SpecError
from likelab.report.html import Cell, Figure, Section, Table, fmt

__all__ = [
    "landscape_section",
    "properness_section",
    "study_section",
    "training_section",
    "underflow_section",
]


def _never(x: Any) -> str:
    return "never" if x is None else str(x)


# ---------------------------------------------------------------------- underflow
def underflow_section(flow: Any, figure: Any = None) -> Section:
    """The naive product of likelihoods against the sum of their logs, per dtype (``figure``:
    its :func:`~likelab.report.figures.plot_underflow`, where already drawn)."""
    from likelab.report.figures import plot_underflow

    d = flow.to_dict()
    table = Table(
        header=[
            "dtype",
            "subnormal from n",
            "exactly 0 from n",
            "gradient exactly 0 from n",
            "log-product there",
        ],
        caption="the running product l1·l2·…·ln of the per-sample likelihoods",
    )
    for dt, t in d["thresholds"].items():
        table.add(
            Cell(dt, "text"),
            _never(t["subnormal_at"]),
            _never(t["zero_at"]),
            _never(t["grad_zero_at"]),
            fmt(t["log_product_at_zero"], 5),
        )
    th = d["thresholds"]
    fig = Figure.from_matplotlib(
        figure if figure is not None else plot_underflow(flow),
        alt="the product of likelihoods and its gradient fall to zero; the log-product does not",
        caption="Top: the product of the likelihoods in each floating type and the exact "
        "product (from the sum of logs) against the number of samples n, on a log scale. "
        "Bottom: the size of the gradient with respect to the logits, of the product and of "
        "the log-product (the NLL). Zero has no place on a log scale: below each log axis, "
        "past the axis break (//), a strip marks the n at which the value is exactly 0.",
    )
    return Section(
        id="underflow",
        title="The naive product of likelihoods underflows",
        data={
            "kind": "underflow",
            "likelihoods": ", ".join(f"{v:g}" for v in d["likelihoods"]),
            "f32": th.get("float32", {}),
            "f64": th.get("float64", {}),
            "max_n": d["max_n"],
            "nll_grad_min": fmt(min(r["grad_norm_nll"] for r in d["rows"])),
            "nll_grad_max": fmt(max(r["grad_norm_nll"] for r in d["rows"])),
            "table": table,
            "figure": fig,
        },
    )


# ---------------------------------------------------------------------- landscape
def landscape_section(land: Any, *, seed: int, figure: Any = None) -> Section:
    """The seed's landscape: the sum of likelihoods, the product and the log-product
    (``figure``: its :func:`~likelab.report.figures.plot_landscape`, where already drawn)."""
    from likelab.report.figures import plot_landscape

    labels = {
        "linear": "sum of likelihoods (linear)",
        "product": "product (product)",
        "log": "log-product (log)",
    }
    table = Table(
        header=["objective", "local minima", "global argmin μ", "flat share of the grid"],
        caption=f"n = {land.n} draws from N(0, 1), seed {seed}; model {land.family}",
    )
    for key, label in labels.items():
        r = land.results[key]
        table.add(
            Cell(label, "text"),
            str(r.local_minima),
            f"{r.argmin.get('loc', float('nan')):.4f}",
            f"{100 * r.flat_fraction:.1f}%",
        )
    lin, prod, log = (land.results[k] for k in ("linear", "product", "log"))
    fig = Figure.from_matplotlib(
        figure if figure is not None else plot_landscape(land),
        alt="the three objectives over mu: the sum has several minima, the log-product one",
        caption="The three objectives over μ; local minima marked.",
    )
    return Section(
        id="landscape",
        title="The sum of likelihoods has a landscape full of false optima",
        data={
            "kind": "landscape",
            "n": land.n,
            "seed": seed,
            "points": len(land.axes["loc"]),
            "family": land.family,
            "linear_minima": lin.local_minima,
            "linear_argmin": f"{lin.argmin['loc']:.4f}",
            "mle": f"{float(np.mean(land.data)):.4f}",
            "log_argmin": f"{log.argmin['loc']:.4f}",
            "product_minima": prod.local_minima,
            "log_minima": log.local_minima,
            "same_argmin": prod.argmin.get("loc") == log.argmin.get("loc"),
            "product_flat": f"{100 * prod.flat_fraction:.1f}",
            "table": table,
            "figure": fig,
        },
    )


# ---------------------------------------------------------------------- properness
def properness_section(result: Any) -> Section:
    """Each objective's verdict on K classes and against a density, with the evidence."""
    from likelab.report.figures import plot_properness

    tables, counts = [], {}
    for setting in dict.fromkeys(r.setting for r in result.results):
        rows = [r.to_dict() for r in result.results if r.setting == setting]
        table = Table(
            header=["objective", "verdict", "literature claims", "evidence"], caption=setting
        )
        tally: Counter = Counter()
        for d in rows:
            if d["verdict"] is None and "not_applicable" in d:
                table.add(
                    Cell(result.label(d["objective"]), "text"),
                    "n/a",
                    "",
                    Cell(d["not_applicable"], "text"),
                )
                tally["not applicable"] += 1
                continue
            verdict = d["verdict"] or "no verdict"
            tally[verdict] += 1
            cls = "yes" if "proper" in verdict and "improper" not in verdict else "no"
            agrees = d.get("agrees_with_claim")
            claim = d.get("claimed") or "–"
            if agrees is not None:
                claim += " (agrees)" if agrees else " (disagrees)"
            table.add(
                Cell(result.label(d["objective"]), "text"),
                Cell(verdict, cls),
                claim,
                Cell(d["how"], "text"),
            )
        tables.append(table)
        counts[setting] = dict(tally)
    fig = Figure.from_matplotlib(
        plot_properness(result),
        alt="expected score minus its value at the truth, against the forecast, for each "
        "objective: proper ones touch 0 at the truth, improper ones go below 0",
        caption=_properness_caption(result),
    )
    verdicts = [
        r for r in result.results if getattr(r, "verdict", None) not in (None, "undetermined")
    ]
    disagree = [r.objective for r in verdicts if r.agrees_with_claim is False]
    return Section(
        id="properness",
        title="Which objectives are proper: checked, not claimed",
        data={
            "kind": "properness",
            "counts": counts,
            "improper": sorted({r.objective for r in verdicts if r.verdict == "improper"}),
            "strict": sorted({r.objective for r in verdicts if r.verdict == "strictly proper"}),
            "disagree": disagree,
            "judged": len(verdicts),
            "labels": {r.objective: result.label(r.objective) for r in result.results},
            "tables": tables,
            "figure": fig,
        },
    )


def _properness_caption(result: Any) -> str:
    """The caption of :func:`~likelab.report.figures.plot_properness`, naming only the rows
    it drew (objectives found proper; improper or undetermined)."""
    judged = [r for r in result.results if getattr(r, "verdict", None) is not None]
    proper = any(r.verdict in ("strictly proper", "proper") for r in judged)
    other = any(r.verdict not in ("strictly proper", "proper") for r in judged)
    parts = [
        "Each objective's expected score minus its value at the truth, along a line of "
        "forecasts through the truth (classes: the worst truth q tempered to q^(1/T), T = 1 the "
        "truth; density: the forecast's scale)."
    ]
    if proper:
        parts.append(
            "Top: objectives found proper, on a log scale, where each curve leaves the axis at "
            "the truth (the difference is 0 there); middle: the same from half to twice the "
            "truth."
        )
    if other:
        parts.append(
            ("Bottom" if proper else "Here")
            + ": the other objectives on a symmetric log scale; a curve below 0 is a forecast "
            "that beats the truth, and a dot (or a triangle at the edge) marks the optimum."
        )
    parts.append(
        "Objectives listed earlier are drawn wider, so that coinciding curves stay visible."
    )
    return " ".join(parts)


# ---------------------------------------------------------------------- training
_TRAIN_KEYS = ("accuracy", "nll", "brier", "ece", "prob_gap")


def training_section(comparison: Any, *, id: str, title: str, curves: bool = False) -> Section:
    """Networks trained with each objective on the same data: clean test metrics, predicted vs
    true probabilities (where the dataset knows them), reliability and, with ``curves``, the
    learning curves."""
    from likelab.report.figures import (
        plot_learning_curves,
        plot_probabilities,
        plot_reliability,
    )

    rows = comparison.rows()
    keys = [k for k in _TRAIN_KEYS if k in rows[0]]
    names = {"prob_gap": "mean |p̂ − p|", "nll": "NLL", "ece": "ECE"}
    table = Table(
        header=["objective", *(names.get(k, k) for k in keys), "training stopped"],
        caption=f"clean test set, mean ± sd over {len(comparison.seeds)} seed(s); training "
        "stopped: when and why, per seed (converged: the gradient norm of the training risk "
        "over the whole training set fell to the tolerance)",
    )
    for row in rows:
        table.add(
            Cell(comparison.label(row["objective"]), "text"),
            *(
                ("failed" if row["failed"] == row["seeds"] else "undetermined")
                if row[k] is None
                else f"{row[k]:.3f} ± {row[k + '_sd']:.3f}"
                for k in keys
            ),
            Cell(_stops_text(row), "text"),
        )
    figures = []
    known = all(r.p_test is not None for r in comparison.runs)
    if known:
        figures.append(
            Figure.from_matplotlib(
                plot_probabilities(comparison),
                alt=f"predicted against true class probabilities on {comparison.dataset}",
                caption="Each point is a (test example, class) pair: its true probability "
                "against the network's. A proper objective puts them on the diagonal.",
            )
        )
    figures.append(
        Figure.from_matplotlib(
            plot_reliability(comparison),
            alt=f"reliability diagrams on {comparison.dataset}",
            caption="Reliability: accuracy against confidence in 15 bins, every seed's test "
            "predictions pooled; the strip below each diagram counts the predictions in each bin "
            "(a bin with few has a noisy accuracy). The ECE in each title is the table's (the "
            "mean over seeds).",
        )
    )
    if curves:
        figures.append(
            Figure.from_matplotlib(
                plot_learning_curves(comparison),
                alt=f"learning curves on {comparison.dataset}",
                caption="Per epoch, the mean over seeds (line) and the range across seeds (band, "
                "min to max): training loss, gradient norm of the training risk, test accuracy "
                "and test NLL. The legend says when and why the runs stopped.",
            )
        )
    by = {r["objective"]: r for r in rows}
    gapped = [r for r in rows if r.get("prob_gap") is not None]
    best_gap = min(gapped, key=lambda r: r["prob_gap"]) if known and gapped else None
    return Section(
        id=id,
        title=title,
        data={
            "kind": "training",
            "dataset": comparison.dataset,
            "noise": comparison.noise,
            "model": comparison.model,
            "seeds": len(comparison.seeds),
            "epochs": max(r.epochs_run for r in comparison.runs),
            "known": known,
            "labels": {spec: comparison.label(spec) for spec in by},
            "best_gap": best_gap["objective"] if best_gap else None,
            "best_gap_value": f"{best_gap['prob_gap']:.3f}" if best_gap else None,
            "gaps": {k: f"{v['prob_gap']:.3f}" for k, v in by.items() if v in gapped},
            "linear_worse": known
            and by.get("linear") in gapped
            and by.get("log") in gapped
            and by["linear"]["prob_gap"] > by["log"]["prob_gap"],
            "accuracy": {
                k: "undetermined" if v["accuracy"] is None else f"{v['accuracy']:.3f}"
                for k, v in by.items()
            },
            "diverged": {k: v["divergence"] for k, v in by.items() if v["diverged"]},
            "failed": {
                k: sorted({f.partition(": ")[2] for f in v["failures"]})
                for k, v in by.items()
                if v["failed"]
            },
            "table": table,
            "figures": figures,
        },
    )


def _stops_text(row: dict) -> str:
    """When and why an objective's runs stopped: the summary, then each seed's reason."""
    reasons = [f"seed {st['seed']}: {st.get('reason', '')}" for st in row["stops"]]
    if row["failed"] == row["seeds"]:
        return row["stops"][0].get("reason", "") if row["stops"] else ""
    if len(reasons) == 1:
        return row["stops"][0].get("reason", "")
    return f"{row['stopped']}. " + "; ".join(reasons)


# ---------------------------------------------------------------------- study
_STUDY_HEADER = [
    "objective",
    "parameter",
    "bias (MCSE)",
    "empirical SE (MCSE)",
    "RMSE",
    "rel. efficiency vs log: EmpSE² ratio, ignores bias (MCSE)",
    "rel. MSE vs log: MSE ratio, includes bias (MCSE)",
    "model SE",
    "model SE rel. error: ModSE/EmpSE − 1 (MCSE)",
    "95% coverage (MCSE)",
    "failures",
    "replicates",
]

#: The theory's columns, beside the simulation's (``likelab.study.summarise(theory=...)``).
_THEORY_HEADER = [
    "√n × empirical SE (MCSE)",
    "asymptotic SD √V_jj (theory)",
    "ARE vs log: V_log,jj/V_jj (theory)",
]

#: What each stop of the optimiser (:mod:`likelab.estimate.newton`) means, in words.
_REASON_WORDS = {
    "max_iter": "stopped at the iteration limit without converging",
    "nonfinite": "met a non-finite value (NaN or ±∞) of the risk or its derivatives",
    "line_search": "found no step that lowers the risk (line search)",
    "flat": "stopped where the risk is flat to the last bit (zero gradient and curvature): "
    "no evidence of a minimum",
    "boundary": "ran to the edge of the parameter space: the lowest risk has no finite minimiser",
    "nonsmooth": "stopped at a non-smooth point that could not be verified as a minimum",
    "running": "never finished",
}
#: Stops that leave the parameters still moving downhill: a parameter running to 0 or ∞ there
#: is a risk with no minimum inside the parameter space.
_STILL_FALLING = ("max_iter", "boundary", "line_search", "nonfinite")


def _pm(x: Any, se: Any, digits: int = 3) -> str:
    return fmt(x, digits) if se is None else f"{fmt(x, digits)} ({fmt(se, 2)})"


def _reason_words(code: str) -> str:
    from likelab.estimate.newton import CONVERGED

    if code.startswith("error: "):
        return f"raised an error ({code[len('error: ') :]})"
    if code in CONVERGED:
        return "converged to a non-finite estimate"
    return _REASON_WORDS.get(code, f"stopped with reason {code!r}")


def _study_failures(con: Any, objectives: dict[str, int]) -> list[dict]:
    """Per objective with a failed fit: how many of its fits failed, the most frequent reasons
    with their counts (in words), and what the failed fits' estimates say about why, from the
    store: a parameter that ran to 0 or to ∞ while the optimiser was still going downhill is a
    risk with no minimum with that parameter free (``linear`` on a normal scale: the risk
    ``-mean f`` falls without bound as the scale shrinks onto a data point)."""
    fits = con.execute(
        "WITH f AS (SELECT objective, cell_key, replicate, bool_and(converged) AS ok, "
        "min(reason) AS reason FROM results GROUP BY objective, cell_key, replicate) "
        "SELECT objective, count(*), count(*) FILTER (WHERE NOT ok), "
        "list(reason) FILTER (WHERE NOT ok) FROM f GROUP BY objective"
    ).fetchall()
    # the failed fits' estimates relative to the truth, per (objective, parameter)
    spread = con.execute(
        "SELECT objective, parameter, count(*), "
        "count(*) FILTER (WHERE abs(estimate / truth) < 1e-4), "
        "count(*) FILTER (WHERE abs(estimate) > 1e4 * greatest(abs(truth), 1)), "
        "median(estimate / truth), median(value) "
        "FROM results WHERE NOT converged AND isfinite(estimate) AND truth <> 0 "
        "GROUP BY objective, parameter"
    ).fetchall()
    out = []
    for obj, total, failed, codes in sorted(fits, key=lambda f: objectives.get(f[0], 0)):
        if not failed:
            continue
        tally = Counter(_reason_words(c) for c in codes)
        top = tally.most_common(3)
        reasons = [{"words": w, "count": k} for w, k in top]
        rest = failed - sum(k for _, k in top)
        codes_still = sum(1 for c in codes if c in _STILL_FALLING)
        why = []
        for o, param, k, to_zero, to_inf, ratio, value in spread:
            if o != obj or codes_still < 0.9 * failed:
                continue
            if to_zero >= 0.9 * k:
                where, size = "runs to 0", f"{ratio:.2g} × its true value"
            elif to_inf >= 0.9 * k:
                where, size = "runs off to infinity", f"{ratio:.2g} × its true value"
            else:
                continue
            why.append(
                f"its risk has no minimum with the {param} free: the {param} {where} (median "
                f"estimate {size}) while the risk keeps falling (median risk {fmt(value)} "
                "where the fits stopped)"
            )
        head = (
            f"all {total:,} fits failed"
            if failed == total
            else (f"{failed:,} of {total:,} fits failed ({100 * failed / total:.1f}%)")
        )
        listed = "; ".join(f"{r['count']:,} {r['words']}" for r in reasons)
        if rest:
            listed += f"; {rest:,} for {len(tally) - len(top)} other reason(s)"
        out.append(
            {
                "objective": obj,
                "fits": total,
                "failed": failed,
                "all": failed == total,
                "rate": f"{100 * failed / total:.1f}",
                "reasons": reasons,
                "other": rest,
                "why": "; ".join(why),
                "text": f"{head}: {listed}" + (f". {'; '.join(why).capitalize()}" if why else ""),
                "note": head + (f": {'; '.join(why)}" if why else f": {reasons[0]['words']}"),
            }
        )
    return out


def study_section(
    store: str | Path,
    *,
    id: str = "study",
    title: str | None = None,
    theory: bool | str = "auto",
) -> Section:
    """A study store's performance measures (Morris et al. 2019) with their Monte Carlo SEs:
    the measures with their Monte Carlo intervals, a nested-loop plot over the design's cells,
    measures against n (and against contamination where the study varies it), the zip plot
    of coverage, and, in words, which objectives failed and why. With ``theory``
    (:func:`likelab.study.summarise`'s: ``True``, ``False`` or ``"auto"``), what asymptotic
    theory predicts beside the simulation: the asymptotic SD beside √n × the empirical SE and
    the ARE beside the relative efficiency, in the tables and against n, with the reasons
    where the theory has no value."""
    from likelab.families.dgp import canonical_dgp
    from likelab.study import StudySpec, summarise
    from likelab.study.design import cells, dgp_points
    from likelab.study.store import Store
    from likelab.study.summary import NOT_COMPUTED

    with Store(store, read_only=True) as db:  # a file that is no study store: a StoreError
        info = db.study()
    try:
        spec = StudySpec.model_validate_json(info["spec_json"])
    except ValueError as exc:
        raise SpecError(
            f"the study spec in {Path(store).name} cannot be read by this likelab version: "
            f"{' '.join(str(exc).split())[:300]}"
        ) from None
    points = dgp_points(spec)
    # the store keeps each DGP as the study file spelled it; the points rebuilt from its
    # canonical JSON have their parameters in name order: match them by canonical_dgp
    order = {canonical_dgp(p.spec): i for i, p in enumerate(points)}
    objectives = {o: i for i, o in enumerate(spec.objectives)}
    rows = sorted(
        summarise(store, theory=theory),
        key=lambda r: (
            order.get(canonical_dgp(r["dgp"]), len(order)),
            r["n"],
            objectives.get(r["objective"], 0),
        ),
    )
    with Store(store, read_only=True) as db:
        con = db.con
        cells_done, seconds = con.execute("SELECT count(*), sum(seconds) FROM cells").fetchone()
        fits = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT cell_key, replicate, objective FROM results)"
        ).fetchone()[0]
        failures = _study_failures(con, objectives)
    notes = {f["objective"]: f["note"] for f in failures}
    skipped = [r["theory_note"] for r in rows if (r["theory_note"] or "").startswith(NOT_COMPUTED)]
    with_theory = len(skipped) < len(rows)  # computed for some (DGP point, objective) at least
    header = list(_STUDY_HEADER)
    if with_theory:
        header[4:4] = _THEORY_HEADER[:2]
        header.insert(header.index(_STUDY_HEADER[5]) + 1, _THEORY_HEADER[2])
    tables = []
    for dgp in dict.fromkeys(r["dgp"] for r in rows):
        for n in sorted({r["n"] for r in rows if r["dgp"] == dgp}):
            table = Table(header=header, caption=f"{dgp}, n = {n}")
            for r in rows:
                if r["dgp"] != dgp or r["n"] != n:
                    continue
                table.add(
                    Cell(r["objective"], "text"),
                    Cell(r["parameter"], "text"),
                    _pm(r["bias"], r["bias_mcse"]),
                    _pm(r["emp_se"], r["emp_se_mcse"]),
                    *(
                        [_pm(r["emp_se_root_n"], r["emp_se_root_n_mcse"]), fmt(r["asymptotic_sd"])]
                        if with_theory
                        else []
                    ),
                    fmt(None if r["mse"] is None else float(np.sqrt(r["mse"]))),
                    _pm(r["rel_eff"], r["rel_eff_mcse"]),
                    *([fmt(r["are_vs_log"])] if with_theory else []),
                    _pm(r["rel_mse"], r["rel_mse_mcse"]),
                    fmt(r["model_se"]),
                    _pm(r["model_se_rel_error"], r["model_se_rel_error_mcse"]),
                    _pm(r["coverage"], r["coverage_mcse"]),
                    f"{100 * r['failure_rate']:.1f}%",
                    str(r["replicates"]),
                )
            tables.append(table)
    point_of = {canonical_dgp(p.spec): p for p in points}
    levels = {
        d: (point_of[canonical_dgp(d)].base, point_of[canonical_dgp(d)].eps)
        for d in dict.fromkeys(r["dgp"] for r in rows)
        if canonical_dgp(d) in point_of
    }
    figures = _study_figures(rows, spec, points, levels, store, notes, with_theory) if rows else []
    headline = _study_headline(rows, levels)
    theory_notes = [
        {"dgp": dgp, "objective": obj, "note": note}
        for (dgp, obj, note) in dict.fromkeys(
            (r["dgp"], r["objective"], r["theory_note"]) for r in rows if r["theory_note"]
        )
    ]
    return Section(
        id=id,
        title=title or f"Simulation study: {info['name']}",
        data={
            "kind": "study",
            "name": info["name"],
            "version": info["likelab_version"],
            "spec_hash": info["spec_hash"][:12],
            "objectives": list(spec.objectives),
            "dgps": list(dict.fromkeys(p.spec for p in points)),
            "sample_sizes": list(spec.sample_sizes),
            "replicates": spec.replicates,
            "cells_done": int(cells_done),
            "cells_total": len(cells(spec)),
            "fits": int(fits),
            "seconds": f"{seconds or 0.0:.1f}",
            "failure_rate": f"{100 * _mean_failure(rows):.2f}",
            "failures": failures,
            "headline": headline,
            "theory": {
                "computed": with_theory,
                "skipped": skipped[0] if skipped and not with_theory and theory == "auto" else None,
                "notes": theory_notes if with_theory else [],
            },
            "tables": tables,
            "figures": figures,
        },
    )


def _study_figures(
    rows: list[dict],
    spec: Any,
    points: list[Any],
    levels: dict[str, tuple[str, float]],
    store: str | Path,
    notes: dict[str, str],
    theory: bool = False,
) -> list[Figure]:
    """The study's figures, in the order of the page (see :func:`study_section`); with
    ``theory``, √n × the empirical SE beside the asymptotic SD, and the relative efficiency
    beside the ARE."""
    from likelab.report.study_figures import (
        design_factors,
        plot_contamination,
        plot_estimates,
        plot_nested_loop,
        plot_study,
        plot_zip,
        zip_data,
    )

    figures = []
    for param in dict.fromkeys(r["parameter"] for r in rows):
        figures.append(
            Figure.from_matplotlib(
                plot_estimates(rows, param, failures=notes),
                alt=f"each performance measure of {param} with its Monte Carlo interval",
                caption=f"{param}: bias, empirical SE, relative MSE against log, coverage and "
                "the relative error of the model SE, each ± 1.96 Monte Carlo SE, per cell and "
                "objective. The dashed line is each measure's target; an interval that does "
                "not reach it is a departure larger than the simulation's own noise.",
            )
        )
    cells_count = len({(r["dgp"], r["n"]) for r in rows})
    if cells_count > 1:
        figures.append(
            Figure.from_matplotlib(
                plot_nested_loop(rows, design_factors(points), failures=notes),
                alt="nested-loop plot of bias, empirical SE and coverage over the design's cells",
                caption="Nested-loop plot (Rücker & Schwarzer 2014): bias, empirical SE and "
                "coverage over every cell of the design, the cells ordered by the factors "
                "drawn beneath (the first factor varies slowest); a step in a measure lines up "
                "with the factor that changed there.",
            )
        )
    if theory:
        figures.append(
            Figure.from_matplotlib(
                plot_study(rows, "emp_se_root_n", failures=notes, theory=True),
                alt="√n times the empirical SE against n, beside the asymptotic SD",
                caption="√n × the empirical SE of each objective's estimates against n (bars: "
                "±1.96 Monte Carlo SE), beside the asymptotic SD √V_jj that M-estimator theory "
                "predicts at this DGP point (dotted, likelab.asymptotics: V = A⁻¹BA⁻¹ at θ*, by "
                "quadrature): as n grows the points should settle on the line; a gap beyond "
                "the bars at the largest n is a finite-sample effect or a theory that does not "
                "hold there.",
            )
        )
    for measure, alt, caption in (
        (
            "rel_eff",
            "relative efficiency against log, against n"
            + (", beside the asymptotic relative efficiency" if theory else ""),
            "Relative efficiency against log on the same datasets (EmpSE_log² / EmpSE²): "
            "below 1, the objective's estimates vary more than the MLE's. It ignores bias: "
            "spread about each estimator's own mean."
            + (
                " Dotted: the asymptotic relative efficiency V_log,jj / V_jj, its limit as n grows."
                if theory
                else ""
            ),
        ),
        (
            "rel_mse",
            "relative MSE against log, against n",
            "Relative MSE against log on the same datasets (MSE_log / MSE): above 1, the "
            "objective's estimates are closer to the truth than the MLE's. It includes bias "
            "(MSE = bias² + variance).",
        ),
        ("bias", "bias against n", "Bias of each objective's estimates against n."),
        (
            "model_se_rel_error",
            "relative error of the model SE against n",
            "Relative error of the model (sandwich) SE, ModSE / EmpSE − 1 (Morris et al. "
            "2019, Table 6): below 0, the SEs are too small on average and the intervals too "
            "narrow; above 0, too wide.",
        ),
    ):
        figures.append(
            Figure.from_matplotlib(
                plot_study(rows, measure, failures=notes, theory=theory and measure == "rel_eff"),
                alt=alt,
                caption=caption,
            )
        )
    varied = [b for b, c in Counter(b for b, _ in levels.values()).items() if c > 1]
    contaminated = {k: v for k, v in levels.items() if v[0] in varied}
    if contaminated:
        n_max = max(spec.sample_sizes)
        figures.append(
            Figure.from_matplotlib(
                plot_contamination(rows, contaminated, n_max, failures=notes),
                alt="relative efficiency, relative MSE and bias against the contamination fraction",
                caption=f"At n = {n_max}: relative efficiency against log (EmpSE² ratio, "
                "ignores bias), relative MSE against log (MSE ratio, includes bias) and bias, "
                "against the share of contaminating observations.",
            )
        )
    point = rows[0]["dgp"]  # the design's first DGP point, as the store spells it
    n_max = max(r["n"] for r in rows if r["dgp"] == point)
    where = f"{point}, n = {n_max}"
    figures.append(
        Figure.from_matplotlib(
            plot_zip(
                zip_data(store, point, n_max), list(spec.objectives), where=where, failures=notes
            ),
            alt=f"zip plot of the 95% intervals' coverage at {where}",
            caption=f"Zip plot (Morris et al. 2019, fig. 4) at {where}: every replicate's 95% "
            "Wald interval, ranked by |z| = |estimate − truth| / SE, blue where it covers the "
            "truth (the vertical line), red where it misses. The coverage is where the colours "
            "change; the dashed line is the nominal 95%, the yellow lines the coverage ± 1.96 "
            "Monte Carlo SE.",
        )
    )
    return figures


def _mean_failure(rows: list[dict]) -> float:
    return float(np.mean([r["failure_rate"] for r in rows])) if rows else 0.0


def _study_headline(rows: list[dict], levels: dict[str, tuple[str, float]]) -> list[dict]:
    """Per (DGP point at the largest n, parameter): the objective with the smallest RMSE and
    the relative efficiency and relative MSE of each objective, as sentences' numbers."""
    out = []
    for dgp in dict.fromkeys(r["dgp"] for r in rows):
        sel = [r for r in rows if r["dgp"] == dgp]
        n = max(r["n"] for r in sel)
        for param in dict.fromkeys(r["parameter"] for r in sel):
            here = [r for r in sel if r["n"] == n and r["parameter"] == param and r["mse"]]
            if not here:
                continue
            best = min(here, key=lambda r: r["mse"])
            out.append(
                {
                    "dgp": dgp,
                    "eps": levels.get(dgp, (dgp, 0.0))[1],
                    "n": n,
                    "parameter": param,
                    "best": best["objective"],
                    "best_rmse": fmt(float(np.sqrt(best["mse"]))),
                    "rel_eff": {
                        r["objective"]: fmt(r["rel_eff"]) for r in here if r["objective"] != "log"
                    },
                    "rel_mse": {
                        r["objective"]: fmt(r["rel_mse"]) for r in here if r["objective"] != "log"
                    },
                    "log_bias": next(
                        (fmt(r["bias"]) for r in here if r["objective"] == "log"), None
                    ),
                }
            )
    return out
