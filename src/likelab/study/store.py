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

Opening a store never trusts the file: a directory, an empty file, a SQLite or any other
non-DuckDB file is refused from its first bytes, before DuckDB sees it (DuckDB would load, and
download, an extension for a SQLite file); a DuckDB file is then checked for likelab's tables
and schema, so that a damaged store, one of another schema or an unrelated database is refused
with one line naming the file and what is wrong with it, and an unrelated database is never
added to. Every connection keeps DuckDB from installing or loading extensions
(:data:`DUCKDB_CONFIG`).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import numpy as np

from likelab.errors import SpecError, StoreError

__all__ = [
    "DUCKDB_CONFIG",
    "RESULT_COLUMNS",
    "TABLES",
    "CellRows",
    "Store",
    "check_file",
    "connect",
]

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
#: The writer's DuckDB memory: a committed cell's blocks stay cached in DuckDB's buffer pool up
#: to its limit, which the writer never reads again; at 512 MB the writer of a study of 10^7
#: replicates grew to 800 MB, at 128 MB it stays at 430 MB (measured), as fast.
_WRITER_MEMORY_LIMIT = "128MB"


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


#: The store's schema: table -> column -> DuckDB type. A store whose tables differ is of another
#: schema (another likelab version, or not likelab's) and is refused, never altered.
TABLES: dict[str, dict[str, str]] = {
    "study": {
        "name": "VARCHAR",
        "spec_hash": "VARCHAR",
        "spec_json": "VARCHAR",
        "likelab_version": "VARCHAR",
        "created_at": "TIMESTAMP",
    },
    "cells": {
        "cell_key": "VARCHAR",
        "dgp": "VARCHAR",
        "n": "INTEGER",
        "block": "INTEGER",
        "replicates": "INTEGER",
        "rows": "BIGINT",
        "seconds": "DOUBLE",
        "finished_at": "TIMESTAMP",
    },
    "results": RESULT_COLUMNS,
}

_SCHEMA = [
    "CREATE TABLE study (name VARCHAR, spec_hash VARCHAR, spec_json VARCHAR, "
    "likelab_version VARCHAR, created_at TIMESTAMP DEFAULT current_timestamp)",
    "CREATE TABLE cells (cell_key VARCHAR PRIMARY KEY, dgp VARCHAR, n INTEGER, "
    "block INTEGER, replicates INTEGER, rows BIGINT, seconds DOUBLE, "
    "finished_at TIMESTAMP DEFAULT current_timestamp)",
    "CREATE TABLE results (" + ", ".join(f"{k} {v}" for k, v in RESULT_COLUMNS.items()) + ")",
]

#: Every connection likelab opens: DuckDB never installs or loads an extension behind its back.
#: By default DuckDB autoloads (and downloads) the extension a file or a path seems to need: a
#: SQLite file given as a store would fetch ``sqlite_scanner`` from the network.
DUCKDB_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}

