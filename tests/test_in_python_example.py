"""examples/in_python.py, the README's "In Python" example, runs as written and prints what the
README shows (the scores are closed forms, checked here against scipy and scoringrules)."""

import runpy
from pathlib import Path

import numpy as np
import scipy.stats as st
import scoringrules as sr

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "in_python.py"


def _array(line: str) -> np.ndarray:
    return np.array(line.strip("[]").replace(",", " ").split(), dtype=float)


def test_the_in_python_example_runs_and_prints_the_scores(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the example writes nothing and needs no working directory
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("{'objectiveclassifier__objective': ")
    assert float(lines[0].rsplit(" ", 1)[1]) > 0.85  # iris, 3-fold CV accuracy
    obs = np.array([-0.5, 0.0, 2.0])
    np.testing.assert_allclose(_array(lines[1]), sr.crps_normal(obs, 0.0, 1.0), rtol=1e-7)
    np.testing.assert_allclose(_array(lines[3]), [0.54 - 1.4, 0.38 - 1.0], rtol=1e-7)
    gamma = sr.crps_gamma(np.array([0.5, 3.0]), 2.0, scale=1.5)
    np.testing.assert_allclose(_array(lines[4]), gamma, rtol=1e-7)  # printed to 8 digits
    logt = -st.t(3, loc=1.0).logpdf(obs)
    assert lines[5].startswith("tensor([") and lines[5].endswith("dtype=torch.float64)")
    np.testing.assert_allclose(_array(lines[5][7:].split("]")[0] + "]"), logt, atol=1e-4)
