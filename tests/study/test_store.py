"""The study store: every file that is not a usable likelab store is refused with one line that
names it and says what is wrong, before DuckDB can load anything for it; a failed run leaves no
store behind; every connection keeps DuckDB's extension autoloading off."""

import os
import shutil
import socket
import sqlite3

import duckdb
import pytest
from tests.cli_support import make_study_store, run

from likelab.errors import StoreError
from likelab.study import load_study, run_study
from likelab.study.store import DUCKDB_CONFIG, Store, connect

TINY = """
name: tiny
seed: 3
dgps:
  - family: laplace
    params: {loc: -2, scale: 0.5}
sample_sizes: [12, 30]
replicates: 8
block: 4
model: {family: laplace}
objectives: [log, "lq:q=0.8"]
"""


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A study file and a finished store of it, made once (copied by the tests that alter it)."""
    return make_study_store(tmp_path_factory.mktemp("store"), TINY, "tiny")


def _copy(made, tmp_path, name="copy.duckdb"):
    target = tmp_path / name
    shutil.copyfile(made[1], target)
    return target


def _sqlite(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE results (x REAL)")
    con.execute("INSERT INTO results VALUES (1.5)")
    con.commit()
    con.close()
    return path


def _duckdb(path, *sql):
    with duckdb.connect(str(path)) as con:
        for q in sql:
            con.execute(q)
    return path


def _write(path, data):
    path.write_bytes(data)
    return path


def _mkdir(path):
    path.mkdir()
    return path


def _bytes(made, tmp_path, edit):
    data = bytearray(made[1].read_bytes())
    target = tmp_path / "edited.duckdb"
    target.write_bytes(bytes(edit(data)))
    return target


def _flip(start, stop):
    def edit(data):
        for i in range(start, min(stop, len(data))):
            data[i] ^= 0xA5
        return data

    return edit


# (what, how to make it from (made, tmp_path), a fragment of the message)
BAD_STORES = [
    ("directory", lambda m, t: _mkdir(t / "dir.duckdb"), "is a directory"),
    ("empty", lambda m, t: _write(t / "e.duckdb", b""), "empty file"),
    ("sqlite", lambda m, t: _sqlite(t / "s.db"), "is a SQLite database"),
    ("text", lambda m, t: _write(t / "t.csv", b"x,y\n1,2\n3,4\n"), "not a DuckDB"),
    ("one byte", lambda m, t: _write(t / "b.duckdb", b"\x00"), "not a"),
    ("truncated to 10 bytes", lambda m, t: _bytes(m, t, lambda d: d[:10]), "damaged"),
    ("truncated to 5000 bytes", lambda m, t: _bytes(m, t, lambda d: d[:5000]), "damaged"),
    ("truncated to 40%", lambda m, t: _bytes(m, t, lambda d: d[: len(d) * 2 // 5]), "damaged"),
    ("first header corrupted", lambda m, t: _bytes(m, t, _flip(4096 + 8, 4096 + 64)), "damaged"),
    ("second header corrupted", lambda m, t: _bytes(m, t, _flip(8192 + 8, 8192 + 64)), "damaged"),
    ("no tables", lambda m, t: _duckdb(t / "n.duckdb", "SELECT 1"), "no tables"),
    (
        "another database",
        lambda m, t: _duckdb(t / "o.duckdb", "CREATE TABLE sales (id INTEGER)"),
        "not a likelab study store (it holds the table(s) sales)",
    ),
    (
        "missing tables",
        lambda m, t: _duckdb(_copy(m, t), "DROP TABLE results", "DROP TABLE cells"),
        "lacks the table(s) cells, results",
    ),
    (
        "another schema",
        lambda m, t: _duckdb(_copy(m, t), "ALTER TABLE results DROP COLUMN fit_seconds"),
        "of another schema",
    ),
    (
        "an extra table",
        lambda m, t: _duckdb(_copy(m, t), "CREATE TABLE notes (x VARCHAR)"),
        "not a likelab study store",
    ),
]


def _one_line_naming(err, path, fragment):
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert str(path) in err and fragment in err, err
    assert "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize(("what", "make", "fragment"), BAD_STORES, ids=[b[0] for b in BAD_STORES])
def test_a_bad_store_is_one_line_naming_it_for_every_command(
    what, make, fragment, made, tmp_path, capsys
):
    bad = make(made, tmp_path)
    before = bad.read_bytes() if bad.is_file() else None
    out = tmp_path / "page"
    for args in (
        ["study", "summary", bad],
        ["study", "summary", bad, "--json"],
        ["study", "summary", bad, "--csv", tmp_path / "s.csv"],
        ["report", bad, "--out", out],
    ):
        code, _, err = run(capsys, *args)
        assert code == 2, (args, err)
        _one_line_naming(err, bad, fragment)
    assert not out.exists() and not (tmp_path / "s.csv").exists()  # nothing written
    if what in ("truncated to 40%", "no tables"):
        # the first's damage lies in the data, which a run does not read; an empty DuckDB
        # database holds nothing to damage, and a run makes it a store
        return
    code, _, err = run(capsys, "study", "run", made[0], "--store", bad, "--executor", "local")
    assert code == 2, err
    _one_line_naming(err, bad, fragment)
    if before is not None:
        assert bad.read_bytes() == before  # refused, not altered (no likelab tables added)
    assert not bad.with_name(bad.name + ".wal").exists()


def test_a_sqlite_store_never_reaches_duckdb(made, tmp_path, monkeypatch, capsys):
    """DuckDB would autoload (and download) sqlite_scanner for it: the file is refused before
    any connection is attempted."""
    bad = _sqlite(tmp_path / "results.sqlite")

    def no_connect(*args, **kwargs):
        raise AssertionError(f"duckdb.connect called with {args} {kwargs}")

    monkeypatch.setattr(duckdb, "connect", no_connect)
    for args in (
        ["study", "summary", bad],
        ["report", bad],
        ["study", "run", made[0], "--store", bad, "--executor", "local"],
    ):
        code, _, err = run(capsys, *args)
        assert code == 2
        _one_line_naming(err, bad, "SQLite")


def test_every_connection_keeps_extension_loading_off(made, tmp_path):
    want = {
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "allow_community_extensions": "false",
    }
    assert set(want) == set(DUCKDB_CONFIG)
    query = "SELECT name, value FROM duckdb_settings() WHERE name IN ({})".format(
        ", ".join(f"'{k}'" for k in want)
    )
    with Store(made[1], read_only=True) as db:
        assert dict(db.con.execute(query).fetchall()) == want
    spec = load_study(made[0])
    with Store(tmp_path / "new.duckdb", spec) as db:
        assert dict(db.con.execute(query).fetchall()) == want
        # and a query that needs an extension fails instead of fetching one
        with pytest.raises(duckdb.Error, match=r"(?i)extension|autoload|install"):
            db.con.execute("SELECT * FROM sqlite_scan('x.db', 't')")
    with connect(made[1], read_only=True) as con:
        assert dict(con.execute(query).fetchall()) == want


def test_no_connection_draws_duckdbs_progress_bar(made, tmp_path, capfd):
    """The library never prints: DuckDB draws a progress bar on stdout for a query that runs
    over ``progress_bar_time`` (2 s, a summary of millions of rows); here made 0 so that a
    short query would draw it, on every kind of connection likelab opens."""
    spec = load_study(made[0])
    query = "SELECT sum(i * i) FROM range(3000000) t(i)"
    capfd.readouterr()
    with Store(made[1], read_only=True) as db, Store(tmp_path / "new.duckdb", spec) as new:
        for con in (db.con, new.con):
            con.execute("SET progress_bar_time = 0")
            con.execute(query).fetchall()
    with connect(made[1], read_only=True) as con:
        con.execute("SET progress_bar_time = 0")
        con.execute(query).fetchall()
    assert capfd.readouterr() == ("", "")


def test_the_writers_buffer_pool_is_small(made, tmp_path):
    """A committed cell's blocks stay in DuckDB's buffer pool up to its limit, never read again
    by the writer: the writer's limit is small (its memory was 800 MB after 4e7 rows at 512
    MB), the reader's (one summary query) larger."""

    def limit(con):
        return con.execute(
            "SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'"
        ).fetchone()[0]

    with Store(tmp_path / "new.duckdb", load_study(made[0])) as db:
        assert limit(db.con) in ("122.0 MiB", "128.0 MB")
    with Store(made[1], read_only=True) as db:
        assert limit(db.con) in ("488.2 MiB", "512.0 MB")


