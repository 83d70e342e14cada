"""The study store: one embedded DuckDB file per study.

Tables:

- ``study``: the name, the spec (canonical JSON) and its hash, the likelab version, created at;
- ``cells``: one row per finished cell (key, DGP, n, block, replicates, rows, seconds, when);
- ``results``: one row per (replicate, objective, parameter): the estimate, its sandwich SE,
  the objective's value at the optimum, converged, the optimiser's reason, the fit time (the
  batched fit's time divided among its datasets) and the true value.

A cell's results and its ``cells`` row are written in one transaction, so a run killed at any
moment leaves whole cells or nothing of a cell: resuming runs exactly the cells without a row.
A store holding another study (another name or another spec) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import numpy as np

from likelab.errors import SpecError

__all__ = ["RESULT_COLUMNS", "CellRows", "Store"]

RESULT_COLUMNS: dict[str, str] = {
    "cell_key": "VARCHAR",
    "dgp": "VARCHAR",
    "n": "INTEGER",
    "replicate": "INTEGER",
    "objective": "VARCHAR",
    "parameter": "VARCHAR",
    "truth": "DOUBLE",
    "estimate": "DOUBLE",
    "se": "DOUBLE",
    "value": "DOUBLE",
    "converged": "BOOLEAN",
    "reason": "VARCHAR",
    "fit_seconds": "DOUBLE",
}

_MEMORY_LIMIT = "512MB"


@dataclass(frozen=True)
class CellRows:
    """A cell's result rows as numpy columns, with the strings coded: ``objective``,
    ``parameter`` and ``reason`` hold indices into ``objectives``, ``parameters`` and
    ``reasons`` (a cell has a handful of distinct strings and thousands of rows; the codes keep
    what travels from a worker and what the writer converts small)."""

    NUMERIC: ClassVar[tuple[str, ...]] = (
        "replicate",
        "objective",
        "parameter",
        "truth",
        "estimate",
        "se",
        "value",
        "converged",
        "reason",
        "fit_seconds",
    )
    columns: dict[str, np.ndarray]
    objectives: list[str]
    parameters: list[str]
    reasons: list[str]

    def __len__(self) -> int:
        return len(self.columns["replicate"])


_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS study (name VARCHAR, spec_hash VARCHAR, spec_json VARCHAR, "
    "likelab_version VARCHAR, created_at TIMESTAMP DEFAULT current_timestamp)",
    "CREATE TABLE IF NOT EXISTS cells (cell_key VARCHAR PRIMARY KEY, dgp VARCHAR, n INTEGER, "
    "block INTEGER, replicates INTEGER, rows BIGINT, seconds DOUBLE, "
    "finished_at TIMESTAMP DEFAULT current_timestamp)",
    "CREATE TABLE IF NOT EXISTS results ("
    + ", ".join(f"{k} {v}" for k, v in RESULT_COLUMNS.items())
    + ")",
]


class Store:
    """An open study store; use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | Path, spec: Any | None = None, *, read_only: bool = False):
        self.path = Path(path)
        if read_only and not self.path.is_file():
            raise SpecError(f"store {str(path)!r} does not exist")
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise SpecError(f"cannot open the store {str(path)!r}: {exc}") from None
        # the store is written a cell at a time and read by one summary query: a modest
        # buffer pool is plenty, and bounds the writer's memory however large the study
        self.con.execute(f"SET memory_limit = '{_MEMORY_LIMIT}'")
        if not read_only:
            # the writer inserts a few thousand rows at a time: DuckDB's parallelism buys
            # nothing there and its threads take CPU from the workers on a small machine (9.4 vs
            # 6.5 ms of CPU per 4,000-row insert, measured)
            self.con.execute("SET threads = 1")
            for sql in _SCHEMA:
                self.con.execute(sql)
        if spec is not None:
            self._claim(spec)

    def _claim(self, spec: Any) -> None:
        from likelab import __version__

        row = self.con.execute("SELECT name, spec_hash FROM study").fetchone()
        if row is None:
            self.con.execute(
                "INSERT INTO study (name, spec_hash, spec_json, likelab_version) "
                "VALUES (?, ?, ?, ?)",
                [spec.name, spec.hash, spec.canonical, __version__],
            )
            return
        name, digest = row
        if name != spec.name:
            raise SpecError(
                f"the store {self.path.name} holds the study {name!r}, not {spec.name!r}: "
                "choose another --store"
            )
        if digest != spec.hash:
            raise SpecError(
                f"the store {self.path.name} holds the study {name!r} with a different spec "
                f"(hash {digest[:12]} vs {spec.hash[:12]}): a changed study needs a new store "
                "(--store) or a new name"
            )

    # ------------------------------------------------------------------ cells
    def done(self) -> set[str]:
        """Keys of the finished cells."""
        return {k for (k,) in self.con.execute("SELECT cell_key FROM cells").fetchall()}

    def write_cell(self, cell: Any, rows: CellRows, seconds: float) -> None:
        """The cell's result rows and its ``cells`` row, in one transaction."""
        frame = rows.columns  # noqa: F841 (scanned by DuckDB by name)
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(
                "INSERT INTO results SELECT $key, $dgp, $n, replicate, "
                "$objectives[objective + 1], $parameters[parameter + 1], truth, estimate, se, "
                "value, converged, $reasons[reason + 1], fit_seconds FROM frame",
                {
                    "key": cell.key,
                    "dgp": cell.point.spec,
                    "n": cell.n,
                    "objectives": rows.objectives,
                    "parameters": rows.parameters,
                    "reasons": rows.reasons,
                },
            )
            self.con.execute(
                "INSERT INTO cells (cell_key, dgp, n, block, replicates, rows, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    cell.key,
                    cell.point.spec,
                    cell.n,
                    cell.block,
                    cell.replicates,
                    len(rows),
                    seconds,
                ],
            )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def study(self) -> dict[str, Any]:
        row = self.con.execute(
            "SELECT name, spec_hash, spec_json, likelab_version FROM study"
        ).fetchone()
        if row is None:
            raise SpecError(f"the store {self.path.name} holds no study")
        return dict(zip(("name", "spec_hash", "spec_json", "likelab_version"), row, strict=True))

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
