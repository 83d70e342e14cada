"""The scorecard: objectives through every part of the battery, stored, resumable, distributable.

:func:`scorecard` judges each objective, next to the reference objectives (``against``, by
default ``log`` and ``linear``), on the parts of :data:`PARTS`: properness, landscape,
efficiency, robustness and classification (:mod:`likelab.scorecard.battery` holds every setting
and size). Each part cuts its work into *units* (one setting for one objective), each a pure
function of ``(objective, unit, seed)`` whose random streams are named by the part and the
setting, never by the objective or by a position. So every objective sees the same datasets, and
a unit gives the same row whoever runs it. The units run through the executors of
:func:`likelab.study.runner.run_tasks` (in-process, a process pool, Dask), like a study's cells.
Each finished unit is written to the :class:`~likelab.scorecard.store.ScorecardStore` in its own
transaction. A killed run resumes where it stopped and gives the rows an uninterrupted run would
have given.

Then each part's ``summarise`` makes the objective's summary row
(:func:`~likelab.scorecard.summary.summary_row`), and the objectives that no other beats on both
efficiency (the worst-case ARE against log) and robustness (the largest bias under 10%
contamination) form the Pareto front (:func:`~likelab.scorecard.summary.pareto_front`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from likelab.errors import ParameterError
from likelab.objectives import get_objective
from likelab.scorecard.store import ScorecardStore
from likelab.scorecard.summary import pareto_front, summary_row

__all__ = [
    "ATLAS_PATHS",
    "PARTS",
    "ROBUSTNESS_AXIS",
    "ScorecardInterrupted",
    "ScorecardResult",
    "atlas_objectives",
    "scorecard",
]

#: The parts of the battery, in the page's order (each a module of :mod:`likelab.scorecard`).
PARTS = ("properness", "landscape", "efficiency", "robustness", "classification")
#: The summary entry drawn as robustness on the Pareto figure (smaller is better).
ROBUSTNESS_AXIS = "max_bias_10"
#: Objectives every scorecard judges beside the user's, unless told otherwise.
AGAINST = ("log", "linear")


#: The atlas's parameter paths (``likelab scorecard --all``): each tuning parameter on a grid.
ATLAS_PATHS: dict[str, tuple[str, tuple[float, ...]]] = {
    "dpd": ("beta", (0.1, 0.25, 0.5, 0.75, 1.0)),
    "gamma": ("gamma", (0.1, 0.25, 0.5, 0.75, 1.0)),
    "lq": ("q", (0.5, 0.7, 0.9)),
    "gce": ("q", (0.3, 0.5, 0.7, 0.9)),
    "power": ("alpha", (1.5, 2.0, 3.0)),
    "pseudospherical": ("gamma", (1.5, 2.0, 3.0)),
}


def atlas_objectives() -> list[str]:
    """Every built-in scoring rule, those with a tuning parameter along its path
    (:data:`ATLAS_PATHS`), each objective once (by its canonical spec); the batch-level
    ``product`` is not a scoring rule and is left out."""
    from likelab.objectives import list_objectives

    out: list[str] = []
    seen: set[str] = set()
    for name in list_objectives(include_user=False):
        obj = get_objective(name)
        if obj.batch_level:
            continue
        specs = [name]
        if name in ATLAS_PATHS:
            key, grid = ATLAS_PATHS[name]
            specs = [f"{name}:{key}={value:g}" for value in grid]
        for spec in specs:
            canonical = get_objective(spec).spec
            if canonical not in seen:
                seen.add(canonical)
                out.append(spec)
    return out


def _module(part: str):
    return importlib.import_module(f"likelab.scorecard.{part}")


class ScorecardInterrupted(KeyboardInterrupt):
    """A scorecard stopped by an interrupt: what the store keeps and how many units it needs."""

    def __init__(self, store: str, units_done: int, units_total: int, units_run: int):
        super().__init__(store, units_done, units_total, units_run)
        self.store, self.units_done = store, units_done
        self.units_total, self.units_run = units_total, units_run

    def __str__(self) -> str:
        if not self.units_done:
            return f"0 of {self.units_total} units finished, nothing kept"
        return (
            f"{self.units_done} of {self.units_total} units kept in {self.store} "
            f"({self.units_run} by this run)"
        )


@dataclass(frozen=True)
class ScorecardResult:
    """Per objective (``objectives``, in the order judged, references last): its rows per part
    and its summary row; the Pareto front (objective specs, in increasing efficiency) and the
    objectives with no place on it (``left_out``: why); the run's size, seed and store."""

    objectives: list[dict[str, Any]]
    front: list[str]
    left_out: dict[str, str]
    quick: bool
    seed: int
    store: str
    units_total: int
    units_run: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The issue's JSON: ``{"objectives": [{"objective", PART: [...], "summary": {...}}],
        "pareto": {...}, ...}``."""
        return {
            "objectives": self.objectives,
            "pareto": {
                "efficiency": "min_are",
                "robustness": ROBUSTNESS_AXIS,
                "front": self.front,
                "left_out": self.left_out,
            },
            "quick": self.quick,
            "seed": self.seed,
            "store": self.store,
            "units_total": self.units_total,
            "units_run": self.units_run,
            "seconds": self.seconds,
        }


def scorecard(
    objectives: Sequence[str],
    *,
    store: str | Path,
    against: Sequence[str] = AGAINST,
    quick: bool = False,
    parts: Sequence[str] = PARTS,
    seed: int = 0,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    on_unit: Callable[[int, int], None] | None = None,
) -> ScorecardResult:
    """Judge ``objectives`` (specs, as spelled) and the references ``against`` on ``parts``;
    every finished unit is kept in ``store`` (a DuckDB file), so a second call resumes.

    ``on_unit(done, total)`` is called after each unit is written (the CLI's progress bar).
    Unknown objectives, parts or executors raise before any work; a unit that fails for its
    objective is a row with ``status`` "failed" and the reason.

    >>> import pathlib, tempfile
    >>> store = pathlib.Path(tempfile.mkdtemp()) / "card.duckdb"
    >>> card = scorecard(["phi:-2*l+3"], against=[], store=store, quick=True, parts=["properness"])
    >>> s = card.objectives[0]["summary"]
    >>> s["proper"], s["bernardo"], s["bernardo_agrees"]
    ('strictly proper', 'strictly proper', True)
    """
    from likelab.study.runner import _is_interrupt, check_executor, run_tasks

    names = _objective_list(objectives, against)
    parts = (parts,) if isinstance(parts, str) else tuple(parts)
    unknown = [p for p in parts if p not in PARTS]
    if not parts or unknown:
        raise ParameterError(
            f"parts must be some of {', '.join(PARTS)}; got {', '.join(unknown) or 'none'}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed must be an integer >= 0, got {seed!r}")
    scheduler = check_executor(executor, workers, scheduler)

    plan: list[tuple[str, str, dict[str, Any]]] = []
    for name in names:
        for part in parts:
            for unit in _module(part).units(name, quick=quick):
                plan.append((name, part, unit))
    keys = [(o, p, str(u["setting"])) for o, p, u in plan]
    if len(set(keys)) != len(keys):  # a part's contract: settings unique per objective
        raise RuntimeError("scorecard units with the same (objective, part, setting)")

    start = time.perf_counter()
    db = ScorecardStore(store, seed=seed, quick=quick)
    state = {"done": 0, "run": 0}
    try:
        done = db.done()
        todo = [(o, p, u) for o, p, u in plan if (o, p, str(u["setting"])) not in done]
        state["done"] = len(plan) - len(todo)

        def write(key: str, row: dict[str, Any], seconds: float) -> None:
            db.write(tuple(json.loads(key)), row, seconds)
            state["done"] += 1
            state["run"] += 1
            if on_unit is not None:
                on_unit(state["done"], len(plan))

        if todo:
            run_tasks(
                _run_units_task,
                {"seed": seed},
                todo,
                _unit_ref,
                write,
                executor=executor,
                workers=workers,
                scheduler=scheduler,
            )
        stored = db.rows()
        simulated = (
            _simulate(names, store, quick, seed, executor, workers, scheduler)
            if "efficiency" in parts
            else {}
        )
    except BaseException as exc:
        kept = state["done"]
        with contextlib.suppress(Exception):
            kept = len(db.done())
        db.close()
        if db.created and kept == 0:
            db.remove()  # nothing kept: no store left claimed (an existing file is never removed)
        if _is_interrupt(exc) and not isinstance(exc, ScorecardInterrupted):
            raise ScorecardInterrupted(str(store), kept, len(plan), state["run"]) from exc
        raise
    db.close()
    result = _result(names, parts, plan, stored, quick, seed, str(store), state["run"], start)
    for entry in result.objectives:
        rows = simulated.get(entry["objective"])
        if rows:
            entry["efficiency_simulation"] = rows
    return result


def _simulate(
    names: list[str],
    store: str | Path,
    quick: bool,
    seed: int,
    executor: str,
    workers: int | None,
    scheduler: str | None,
) -> dict[str, list[dict[str, Any]]]:
    """The paired simulation check of efficiency (:mod:`likelab.scorecard.simulation`): one
    study per family, through the study engine (its own store beside the scorecard's,
    resumable); per objective, one row per family."""
    from likelab.scorecard import simulation
    from likelab.study import run_study, summarise

    objectives = list(dict.fromkeys([*names, "log"]))
    out: dict[str, list[dict[str, Any]]] = {}
    for family, params in simulation.SIM_FAMILIES:
        spec = simulation.study_spec(family, params, objectives, quick=quick, seed=seed)
        path = simulation.store_path(store, family)
        run_study(spec, path, executor=executor, workers=workers, scheduler=scheduler)
        for obj, row in simulation.simulation_rows(summarise(path), family).items():
            out.setdefault(obj, []).append(row)
    return out


def _objective_list(objectives: Sequence[str], against: Sequence[str]) -> list[str]:
    """The objectives to judge, as spelled (whitespace trimmed), each checked by the registry,
    then the references not already among them."""
    if isinstance(objectives, str):
        objectives = [objectives]
    if isinstance(against, str):
        against = [against]
    names: list[str] = []
    for given in [*objectives, *against]:
        if not isinstance(given, str) or not given.strip():
            raise ParameterError(f"an objective must be a non-empty spec string, got {given!r}")
        spec = given.strip()
        get_objective(spec)  # an unknown or malformed objective fails here, before any work
        if spec not in names:
            names.append(spec)
    if not names:
        raise ParameterError("name at least one objective to judge")
    return names


def _unit_ref(item: tuple[str, str, dict[str, Any]]) -> tuple[str, str, str]:
    """What travels for a unit: plain strings (the unit as JSON)."""
    objective, part, unit = item
    return objective, part, json.dumps(unit, sort_keys=True)


def _run_units_task(
    shared: dict[str, Any], batch: list[tuple[str, str, str]]
) -> list[tuple[str, dict[str, Any], float]]:
    """A pool's unit of work: a batch of units, each run on one torch thread (so that a unit's
    numbers do not depend on where it runs)."""
    import torch

    from likelab.study.runner import stoppable

    out = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with stoppable():
            for objective, part, text in batch:
                unit = json.loads(text)
                t0 = time.perf_counter()
                row = _module(part).run(objective, unit, seed=int(shared["seed"]))
                key = json.dumps([objective, part, str(unit["setting"])])
                out.append((key, row, time.perf_counter() - t0))
    finally:
        torch.set_num_threads(threads)
    return out


def _result(
    names: list[str],
    parts: tuple[str, ...],
    plan: list[tuple[str, str, dict[str, Any]]],
    stored: dict[tuple[str, str, str], dict[str, Any]],
    quick: bool,
    seed: int,
    store: str,
    units_run: int,
    start: float,
) -> ScorecardResult:
    per: dict[str, dict[str, Any]] = {n: {"objective": n} for n in names}
    for objective, part, unit in plan:
        per[objective].setdefault(part, []).append(stored[(objective, part, str(unit["setting"]))])
    for name in names:
        entry = per[name]
        summaries = {part: _module(part).summarise(entry.get(part, [])) for part in parts}
        entry["summary"] = summary_row(name, summaries)
    points = [
        (per[n]["summary"].get("min_are"), per[n]["summary"].get(ROBUSTNESS_AXIS)) for n in names
    ]
    front, left_out = pareto_front(points)
    return ScorecardResult(
        objectives=[per[n] for n in names],
        front=[names[i] for i in front],
        left_out={names[i]: why for i, why in left_out.items()},
        quick=quick,
        seed=seed,
        store=store,
        units_total=len(plan),
        units_run=units_run,
        seconds=time.perf_counter() - start,
    )
