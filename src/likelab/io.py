"""Reading observations from text files.

A data file holds one number per line, or a CSV table (optionally with a header row) from which
one column is chosen. It is read as UTF-8 (a leading byte-order mark is dropped); blank lines and
lines starting with ``#`` are skipped (but not a row starting with the missing value ``#N/A``).

A number is a decimal number in the usual CSV sense: an optional sign, digits with an optional
decimal point, an optional exponent (``-1.5``, ``.5``, ``3e-2``), with spaces around it allowed.
Python-literal syntax that is not that (``1_000``, ``0x10``, ``0b11``, ``0o7``) is refused, never
reinterpreted; ``inf`` and ``-Infinity`` are recognised as numbers and refused as not finite, like
non-finite observations everywhere else in likelab.

A missing value is a cell that is empty or holds one of :data:`MISSING` (compared without the
spaces around it and ignoring case): ``NA``, ``N/A``, ``NaN`` (with or without a sign), ``null``,
``None``, ``<NA>``, ``#N/A``, ``#NA``. These are pandas' default ``na_values`` less the
spellings of old C runtimes (``1.#IND``, ``-1.#QNAN``, ...), and a line starting with ``#N/A``
or ``#NA`` is a data row, not a comment. ``nan`` is missing, not a number: it is how pandas, R
and spreadsheets write "no value". ``inf`` is a value and stays refused. By default
(``missing="error"``) a missing value in the chosen column is an error listing the first rows
that have one and their count; ``missing="drop"`` leaves those rows out and records how many
(:attr:`ColumnData.dropped_missing`). Missing values in the other columns are never looked at.

The first row is a header when none of its cells is a number and not all of them are missing;
the rows after it must then hold numbers (or missing values) in the chosen column. Every row must
have as many cells as the first. Anything else (a ragged row, a non-numeric cell, a row mixing
names and numbers where a header would be, a column with no value at all) is a
:class:`~likelab.errors.DataError` naming the file, the line, the column and the text.
Before reading, the number of rows is estimated from the file's size and a sample of its lines;
a file whose values would exceed ``max_values`` is refused with the estimate in the message.
"""

from __future__ import annotations

import csv
import math
import os
import re
import stat
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from likelab._budget import format_bytes
from likelab.errors import DataError

__all__ = ["MAX_VALUES", "MISSING", "ColumnData", "as_observations", "read_column", "read_data"]

#: The most observations :func:`read_column` reads from one file (10⁸ float64 values: 800 MB).
MAX_VALUES = 100_000_000

#: The spellings of a missing value, compared with a cell stripped of spaces and lower-cased.
MISSING = frozenset({"", "na", "n/a", "nan", "+nan", "-nan", "null", "none", "<na>", "#n/a", "#na"})

#: How many missing rows an error message lists by line (the count is always given).
_LISTED = 5

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NONFINITE = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)  # nan is MISSING
# a line starting with a missing value spelled with '#' is a data row, not a comment
_MISSING_FIRST = re.compile(r"#n/?a\s*(?:,|$)", re.IGNORECASE)
_SAMPLE_BYTES = 1 << 16


def as_observations(data: object) -> np.ndarray:
    """In-memory observations (list, numpy array, tensor) as a float64 numpy array.

    Raises :class:`~likelab.errors.DataError` when they are not numbers; shape, finiteness and
    support are for the caller (a family's ``check_data``) to judge.
    """
    if hasattr(data, "detach"):  # a torch tensor, possibly on an accelerator
        data = data.detach().cpu()
    try:
        return np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"data must be numbers, got {type(data).__name__}") from None


@dataclass(frozen=True, eq=False)
class ColumnData:
    """One column read from a data file by :func:`read_data`.

    ``values`` are the numbers (float64) in file order, without the rows left out for a missing
    value; ``column`` names the column in messages (``"column 2 ('height')"``: its position in
    the file, counted from 1, and its header name); ``rows`` counts the data rows read (kept and
    dropped); ``dropped_missing`` how many of them were left out by ``missing="drop"`` and
    ``missing_lines`` their line numbers in the file (1-based, as in every message).
    """

    values: np.ndarray
    column: str
    rows: int
    dropped_missing: int
    missing_lines: np.ndarray


