"""``likelab demo``: the whole story in one self-contained HTML page, computed in that run.

:func:`run_demo` runs, in order: the seed walkthrough (the product's underflow and the seed's
landscape, also written as ``summary.md``/``summary.json`` and PNGs), the properness verdicts of
every built-in objective on 3 classes and against N(0, 1), classifiers on XOR and on the
next-word corpus trained with ``log``, ``linear``, ``brier`` and ``gce``, and a small simulation
study of ``log``, ``linear``, ``dpd`` and ``quadratic`` under normal and contaminated normal data.
It writes ``out/index.html`` and returns a :class:`DemoReport`; it never prints (the CLI shows a
progress bar from ``on_step``).

``quick=True`` runs the same sections on a smaller budget (fewer epochs, seeds and replicates,
the properness survey on a subset of objectives) for tests and first looks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from likelab.errors import ParameterError

__all__ = ["DEMO_OBJECTIVES", "STEPS", "DemoReport", "demo_study_spec", "run_demo"]

#: The objectives the classifiers and the study compare.
DEMO_OBJECTIVES = ("log", "linear", "brier", "gce")
STUDY_OBJECTIVES = ("log", "linear", "dpd:beta=0.5", "quadratic")
#: The properness survey of ``--quick``: the seed's two objectives and one of each kind.
QUICK_PROPERNESS = ("log", "linear", "quadratic", "spherical", "dpd:beta=0.5", "gce")

#: The classifiers: (section id, dataset, model, batch size, epochs (quick, full), title).
#: ``None`` is the trainer's default: the whole training set as one batch on these small
#: datasets, trained until the gradient of the training risk is below tolerance (a stationary
#: point) or the epoch cap; ``--quick`` caps next-word at 300 full-batch steps.
CLASSIFIERS = (
    ("xor", "xor:flip=0.1", "mlp:16,16", None, (None, None), "XOR with 10% of its labels flipped"),
    (
        "next-word",
        "next-word",
        "next-word:16",
        None,
        (300, None),
        "Next-word prediction on a tiny corpus",
    ),
)

#: The steps ``on_step`` reports, in order.
STEPS = (
    "underflow and the seed's landscape",
    "properness verdicts",
    "XOR classifiers",
    "next-word classifiers",
    "simulation study",
    "writing the page",
)


@dataclass
class DemoReport:
    """What the demo computed and wrote."""

    out: Path
    page: Path
    store: Path
    quick: bool
    seconds: float
    sections: list[str]
    files: list[str] = field(default_factory=list)
    walkthrough: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "page": str(self.page),
            "store": str(self.store),
            "quick": self.quick,
            "seconds": self.seconds,
            "sections": list(self.sections),
            "files": list(self.files),
            "walkthrough": None if self.walkthrough is None else self.walkthrough.to_dict(),
        }


def demo_study_spec(*, quick: bool = False, seed: int = 0) -> Any:
    """The demo's study: N(0, 1) data, clean and with a share ``eps`` of N(8, 1) outliers; the
    normal model's (loc, scale) fitted with ``log``, ``linear``, ``dpd:beta=0.5``, ``quadratic``.
    """
    from likelab.study import StudySpec

    return StudySpec.model_validate(
        {
            "name": "demo-efficiency-robustness" + ("-quick" if quick else ""),
            "seed": seed,
            "dgps": [
                {
                    "family": "normal",
                    "params": {"loc": 0, "scale": 1},
                    "contamination": {
                        "eps": [0.0, 0.1] if quick else [0.0, 0.05, 0.1, 0.2],
                        "dgp": "normal:loc=8,scale=1",
                    },
                }
            ],
            "sample_sizes": [20, 100] if quick else [20, 100, 500],
            "replicates": 100 if quick else 400,
            "block": 100,
            "model": {"family": "normal"},
            "objectives": list(STUDY_OBJECTIVES),
        }
    )


def run_demo(
    out: str | Path = "report",
    *,
    quick: bool = False,
    seed: int = 0,
    on_step: Callable[[int, int, str], None] | None = None,
    figures: str = "png",
) -> DemoReport:
    """Run every section of the demo and write ``out/index.html`` (see the module docstring).

    ``on_step(done, total, label)`` is called as each step starts (``done`` steps finished).
    ``figures``: ``png`` or ``svg``, the format of the figures in the page and of those written
    beside it.
    """
    from likelab.report.html import check_figure_format, figure_format

    with figure_format(check_figure_format(figures)) as fmt:
        return _run_demo(out, quick=quick, seed=seed, on_step=on_step, figures=fmt)


def _run_demo(out, *, quick, seed, on_step, figures) -> DemoReport:
    from likelab._paths import check_output_dir
    from likelab.classify import compare
    from likelab.properness import survey
    from likelab.report.html import render, write_page
    from likelab.report.sections import (
        landscape_section,
        properness_section,
        study_section,
        training_section,
        underflow_section,
    )
    from likelab.report.walkthrough import write_walkthrough
    from likelab.study import run_study

    # a bad directory or seed fails here, in milliseconds, not after minutes of computing
    out = check_output_dir(out, what="demo output directory")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    start = time.perf_counter()
    out.mkdir(exist_ok=True)
    total = len(STEPS)

    def step(i: int) -> None:
        if on_step is not None:
            on_step(i, total, STEPS[i])

    step(0)
    walk = write_walkthrough(out, seed=seed, figures=figures)
    sections = [
        underflow_section(walk.underflow_report, walk.figures["underflow"]),
        landscape_section(walk.landscape_report, seed=seed, figure=walk.figures["landscape"]),
    ]

    step(1)
    chosen: Any = list(QUICK_PROPERNESS) if quick else "all"
    sections.append(properness_section(survey(chosen, seed=seed)))

    for k, (sid, dataset, model, batch, epochs, title) in enumerate(CLASSIFIERS):
        step(2 + k)
        comparison = compare(
            dataset,
            DEMO_OBJECTIVES,
            seeds=1 if quick else 3,
            model=model,
            epochs=epochs[0] if quick else epochs[1],
            batch_size=batch,
            lr=0.01,
        )
        sections.append(training_section(comparison, id=sid, title=title))

    step(4)
    store = out / "demo-study.duckdb"
    for stale in (store, store.with_name(store.name + ".wal")):
        stale.unlink(missing_ok=True)
    run_study(demo_study_spec(quick=quick, seed=seed), store, executor="local")
    sections.append(
        study_section(store, id="study", title="Efficiency and robustness: a simulation study")
    )

    step(5)
    seconds = time.perf_counter() - start
    budget = " (Quick run: small budgets.)" if quick else ""
    html = render(
        "page.html",
        title="likelab: why the product of likelihoods?",
        subtitle="Why do we maximise the product of per-sample likelihoods (minimise the NLL) "
        "rather than their sum, or anything else, and what exactly goes wrong if we don't?",
        intro="The answers below were each computed just now: the product itself cannot be "
        "computed, the sum's landscape misleads, several alternatives are not even proper, "
        "classifiers trained with those get the probabilities wrong, and a proper alternative "
        "pays in efficiency for what it may gain in robustness." + budget,
        sections=sections,
        seconds=seconds,
    )
    page = write_page(out, html)
    return DemoReport(
        out=out,
        page=page,
        store=store,
        quick=quick,
        seconds=time.perf_counter() - start,
        sections=[s.id for s in sections],
        files=[*walk.files, "index.html", store.name],
        walkthrough=walk,
    )
