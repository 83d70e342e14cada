"""Interrupts and exits from inside a command: never a silent exit status 0. Ctrl-C is exit
status 130 with one line saying what was kept; a ``sys.exit`` in user code is an error."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tests.cli_support import run


def _env():
    import likelab

    src = Path(likelab.__file__).resolve().parents[1]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(Path.cwd())])}


def test_ctrl_c_during_train_exits_130_and_says_nothing_was_kept(tmp_path):
    plots = tmp_path / "plots"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from likelab.cli import main; sys.exit(main(sys.argv[1:]))",
            "train",
            "--dataset",
            "moons",
            "--objectives",
            "log,brier",
            "--epochs",
            "100000",
            "--seeds",
            "2",
            "--plot",
            str(plots),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,
    )
    # imports, data, and well into the first of four long runs (minutes each at 100,000 epochs);
    # 6 s was too short on a loaded 2-core machine (the interrupt landed before training began)
    time.sleep(15)
    assert proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and not out, err
    assert err.count("\n") == 1, err
    assert err.startswith("interrupted: 0 of 4 training runs finished, nothing kept"), err
    assert not plots.exists()


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "y.txt"
    y = np.random.default_rng(5).gamma(2.0, 1.5, 40)
    path.write_text("\n".join(repr(float(v)) for v in y) + "\n")
    return path


def _objective(tmp_path, monkeypatch, body):
    name = f"stops_{abs(hash(body)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(
        f"import torch\n\ndef score(dist, y):\n    {body}\n    return -dist.log_prob(y)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{name}:score"


def test_an_objective_raising_keyboardinterrupt_in_fit_is_130(data, tmp_path, monkeypatch, capsys):
    objective = _objective(tmp_path, monkeypatch, "raise KeyboardInterrupt")
    code, out, err = run(capsys, "fit", data, "--family", "normal", "--objective", objective)
    assert code == 130 and not out and err == "interrupted\n", err


@pytest.mark.parametrize("body", ["raise SystemExit(0)", "import sys; sys.exit()", "exit(4)"])
def test_an_objective_calling_sys_exit_in_fit_is_an_error(
    body, data, tmp_path, monkeypatch, capsys
):
    objective = _objective(tmp_path, monkeypatch, body)
    code, out, err = run(capsys, "fit", data, "--family", "normal", "--objective", objective)
    assert code == 2 and not out and err.count("\n") == 1, err
    assert err.startswith("error: user objective") and "raised SystemExit" in err, err


@pytest.mark.parametrize("after", [0.1, 0.2, 0.3, 0.4, 1.0])
def test_ctrl_c_while_likelab_starts_is_one_line_and_130(after):
    """The command's entry point (likelab_entry, as the installed `likelab` script calls it):
    a Ctrl-C while torch and the CLI are still being imported, or just after, is the same one
    line and exit status 130 as anywhere else, never Python's KeyboardInterrupt traceback. The
    early delays land inside torch's import of numpy, which swallowed the interrupt (the command
    then ran to the end with exit status 0, or failed on a half-imported numpy)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, likelab_entry; sys.argv[1:] = ['properness']; "
            "sys.exit(likelab_entry.main())",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,
    )
    time.sleep(after)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "interrupted\n" and not out, err


def test_ctrl_c_during_the_demo_says_which_files_it_wrote(tmp_path):
    out_dir = tmp_path / "demo"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from likelab.cli import main; sys.exit(main(sys.argv[1:]))",
            "demo",
            "--quick",
            "--out",
            str(out_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,
    )
    for line in proc.stderr:  # one line per step off a terminal: stop it in the second step
        if line.startswith("step 2/"):
            break
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    out, rest = proc.communicate(timeout=60)
    said = [ln for ln in rest.splitlines() if not ln.startswith("step ")]
    assert proc.returncode == 130 and len(said) == 1 and not out, rest
    assert said[0].startswith("interrupted: the demo stopped before it finished; ")
    assert str(out_dir) in said[0] and not (out_dir / "index.html").exists()
    files = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    assert said[0].endswith(
        f"{len(files)} file(s) it wrote are in {out_dir}: {', '.join(files)}; run the same "
        "command again for the whole report"
    ) or (not files and "0 file(s)" in said[0])