def test_a_path_duckdb_would_read_as_remote_is_a_local_file(made, tmp_path, monkeypatch):
    """``md:x`` (MotherDuck) or ``s3://...`` name local files here: the path is made absolute."""
    monkeypatch.chdir(tmp_path)
    spec = load_study(made[0])
    (tmp_path / "md:study.duckdb").unlink(missing_ok=True)
    with Store("md:study.duckdb", spec) as db:
        assert db.created
    assert (tmp_path / "md:study.duckdb").is_file()


def test_corruption_met_while_reading_names_the_store(made, tmp_path):
    bad = _bytes(made, tmp_path, lambda d: d[: len(d) * 2 // 5])
    from likelab.study import summarise

    with pytest.raises(StoreError, match=r"'.*edited\.duckdb' is damaged \(truncated"):
        summarise(bad)


def test_a_study_of_another_version_names_the_version(made, tmp_path):
    old = _duckdb(
        _copy(made, tmp_path),
        "ALTER TABLE cells RENAME COLUMN seconds TO secs",
        "UPDATE study SET likelab_version = '0.0.1'",
    )
    with pytest.raises(StoreError, match=r"another schema .*written by likelab 0\.0\.1"):
        Store(old, read_only=True)


def test_a_run_into_an_unwritable_place_is_one_line(made, tmp_path, capsys):
    code, _, err = run(
        capsys,
        "study",
        "run",
        made[0],
        "--store",
        tmp_path / "no" / "s.duckdb",
        "--executor",
        "local",
    )
    assert code == 2
    _one_line_naming(err, tmp_path / "no" / "s.duckdb", "folder does not exist")
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        target = locked / "s.duckdb"
        if os.access(locked, os.W_OK):  # root ignores the mode: use a read-only filesystem
            target = "/sys/likelab-store-test.duckdb"
            if os.access("/sys", os.W_OK) and not os.path.ismount("/sys"):
                pytest.skip("no read-only location to try")
        code, _, err = run(
            capsys, "study", "run", made[0], "--store", target, "--executor", "local"
        )
        assert code == 2
        _one_line_naming(err, target, "permission denied")
    finally:
        locked.chmod(0o700)


def test_a_store_in_use_by_a_writer_is_named(made, tmp_path):
    store = _copy(made, tmp_path)
    holder = tmp_path / "hold.py"
    holder.write_text(
        "import sys, time, duckdb\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "print('open', flush=True)\n"
        "time.sleep(60)\n"
    )
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, str(holder), str(store)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"open"
        with pytest.raises(StoreError, match=r"in use by another process"):
            Store(store, read_only=True)
    finally:
        proc.kill()
        proc.wait()


def _refused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on return: nothing listens there


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("not an address", "not a Dask scheduler address"),
        ("tcp://127.0.0.1", "not a Dask scheduler address"),
        ("tcp://127.0.0.1:99999", "not a Dask scheduler address"),
        ("http://127.0.0.1:8786", "not a Dask scheduler address"),
        ("REFUSED", "cannot reach the Dask scheduler"),
        ("tcp://no-such-host.invalid:8786", "cannot reach the Dask scheduler"),
        ("SILENT", "no Dask scheduler answers"),  # accepts, never speaks: the client hung
    ],
)
def test_a_bad_scheduler_fails_fast_and_leaves_no_store(address, fragment, made, tmp_path, capsys):
    pytest.importorskip("distributed")
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # connections queue in the backlog, never accepted
    if address == "REFUSED":
        address = f"tcp://127.0.0.1:{_refused_port()}"
    if address == "SILENT":
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
    store = tmp_path / "fresh.duckdb"
    start = time.perf_counter()
    code, _, err = run(
        capsys,
        "study",
        "run",
        made[0],
        "--store",
        store,
        "--executor",
        "dask",
        "--scheduler",
        address,
    )
    silent.close()
    assert time.perf_counter() - start < 10  # not distributed's 30-second retry loop
    assert code == 2 and fragment in err and address in err and err.count("\n") == 1, err
    assert not store.exists() and not store.with_name("fresh.duckdb.wal").exists()


def test_a_failed_first_run_removes_only_the_store_it_created(made, tmp_path, monkeypatch):
    import likelab.study.runner as runner

    def broken(spec, cell):
        raise RuntimeError("the executor fell over")

    monkeypatch.setattr(runner, "run_cell", broken)
    spec = load_study(made[0])
    fresh = tmp_path / "fresh.duckdb"
    with pytest.raises(RuntimeError, match="fell over"):
        run_study(spec, fresh, executor="local")
    assert not fresh.exists()  # nothing kept, nothing claimed
    # a store that existed (here an empty DuckDB database) is never removed
    existing = _duckdb(tmp_path / "existing.duckdb", "SELECT 1")
    with pytest.raises(RuntimeError, match="fell over"):
        run_study(spec, existing, executor="local")
    assert existing.is_file()