def read_data(
    path: str | Path,
    column: str | int | None = None,
    *,
    missing: Literal["error", "drop"] = "error",
    max_values: int = MAX_VALUES,
) -> ColumnData:
    """One column of a text or CSV file: its numbers and what was left out.

    ``column`` is a header name or a 0-based index; it may be omitted when the file has a single
    column. ``missing`` says what a missing value (an empty cell or one of :data:`MISSING`) in
    that column does: ``"error"`` (the default) raises a :class:`~likelab.errors.DataError`
    listing the first such rows and their count; ``"drop"`` leaves those rows out and counts them
    (:attr:`ColumnData.dropped_missing`). A column with no value at all is an error either way.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as fh:
    ...     _ = fh.write("x,y\\n1,2\\n3,NA\\n5,6\\n")
    >>> d = read_data(fh.name, "y", missing="drop")
    >>> d.values.tolist(), d.dropped_missing, d.missing_lines.tolist()
    ([2.0, 6.0], 1, [3])
    >>> os.unlink(fh.name)
    """
    if missing not in ("error", "drop"):
        raise DataError(f"missing must be 'error' or 'drop', got {missing!r}")
    p = Path(path)
    name = str(path)
    size = _check_file(p, name)
    _check_size(p, name, size, max_values)
    header: list[str] | None = None
    width = 0
    index = -1
    values = array("d")
    gaps = array("q")  # line numbers of the missing cells in the chosen column
    shown: list[str] = []  # the first few of those cells, as written
    seen_line = False
    for lineno, row in _rows(p, name):
        seen_line = True
        if not width:  # the first row: a header, or the first data row
            width = len(row)
            kinds = {_kind(c) for c in row}
            numeric = bool(kinds & {"number", "foreign"})
            if "text" in kinds and not numeric:
                header = [c.strip() for c in row]
                index = _column_index(column, header, width, name)
                continue
            if "text" in kinds:
                raise DataError(
                    f"{p.name} line {lineno} mixes numbers and text ({', '.join(map(repr, row))})"
                    ": a header row names every column, a data row holds only numbers"
                )
            index = _column_index(column, None, width, name)
        if len(row) != width:
            raise DataError(
                f"{p.name} line {lineno}: {len(row)} cell(s) where the "
                f"{'header' if header else 'first row'} has {width} ({','.join(row)!r})"
            )
        cell = row[index]
        if _is_missing(cell):
            gaps.append(lineno)
            if len(shown) < _LISTED:
                shown.append(cell.strip())
            continue
        values.append(_number(cell, p.name, lineno, index, header))
        if len(values) > max_values:
            raise DataError(
                f"data file {name!r} holds more than {max_values:,} observations "
                "(the most likelab reads from one file)"
            )
    if not seen_line:
        raise DataError(f"data file {name!r} holds no observations (it is empty or all comments)")
    label = _column_label(index, header)
    rows = len(values) + len(gaps)
    if not rows:
        raise DataError(
            f"data file {name!r} has a header ({', '.join(header or [])}) but no data rows"
        )
    if gaps:
        listed = _list_lines(gaps, shown)
        if not values:
            raise DataError(
                f"{p.name}, {label}: every data row ({rows:,}) has a missing value: {listed}; "
                "there is no observation to read"
            )
        if missing == "error":
            some = "1 row has" if len(gaps) == 1 else f"{len(gaps):,} rows have"
            raise DataError(
                f"{p.name}, {label}: {some} a missing value: {listed}; pass --missing drop "
                "(missing='drop' in Python) to leave such rows out, or fill them in"
            )
    return ColumnData(
        values=np.frombuffer(values, dtype=np.float64).copy(),
        column=label,
        rows=rows,
        dropped_missing=len(gaps),
        missing_lines=np.frombuffer(gaps, dtype=np.int64).copy(),
    )


def read_column(
    path: str | Path,
    column: str | int | None = None,
    *,
    missing: Literal["error", "drop"] = "error",
    max_values: int = MAX_VALUES,
) -> np.ndarray:
    """The numbers in one column of a text or CSV file, as a float64 array.

    ``column`` is a header name or a 0-based index; it may be omitted when the file has a single
    column. The first row is the header when none of its cells is a number. ``missing`` is as in
    :func:`read_data`, which also says how many rows were dropped.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as fh:
    ...     _ = fh.write("x,y\\n1,2\\n3,4\\n")
    >>> read_column(fh.name, "y").tolist()
    [2.0, 4.0]
    >>> os.unlink(fh.name)
    """
    return read_data(path, column, missing=missing, max_values=max_values).values


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def _column_label(index: int, header: list[str] | None) -> str:
    label = f"column {index + 1}"
    return label + f" ({header[index]!r})" if header is not None else label


