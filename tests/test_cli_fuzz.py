"""Fuzz table over the whole CLI: malformed files, specs, paths and sizes, every command.

Each case runs ``likelab ARGS`` in-process with the working directory set to a fresh
``tmp_path`` holding a few fixtures (valid data, a file, a directory, a read-only directory, a
study store where the case needs one, and the case's own malformed file) and asserts what every
bad input must give: exit status 2, exactly one line on stderr, starting with ``error:``, no
traceback and no "internal error", and nothing written, changed or removed under ``tmp_path``.
Every case fails at validation, so the table runs in seconds.

The cases are built from lists of malformed values crossed with the commands and options that
take them; ids name the command, the option and the value.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from cli_support import run
from likelab.cli import main

# ---------------------------------------------------------------------- fixtures in every case
VALID_DATA = "\n".join(f"{0.1 * i - 0.9:.3f}" for i in range(20)) + "\n"
VALID_STUDY = """\
name: fuzz
seed: 1
dgps:
  - family: normal
    params: {loc: [0], scale: [1]}
sample_sizes: [10]
replicates: 4
model:
  family: normal
objectives: [log]
"""
RO = "{RO}"  # placeholder: a directory nobody (root included) can write into
STORE = "store.duckdb"  # placeholder: a valid study store, copied in where a case names it

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


class Case:
    """One row of the table: argv (with placeholders) and the malformed files it needs."""

    def __init__(self, cid: str, args: list[str], files: dict[str, bytes | None] | None = None):
        self.id = cid
        self.args = args
        self.files = files or {}


CASES: list[Case] = []


def case(cid: str, *args: str, files: dict[str, bytes | None] | None = None) -> None:
    CASES.append(Case(cid, list(args), files))


# ---------------------------------------------------------------------- malformed data files
BAD_DATA: dict[str, bytes] = {
    "empty": b"",
    "blank": b"\n  \n\t\n",
    "binary": bytes(range(256)) * 4,
    "nul": b"\x00\x00\x00",
    "non_utf8": b"1\n2\n\xff\xfe3\n",
    "latin1": "1\n2\n\xe9\n".encode("latin-1"),
    "bom_only": b"\xef\xbb\xbf",
    "bom_header_only": b"\xef\xbb\xbfx\n",
    "bom_nan": b"\xef\xbb\xbf1\nnan\n3\n",
    "nan": b"1\nnan\n3\n",
    "inf": b"1\n-inf\n3\n",
    "overflow": b"1\n1e999\n3\n",
    "ragged": b"1\n2,3\n4\n",
    "ragged_csv": b"x,y\n1,2\n3\n",
    "letters": b"x\na\nb\n",
    "header_only": b"x\n",
    "comment_only": b"# nothing here\n",
    "mixed": b"1\n2\nabc\n",
    "python_hex": b"0x10\n1_000\n 3\n",
    "underscore": b"1\n1_000\n3\n",
    "utf16": "1\n2\n3\n".encode("utf-16"),
    "huge_digits": b"1" + b"0" * 400 + b"\n2\n",
}
DATA_COMMANDS = {
    "fit": lambda f: ["fit", f],
    "fit_poisson": lambda f: ["fit", f, "--family", "poisson"],
    "landscape": lambda f: [
        "landscape",
        "--data",
        f,
        "--param",
        "loc=-1:1:5",
        "--fix",
        "scale=1",
        "--objectives",
        "log",
    ],
}
for cmd, build in DATA_COMMANDS.items():
    for name, content in BAD_DATA.items():
        case(f"{cmd}-data-{name}", *build("bad.txt"), files={"bad.txt": content})
    case(f"{cmd}-data-directory", *build("adir"))
    case(f"{cmd}-data-missing", *build("missing.txt"))
    case(f"{cmd}-data-empty-path", *build(""))

# ---------------------------------------------------------------------- objective specs
BAD_OBJECTIVES = [
    "",
    ",",
    " , ",
    "nope",
    "lq:q",
    "lq:q=",
    "lq:=1",
    "lq:q=abc",
    "lq:q=-1",
    "lq:q=nan",
    "lq:q=inf",
    "lq:r=0.5",
    "pseudospherical:gamma=0.5",
    "dpd:beta=-0.5",
    "focal:gamma=-1",
    "log:foo=1",
    "lóg",
    "log:",
    ":",
    "log,log",
    "log,nll",
    "os:system",
    "no_such_module_xyz:f",
    "likelab.cli:no_such_function",
    "phi:",
    "phi:p+",
    "phi:__import__('os')",
    "phi:q*2",
    "log\x00",
    "日本",
]
OBJECTIVE_COMMANDS = {
    "landscape": lambda o: [
        "landscape",
        "--data",
        "data.txt",
        "--param",
        "loc=-1:1:5",
        "--fix",
        "scale=1",
        "--objectives",
        o,
    ],
    "fit": lambda o: ["fit", "data.txt", "--objective", o],
    "properness": lambda o: ["properness", "--objectives", o, "--classes", "3"],
    "train": lambda o: [
        "train",
        "--dataset",
        "xor",
        "--objectives",
        o,
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--model",
        "logistic",
    ],
}
for cmd, build in OBJECTIVE_COMMANDS.items():
    for i, spec in enumerate(BAD_OBJECTIVES):
        case(f"{cmd}-objective-{i}-{spec.encode('unicode_escape').decode()}", *build(spec))

# ---------------------------------------------------------------------- family specs
BAD_FAMILIES = [
    "",
    "nope",
    "normal:scale=-1",
    "normal:scale=0",
    "normal:loc=nan",
    "normal:loc=inf",
    "normal:foo=1",
    "normal:scale",
    "normal:scale=abc",
    "normäl",
    "student_t:df=0",
    "student_t:df=-2",
    "uniform:low=1,high=0",
    "categorical:probs=0.2",
    "poisson:rate=-1",
    "normal:",
    ":normal",
    "normal:loc=0,loc=1",
]
FAMILY_COMMANDS = {
    "fit": lambda f: ["fit", "data.txt", "--family", f],
    "landscape": lambda f: [
        "landscape",
        "--data",
        "data.txt",
        "--family",
        f,
        "--param",
        "loc=-1:1:5",
        "--objectives",
        "log",
    ],
    "properness": lambda f: [
        "properness",
        "--objectives",
        "log",
        "--truth",
        "normal:loc=0,scale=1",
        "--family",
        f,
    ],
}
for cmd, build in FAMILY_COMMANDS.items():
    for i, spec in enumerate(BAD_FAMILIES):
        case(f"{cmd}-family-{i}-{spec}", *build(spec))

# ---------------------------------------------------------------------- data-generating processes
BAD_DGPS = [
    "",
    "normal",
    "normal:loc=0,scale=1",
    "normal:loc=0,scale=1,n=0",
    "normal:loc=0,scale=1,n=-1",
    "normal:loc=0,scale=1,n=1.5",
    "normal:loc=0,scale=1,n=abc",
    "normal:loc=0,scale=1,n=1e12",
    "normal:loc=0,scale=1,n=100000000000",
    "nope:n=5",
    "normal:loc=0,scale=-1,n=5",
    "normal:loc=0,scale=1,n=5,n=6",
    "normal:loc=nan,scale=1,n=5",
    "0.9 normal:loc=0,scale=1,n=5 + 0.2 normal:loc=1,scale=1",
    "1.5 normal:loc=0,scale=1,n=5 + -0.5 normal:loc=1,scale=1",
    "normal:loc=0,scale=1,n=5 +",
]
for i, spec in enumerate(BAD_DGPS):
    case(
        f"landscape-simulate-{i}-{spec}",
        "landscape",
        "--simulate",
        spec,
        "--param",
        "loc=-1:1:5",
        "--fix",
        "scale=1",
    )
BAD_TRUTHS = [
    "",
    "nope",
    "normal:loc=0,scale=-1",
    "normal:loc=0",
    "normal:loc=0,scale=0",
    "0.5 normal:loc=0,scale=1 + 0.6 normal:loc=1,scale=1",
    "normal:loc=abc,scale=1",
]
for i, spec in enumerate(BAD_TRUTHS):
    case(f"properness-truth-{i}-{spec}", "properness", "--objectives", "log", "--truth", spec)

# ---------------------------------------------------------------------- landscape grid and sizes
LANDSCAPE = ["landscape", "--data", "data.txt", "--objectives", "log"]
BAD_GRIDS = {
    "param-no-range": ["--param", "loc", "--fix", "scale=1"],
    "param-two-parts": ["--param", "loc=0:1", "--fix", "scale=1"],
    "param-reversed": ["--param", "loc=1:0:5", "--fix", "scale=1"],
    "param-one-point": ["--param", "loc=0:1:1", "--fix", "scale=1"],
    "param-zero-points": ["--param", "loc=0:1:0", "--fix", "scale=1"],
    "param-n-text": ["--param", "loc=0:1:abc", "--fix", "scale=1"],
    "param-n-float": ["--param", "loc=0:1:2.5", "--fix", "scale=1"],
    "param-nan": ["--param", "loc=nan:1:5", "--fix", "scale=1"],
    "param-inf": ["--param", "loc=0:inf:5", "--fix", "scale=1"],
    "param-unknown": ["--param", "nope=0:1:5", "--fix", "scale=1"],
    "param-outside-domain": ["--param", "scale=-1:1:5", "--fix", "loc=0"],
    "param-three-axes": ["--param", "loc=0:1:3", "--param", "scale=1:2:3", "--param", "x=0:1:3"],
    "param-twice": ["--param", "loc=0:1:3", "--param", "loc=0:2:3", "--fix", "scale=1"],
    "param-and-fix": ["--param", "loc=0:1:3", "--fix", "loc=1", "--fix", "scale=1"],
    "param-missing-free": ["--param", "loc=0:1:3"],
    "param-none": ["--fix", "scale=1"],
    "size-1e9-points": ["--param", "loc=0:1:1000000000", "--fix", "scale=1"],
    "size-1e5-squared": ["--param", "loc=0:1:100000", "--param", "scale=1:2:100000"],
    "size-1e12-points": ["--param", "loc=0:1:1000000000000", "--fix", "scale=1"],
    "fix-twice": ["--param", "loc=0:1:3", "--fix", "scale=1", "--fix", "scale=2"],
    "fix-no-value": ["--param", "loc=0:1:3", "--fix", "scale"],
    "fix-text": ["--param", "loc=0:1:3", "--fix", "scale=abc"],
    "fix-nan": ["--param", "loc=0:1:3", "--fix", "scale=nan"],
    "fix-negative": ["--param", "loc=0:1:3", "--fix", "scale=-1"],
    "fix-unknown": ["--param", "loc=0:1:3", "--fix", "scale=1", "--fix", "nope=1"],
    "fix-in-spec-too": ["--family", "normal:scale=1", "--param", "loc=0:1:3", "--fix", "scale=2"],
    "dtype": ["--param", "loc=0:1:3", "--fix", "scale=1", "--dtype", "float16"],
    "dtype-empty": ["--param", "loc=0:1:3", "--fix", "scale=1", "--dtype", ""],
    "seed-negative": ["--param", "loc=0:1:3", "--fix", "scale=1", "--seed", "-1"],
    "seed-text": ["--param", "loc=0:1:3", "--fix", "scale=1", "--seed", "abc"],
    "data-and-simulate": [
        "--simulate",
        "normal:loc=0,scale=1,n=5",
        "--param",
        "loc=0:1:3",
        "--fix",
        "scale=1",
    ],
    "seed-example-and-param": ["--seed-example", "--param", "loc=0:1:3"],
}
for name, extra in BAD_GRIDS.items():
    case(f"landscape-{name}", *LANDSCAPE, *extra)
case("landscape-no-data", "landscape", "--param", "loc=0:1:3", "--fix", "scale=1")
case("landscape-seed-example-negative-seed", "landscape", "--seed-example", "--seed", "-1")
case(
    "landscape-simulate-1e9",
    "landscape",
    "--simulate",
    "normal:loc=0,scale=1,n=1000000000",
    "--param",
    "loc=0:1:3",
    "--fix",
    "scale=1",
)

# ---------------------------------------------------------------------- fit options and sizes
BAD_FIT = {
    "multistart-zero": ["--multistart", "0"],
    "multistart-negative": ["--multistart", "-5"],
    "multistart-1e9": ["--multistart", "1000000000"],
    "multistart-text": ["--multistart", "many"],
    "seed-negative": ["--seed", "-1"],
    "column-unknown": ["--column", "nope"],
    "column-out-of-range": ["--column", "5"],
    "column-negative": ["--column", "-1"],
    "fix-twice": ["--fix", "scale=1", "--fix", "scale=2"],
    "fix-all": ["--fix", "scale=1", "--fix", "loc=0"],
    "fix-unknown": ["--fix", "nope=1"],
    "fix-bad-value": ["--fix", "scale=0"],
    "fix-in-spec-too": ["--family", "normal:scale=1", "--fix", "scale=2"],
    "categorical-real-data": ["--family", "categorical"],
    "exponential-negative-data": ["--family", "exponential"],
    "no-such-option": ["--nope"],
}
for name, extra in BAD_FIT.items():
    case(f"fit-{name}", "fit", "data.txt", *extra)
case("fit-no-file", "fit")

# ---------------------------------------------------------------------- properness options
BAD_PROPERNESS = {
    "classes-one": ["--classes", "1"],
    "classes-zero": ["--classes", "0"],
    "classes-negative": ["--classes", "-3"],
    "classes-text": ["--classes", "three"],
    "classes-1e6": ["--classes", "1000000"],
    "seed-negative": ["--seed", "-1"],
    "family-without-truth": ["--family", "normal"],
}
for name, extra in BAD_PROPERNESS.items():
    case(f"properness-{name}", "properness", "--objectives", "log", *extra)

# ---------------------------------------------------------------------- underflow
BAD_LIKELIHOODS = ["", ",", "abc", "0", "-0.1", "1.5", "nan", "inf", "0.3,,x", "0.3;0.2"]
for i, value in enumerate(BAD_LIKELIHOODS):
    case(f"underflow-likelihoods-{i}-{value}", "underflow", "--likelihoods", value)
for value in ("1", "0", "-4", "abc", "1000000000", "1000000000000"):
    case(f"underflow-num-classes-{value}", "underflow", "--num-classes", value)

# ---------------------------------------------------------------------- train specs and numbers
TRAIN = ["train", "--epochs", "1", "--seeds", "1", "--model", "logistic", "--objectives", "log"]
BAD_DATASETS = ["", "nope", "xor:flip=abc", "xor:flip=2", "xor:flip=-0.1", "iris:foo=1", "ïris"]
for i, value in enumerate(BAD_DATASETS):
    case(f"train-dataset-{i}-{value}", *TRAIN, "--dataset", value)
BAD_MODELS = ["nope", "mlp:0", "mlp:-1", "mlp:abc", "mlp:", "mlp:100000,100000", "logistic:x"]
for i, value in enumerate(BAD_MODELS):
    case(
        f"train-model-{i}-{value}",
        "train",
        "--dataset",
        "xor",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--objectives",
        "log",
        "--model",
        value,
    )
for i, value in enumerate(["bogus:0.1", "symmetric:2", "symmetric:abc", "symmetric", ""]):
    case(f"train-noise-{i}-{value}", *TRAIN, "--dataset", "xor", "--noise", value)
BAD_TRAIN_NUMBERS = {
    "epochs-zero": ["--epochs", "0"],
    "epochs-negative": ["--epochs", "-1"],
    "seeds-zero": ["--seeds", "0"],
    "lr-zero": ["--lr", "0"],
    "lr-negative": ["--lr", "-1"],
    "lr-nan": ["--lr", "nan"],
    "lr-inf": ["--lr", "inf"],
    "batch-size-negative": ["--batch-size", "-1"],
    "validation-above-one": ["--validation", "1.5"],
    "validation-negative": ["--validation", "-0.1"],
    "patience-negative": ["--patience", "-1"],
    "optimizer": ["--optimizer", "nope"],
}
for name, extra in BAD_TRAIN_NUMBERS.items():
    case(f"train-{name}", *TRAIN, "--dataset", "xor", *extra)

# ---------------------------------------------------------------------- output paths
BAD_FIGURE_PATHS = {
    "empty": "",
    "directory": "adir",
    "dot": ".",
    "unknown-extension": "out.xyz",
    "no-extension": "figure",
    "data-extension": "out.csv",
    "missing-parent": "missing/out.png",
    "file-as-parent": "afile/out.png",
    "read-only-dir": f"{RO}/out.png",
}
FIGURE_COMMANDS = {
    "landscape": [
        "landscape",
        "--data",
        "data.txt",
        "--param",
        "loc=-1:1:5",
        "--fix",
        "scale=1",
        "--objectives",
        "log",
    ],
    "properness": ["properness", "--objectives", "log", "--classes", "3"],
    "underflow": ["underflow"],
    "landscape-seed-example": ["landscape", "--seed-example"],
    "asymptotics": [
        "asymptotics",
        "--family",
        "normal",
        "--truth",
        "normal:loc=0,scale=1",
        "--contamination",
        "0.1",
        "--at",
        "normal:loc=8,scale=1",
    ],
}
for cmd, base in FIGURE_COMMANDS.items():
    for name, path in BAD_FIGURE_PATHS.items():
        case(f"{cmd}-plot-{name}", *base, "--plot", path)
        if cmd == "landscape":
            case(f"{cmd}-json-plot-{name}", *base, "--json", "--plot", path)

BAD_DIR_PATHS = {
    "empty": "",
    "existing-file": "afile",
    "missing-parent": "missing/sub",
    "file-as-parent": "afile/sub",
    "read-only-parent": f"{RO}/sub",
}
for name, path in BAD_DIR_PATHS.items():
    case(f"demo-out-{name}", "demo", "--quick", "--out", path)
    case(f"report-out-{name}", "report", STORE, "--out", path)
    case(f"train-plot-{name}", *TRAIN, "--dataset", "xor", "--plot", path)
    case(f"train-report-{name}", *TRAIN, "--dataset", "xor", "--report", path)
case("demo-seed-negative", "demo", "--quick", "--seed", "-1")

BAD_TABLE_PATHS = {
    "empty": "",
    "directory": "adir",
    "missing-parent": "missing/out.csv",
    "file-as-parent": "afile/out.csv",
    "read-only-dir": f"{RO}/out.csv",
    "the-store-itself": STORE,
    "the-store-by-another-name": f"./adir/../{STORE}",
}
for name, path in BAD_TABLE_PATHS.items():
    case(f"summary-csv-{name}", "study", "summary", STORE, "--csv", path)
    case(f"summary-parquet-{name}", "study", "summary", STORE, "--parquet", path)

# ---------------------------------------------------------------------- stores
BAD_STORES: dict[str, bytes | None] = {
    "empty": b"",
    "binary": bytes(range(256)) * 64,
    "text": b"this is not a database\n",
    "sqlite": None,  # built in the test: a SQLite database
    "duckdb-no-tables": None,  # an empty DuckDB database
    "duckdb-other-tables": None,  # a DuckDB database of something else
    "truncated": None,  # the valid store cut in half
    "corrupted": None,  # the valid store with 8 KB of a data block in use flipped
}
for name in BAD_STORES:
    case(f"summary-store-{name}", "study", "summary", f"bad-{name}.duckdb", files={name: None})
    case(f"report-store-{name}", "report", f"bad-{name}.duckdb", files={name: None})
for cmd in (["study", "summary"], ["report"]):
    case(f"{'-'.join(cmd)}-store-directory", *cmd, "adir")
    case(f"{'-'.join(cmd)}-store-missing", *cmd, "missing.duckdb")

# ---------------------------------------------------------------------- study files
STUDY_MUTATIONS: dict[str, bytes] = {
    "empty": b"",
    "binary": bytes(range(256)),
    "non-utf8": VALID_STUDY.replace("fuzz", "f\xe9zz").encode("latin-1"),
    "not-yaml": b"name: [unclosed\n",
    "a-list": b"- 1\n- 2\n",
    "replicates-true": VALID_STUDY.replace("replicates: 4", "replicates: true").encode(),
    "replicates-zero": VALID_STUDY.replace("replicates: 4", "replicates: 0").encode(),
    "replicates-1e12": VALID_STUDY.replace("replicates: 4", "replicates: 1000000000000").encode(),
    "n-1e10": VALID_STUDY.replace("[10]", "[10000000000]").encode(),
    "n-zero": VALID_STUDY.replace("[10]", "[0]").encode(),
    "objectives-alias-twice": VALID_STUDY.replace("[log]", "[log, nll]").encode(),
    "objectives-empty": VALID_STUDY.replace("[log]", "[]").encode(),
    "objectives-unknown": VALID_STUDY.replace("[log]", "[nope]").encode(),
    "estimand-empty": (VALID_STUDY + "estimand: []\n").encode(),
    "duplicate-key": (VALID_STUDY + "replicates: 5\n").encode(),
    "dgps-empty": VALID_STUDY.replace(
        "  - family: normal\n    params: {loc: [0], scale: [1]}\n", ""
    )
    .replace("dgps:\n", "dgps: []\n")
    .encode(),
    "family-unknown": VALID_STUDY.replace("  family: normal\nobj", "  family: nope\nobj").encode(),
    "unknown-key": (VALID_STUDY + "colour: blue\n").encode(),
    "param-outside-domain": VALID_STUDY.replace("scale: [1]", "scale: [-1]").encode(),
}
for name, content in STUDY_MUTATIONS.items():
    case(
        f"study-run-file-{name}",
        "study",
        "run",
        "study.yaml",
        "--executor",
        "local",
        files={"study.yaml": content},
    )
case("study-run-file-missing", "study", "run", "missing.yaml")
case("study-run-file-directory", "study", "run", "adir")
STUDY_OPTIONS = {
    "executor-unknown": ["--executor", "nope"],
    "workers-zero": ["--workers", "0"],
    "workers-negative": ["--workers", "-2"],
    "scheduler-malformed": ["--executor", "dask", "--scheduler", "not a url"],
    "scheduler-bad-port": ["--executor", "dask", "--scheduler", "tcp://127.0.0.1:99999"],
    "store-directory": ["--store", "adir"],
    "store-unrelated-file": ["--store", "afile"],
    "store-missing-parent": ["--store", "missing/s.duckdb"],
    "store-read-only-dir": ["--store", f"{RO}/s.duckdb"],
}
for name, extra in STUDY_OPTIONS.items():
    case(
        f"study-run-{name}",
        "study",
        "run",
        "study.yaml",
        *extra,
        files={"study.yaml": VALID_STUDY.encode()},
    )

# ---------------------------------------------------------------------- listing commands, usage
for cmd in (["objectives"], ["families"], ["study", "summary"], ["report"], ["underflow"]):
    case(f"{'-'.join(cmd)}-unknown-option", *cmd, "--nope")
case("objectives-extra-argument", "objectives", "extra")
case("families-extra-argument", "families", "--json", "extra")
case("unknown-command", "nope")
case("study-unknown-command", "study", "nope")


# ---------------------------------------------------------------------- the test
@pytest.fixture(scope="session")
def valid_store(tmp_path_factory) -> Path:
    """A small, valid study store (4 fits), made once."""
    d = tmp_path_factory.mktemp("store")
    (d / "s.yaml").write_text(VALID_STUDY)
    code = main(
        [
            "study",
            "run",
            str(d / "s.yaml"),
            "--executor",
            "local",
            "--store",
            str(d / STORE),
            "--json",
        ]
    )
    assert code == 0
    return d / STORE


def _bad_store(kind: str, target: Path, valid: Path) -> None:
    if BAD_STORES[kind] is not None:
        target.write_bytes(BAD_STORES[kind])
    elif kind == "sqlite":
        con = sqlite3.connect(target)
        con.execute("create table t (x int)")
        con.commit()
        con.close()
    elif kind.startswith("duckdb"):
        import duckdb

        con = duckdb.connect(str(target))
        if kind == "duckdb-other-tables":
            con.execute("create table cells (x integer)")
            con.execute("insert into cells values (1)")
        con.close()
    else:
        blob = valid.read_bytes()
        if kind == "truncated":
            target.write_bytes(blob[: len(blob) // 2])
        else:
            # 8 KB of a data block flipped, past the file's three 4 KB headers, where the
            # bytes are in use (a block's unused, zero tail is never read: flipping it changes
            # nothing that any query sees, so it is no corruption at all)
            start = next(i for i in range(12288, len(blob), 4096) if any(blob[i : i + 4096]))
            flipped = bytes(b ^ 0xA5 for b in blob[start : start + 8192])
            target.write_bytes(blob[:start] + flipped + blob[start + 8192 :])


def _tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its kind, permissions and content hash."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            out[rel] = f"{oct(st.st_mode)} {digest}"
    return out


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    c, tmp_path, capsys, monkeypatch, valid_store
):
    monkeypatch.chdir(tmp_path)
    # sizes are judged against a fixed budget, whatever the machine running the tests
    monkeypatch.setenv("LIKELAB_MEMORY_LIMIT", "4GB")
    monkeypatch.delenv("LIKELAB_DEBUG", raising=False)
    (tmp_path / "data.txt").write_text(VALID_DATA)
    (tmp_path / "afile").write_text("a file, not a directory\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "adir" / "keep.txt").write_text("inside\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    # root writes into a 0555 directory anyway; /proc refuses new files even to root
    ro_path = "/proc" if IS_ROOT else "ro"
    if STORE in c.args:
        shutil.copy(valid_store, tmp_path / STORE)
    for name, content in c.files.items():
        if name in BAD_STORES:
            _bad_store(name, tmp_path / f"bad-{name}.duckdb", valid_store)
        else:
            (tmp_path / name).write_bytes(content)
    args = [a.replace(RO, ro_path) for a in c.args]
    before = _tree(tmp_path)
    try:
        code, out, err = run(capsys, *args)
    finally:
        ro.chmod(0o755)
    ro.chmod(0o555)
    after = _tree(tmp_path)
    ro.chmod(0o755)
    lines = err.splitlines()
    assert code == 2, f"exit {code}; stderr: {err!r}; stdout: {out[:300]!r}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err!r}"
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err + out and "internal error" not in err, err
    written, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    assert after == before, f"written: {written}, removed: {removed}, changed: {changed}"


def test_the_table_is_large_and_ids_are_unique():
    assert len(CASES) >= 300
    assert len({c.id for c in CASES}) == len(CASES)
