"""Output paths: check them before any work is done, write them atomically.

Every file or directory the CLI writes (``--plot``, ``--csv``, ``--parquet``, ``--out``,
``--report``) goes through :func:`check_output_file` or :func:`check_output_dir` *before* anything
is computed, so that a mistyped path fails in milliseconds with one line, and through
:func:`atomic_write`, so that a failure while writing leaves nothing half-written behind: the
content goes to a temporary file in the target's directory, renamed over the target
(:func:`os.replace`, atomic on POSIX) only once it is complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from likelab.errors import OutputError

__all__ = ["FIGURE_SUFFIXES", "atomic_write", "check_output_dir", "check_output_file"]

#: The figure formats the CLI writes (matplotlib's common vector and raster back ends).
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def _as_path(path: str | os.PathLike, what: str) -> Path:
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise OutputError(f"{what}: empty path; give a file or directory name")
    if "\x00" in text:
        raise OutputError(f"{what}: the path {text!r} contains a NUL character")
    return Path(text)


def _check_parent(path: Path, what: str) -> None:
    """The directory that will hold ``path`` exists, is a directory and accepts new files."""
    parent = path.parent
    if not parent.exists():
        # a missing ancestor, or an existing file where a directory is expected
        for ancestor in parent.parents:
            if ancestor.exists() and not ancestor.is_dir():
                raise OutputError(
                    f"{what}: cannot write {path}: {ancestor} is a file, not a directory"
                )
        raise OutputError(
            f"{what}: cannot write {path}: the directory {parent} does not exist (create it first)"
        )
    if not parent.is_dir():
        raise OutputError(f"{what}: cannot write {path}: {parent} is a file, not a directory")
    _probe(parent, path, what)


def _probe(directory: Path, path: Path, what: str) -> None:
    """Create and remove a temporary file in ``directory``: the only reliable test of write
    permission (``os.access`` says yes to root on a read-only mount, and ignores ACLs)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".likelab-probe-", dir=directory)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(
            f"{what}: cannot write {path}: {directory} is not writable ({reason})"
        ) from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(
    path: str | os.PathLike, *, suffixes: Iterable[str] | None = None, what: str = "output"
) -> Path:
    """Validate the path of a file about to be written; return it as a :class:`Path`.

    Refused (:class:`~likelab.errors.OutputError`, naming ``what``, e.g. ``"--plot"``): an empty
    path, an existing directory, a suffix not in ``suffixes`` (case-insensitive; ``None`` accepts
    any), a parent directory that is missing, is a file, or is not writable. An existing file is
    overwritten (atomically, see :func:`atomic_write`). Nothing is left on disk by the check.
    """
    p = _as_path(path, what)
    if p.is_dir():
        hint = f" such as {p / ('figure' + next(iter(suffixes)))}" if suffixes else ""
        raise OutputError(f"{what}: {p} is a directory; give a file name{hint}")
    if suffixes is not None:
        allowed = tuple(s.lower() for s in suffixes)
        if p.suffix.lower() not in allowed:
            got = f"extension {p.suffix!r}" if p.suffix else "no extension"
            raise OutputError(
                f"{what}: {p} has {got}; the format is taken from the extension: "
                f"use one of {', '.join(allowed)}"
            )
    if p.exists() and not p.is_file():
        raise OutputError(f"{what}: {p} exists and is not a regular file")
    _check_parent(p, what)
    return p


def check_output_dir(path: str | os.PathLike, *, what: str = "output directory") -> Path:
    """Validate a directory about to be written into (created if missing, its parent must
    exist); return it as a :class:`Path`. Refused: an empty path, an existing file, a missing or
    read-only parent, an existing directory that is not writable."""
    p = _as_path(path, what)
    if p.exists():
        if not p.is_dir():
            raise OutputError(f"{what}: {p} exists and is not a directory")
        _probe(p, p, what)
        return p
    _check_parent(p, what)
    return p


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same directory, same suffix) to write to; on
    success rename it over ``path``, on any exception remove it and re-raise.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_write(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> sorted(p.name for p in d.iterdir()), (d / "a.txt").read_text()
    (['a.txt'], 'done')
    """
    target = Path(path)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.stem}-", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.exists() or tmp.is_dir():
            raise OutputError(f"nothing was written to {target}")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> what open() would have given
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            if tmp.is_dir():
                tmp.rmdir()
            else:
                tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
