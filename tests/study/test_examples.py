"""Every shipped example study validates and runs (in miniature: few replicates, smallest n)."""

from pathlib import Path

import pytest
import yaml

from likelab.study import parse_study, run_study, summarise

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def test_the_examples_are_there():
    names = {p.stem for p in EXAMPLES}
    assert {"seed_question", "efficiency_robustness"} <= names
    assert len([n for n in names if n.startswith("family_")]) >= 9


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_in_miniature(tmp_path, path):
    raw = yaml.safe_load(path.read_text())
    raw["replicates"], raw["block"] = 6, 6
    raw["sample_sizes"] = [max(raw["sample_sizes"][0], 20)]
    spec = parse_study(raw, source=path.name)
    report = run_study(spec, tmp_path / "s.duckdb", executor="local")
    assert report.cells_run == report.cells_total > 0
    rows = summarise(tmp_path / "s.duckdb")
    assert {r["objective"] for r in rows} == set(raw["objectives"])
    assert all(r["replicates"] == 6 for r in rows)
