"""Reading observations from text files.

A data file holds one number per line, or a CSV table with a header row from which one column is
chosen. Blank lines and lines starting with ``#`` are skipped. Anything else that is not a number is
a :class:`~likelab.errors.DataError` naming the file, the line and the text.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from likelab.errors import DataError

__all__ = ["as_observations", "read_column"]


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


def read_column(path: str | Path, column: str | int | None = None) -> np.ndarray:
    """The numbers in one column of a text or CSV file, as a float64 array.

    ``column`` is a header name or a 0-based index; it may be omitted when the file has a single
    column. A first row that is not numeric is taken as the header.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as fh:
    ...     _ = fh.write("x,y\\n1,2\\n3,4\\n")
    >>> read_column(fh.name, "y").tolist()
    [2.0, 4.0]
    >>> os.unlink(fh.name)
    """
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise DataError(f"data file {str(path)!r} does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read data file {str(path)!r}: {exc}") from None
    rows = [
        (lineno, row)
        for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1)
        if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")
    ]
    if not rows:
        raise DataError(f"data file {str(path)!r} holds no observations")
    header: list[str] | None = None
    if not _is_number(rows[0][1][0]):
        header = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    width = len(header) if header is not None else len(rows[0][1]) if rows else 1
    index = _column_index(column, header, width, path)
    values = []
    for lineno, row in rows:
        if index >= len(row):
            raise DataError(f"{p.name} line {lineno}: no column {index} in {','.join(row)!r}")
        cell = row[index].strip()
        if not _is_number(cell):
            raise DataError(f"{p.name} line {lineno}: {cell!r} is not a number")
        value = float(cell)
        if not math.isfinite(value):
            raise DataError(f"{p.name} line {lineno}: {cell!r} is not finite")
        values.append(value)
    if not values:
        raise DataError(f"data file {str(path)!r} holds no observations")
    return np.asarray(values, dtype=np.float64)


def _column_index(
    column: str | int | None, header: list[str] | None, width: int, path: str | Path
) -> int:
    if column is None:
        if width != 1:
            names = ", ".join(header) if header else f"0..{width - 1}"
            raise DataError(f"data file {str(path)!r} has {width} columns ({names}); choose one")
        return 0
    if isinstance(column, int) or (isinstance(column, str) and column.isdigit()):
        idx = int(column)
        if not 0 <= idx < width:
            raise DataError(f"data file {str(path)!r} has no column {idx} (it has {width})")
        return idx
    if header is None or column not in header:
        known = ", ".join(header) if header else "none (no header row)"
        raise DataError(f"data file {str(path)!r} has no column {column!r}; columns: {known}")
    return header.index(column)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
