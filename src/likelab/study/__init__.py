"""Simulation studies: generate → analyse → summarise, paired, reproducible, resumable.

A study file (:mod:`likelab.study.spec`) declares data-generating processes, sample sizes, the
fitted model and its estimand, the objectives and the replicates; :mod:`likelab.study.design`
expands it into cells with their own seeds; :mod:`likelab.study.runner` runs the cells on an
executor (in-process, a process pool or Dask) and writes each to a DuckDB store
(:mod:`likelab.study.store`, which refuses any file that is not a likelab store and never lets
DuckDB load an extension); :mod:`likelab.study.summary` computes the performance measures
with Monte Carlo standard errors from the store's rows, with exactly rounded sums.
"""

from __future__ import annotations

from likelab.study.design import Cell, DGPPoint, cell_seed, cells, dgp_points, generate
from likelab.study.runner import (
    EXECUTORS,
    RunReport,
    StudyInterrupted,
    default_store,
    run_cell,
    run_study,
)
from likelab.study.spec import StudySpec, load_study, parse_study
from likelab.study.store import Store
from likelab.study.summary import SUMMARY_COLUMNS, export, summarise

__all__ = [
    "EXECUTORS",
    "SUMMARY_COLUMNS",
    "Cell",
    "DGPPoint",
    "RunReport",
    "Store",
    "StudyInterrupted",
    "StudySpec",
    "cell_seed",
    "cells",
    "default_store",
    "dgp_points",
    "export",
    "generate",
    "load_study",
    "parse_study",
    "run_cell",
    "run_study",
    "summarise",
]
