"""The CLI's tables, in every format it prints: ``table`` (rich), ``markdown``, ``csv``.

A :class:`TableData` is the table itself, its title, caption, columns and rows of text cells; a
command builds it once and :func:`render` writes it in the format asked for, so that every format
holds the same rows and the same columns, cell for cell. No format ever cuts a cell:

- ``table`` on a terminal folds a long cell onto more lines (never an ellipsis); off a terminal
  (a file, a pipe) the table is printed at its natural width, however wide, one line per row.
- ``markdown``: a GitHub pipe table (``|`` inside a cell escaped as ``\\|``), the title above it
  and the caption below it as plain lines.
- ``csv``: RFC 4180 (:mod:`csv`), one header row, the cells as the table shows them (``0.12 ±
  0.03``); several tables (``underflow``) are separated by one empty line. The numbers to full
  precision are in ``--format json``, the command's own JSON, which is not a table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

#: The formats of ``--format``; ``json`` is the command's own JSON, not rendered here.
FORMATS = ("table", "markdown", "csv", "json")


@dataclass
class TableData:
    """A table as text cells: ``columns`` (header names), ``rows`` (one text per column),
    ``justify`` (``{column: "left" | "right"}``, for the rich table only)."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str | None = None
    justify: dict[str, str] = field(default_factory=dict)

    def add_row(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"row of {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([str(c) for c in cells])


def to_markdown(tables: Sequence[TableData]) -> str:
    """GitHub-flavoured pipe tables, title above and caption below each."""
    out: list[str] = []
    for t in tables:
        if out:
            out.append("")
        if t.title:
            out += [f"**{_md_text(t.title)}**", ""]
        out.append(_md_row(t.columns))
        out.append(
            "|"
            + "|".join("---:" if t.justify.get(c) == "right" else "---" for c in t.columns)
            + "|"
        )
        out += [_md_row(r) for r in t.rows]
        if t.caption:
            out += ["", _md_text(t.caption)]
    return "\n".join(out) + "\n"


def _md_text(text: str) -> str:
    return " ".join(text.split())


def _md_row(cells: Sequence[str]) -> str:
    # a cell keeps its spaces (the csv's cell, exactly); only a line break cannot stay in a row
    cells = (" ".join(c.splitlines()).replace("|", "\\|") for c in cells)
    return "| " + " | ".join(cells) + " |"


def to_csv(tables: Sequence[TableData]) -> str:
    """RFC 4180 CSV, one header row per table; tables separated by an empty line."""
    buf = io.StringIO()
    for i, t in enumerate(tables):
        if i:
            buf.write("\r\n")
        writer = csv.writer(buf)  # the csv module's default dialect: RFC 4180, CRLF endings
        writer.writerow(t.columns)
        writer.writerows(t.rows)
    return buf.getvalue()


def to_rich(t: TableData, *, fold: bool):
    """The rich table: long cells folded (``fold``, on a terminal) or kept on one line."""
    from rich.table import Table

    table = Table(title=t.title or None, caption=t.caption)
    for c in t.columns:
        table.add_column(
            c,
            justify=t.justify.get(c, "left"),
            overflow="fold",
            no_wrap=not fold,
        )
    for r in t.rows:
        table.add_row(*r)
    return table


def render(tables: Sequence[TableData], fmt: str, console, file: IO[str] | None = None) -> None:
    """Write ``tables`` in ``fmt`` (``table``, ``markdown`` or ``csv``). ``console`` is the rich
    console of stdout: on a terminal a table folds its long cells to the terminal's width;
    elsewhere it is printed at its natural width."""
    import sys

    if fmt == "markdown":
        (file or sys.stdout).write(to_markdown(tables))
        return
    if fmt == "csv":
        (file or sys.stdout).write(to_csv(tables))
        return
    if fmt != "table":
        raise ValueError(f"unknown table format {fmt!r}")
    for t in tables:
        print_rich(to_rich(t, fold=console.is_terminal), console)


def print_rich(renderable, console) -> None:
    """Print a rich renderable: on a terminal as it is; off a terminal at its natural width (a
    console as wide as the widest line, so that nothing is cut or folded)."""
    if console.is_terminal:
        console.print(renderable)
        return
    from rich.console import Console

    probe = Console(width=1_000_000, markup=False, highlight=False)
    width = max(probe.measure(renderable).maximum, 1)
    wide = Console(
        file=console.file,
        width=width,
        soft_wrap=False,
        markup=False,
        highlight=False,
        color_system=None,
    )
    wide.print(renderable)
