"""``likelab scorecard``: JSON and table, the store and scorecard.json in --out, resumption,
and one-line errors (exit 2) for bad input. The landscape part alone keeps these fast; the parts
themselves are tested in tests/scorecard."""

from __future__ import annotations

import json

import pytest
from tests.cli_support import run, run_json

QUICK = ("--quick", "--parts", "landscape", "--against", "log")


def test_json_names_the_objective_as_spelled_and_is_written_beside_the_store(capsys, tmp_path):
    out = tmp_path / "card"
    data = run_json(capsys, "scorecard", "phi:-p**0.3", *QUICK, "--out", out)
    assert [o["objective"] for o in data["objectives"]] == ["phi:-p**0.3", "log"]
    first = data["objectives"][0]
    assert first["landscape"] and {"summary", "objective"} <= set(first)
    assert {"proper", "min_are", "bounded_influence", "multimodal_rate", "prob_gap"} <= set(
        first["summary"]
    )
    assert data["pareto"]["efficiency"] == "min_are"
    assert (out / "scorecard.duckdb").is_file()
    written = json.loads((out / "scorecard.json").read_text())
    assert written["objectives"] == data["objectives"]
    # again: everything comes from the store, the same objectives
    again = run_json(capsys, "scorecard", "phi:-p**0.3", *QUICK, "--out", out)
    assert again["units_run"] == 0 and again["objectives"] == data["objectives"]


def test_the_table_has_one_row_per_objective(capsys, tmp_path):
    code, out, err = run(capsys, "scorecard", "linear", *QUICK, "--out", tmp_path / "t")
    assert code == 0, err
    assert "scorecard: one row per objective" in out
    assert out.count("linear") >= 1 and "log" in out and "units run now" in out


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("phi:__import__('os')",), "phi"),
        (("nope",), "nope"),
        (("log", "--parts", "nonsense"), "parts must be"),
        (("log", "--executor", "threads"), "executor"),
        (("log", "--workers", "0"), "workers"),
        (("log", "--scheduler", "tcp://127.0.0.1:1"), "dask"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, args, match):
    code, out, err = run(capsys, "scorecard", *args, "--quick", "--out", tmp_path / "x")
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()  # nothing written, not even the folder


def test_an_out_that_is_a_file_or_a_store_of_another_run_is_refused(capsys, tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    code, _, err = run(capsys, "scorecard", "log", *QUICK, "--out", afile)
    assert code == 2 and "--out" in err and "not a directory" in err
    out = tmp_path / "card"
    assert run(capsys, "scorecard", "log", *QUICK, "--out", out)[0] == 0
    code, _, err = run(capsys, "scorecard", "log", *QUICK, "--out", out, "--seed", "4")
    assert code == 2 and "seed 0" in err and len(err.strip().splitlines()) == 1


def test_the_page_opens_in_headless_chromium_with_every_part_shown(capsys, tmp_path):
    from tests.report.test_demo import _fits_the_window, _open_in_chromium

    out = tmp_path / "page"
    code, _, err = run(capsys, "scorecard", "phi:-p", *QUICK, "--out", out)
    assert code == 0, err
    errors, requests, facts = _open_in_chromium(out / "index.html")
    assert errors == [] and requests == [] and facts["scripts"] == 0
    assert facts["sections"] == ["summary", "landscape"]
    assert "phi:-p" in facts["text"] and "Pareto" in facts["text"]
    assert all(ok and width > 0 for ok, width in facts["images"])
    _fits_the_window(facts)


def test_the_atlas_is_every_builtin_rule_along_its_parameter_path():
    from likelab.objectives import get_objective
    from likelab.scorecard.core import atlas_objectives

    atlas = atlas_objectives()
    canonical = [get_objective(s).spec for s in atlas]
    assert len(set(canonical)) == len(canonical)  # dpd (β = 0.5) is not judged twice
    assert "product" not in atlas and "log" in atlas and "linear" in atlas
    assert {"dpd:beta=0.1", "dpd:beta=1", "gce:q=0.3", "pseudospherical:gamma=3"} <= set(atlas)


def test_no_objective_and_no_all_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "scorecard", "--quick", "--out", tmp_path / "x")
    assert code == 2 and "--all" in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_exits_130_says_what_was_kept_and_the_rerun_gives_the_same_json(tmp_path):
    """SIGINT to the process group after a few units: exit 130, one line saying what the
    store keeps; running the command again completes it, and its JSON equals an uninterrupted
    run's apart from timings."""
    import subprocess

    from tests.study.test_runner import _cli, _env, ctrl_c_after_cells

    psutil = pytest.importorskip("psutil")
    env = _env()
    args = ["scorecard", "phi:-p", *QUICK, "--out", tmp_path / "cut"]
    code, out, said, _ = ctrl_c_after_cells(args, env, 4, psutil, timeout=120, progress="unit ")
    assert code == 130, said
    assert len(said) == 1 and not out, said
    assert said[0].startswith("interrupted: ") and "units kept in" in said[0], said
    assert "run the same command again to resume" in said[0]
    resumed = subprocess.run(_cli(*args, "--json"), capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run(
        _cli("scorecard", "phi:-p", *QUICK, "--out", tmp_path / "whole", "--json"),
        capture_output=True,
        text=True,
        env=env,
    )
    a, b = json.loads(resumed.stdout), json.loads(whole.stdout)
    assert 0 < a["units_run"] < a["units_total"] and b["units_run"] == b["units_total"]
    assert a["objectives"] == b["objectives"] and a["pareto"] == b["pareto"]
    # the pages too, apart from the footer's date and seconds (and the figure, which embeds
    # nothing of the run's timing: the same bytes)
    import re

    def page(folder):
        text = (tmp_path / folder / "index.html").read_text()
        return re.sub(
            r"Written by likelab .*? s\.", "", re.sub(r"on \d{4}-\d\d-\d\d .*?UTC", "", text)
        )

    assert "Written by likelab" in (tmp_path / "cut" / "index.html").read_text()
    assert "Written by likelab" not in page("cut") and page("cut") == page("whole")
