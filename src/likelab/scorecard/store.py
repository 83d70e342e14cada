"""The scorecard store: one DuckDB file holding every finished unit of a scorecard.

Tables:

- ``scorecard``: one row, the run's identity: ``seed``, ``quick`` and the likelab version that
  created it. A store of another seed or size is refused, not mixed in.
- ``units``: one row per finished unit: ``(objective, part, setting)`` (the key), the unit's
  result row as JSON, and its seconds.

Each unit is written in its own transaction, so a run killed at any moment leaves whole units or
nothing of a unit. Resuming runs exactly the units without a row, so the page and JSON come out
identical to an uninterrupted run's (apart from timings). The file is checked before DuckDB
opens it (:func:`likelab.study.store.check_file`: a directory, an empty file or a SQLite file
is refused), every connection keeps extensions off, and an unrelated DuckDB database is refused,
never written to.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

import duckdb

from likelab.errors import StoreError
from likelab.study.store import check_file, connect

__all__ = ["ScorecardStore"]

_KIND = "likelab scorecard store"
_WRITER = "`likelab scorecard`"
_SCHEMA = {
    "scorecard": ["seed", "quick", "version"],
    "units": ["objective", "part", "setting", "row", "seconds"],
}


class ScorecardStore:
    """A scorecard's DuckDB store at ``path``, for ``seed`` and ``quick`` (see the module)."""

    def __init__(self, path: str | Path, *, seed: int, quick: bool):
        from likelab import __version__

        self.path = Path(path)
        name = str(path)
        self.created = not check_file(self.path, must_exist=False, kind=_KIND, writer=_WRITER)
        self.con = connect(self.path, read_only=False)
        try:
            tables = {
                r[0]
                for r in self.con.execute(
                    "select table_name from information_schema.tables"
                ).fetchall()
            }
            if not tables:
                self.con.execute(
                    "create table scorecard (seed BIGINT, quick BOOLEAN, version VARCHAR)"
                )
                self.con.execute(
                    "create table units (objective VARCHAR, part VARCHAR, setting VARCHAR, "
                    "row VARCHAR, seconds DOUBLE, primary key (objective, part, setting))"
                )
                self.con.execute(
                    "insert into scorecard values (?, ?, ?)", [int(seed), bool(quick), __version__]
                )
                return
            for table, columns in _SCHEMA.items():
                if table not in tables:
                    raise StoreError(f"the store {name!r} is not a {_KIND} (no {table!r} table)")
                have = [
                    r[0]
                    for r in self.con.execute(
                        "select column_name from information_schema.columns where table_name = ? "
                        "order by ordinal_position",
                        [table],
                    ).fetchall()
                ]
                if have != columns:
                    raise StoreError(
                        f"the store {name!r} is not a {_KIND} (table {table!r} has columns {have})"
                    )
            head = self.con.execute("select seed, quick from scorecard").fetchall()
            if len(head) != 1:
                raise StoreError(f"the store {name!r} is damaged: {len(head)} identity rows")
            old_seed, old_quick = head[0]
            if (int(old_seed), bool(old_quick)) != (int(seed), bool(quick)):
                raise StoreError(
                    f"the store {name!r} holds a scorecard with seed {old_seed} and "
                    f"{'--quick' if old_quick else 'full sizes'}; this run asks for seed {seed} "
                    f"and {'--quick' if quick else 'full sizes'}: choose another --out, or the "
                    "same options to resume it"
                )
        except BaseException:
            with contextlib.suppress(Exception):
                self.con.close()
            raise

    def done(self) -> set[tuple[str, str, str]]:
        """The keys ``(objective, part, setting)`` of the units already written."""
        rows = self.con.execute("select objective, part, setting from units").fetchall()
        return {(str(o), str(p), str(s)) for o, p, s in rows}

    def write(self, key: tuple[str, str, str], row: dict[str, Any], seconds: float) -> None:
        """One unit, in one transaction."""
        text = json.dumps(row, allow_nan=True, sort_keys=True)
        self.con.execute("begin transaction")
        try:
            self.con.execute(
                "insert into units values (?, ?, ?, ?, ?)", [*key, text, float(seconds)]
            )
            self.con.execute("commit")
        except BaseException:
            with contextlib.suppress(Exception):
                self.con.execute("rollback")
            raise

    def rows(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        """Every written unit's result row, by key."""
        out = {}
        for o, p, s, text in self.con.execute(
            "select objective, part, setting, row from units"
        ).fetchall():
            out[(str(o), str(p), str(s))] = json.loads(text)
        return out

    def seconds(self) -> float:
        value = self.con.execute("select coalesce(sum(seconds), 0) from units").fetchone()[0]
        return float(value) if value is not None and math.isfinite(value) else 0.0

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.con.close()

    def remove(self) -> None:
        """Remove the file (only one this run created and left empty: the caller checks)."""
        self.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            Path(str(self.path) + ".wal").unlink()
