"""The ``likelab`` command: JSON output, figures on request, one-line errors with exit 2."""

import os
import subprocess
import sys

import numpy as np
import pytest

from cli_support import run, run_json
from likelab.cli import split_specs


def test_objectives_json_lists_every_objective_with_formula_and_properties(capsys):
    data = run_json(capsys, "objectives")
    names = {o["name"] for o in data["objectives"]}
    for required in (
        "log",
        "linear",
        "product",
        "quadratic",
        "spherical",
        "pseudospherical",
        "power",
        "lq",
        "gce",
        "mae",
        "focal",
        "dpd",
        "gamma",
        "crps",
        "hyvarinen",
    ):
        assert required in names
    log = next(o for o in data["objectives"] if o["name"] == "log")
    assert log["formula"] and log["reference"]
    assert log["properties"]["strictly_proper"] is True
    linear = next(o for o in data["objectives"] if o["name"] == "linear")
    assert linear["properties"]["proper"] is False
    assert "sum" in linear["aliases"]


def test_objectives_table(capsys):
    code, out, _ = run(capsys, "objectives")
    assert code == 0 and "pseudospherical" in out and "-log f(y)" in out


def test_families_json(capsys):
    data = run_json(capsys, "families")
    assert [f["name"] for f in data["families"]][:2] == ["normal", "student_t"]
    assert len(data["families"]) == 11


def test_landscape_seed_example_json(capsys):
    data = run_json(capsys, "landscape", "--seed-example")
    assert data["n"] == 10 and data["params"] == ["loc"]
    assert len(data["grid"]["loc"]) == 10_000
    res = data["objectives"]
    assert set(res) == {"linear", "product", "log"}
    assert res["log"]["local_minima"] == 1
    assert res["product"]["local_minima"] == 1
    assert res["linear"]["local_minima"] == 6  # seed 0; across seeds 0..19 at least 4
    assert len(res["log"]["values"]) == 10_000
    assert abs(res["log"]["argmin"]["loc"] - res["product"]["argmin"]["loc"]) <= 6 / 9999


def test_landscape_simulated_matches_direct_computation(capsys):
    data = run_json(
        capsys,
        "landscape",
        "--simulate",
        "normal:loc=1,scale=2,n=25",
        "--seed",
        "7",
        "--family",
        "normal",
        "--fix",
        "scale=2",
        "--param",
        "loc=-2:4:61",
        "--objectives",
        "log,linear",
    )
    from likelab.families import get_family

    y = get_family("normal").sample(25, seed=7, loc=1.0, scale=2.0)
    loc = np.linspace(-2, 4, 61)
    expected = np.array([np.mean((y - m) ** 2 / 8 + np.log(2 * np.sqrt(2 * np.pi))) for m in loc])
    np.testing.assert_allclose(data["objectives"]["log"]["values"], expected, rtol=1e-12)
    assert abs(data["objectives"]["log"]["argmin"]["loc"] - loc[np.argmin(expected)]) < 1e-12


def test_landscape_from_file_2d_with_plot(tmp_path, capsys):
    y = np.random.default_rng(1).normal(0.5, 1.5, 40)
    path = tmp_path / "y.txt"
    path.write_text("\n".join(str(float(v)) for v in y) + "\n")
    plot = tmp_path / "l.png"
    data = run_json(
        capsys,
        "landscape",
        "--data",
        str(path),
        "--family",
        "normal",
        "--param",
        "loc=-1:2:31",
        "--param",
        "scale=0.5:3:26",
        "--objectives",
        "log",
        "--plot",
        str(plot),
    )
    assert plot.stat().st_size > 0
    values = np.array(data["objectives"]["log"]["values"], dtype=float)
    assert values.shape == (31, 26)


def test_landscape_plot_only_when_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "landscape", "--seed-example")
    assert code == 0 and "linear" in out
    assert list(tmp_path.iterdir()) == []