#: A DuckDB database file has ``DUCK`` at byte 8 of its first header block.
_MAGIC_OFFSET, _MAGIC = 8, b"DUCK"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def connect(path: str | Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the file ``path`` with extension autoloading and autoinstalling
    off (:data:`DUCKDB_CONFIG`) and no progress bar; the path is made absolute so that no
    prefix (``md:``, ``s3://``) can make DuckDB read it as anything but a local file. Raises
    :class:`StoreError` naming the file where DuckDB cannot open it."""
    target = Path(path)
    try:
        con = duckdb.connect(
            str(target.absolute()), read_only=read_only, config=dict(DUCKDB_CONFIG)
        )
    except duckdb.Error as exc:
        raise StoreError(_cannot_open(str(path), exc, read_only)) from None
    # the library never prints: DuckDB draws a progress bar on stdout for any query that runs
    # over 2 s (a summary of a store of millions of rows); a per-connection setting, and the
    # printing itself is turned off (setting ``progress_bar_time`` turns the bar back on)
    con.execute("SET enable_progress_bar = false")
    con.execute("SET enable_progress_bar_print = false")
    return con


def _reason(exc: BaseException) -> str:
    """The first line of a DuckDB error, without its class prefix, at most 200 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _cannot_open(name: str, exc: BaseException, read_only: bool) -> str:
    text = str(exc)
    if "Conflicting lock" in text or "Could not set lock" in text:
        pid = re.search(r"PID (\d+)", text)
        who = f" (process {pid.group(1)})" if pid else ""
        return (
            f"the store {name!r} is in use by another process{who}: wait for it to finish, "
            "or choose another --store"
        )
    if "Permission denied" in text or "Read-only file system" in text:
        what = "read" if read_only else "written"
        return f"the store {name!r} cannot be {what} here: permission denied"
    if "No such file or directory" in text:
        return f"the store {name!r} cannot be created: its folder does not exist"
    if "checksum" in text.lower() or "Could not read enough bytes" in text:
        return f"the store {name!r} is damaged (truncated or corrupted): {_reason(exc)}"
    return f"the store {name!r} cannot be opened: {_reason(exc)}"


def check_file(
    path: str | Path,
    *,
    must_exist: bool,
    kind: str = "likelab study store",
    writer: str = "`likelab study run`",
) -> bool:
    """Check that ``path`` is a DuckDB file before DuckDB sees it (DuckDB would try to load an
    extension for a SQLite file, and says little about a file that is none of its own).

    Returns whether the file exists; raises :class:`StoreError` for a directory, an empty file,
    a SQLite or other non-DuckDB file, a missing folder, or a missing file if ``must_exist``.
    ``kind`` and ``writer`` name what the file should be and what writes one (the messages).
    """
    name = str(path)
    target = Path(path)
    if target.is_dir():
        return _refuse(f"the store {name!r} is a directory, not a {kind}")
    if not target.exists():
        if must_exist:
            return _refuse(f"the store {name!r} does not exist")
        folder = target.absolute().parent
        if not folder.is_dir():
            return _refuse(f"the store {name!r} cannot be created: its folder does not exist")
        return False
    if not target.is_file():
        return _refuse(f"the store {name!r} is not a regular file")
    try:
        with target.open("rb") as fh:
            head = fh.read(max(len(_SQLITE_MAGIC), _MAGIC_OFFSET + len(_MAGIC)))
    except OSError as exc:
        return _refuse(f"the store {name!r} cannot be read: {exc.strerror or exc}")
    if not head:
        return _refuse(
            f"the store {name!r} is an empty file, not a {kind}: remove it or choose another store"
        )
    if head.startswith(_SQLITE_MAGIC):
        return _refuse(
            f"the store {name!r} is a SQLite database, not a {kind} (a DuckDB file written by "
            f"{writer})"
        )
    if len(head) < _MAGIC_OFFSET + len(_MAGIC):
        return _refuse(
            f"the store {name!r} is only {len(head)} byte(s) long: not a DuckDB file, or one "
            "damaged (truncated)"
        )
    if head[_MAGIC_OFFSET : _MAGIC_OFFSET + len(_MAGIC)] != _MAGIC:
        return _refuse(
            f"the store {name!r} is not a DuckDB file, so not a {kind} (one is written by {writer})"
        )
    return True


def _refuse(message: str) -> bool:
    raise StoreError(message)


class Store:
    """An open study store; use as a context manager or call :meth:`close`.

    Opening checks the file first (:func:`check_file`) and then its tables (:data:`TABLES`):
    a file that is not a likelab store, a damaged one or one of another schema is refused with
    a :class:`StoreError` that names the file and what is wrong with it. A writable store is
    created if the file does not exist (:attr:`created` says so); an existing DuckDB database
    that holds anything but likelab's tables is refused, never added to. A DuckDB error met
    while the store is open (a block that fails its checksum, a full disk) leaves the ``with``
    block as a :class:`StoreError` naming the file.
    """

    def __init__(self, path: str | Path, spec: Any | None = None, *, read_only: bool = False):
        self.path = Path(path)
        self.name = str(path)
        existed = check_file(self.path, must_exist=read_only)
        self.con = connect(self.path, read_only=read_only)
        #: whether opening this store created its file
        self.created = not existed
        try:
            # the store is written a cell at a time and read by one summary query: a modest
            # buffer pool is plenty, and bounds the writer's memory however large the study
            limit = _MEMORY_LIMIT if read_only else _WRITER_MEMORY_LIMIT
            self.con.execute(f"SET memory_limit = '{limit}'")
            if not read_only:
                # the writer inserts a few thousand rows at a time: DuckDB's parallelism buys
                # nothing there and its threads take CPU from the workers on a small machine
                # (9.4 vs 6.5 ms of CPU per 4,000-row insert, measured)
                self.con.execute("SET threads = 1")
            if self._check_tables(creating=not read_only):
                self.con.execute("BEGIN TRANSACTION")
                for sql in _SCHEMA:
                    self.con.execute(sql)
                self.con.execute("COMMIT")
            if spec is not None:
                self._claim(spec)
        except duckdb.Error as exc:
            self._abandon()
            raise StoreError(self.describe(exc, opening=True)) from None
        except BaseException:
            self._abandon()
            raise

    def describe(self, exc: BaseException, *, opening: bool = False) -> str:
        """A one-line message for a DuckDB error met on this store, naming the file."""
        text = str(exc)
        if "checksum" in text.lower() or "Could not read enough bytes" in text:
            return f"the store {self.name!r} is damaged (truncated or corrupted): {_reason(exc)}"
        if opening:
            return f"the store {self.name!r} cannot be opened: {_reason(exc)}"
        return f"{_reason(exc)} (while using the store {self.name!r})"

    def _check_tables(self, *, creating: bool) -> bool:
        """Whether the tables must be created (a new, empty database opened for writing);
        raises :class:`StoreError` unless the database holds exactly likelab's tables."""
        found: dict[str, dict[str, str]] = {}
        for schema, table, column, dtype in self.con.execute(
            "SELECT table_schema, table_name, column_name, data_type "
            "FROM information_schema.columns WHERE table_catalog = current_database() "
            "ORDER BY table_schema, table_name, ordinal_position"
        ).fetchall():
            key = table if schema == "main" else f"{schema}.{table}"
            found.setdefault(key, {})[column] = dtype
        if not found:
            if creating:
                return True
            return _refuse(
                f"the store {self.name!r} is a DuckDB database with no tables, not a likelab "
                "study store"
            )
        ours = [t for t in TABLES if t in found]
        others = sorted(t for t in found if t not in TABLES)
        if not ours or others:
            listed = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            refusal = "; refusing to add likelab's tables to it" if creating else ""
            return _refuse(
                f"the store {self.name!r} is a DuckDB database that is not a likelab study "
                f"store (it holds the table(s) {listed}){refusal}: choose another store"
            )
        missing = [t for t in TABLES if t not in found]
        if missing:
            return _refuse(
                f"the store {self.name!r} is damaged: it lacks the table(s) "
                f"{', '.join(missing)} of a likelab study store"
            )
        for table, columns in TABLES.items():
            if found[table] != columns:
                return _refuse(
                    f"the store {self.name!r} is of another schema than this likelab's "
                    f"(its table {table} has the columns {', '.join(found[table])}, expected "
                    f"{', '.join(columns)}){self._written_by()}: rerun the study into a new "
                    "store"
                )
        return False

    def _written_by(self) -> str:
        try:
            row = self.con.execute("SELECT max(likelab_version) FROM study").fetchone()
        except duckdb.Error:
            return ""
        return f"; it was written by likelab {row[0]}" if row and row[0] else ""

    def _abandon(self) -> None:
        """Close after a failed open, and remove the file if this open created it."""
        with contextlib.suppress(duckdb.Error):
            self.con.close()
        if self.created:
            self.remove()

    def remove(self) -> None:
        """Delete the store's file and its write-ahead log (the store must be closed)."""
        for target in (self.path, self.path.with_name(self.path.name + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                target.unlink()

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
            # a Ctrl-C inside a query makes DuckDB abort the transaction itself, and a second
            # rollback would replace the interrupt with "no transaction is active": the cell is
            # not in the store either way, and the original exception is what the caller needs
            with contextlib.suppress(duckdb.Error):
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

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        with contextlib.suppress(duckdb.Error):
            self.close()
        if isinstance(exc, duckdb.Error):
            raise StoreError(self.describe(exc)) from None