def _list_lines(lines: array, cells: list[str]) -> str:
    """``line 3 ('NA')`` or ``lines 3 ('NA'), 5 (''), ... and 12 more``: the first few by line."""
    first = [f"{n} ({c!r})" for n, c in zip(lines, cells, strict=False)]
    text = ("line " if len(lines) == 1 else "lines ") + ", ".join(first)
    if len(lines) > len(first):
        text += f" and {len(lines) - len(first):,} more"
    return text


def _check_file(p: Path, name: str) -> int:
    try:
        st = p.stat()
    except FileNotFoundError:
        raise DataError(f"data file {name!r} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read data file {name!r}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"data file {name!r} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"data file {name!r} is not a regular file")
    if not os.access(p, os.R_OK):
        raise DataError(f"cannot read data file {name!r}: permission denied")
    if st.st_size == 0:
        raise DataError(f"data file {name!r} is empty: it holds no observations")
    return st.st_size


def _check_size(p: Path, name: str, size: int, max_values: int) -> None:
    """Estimate the rows from the file size and the mean length of the first lines."""
    if size <= _SAMPLE_BYTES:
        return
    with p.open("rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
    lines = sample.count(b"\n")
    per_line = (sample.rfind(b"\n") + 1) / lines if lines else len(sample)
    estimate = round(size / per_line)
    if estimate > max_values:
        raise DataError(
            f"data file {name!r} ({format_bytes(size)}) holds about {estimate:,} rows "
            f"({format_bytes(8 * estimate)} as float64), more than the {max_values:,} likelab "
            "reads from one file; pass a sample of it"
        )


def _rows(p: Path, name: str):
    """(line number, cells) of every non-blank, non-comment line, decoded as UTF-8."""
    with p.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"data file {name!r} is not UTF-8 text: line {lineno} has byte "
                    f"0x{raw[exc.start]:02x} at position {exc.start + 1}"
                ) from None
            stripped = line.strip()
            if not stripped or (stripped.startswith("#") and not _MISSING_FIRST.match(stripped)):
                continue
            try:
                row = next(csv.reader([line.rstrip("\r\n")]))
            except csv.Error as exc:
                raise DataError(f"{p.name} line {lineno}: not a CSV row ({exc})") from None
            yield lineno, row


def _kind(cell: str) -> str:
    """'missing' (:data:`MISSING`), 'number' (decimal, or ``inf``), 'foreign' (a Python literal)
    or 'text'."""
    text = cell.strip()
    if text.lower() in MISSING:
        return "missing"
    if _DECIMAL.fullmatch(text) or _NONFINITE.fullmatch(text):
        return "number"
    for parse in (float, lambda t: int(t, 0)):
        try:
            parse(text)
        except ValueError:
            continue
        return "foreign"
    return "text"


def _number(cell: str, file: str, lineno: int, index: int, header: list[str] | None) -> float:
    where = f"{file} line {lineno}, column {index + 1}"
    if header is not None:
        where += f" ({header[index]!r})"
    text = cell.strip()
    if _DECIMAL.fullmatch(text):
        value = float(text)
        if math.isfinite(value):
            return value
        raise DataError(f"{where}: {text!r} overflows float64 (is not finite)")
    if _NONFINITE.fullmatch(text):
        raise DataError(f"{where}: {text!r} is not finite; observations must be finite numbers")
    if _kind(text) == "foreign":
        raise DataError(
            f"{where}: {text!r} is not a decimal number (data files take sign, digits, point and "
            "exponent only, e.g. -1.5e3; no underscores, hex, octal or binary)"
        )
    raise DataError(f"{where}: {text!r} is not a number")


def _column_index(column: str | int | None, header: list[str] | None, width: int, name: str) -> int:
    names = ", ".join(header) if header else f"indices 0..{width - 1}, no header row"
    if column is None:
        if width != 1:
            raise DataError(f"data file {name!r} has {width} columns ({names}); choose one")
        return 0
    if isinstance(column, bool):
        raise DataError(f"column must be a header name or a 0-based index, got {column!r}")
    if isinstance(column, int) or (isinstance(column, str) and column.strip().isdigit()):
        idx = int(column)
        if not 0 <= idx < width:
            raise DataError(
                f"data file {name!r} has no column {idx} (0-based; it has {width}: {names})"
            )
        return idx
    if header is None or column not in header:
        raise DataError(f"data file {name!r} has no column {column!r}; columns: {names}")
    return header.index(column)