def test_underflow_json(capsys):
    data = run_json(capsys, "underflow")
    th = data["thresholds"]
    assert th["float32"]["zero_at"] < th["float64"]["zero_at"]
    assert data["likelihoods"] == [0.3, 0.2, 0.1]


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["landscape", "--seed-example", "--objectives", "nope"], "unknown objective 'nope'"),
        (["landscape", "--seed-example", "--objectives", "pseudospherical:gamma=0.5"], "gamma > 1"),
        (
            [
                "landscape",
                "--simulate",
                "normal:loc=0,scale=1,n=10",
                "--family",
                "normall",
                "--param",
                "loc=-1:1:5",
            ],
            "unknown family 'normall'",
        ),
        (
            ["landscape", "--simulate", "normal:loc=0,scale=1,n=10", "--param", "loc=-1:1:5"],
            "scale",
        ),
        (
            [
                "landscape",
                "--simulate",
                "normal:loc=0,scale=1,n=10",
                "--fix",
                "scale=0.1",
                "--param",
                "loc=1:-1:5",
            ],
            "LO < HI",
        ),
        (
            [
                "landscape",
                "--simulate",
                "normal:loc=0,scale=1,n=10",
                "--fix",
                "scale=0.1",
                "--param",
                "loc=-1:1",
            ],
            "LO:HI:N",
        ),
        (
            [
                "landscape",
                "--simulate",
                "normal:loc=0,scale=1,n=10",
                "--fix",
                "scale=abc",
                "--param",
                "loc=-1:1:5",
            ],
            "not a number",
        ),
        (
            [
                "landscape",
                "--simulate",
                "normal:loc=0,scale=-1,n=10",
                "--fix",
                "scale=0.1",
                "--param",
                "loc=-1:1:5",
            ],
            "scale",
        ),
        (
            [
                "landscape",
                "--data",
                "/nonexistent/file.txt",
                "--fix",
                "scale=0.1",
                "--param",
                "loc=-1:1:5",
            ],
            "does not exist",
        ),
        (["landscape", "--fix", "scale=0.1", "--param", "loc=-1:1:5"], "exactly one of"),
        (["landscape", "--seed-example", "--dtype", "float16"], "float64 or float32"),
        (["underflow", "--likelihoods", "0.5,abc"], "numbers"),
        (["underflow", "--likelihoods", "0.5,1.5"], "1.5"),
        (["objectives", "--bogus"], "--bogus"),
        (["nosuchcommand"], "nosuchcommand"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(capsys, args, fragment):
    code, out, err = run(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert "Traceback" not in err + out


def test_bad_data_file_line(tmp_path, capsys):
    path = tmp_path / "bad.txt"
    path.write_text("1\n2\nnot-a-number\n")
    code, _, err = run(
        capsys, "landscape", "--data", str(path), "--fix", "scale=1", "--param", "loc=-1:1:5"
    )
    assert code == 2 and "line 3" in err and len(err.strip().splitlines()) == 1


def test_user_objective_by_import_path(tmp_path, capsys, monkeypatch):
    (tmp_path / "my_losses.py").write_text(
        "def half_nll(dist, y):\n    return -dist.log_prob(y) / 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    data = run_json(capsys, "landscape", "--seed-example", "--objectives", "log,my_losses:half_nll")
    np.testing.assert_allclose(
        data["objectives"]["my_losses:half_nll"]["values"],
        np.array(data["objectives"]["log"]["values"]) / 2,
        rtol=1e-12,
    )


def test_split_specs_keeps_parameter_lists_together():
    assert split_specs("log, dpd:beta=0.5 ,sum") == ["log", "dpd:beta=0.5", "sum"]
    assert split_specs("mine:a=1,b=2,log") == ["mine:a=1,b=2", "log"]


def test_console_script_exit_code():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "likelab.cli",
            "landscape",
            "--seed-example",
            "--objectives",
            "nope",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("pdf", b"%PDF"), ("png", b"\x89PNG")])
def test_plot_writes_the_format_of_its_extension_and_nothing_else(tmp_path, capsys, fmt, magic):
    target = tmp_path / f"fig.{fmt.upper()}"  # the extension is case-insensitive
    target.write_bytes(b"old content, replaced whole")
    code, _, err = run(capsys, "underflow", "--likelihoods", "0.5", "--plot", target)
    assert code == 0, err
    assert target.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary left behind
    assert f"figure written to {target}" in err


@pytest.mark.parametrize(
    "path, fragment",
    [
        ("DIR", "is a directory"),
        ("DIR/f.gif", "use one of .png, .pdf, .svg"),
        ("DIR/f", "no extension"),
        ("DIR/no/f.png", "does not exist"),
        ("FILE/f.png", "is a file, not a directory"),
        ("", "empty path"),
    ],
)
def test_plot_path_is_checked_before_anything_is_computed(tmp_path, capsys, path, fragment):
    (tmp_path / "FILE").write_text("x")
    path = path.replace("DIR", str(tmp_path)).replace("FILE", str(tmp_path / "FILE"))
    # a grid that would take minutes: the path is refused first, in milliseconds
    code, _, err = run(
        capsys,
        "landscape",
        "--simulate",
        "normal:loc=0,scale=1,n=100000",
        "--param",
        "loc=0:1:3000",
        "--param",
        "scale=1:2:3000",
        "--plot",
        path,
    )
    assert code == 2 and err.count("\n") == 1 and fragment in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE"]


def test_plot_into_a_read_only_directory_is_refused(tmp_path, capsys):
    # root may write into a 0555 directory; the kernel's /proc refuses new files even to root
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        target = "/proc/f.png" if os.geteuid() == 0 else str(ro / "f.png")
        code, _, err = run(capsys, "underflow", "--plot", target)
    finally:
        ro.chmod(0o755)
    assert code == 2 and "not writable" in err, err
    assert list(ro.iterdir()) == []


def test_without_arguments_the_help_is_printed_as_is(capsys):
    for args in ([], ["study"]):
        code, out, err = run(capsys, *args)
        assert code == 2 and out == ""
        assert err.startswith("Usage: likelab") and "error:" not in err
        assert err.count("\n") > 5 and "Commands:" in err  # multi-line, as click prints it
    code, out, _ = run(capsys, "--help")
    assert code == 0 and out.count("\n") > 5


@pytest.mark.parametrize("cmd", [["demo", "--quick"], ["landscape", "--seed-example"]])
def test_negative_seed_is_refused_by_every_command(capsys, cmd):
    code, _, err = run(capsys, *cmd, "--seed", "-3")
    assert code == 2 and "--seed" in err and err.count("\n") == 1


@pytest.mark.parametrize("out", ["", "FILE", "FILE/sub", "missing/sub"])
def test_demo_out_is_checked_before_the_demo_runs(tmp_path, capsys, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("x")
    code, _, err = run(capsys, "demo", "--quick", "--out", out)
    assert code == 2 and err.startswith("error: --out") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE"]


def test_landscape_refuses_a_grid_that_cannot_fit_with_the_estimate(capsys, monkeypatch):
    monkeypatch.setenv("LIKELAB_MEMORY_LIMIT", "1GB")
    # 3 objectives x 20000 x 20000 points: >= 4e8 x 3 x (8 + 56) bytes = 77 GB
    code, _, err = run(
        capsys,
        "landscape",
        "--simulate",
        "normal:loc=0,scale=1,n=10",
        "--param",
        "loc=0:1:20000",
        "--param",
        "scale=1:2:20000",
    )
    assert code == 2 and "20000 x 20000 grid needs about" in err and "limit 1.0 GB" in err, err


def test_landscape_refuses_a_simulated_sample_that_cannot_fit(capsys, monkeypatch):
    monkeypatch.setenv("LIKELAB_MEMORY_LIMIT", "1GB")
    code, _, err = run(
        capsys,
        "landscape",
        "--simulate",
        "normal:loc=0,scale=1,n=300000000",
        "--param",
        "loc=0:1:3",
        "--fix",
        "scale=1",
    )
    assert code == 2 and "sample of n = 300000000 needs about 9.6 GB" in err, err


def test_bad_memory_limit_setting_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("LIKELAB_MEMORY_LIMIT", "lots")
    code, _, err = run(capsys, "landscape", "--seed-example")
    assert code == 2 and "LIKELAB_MEMORY_LIMIT" in err


def test_summary_csv_is_written_whole_or_not_at_all(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text(
        "name: tiny\nseed: 1\ndgps:\n  - family: normal\n    params: {loc: [0], scale: [1]}\n"
        "sample_sizes: [10]\nreplicates: 4\nmodel:\n  family: normal\nobjectives: [log]\n"
    )
    assert run(capsys, "study", "run", "s.yaml", "--executor", "local", "--json")[0] == 0
    code, _, err = run(capsys, "study", "summary", "tiny.duckdb", "--csv", "out.csv")
    assert code == 0, err
    assert (tmp_path / "out.csv").read_text().startswith("dgp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "s.yaml", "tiny.duckdb"]
    # a store that fails after the output was opened leaves no temporary and no out2.csv
    (tmp_path / "junk.duckdb").write_text("not a store")
    code, _, err = run(capsys, "study", "summary", "junk.duckdb", "--csv", "out2.csv")
    assert code != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "junk.duckdb",
        "out.csv",
        "s.yaml",
        "tiny.duckdb",
    ]


def test_version(capsys):
    import likelab

    code, out, err = run(capsys, "--version")
    assert code == 0 and out == f"likelab {likelab.__version__}\n" and not err
