r"""A user's own table as a classification dataset: ``likelab train --data FILE --target COLUMN``.

:func:`read_table` reads a CSV file (with a header row naming the columns) or a Parquet file
(``.parquet``, ``.pq``; read with DuckDB, a dependency of likelab) into a :class:`Table`: the
target column's distinct values become the classes (any labels, strings included; numbers are
ordered by value, anything else alphabetically), every other column is a numeric feature.

- A feature column holding text (``"red"``) is an error naming the column and the first such
  cell: likelab does not guess an encoding; encode it as numbers (e.g. one column per category)
  or drop the column.
- Missing values are those of :mod:`likelab.io` (an empty cell or one of
  :data:`likelab.io.MISSING`: ``NA``, ``nan``, ``null``, ...; in Parquet also a null or a NaN),
  in any column used (features and target). With ``missing="error"`` (the default) a row with one
  is an error listing the first such rows (file line, or row for Parquet, with the column) and
  their count; ``missing="drop"`` leaves those rows out and records how many
  (:attr:`Table.dropped_missing`).
- Numbers follow :mod:`likelab.io`: decimal numbers only, finite.

:meth:`Table.dataset` splits the rows (stratified by class, seeded as
:func:`~likelab.classify.load_dataset` does), standardises the features with the *training*
split's mean and standard deviation only (a constant column keeps its scale) and corrupts the
training labels with ``noise`` like every dataset (:func:`~likelab.classify.add_label_noise`).
Every class needs a row in each split; a class with too few rows is an error naming it.
The true class probabilities are unknown (``p_test`` is ``None``).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from likelab.classify.datasets import (
    Dataset,
    _stable_hash,
    _stratified_split,
    add_label_noise,
)
from likelab.errors import DataError, ParameterError
from likelab.io import (
    _DECIMAL,
    _LISTED,
    _NONFINITE,
    MAX_VALUES,
    MISSING,
    _check_file,
    _check_size,
    _column_index,
    _kind,
    _rows,
)

__all__ = ["PARQUET_SUFFIXES", "Table", "load_table", "read_table"]

PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True, eq=False)
class Table:
    """A user's table read by :func:`read_table`: raw float64 features ``x`` (rows × columns
    ``features``), integer labels ``y`` indexing ``classes``, and what was left out."""

    name: str
    x: np.ndarray
    y: np.ndarray
    features: tuple[str, ...]
    target: str
    classes: tuple[str, ...]
    rows: int
    dropped_missing: int
    missing_rows: tuple[str, ...]

    def dataset(
        self, seed: int = 0, *, test_size: float = 0.3, noise: str | None = None
    ) -> Dataset:
        """The table split into train and test sets (stratified by class, seeded by ``seed``
        and the file's name), features standardised with the training split's statistics,
        training labels corrupted by ``noise``."""
        if not 0.0 < float(test_size) < 1.0:
            raise ParameterError(f"test_size must lie in (0, 1), got {test_size!r}")
        _check_split(self, float(test_size))
        ss = np.random.SeedSequence([int(seed), _stable_hash(self.name)])
        split_rng, noise_rng = (np.random.default_rng(s) for s in ss.spawn(2))
        train, test = _stratified_split(self.y, float(test_size), split_rng)
        mean = self.x[train].mean(0)
        sd = self.x[train].std(0)
        sd = np.where(sd > 0, sd, 1.0)
        y_train = self.y[train]
        k = len(self.classes)
        y_noisy = y_train if noise is None else add_label_noise(y_train, k, noise, noise_rng)
        return Dataset(
            name=self.name,
            x_train=((self.x[train] - mean) / sd).astype(np.float32),
            y_train=y_noisy,
            x_test=((self.x[test] - mean) / sd).astype(np.float32),
            y_test=self.y[test],
            num_classes=k,
            classes=self.classes,
            noise=noise,
            y_train_clean=y_train,
            info={
                "n_train": len(train),
                "n_test": len(test),
                "seed": int(seed),
                "features": list(self.features),
                "target": self.target,
                "dropped_missing": self.dropped_missing,
                "feature_mean": mean.tolist(),
                "feature_sd": sd.tolist(),
            },
        )


def load_table(
    path: str | Path,
    target: str | int,
    *,
    seed: int = 0,
    test_size: float = 0.3,
    noise: str | None = None,
    missing: Literal["error", "drop"] = "error",
) -> Dataset:
    """:func:`read_table` then :meth:`Table.dataset`: the file as a split, standardised
    :class:`~likelab.classify.Dataset`.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as fh:
    ...     rows = "".join(f"{i},{i % 3},{'xy'[i % 2]}\\n" for i in range(20))
    ...     _ = fh.write("a,b,kind\\n" + rows)
    >>> d = load_table(fh.name, "kind")
    >>> means = d.x_train.mean(axis=0)  # standardised: 0 up to float32 rounding
    >>> d.classes, d.x_train.shape, d.x_train.dtype.name, bool(abs(means).max() < 1e-6)
    (('x', 'y'), (14, 2), 'float32', True)
    >>> os.unlink(fh.name)
    """
    table = read_table(path, target, missing=missing)
    return table.dataset(seed, test_size=test_size, noise=noise)


def read_table(
    path: str | Path,
    target: str | int,
    *,
    missing: Literal["error", "drop"] = "error",
    max_values: int = MAX_VALUES,
) -> Table:
    """Read a CSV (header row required) or Parquet file into a :class:`Table` whose target is
    the column ``target`` (a header name, or a 0-based index) and whose features are all the
    other columns."""
    if missing not in ("error", "drop"):
        raise DataError(f"missing must be 'error' or 'drop', got {missing!r}")
    p = Path(path)
    name = str(path)
    size = _check_file(p, name)
    if p.suffix.lower() in PARQUET_SUFFIXES:
        header, columns, where = _read_parquet(p, name)
    else:
        _check_size(p, name, size, max_values)
        header, columns, where = _read_csv(p, name, max_values)
    index = _column_index(target, header, len(header), name)
    target_name = header[index]
    features = [h for i, h in enumerate(header) if i != index]
    if not features:
        raise DataError(
            f"{p.name} has only the target column {target_name!r}: there is no feature to "
            "learn from"
        )
    n = len(where)
    if n == 0:
        raise DataError(f"data file {name!r} has a header ({', '.join(header)}) but no data rows")
    x = np.empty((n, len(features)), dtype=np.float64)
    gap = np.zeros(n, dtype=bool)
    first_gap: dict[int, str] = {}  # row -> "'NA' in 'b'" for the first missing cell
    feature_cols = [c for i, c in enumerate(columns) if i != index]
    for j, (col, fname) in enumerate(zip(feature_cols, features, strict=True)):
        values, missing_mask = _numeric(col, fname, p.name, where)
        x[:, j] = values
        for r in np.flatnonzero(missing_mask & ~gap)[: _LISTED + 1]:
            first_gap.setdefault(int(r), f"{_shown(col[r])!r} in {fname!r}")
        gap |= missing_mask
    labels = [_label(v) for v in columns[index]]
    target_missing = np.array([v is None for v in labels], dtype=bool)
    for r in np.flatnonzero(target_missing & ~gap)[: _LISTED + 1]:
        first_gap.setdefault(int(r), f"{_shown(columns[index][r])!r} in {target_name!r}")
    gap |= target_missing
    dropped = int(gap.sum())
    rows_text = tuple(where[r] for r in np.flatnonzero(gap))
    if dropped:
        listed = ", ".join(f"{where[r]} ({first_gap[r]})" for r in sorted(first_gap)[:_LISTED])
        if dropped > _LISTED:
            listed += f" and {dropped - _LISTED:,} more"
        if dropped == n:
            raise DataError(
                f"{p.name}: every data row ({n:,}) has a missing value: {listed}; there is no "
                "row to learn from"
            )
        if missing == "error":
            some = "1 row has" if dropped == 1 else f"{dropped:,} rows have"
            raise DataError(
                f"{p.name}: {some} a missing value: {listed}; pass --missing drop "
                "(missing='drop' in Python) to leave such rows out, or fill them in"
            )
    keep = ~gap
    x = x[keep]
    kept_labels = [v for v, k in zip(labels, keep, strict=True) if k]
    classes = _order(set(kept_labels))
    if len(classes) < 2:
        raise DataError(
            f"{p.name}: the target column {target_name!r} holds a single class "
            f"({classes[0]!r}); a classifier needs at least 2"
        )
    code = {c: i for i, c in enumerate(classes)}
    y = np.fromiter((code[v] for v in kept_labels), dtype=np.int64, count=len(kept_labels))
    return Table(
        name=p.name,
        x=x,
        y=y,
        features=tuple(features),
        target=target_name,
        classes=classes,
        rows=n,
        dropped_missing=dropped,
        missing_rows=rows_text,
    )


# ---------------------------------------------------------------------- readers
def _read_csv(p: Path, name: str, max_values: int) -> tuple[list[str], list[list], list[str]]:
    """The header, the cells column by column (text), and each data row's ``line N``."""
    header: list[str] | None = None
    columns: list[list] = []
    where: list[str] = []
    cells = 0
    for lineno, row in _rows(p, name):
        if header is None:
            kinds = {_kind(c) for c in row}
            if kinds & {"number", "foreign"} or "text" not in kinds:
                raise DataError(
                    f"{p.name} line {lineno}: the first row must be a header naming the columns "
                    f"(--target names one of them), got {','.join(row)!r}"
                )
            header = [c.strip() for c in row]
            dupes = sorted({h for h in header if header.count(h) > 1})
            if dupes:
                raise DataError(f"{p.name}: the header names column {dupes[0]!r} twice")
            columns = [[] for _ in header]
            continue
        if len(row) != len(header):
            raise DataError(
                f"{p.name} line {lineno}: {len(row)} cell(s) where the header has {len(header)} "
                f"({','.join(row)!r})"
            )
        for col, cell in zip(columns, row, strict=True):
            col.append(cell)
        where.append(f"line {lineno}")
        cells += len(row)
        if cells > max_values:
            raise DataError(
                f"data file {name!r} holds more than {max_values:,} values "
                "(the most likelab reads from one file)"
            )
    if header is None:
        raise DataError(f"data file {name!r} holds no rows (it is empty or all comments)")
    return header, columns, where


def _read_parquet(p: Path, name: str) -> tuple[list[str], list[list], list[str]]:
    """The column names, the values column by column (``None`` for a null), ``row N``."""
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is a dependency of likelab
        raise DataError(
            f"reading {p.name} needs DuckDB (pip install duckdb), which reads Parquet files"
        ) from None
    try:
        rel = duckdb.connect().sql("SELECT * FROM read_parquet(?)", params=[str(p)])
        header = list(rel.columns)
        data = rel.fetchnumpy()
    except duckdb.Error as exc:
        raise DataError(f"cannot read {name!r} as Parquet: {str(exc).splitlines()[0]}") from None
    columns = []
    for h in header:
        col = data[h]
        mask = np.ma.getmaskarray(col)
        values = np.ma.getdata(col)
        columns.append([None if m else v for v, m in zip(values.tolist(), mask, strict=True)])
    n = len(columns[0]) if columns else 0
    return header, columns, [f"row {i + 1}" for i in range(n)]


# ---------------------------------------------------------------------- cells
def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in MISSING


def _shown(value: object) -> str:
    return "null" if value is None else str(value).strip() if isinstance(value, str) else str(value)


def _numeric(col: list, fname: str, file: str, where: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A feature column as float64 (NaN where missing) and its missing mask; text, Python
    literals and non-finite values are errors naming the row and the column."""
    out = array("d")
    gaps = np.zeros(len(col), dtype=bool)
    for r, value in enumerate(col):
        if _is_missing(value):
            gaps[r] = True
            out.append(math.nan)
            continue
        if isinstance(value, bool):
            out.append(float(value))
            continue
        if isinstance(value, int | float):
            v = float(value)
        else:
            text = str(value).strip()
            if _DECIMAL.fullmatch(text):
                v = float(text)
            elif _NONFINITE.fullmatch(text):
                v = math.inf
            else:
                what = (
                    "is not a decimal number (sign, digits, point and exponent only)"
                    if _kind(text) == "foreign"
                    else "is text"
                )
                raise DataError(
                    f"{file} {where[r]}, feature column {fname!r}: {text!r} {what}; every "
                    "column other than --target must hold numbers: encode it as numbers "
                    "(e.g. one 0/1 column per category) or drop the column"
                )
        if not math.isfinite(v):
            raise DataError(
                f"{file} {where[r]}, feature column {fname!r}: {value!r} is not finite; "
                "features must be finite numbers"
            )
        out.append(v)
    return np.frombuffer(out, dtype=np.float64).copy(), gaps


def _label(value: object) -> str | None:
    """A target cell as a class name (``None`` where missing): text stripped, a whole float
    as an integer (Parquet's ``1.0`` is class ``1``)."""
    if _is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() if isinstance(value, str) else str(value)


def _order(labels: set[str]) -> tuple[str, ...]:
    """Class names by numeric value when every one is a number, else alphabetically."""
    if all(_DECIMAL.fullmatch(v) for v in labels):
        return tuple(sorted(labels, key=lambda v: (float(v), v)))
    return tuple(sorted(labels))


def _check_split(table: Table, test_size: float) -> None:
    """Every class needs a row in the training split and one in the test split."""
    counts = np.bincount(table.y, minlength=len(table.classes))
    need = next(m for m in range(2, 10**9) if 1 <= round(test_size * m) <= m - 1)
    few = [(c, int(k)) for c, k in zip(table.classes, counts, strict=True) if k < need]
    if few:
        listed = ", ".join(f"{c!r} ({k} row{'s' if k != 1 else ''})" for c, k in few[:_LISTED])
        more = f" and {len(few) - _LISTED} more" if len(few) > _LISTED else ""
        raise DataError(
            f"{table.name}: too few rows for a stratified train/test split (test share "
            f"{test_size:g}): every class needs at least {need} rows, so that it has one in "
            f"each split; class{'es' if len(few) > 1 else ''} {listed}{more} of target "
            f"{table.target!r} "
            + ("has" if len(few) == 1 else "have")
            + " fewer; drop or merge such classes, or add rows"
        )
