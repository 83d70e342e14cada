"""likelab._paths and likelab._budget: output paths checked before work, written atomically;
memory estimates against a limit."""

from __future__ import annotations

import os
import stat

import pytest

from likelab._budget import check_memory, format_bytes, memory_limit
from likelab._paths import atomic_write, check_output_dir, check_output_file
from likelab.errors import OutputError, ParameterError


def test_check_output_file_accepts_new_and_existing_files(tmp_path):
    assert check_output_file(tmp_path / "a.png", suffixes=(".png",)) == tmp_path / "a.png"
    (tmp_path / "b.PDF").write_text("old")
    assert check_output_file(tmp_path / "b.PDF", suffixes=(".png", ".pdf")).name == "b.PDF"
    assert check_output_file(str(tmp_path / "c.anything")).name == "c.anything"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.PDF"]  # the probe left nothing


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("", "empty path"),
        ("   ", "empty path"),
        (".", "is a directory"),
        ("d", "is a directory"),
        ("x.gif", "extension '.gif'"),
        ("noext", "no extension"),
        ("missing/x.png", "does not exist"),
        ("f/x.png", "f is a file"),
        ("f/deeper/x.png", "f is a file"),
    ],
)
def test_check_output_file_refusals(tmp_path, monkeypatch, name, fragment):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match=fragment):
        check_output_file(name, suffixes=(".png",), what="--plot")


def test_unwritable_directory(tmp_path):
    if os.geteuid() == 0:  # root ignores permission bits; the kernel's /proc takes no new files
        target, parent = "/proc/x.png", "/proc"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        target, parent = str(ro / "x.png"), str(ro)
    try:
        with pytest.raises(OutputError, match=f"{parent} is not writable"):
            check_output_file(target, suffixes=(".png",))
        with pytest.raises(OutputError, match="not writable"):
            check_output_dir(os.path.join(parent, "sub"))
    finally:
        if os.geteuid() != 0:
            (tmp_path / "ro").chmod(0o755)


def test_check_output_dir(tmp_path):
    (tmp_path / "f").write_text("x")
    assert check_output_dir(tmp_path / "new") == tmp_path / "new"
    assert check_output_dir(tmp_path) == tmp_path
    for bad, fragment in [("", "empty"), (tmp_path / "f", "not a directory")]:
        with pytest.raises(OutputError, match=fragment):
            check_output_dir(bad)
    with pytest.raises(OutputError, match="does not exist"):
        check_output_dir(tmp_path / "a" / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("failed while writing")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["t.csv"]
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".csv"
        tmp.write_text("new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["t.csv"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_memory_limit_setting(monkeypatch):
    monkeypatch.setenv("LIKELAB_MEMORY_LIMIT", "12GB")
    assert memory_limit() == 12 * 10**9
    monkeypatch.setenv("LIKELAB_MEMORY_LIMIT", "512 MiB")
    assert memory_limit() == 512 * 2**20
    monkeypatch.setenv("LIKELAB_MEMORY_LIMIT", "1000")
    assert memory_limit() == 1000
    check_memory(1000, what="x")
    with pytest.raises(
        ParameterError, match=r"the grid needs about 75 GB of memory .*limit 1.0 KB, set by"
    ):
        check_memory(75e9, what="the grid")
    for bad in ("lots", "-1GB", "0", "12 parsecs"):
        monkeypatch.setenv("LIKELAB_MEMORY_LIMIT", bad)
        with pytest.raises(ParameterError, match="LIKELAB_MEMORY_LIMIT"):
            memory_limit()
    monkeypatch.delenv("LIKELAB_MEMORY_LIMIT")
    assert memory_limit() > 10**8
    assert format_bytes(75e9) == "75 GB" and format_bytes(1.5e6) == "1.5 MB"
