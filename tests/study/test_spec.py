"""Study files: valid ones load; malformed ones give one line naming the field, exit 2, no store."""

import textwrap

import pytest
from tests.cli_support import run

from likelab.errors import SpecError
from likelab.study import cells, dgp_points, load_study

GOOD = """
name: tiny
seed: 1
dgps:
  - family: normal
    params: {loc: 0, scale: [1, 2]}
  - family: normal
    params: {loc: 0, scale: 1}
    contamination: {eps: [0.1, 0.2], dgp: "normal:loc=8,scale=1"}
sample_sizes: [10, 20]
replicates: 5
block: 3
model: {family: normal, estimand: [loc, scale]}
objectives: [log, "dpd:beta=0.5"]
"""


def write(tmp_path, text, name="study.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_good_study_expands_into_cells(tmp_path):
    spec = load_study(write(tmp_path, GOOD))
    points = dgp_points(spec)
    assert [p.spec for p in points] == [
        "normal:loc=0,scale=1",
        "normal:loc=0,scale=2",
        "0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1",
        "0.8 normal:loc=0,scale=1 + 0.2 normal:loc=8,scale=1",
    ]
    # under contamination the estimand is the uncontaminated distribution's parameter
    assert points[3].truth == {"loc": 0.0, "scale": 1.0}
    c = cells(spec)
    assert len(c) == 4 * 2 * 2 and [x.replicates for x in c[:2]] == [3, 2]
    assert c[1].key == "normal:loc=0,scale=1|n=10|block=1" and c[1].first == 3
    # TOML describes the same study: the same hash
    toml = write(
        tmp_path,
        """
        name = "tiny"
        seed = 1
        sample_sizes = [10, 20]
        replicates = 5
        block = 3
        objectives = ["log", "dpd:beta=0.5"]
        model = {family = "normal", estimand = ["loc", "scale"]}
        [[dgps]]
        family = "normal"
        params = {loc = 0, scale = [1, 2]}
        [[dgps]]
        family = "normal"
        params = {loc = 0, scale = 1}
        contamination = {eps = [0.1, 0.2], dgp = "normal:loc=8,scale=1"}
        """,
        "study.toml",
    )
    assert load_study(toml).hash == spec.hash


def test_truth_from_the_model_and_fixed_at_the_truth(tmp_path):
    spec = load_study(
        write(
            tmp_path,
            """
            name: t
            seed: 0
            dgps: [{family: student_t, params: {loc: 1, scale: 1, df: 3}}]
            sample_sizes: [50]
            replicates: 2
            model: {family: normal, truth: {loc: 1}, estimand: [loc]}
            objectives: [log]
            """,
        )
    )
    assert dgp_points(spec)[0].truth == {"loc": 1.0}
    spec = load_study(
        write(
            tmp_path,
            """
            name: t
            seed: 0
            dgps: [{family: normal, params: {loc: 1, scale: [0.5, 2]}}]
            sample_sizes: [50]
            replicates: 2
            model: {family: normal, fixed: {scale: truth}}
            objectives: [log]
            """,
        )
    )
    assert [p.fixed for p in dgp_points(spec)] == [{"scale": 0.5}, {"scale": 2.0}]
    assert dgp_points(spec)[0].truth == {"loc": 1.0}


TOML = """
name = "tiny"
seed = 1
sample_sizes = [10, 20]
replicates = 5
block = 3
objectives = ["log", "dpd:beta=0.5"]
model = {family = "normal", estimand = ["loc", "scale"]}
[[dgps]]
family = "normal"
params = {loc = 0, scale = [1, 2]}
[[dgps]]
family = "normal"
params = {loc = 0, scale = 1}
contamination = {eps = [0.1, 0.2], dgp = "normal:loc=8,scale=1"}
"""


def _edit(old, new):
    assert old in GOOD, old
    return GOOD.replace(old, new)


MALFORMED = {
    "yaml syntax": ("name: [unclosed\n", "YAML syntax error at line"),
    "not a mapping": ("- just\n- a list\n", "must be a mapping"),
    "unknown top-level key": (GOOD + "colour: blue\n", "colour: unknown key"),
    "missing name": (_edit("name: tiny\n", ""), "name: required field missing"),
    "missing dgps": (_edit("dgps:\n", "dgpz:\n"), "dgps: required field missing"),
    "seed not an integer": (_edit("seed: 1", "seed: one"), "seed:"),
    "negative seed": (_edit("seed: 1", "seed: -3"), "seed:"),
    "replicates zero": (_edit("replicates: 5", "replicates: 0"), "replicates:"),
    "replicates wrong type": (_edit("replicates: 5", "replicates: many"), "replicates:"),
    "n < 1": (_edit("sample_sizes: [10, 20]", "sample_sizes: [0, 20]"), "sample_sizes[0]:"),
    "n not integer": (_edit("sample_sizes: [10, 20]", "sample_sizes: [10.5]"), "sample_sizes"),
    "empty sample sizes": (_edit("sample_sizes: [10, 20]", "sample_sizes: []"), "sample_sizes"),
    "repeated n": (_edit("sample_sizes: [10, 20]", "sample_sizes: [10, 10]"), "repeated"),
    "unknown family": (
        _edit(
            "- family: normal\n    params: {loc: 0, scale: [1, 2]}",
            "- family: gaussian\n    params: {loc: 0, scale: [1, 2]}",
        ),
        "dgps[0].family",
    ),
    "negative scale": (_edit("scale: [1, 2]", "scale: [1, -2]"), "dgps[0].params"),
    "missing parameter": (_edit("{loc: 0, scale: [1, 2]}", "{loc: 0}"), "dgps[0].params"),
    "unknown parameter": (
        _edit("{loc: 0, scale: [1, 2]}", "{loc: 0, scale: 1, df: 3}"),
        "dgps[0].params.df",
    ),
    "parameter not a number": (_edit("scale: [1, 2]", "scale: big"), "dgps[0].params.scale"),
    "eps out of range": (_edit("eps: [0.1, 0.2]", "eps: [0.1, 1.5]"), "dgps[1].contamination.eps"),
    "bad contamination dgp": (
        _edit('dgp: "normal:loc=8,scale=1"', 'dgp: "normal:loc=8"'),
        "dgps[1].contamination.dgp",
    ),
    "unknown key in dgp": (
        _edit("    contamination:", "    contaminaton:"),
        "dgps[1].contaminaton: unknown key",
    ),
    "unknown objective": (
        _edit('objectives: [log, "dpd:beta=0.5"]', "objectives: [log, nope]"),
        "objectives[1]",
    ),
    "bad objective parameter": (_edit('"dpd:beta=0.5"', '"dpd:beta=-1"'), "objectives[1]"),
    "product cannot be fitted": (_edit('"dpd:beta=0.5"', "product"), "objectives[1]"),
    "empty objectives": (
        _edit('objectives: [log, "dpd:beta=0.5"]', "objectives: []"),
        "objectives",
    ),
    "estimand not in model": (
        _edit("estimand: [loc, scale]", "estimand: [loc, df]"),
        "model.estimand",
    ),
    "unknown model family": (
        _edit("model: {family: normal", "model: {family: nrml"),
        "model.family",
    ),
    "all parameters fixed": (
        _edit(
            "model: {family: normal, estimand: [loc, scale]}",
            "model: {family: normal, fixed: {loc: 0, scale: 1}}",
        ),
        "model.fixed",
    ),
    "no truth for estimand": (
        _edit("model: {family: normal", "model: {family: laplace"),
        "model.truth.loc",
    ),
    "multistart zero": (GOOD + "fit: {multistart: 0}\n", "fit.multistart"),
    "unknown fit option": (GOOD + "fit: {tolerance: 1e-8}\n", "fit.tolerance: unknown key"),
    # strict types: a bool, a float or a string is not a count; a string or a bool not a number
    "replicates true": (
        _edit("replicates: 5", "replicates: true"),
        "replicates: input should be a valid integer, got True",
    ),
    "replicates 1.5": (
        _edit("replicates: 5", "replicates: 1.5"),
        "replicates: input should be a valid integer, got 1.5",
    ),
    "replicates 5.0": (
        _edit("replicates: 5", "replicates: 5.0"),
        "replicates: input should be a valid integer",
    ),
    "replicates quoted": (
        _edit("replicates: 5", 'replicates: "5"'),
        "replicates: input should be a valid integer, got '5'",
    ),
    "replicates 1e10": (
        _edit("replicates: 5", "replicates: 1e10"),
        "replicates: input should be a valid integer",
    ),
    "block false": (_edit("block: 3", "block: false"), "block: input should be a valid integer"),
    "block zero": (
        _edit("block: 3", "block: 0"),
        "block: input should be greater than or equal to 1",
    ),
    "seed true": (_edit("seed: 1", "seed: true"), "seed: input should be a valid integer"),
    "seed float": (_edit("seed: 1", "seed: 1.0"), "seed: input should be a valid integer"),
    "multistart true": (
        GOOD + "fit: {multistart: true}\n",
        "fit.multistart: input should be a valid integer",
    ),
    "max_iter float": (
        GOOD + "fit: {max_iter: 50.5}\n",
        "fit.max_iter: input should be a valid integer",
    ),
    "negative n": (
        _edit("sample_sizes: [10, 20]", "sample_sizes: [10, -20]"),
        "sample_sizes[1]: input should be greater than or equal to 1",
    ),
    "n true": (
        _edit("sample_sizes: [10, 20]", "sample_sizes: [true, 20]"),
        "sample_sizes[0]: input should be a valid integer",
    ),
    "sample sizes not a list": (
        _edit("sample_sizes: [10, 20]", "sample_sizes: 10"),
        "sample_sizes: input should be a valid list",
    ),
    "parameter quoted": (
        _edit("scale: [1, 2]", 'scale: "2"'),
        "dgps[0].params.scale: input should be a valid number, got '2'",
    ),
    "parameter bool": (
        _edit("scale: [1, 2]", "scale: [1, true]"),
        "dgps[0].params.scale[1]: input should be a valid number, got True",
    ),
    "parameter hex": (
        _edit("scale: [1, 2]", "scale: [1, 0x10]"),
        "dgps[0].params.scale[1]: input should be a valid number, got '0x10'",
    ),
    "parameter underscores": (
        _edit("scale: [1, 2]", "scale: 1_000"),
        "dgps[0].params.scale: input should be a valid number, got '1_000'",
    ),
    "parameter sexagesimal": (
        _edit("scale: [1, 2]", "scale: 1:30"),
        "dgps[0].params.scale: input should be a valid number, got '1:30'",
    ),
    "NaN in a grid": (
        _edit("scale: [1, 2]", "scale: [1, .nan]"),
        "dgps[0].params.scale[1]: input should be a finite number, got nan",
    ),
    "infinity in a grid": (
        _edit("loc: 0, scale: [1, 2]", "loc: [0, -.inf], scale: 1"),
        "dgps[0].params.loc[1]: input should be a finite number",
    ),
    "NaN eps": (
        _edit("eps: [0.1, 0.2]", "eps: .NaN"),
        "dgps[1].contamination.eps: input should be a finite number",
    ),
    "NaN truth": (
        _edit("estimand: [loc, scale]", "truth: {loc: .nan}"),
        "model.truth.loc: input should be a finite number",
    ),
    "fixed not a number": (
        _edit("estimand: [loc, scale]", "fixed: {scale: truthy}"),
        "model.fixed.scale",
    ),
    "name not a string": (
        _edit("name: tiny", "name: 123"),
        "name: input should be a valid string, got 123",
    ),
    "objectives not a list": (
        _edit('objectives: [log, "dpd:beta=0.5"]', "objectives: log"),
        "objectives: input should be a valid list",
    ),
    "unknown key in model": (
        _edit("estimand: [loc, scale]", "estimands: [loc]"),
        "model.estimands: unknown key",
    ),
    # empty lists where one value at least is required
    "empty estimand": (
        _edit("estimand: [loc, scale]", "estimand: []"),
        "model.estimand: an empty list",
    ),
    "empty eps": (_edit("eps: [0.1, 0.2]", "eps: []"), "dgps[1].contamination.eps: an empty list"),
    "empty grid": (_edit("scale: [1, 2]", "scale: []"), "dgps[0].params.scale: an empty list"),
    "empty dgps": (
        _edit(GOOD[GOOD.index("dgps:") : GOOD.index("sample_sizes")], "dgps: []\n"),
        "dgps: an empty list",
    ),
    # one thing twice
    "estimand twice": (
        _edit("estimand: [loc, scale]", "estimand: [loc, loc]"),
        "model.estimand: 'loc' is listed twice",
    ),
    "objective twice": (
        _edit('objectives: [log, "dpd:beta=0.5"]', "objectives: [log, log]"),
        "objectives[1]: the objective of objectives[0] again (repeated)",
    ),
    "objective under an alias": (
        _edit('objectives: [log, "dpd:beta=0.5"]', "objectives: [log, nll]"),
        "objectives[1]: the objective of objectives[0] again ('nll' and 'log' are both 'log')",
    ),
    "objective spelled two ways": (
        _edit('"dpd:beta=0.5"', '"dpd:beta=0.5", dpd'),
        "objectives[2]: the objective of objectives[1] again ('dpd' and 'dpd:beta=0.5' are "
        "both 'dpd:beta=0.5')",
    ),
    "alias of linear": (
        _edit('"dpd:beta=0.5"', "linear, sum"),
        "('sum' and 'linear' are both 'linear')",
    ),
    "grid value twice": (_edit("scale: [1, 2]", "scale: [1, 1.0]"), "appears twice"),
    "duplicate top-level key": (
        _edit("seed: 1\n", "seed: 1\nseed: 2\n"),
        "line 4, column 1: the key 'seed' appears twice in one mapping (first at line 3)",
    ),
    "duplicate nested key": (
        _edit("{loc: 0, scale: [1, 2]}", "{loc: 0, scale: [1, 2], loc: 1}"),
        "the key 'loc' appears twice",
    ),
    "duplicate key after an edit": (
        GOOD + "replicates: 500\n",
        "the key 'replicates' appears twice",
    ),
    "parameter in the family and in params": (
        _edit(
            "- family: normal\n    params: {loc: 0, scale: [1, 2]}",
            '- family: "normal:loc=5"\n    params: {loc: 0, scale: [1, 2]}',
        ),
        "dgps[0].params.loc: 'loc' is already set in the family 'normal:loc=5': give it once",
    ),
    "model parameter fixed twice": (
        _edit(
            "model: {family: normal, estimand: [loc, scale]}",
            'model: {family: "normal:scale=1", fixed: {scale: 2}}',
        ),
        "model.fixed.scale: 'scale' is already set in the family 'normal:scale=1'",
    ),
    # the file itself
    "not UTF-8": (
        GOOD.replace("tiny", "tiny # café").encode("latin-1"),
        "not UTF-8 text: byte 0xe9 at offset",
    ),
    "NUL byte": (GOOD.replace("tiny", "ti\x00ny"), "unacceptable character #x0000"),
    "empty file": ("", "the study file is empty"),
    "too large": (GOOD + "# " + "x" * (1 << 20) + "\n", "a study file is at most 1,048,576 bytes"),
    "nested too deeply": ("[" * 50_000 + "]" * 50_000, "nests lists or mappings too deeply"),
    # sizes: refused from the file, before anything is allocated, with the estimate
    "replicates 1e10 as an integer": (
        _edit("replicates: 5", "replicates: 10000000000"),
        "replicates: input should be less than or equal to 2147483647",
    ),
    "replicates 1e12": (
        _edit("replicates: 5", "replicates: 1000000000000"),
        "replicates: input should be less than or equal to 2147483647",
    ),
    "n = 1e10": (
        _edit("sample_sizes: [10, 20]", "sample_sizes: [10, 10000000000]"),
        "sample_sizes[1]: input should be less than or equal to 2147483647",
    ),
    "n = 1e12": (
        _edit("sample_sizes: [10, 20]", "sample_sizes: [1000000000000]"),
        "sample_sizes[0]: input should be less than or equal to 2147483647",
    ),
    "a cell larger than memory": (
        _edit("sample_sizes: [10, 20]", "sample_sizes: [10, 2000000000]"),
        "sample_sizes: a cell of 3 replicates of n = 2,000,000,000 needs about 768 GB of memory",
    ),
    "1.6 million cells": (
        _edit("replicates: 5\nblock: 3", "replicates: 200000\nblock: 1"),
        "replicates: 4 DGP points x 2 sample sizes x 200,000 blocks of 1 replicates make "
        "1,600,000 cells; at most 1,000,000",
    ),
    "a grid of 40,000 points": (
        _edit(
            "{loc: 0, scale: [1, 2]}",
            f"{{loc: {list(range(200))}, scale: {list(range(1, 201))}}}",
        ),
        "dgps: the parameter grids make 40,002 DGP points (dgps[0] alone 40,000); at most 10,000",
    ),
    "a CPU-century": (
        _edit("replicates: 5\nblock: 3", "replicates: 2000000000\nblock: 100000")
        + "fit: {multistart: 40}\n",
        "replicates: 32,000,000,000 fits (4 DGP points x 2 sample sizes x 2,000,000,000 "
        "replicates x 2 objectives) of 40 start(s) of up to 100 iterations each take at least "
        "40.7 years",
    ),
    # TOML: the same rules
    "toml duplicate key": (
        'name = "a"\nname = "b"\n',
        "TOML syntax error: Cannot overwrite a value",
        "study.toml",
    ),
    "toml bool replicates": (
        TOML.replace("replicates = 5", "replicates = true"),
        "replicates: input should be a valid integer, got True",
        "study.toml",
    ),
    "toml nan in a grid": (
        TOML.replace("scale = [1, 2]", "scale = [1, nan]"),
        "dgps[0].params.scale[1]: input should be a finite number",
        "study.toml",
    ),
    "toml float seed": (
        TOML.replace("seed = 1", "seed = 1.0"),
        "seed: input should be a valid integer",
        "study.toml",
    ),
    "toml objective alias": (
        TOML.replace('["log", "dpd:beta=0.5"]', '["nll", "log"]'),
        "objectives[1]: the objective of objectives[0] again ('log' and 'nll' are both 'log')",
        "study.toml",
    ),
    "toml not UTF-8": (
        TOML.encode() + b"# \xff\n",
        "not UTF-8 text: byte 0xff at offset",
        "study.toml",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_study_files_are_one_line_errors(tmp_path, capsys, case):
    text, fragment, *name = MALFORMED[case]
    name = name[0] if name else "study.yaml"
    if isinstance(text, bytes):
        path = tmp_path / name
        path.write_bytes(text)
    else:
        path = write(tmp_path, text, name)
    store = tmp_path / "s.duckdb"
    with pytest.raises(SpecError):
        load_study(path)
    code, out, err = run(capsys, "study", "run", path, "--store", store, "--executor", "local")
    assert code == 2 and out == ""
    assert err.startswith(f"error: {name}: ") and err.count("\n") == 1, err
    assert fragment in err, err
    assert not store.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing else written


def test_missing_file_and_wrong_suffix(tmp_path, capsys):
    code, _, err = run(capsys, "study", "run", tmp_path / "none.yaml")
    assert code == 2 and "does not exist" in err
    (tmp_path / "dir.yaml").mkdir()
    code, _, err = run(capsys, "study", "run", tmp_path / "dir.yaml")
    assert code == 2 and "is a directory" in err and err.count("\n") == 1
    path = write(tmp_path, GOOD, "study.txt")
    code, _, err = run(capsys, "study", "run", path)
    assert code == 2 and ".yaml, .yml or .toml" in err


def test_yaml_numbers_follow_the_yaml_1_2_core_schema(tmp_path):
    """1e-3 is a number (YAML 1.1 reads a string), 010 is ten (not eight); a BOM is fine."""
    text = _edit("scale: [1, 2]", "scale: [1e-3, 2.5E+1]").replace("[10, 20]", "[010, 20]")
    path = tmp_path / "study.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + textwrap.dedent(text).encode())
    spec = load_study(path)
    assert spec.dgps[0].params["scale"] == [0.001, 25.0]
    assert spec.sample_sizes == [10, 20]


def test_a_large_valid_study_builds_its_design_lazily(tmp_path):
    """800,000 cells: the design is arithmetic on the file, each cell built when asked for."""
    import time
    import tracemalloc

    from likelab.study.spec import study_size

    spec = load_study(
        write(tmp_path, _edit("replicates: 5\nblock: 3", "replicates: 100000\nblock: 1"))
    )
    size = study_size(spec)
    assert (size.points, size.cells, size.fits) == (4, 800_000, 4 * 2 * 100_000 * 2)
    assert size.cell_bytes == 1 * 20 * 128
    tracemalloc.start()
    t0 = time.perf_counter()
    grid = cells(spec)
    assert len(grid) == 800_000
    last = grid[-1]
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 2 and peak < 20e6, (elapsed, peak)  # an eager list takes ~250 MB
    assert last.key == "0.8 normal:loc=0,scale=1 + 0.2 normal:loc=8,scale=1|n=20|block=99999"
    assert (last.first, last.replicates) == (99_999, 1)
    # the lazy sequence is the eager enumeration, in the same order
    small = load_study(write(tmp_path, GOOD))

    def fields(c):
        return (c.key, c.point.spec, c.n, c.block, c.first, c.replicates)

    eager = [
        (f"{p.spec}|n={n}|block={b}", p.spec, n, b, first,
         min(small.block, small.replicates - first))
        for p in dgp_points(small)
        for n in small.sample_sizes
        for b, first in enumerate(range(0, small.replicates, small.block))
    ]  # fmt: skip
    grid = cells(small)
    assert [fields(c) for c in grid] == eager == [fields(c) for c in grid[:]]
    assert [fields(grid[i]) for i in range(-len(eager), len(eager))] == eager + eager
    with pytest.raises(IndexError):
        grid[len(eager)]


def test_the_size_estimate_scales_with_each_factor(tmp_path):
    from likelab.study.spec import FIT_SECONDS_BASE, FIT_SECONDS_PER_OBS, study_size

    spec = load_study(write(tmp_path, GOOD))
    size = study_size(spec)
    # 4 points, n = 10 and 20, 5 replicates in blocks of 3, 2 objectives
    assert (size.points, size.cells, size.fits) == (4, 4 * 2 * 2, 4 * 2 * 5 * 2)
    per_fit = 2 * FIT_SECONDS_BASE + FIT_SECONDS_PER_OBS * 30
    assert size.cpu_seconds == pytest.approx(4 * 5 * 2 * per_fit)
    assert size.cell_bytes == 3 * 20 * 128
