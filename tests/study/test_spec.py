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
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_study_files_are_one_line_errors(tmp_path, capsys, case):
    text, fragment = MALFORMED[case]
    path = write(tmp_path, text)
    store = tmp_path / "s.duckdb"
    with pytest.raises(SpecError):
        load_study(path)
    code, out, err = run(capsys, "study", "run", path, "--store", store, "--executor", "local")
    assert code == 2 and out == ""
    assert err.startswith("error: study.yaml: ") and err.count("\n") == 1, err
    assert fragment in err, err
    assert not store.exists()


def test_missing_file_and_wrong_suffix(tmp_path, capsys):
    code, _, err = run(capsys, "study", "run", tmp_path / "none.yaml")
    assert code == 2 and "does not exist" in err
    path = write(tmp_path, GOOD, "study.txt")
    code, _, err = run(capsys, "study", "run", path)
    assert code == 2 and ".yaml, .yml or .toml" in err
