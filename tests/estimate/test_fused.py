"""The fused (compiled) moments equal the eager reference on every family × rule pair.

Each test compiles kernels (seconds each); they are grouped on one xdist worker
(``xdist_group``) so that the kernels compiled for one test serve the others.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from likelab.estimate import fit, fused, moments
from likelab.families import get_family
from likelab.families.derivatives import _REGISTRY
from likelab.objectives import get_objective
from likelab.objectives.forms import ExpLinear, phi_form

pytestmark = [
    pytest.mark.xdist_group("fused"),
    pytest.mark.skipif(not fused.compiler_available(), reason="no C++ compiler for torch.compile"),
]

# Every family with closed-form derivatives, with a truth to draw from.
TRUTHS = {
    "normal": {"loc": 0.3, "scale": 1.7},
    "student_t": {"df": 4.0, "loc": -0.2, "scale": 0.8},
    "laplace": {"loc": 1.0, "scale": 0.5},
    "logistic": {"loc": 0.0, "scale": 2.0},
    "cauchy": {"loc": 0.5, "scale": 1.0},
    "exponential": {"rate": 1.5},
    "gamma": {"concentration": 2.5, "rate": 0.7},
    "poisson": {"rate": 3.0},
}
# Every built-in rule with an ExpLinear form, and the local parts f^c of the integral rules.
RULES = [
    "log",
    "linear",
    "lq:q=0.5",
    "lq:q=0.95",
    "gce:q=0.7",
    "mae",
    "focal:gamma=2",
    "focal:gamma=0.5",
]
POWERS = [0.3, 1.0, 2.0]


def _phis():
    out = [(spec, phi_form(get_objective(spec))) for spec in RULES]
    return out + [(f"f^{c}", ExpLinear(coef=1.0, rate=c)) for c in POWERS]


def test_every_family_with_closed_form_derivatives_is_covered():
    names = {type(get_family(f).distribution_unchecked(_natural(f, 1))) for f in TRUTHS}
    # torch's own StudentT is registered beside likelab's subclass, which the family builds
    assert names <= set(_REGISTRY)
    assert set(_REGISTRY) - names <= {torch.distributions.StudentT}


def _natural(family: str, b: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Per-dataset parameters scattered around the truth (a factor e^±0.3)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in TRUTHS[family].items():
        jitter = 0.3 * (2 * torch.rand(b, generator=gen, dtype=torch.float64) - 1)
        out[k] = v + jitter if k == "loc" else v * jitter.exp()
    return out


def _data(family: str, b: int, n: int, seed: int = 1) -> torch.Tensor:
    y = get_family(family).sample((b, n), seed=seed, **TRUTHS[family])
    return torch.as_tensor(np.asarray(y), dtype=torch.float64)


def _close(want: torch.Tensor, got: torch.Tensor) -> float:
    """Largest |want - got| relative to the largest |want| over the batch: a mean of terms
    that cancel to near 0 in one dataset (a gradient near its zero) is judged on the scale the
    quantity has elsewhere, not on its own rounding-level size."""
    return float((want - got).abs().max() / want.abs().max().clamp(min=1e-300))


@pytest.mark.parametrize("family", list(TRUTHS))
def test_fused_moments_equal_the_eager_ones(family):
    fam = get_family(family)
    b, n = 9, 37
    y, natural = _data(family, b, n), _natural(family, b)
    for spec, phi in _phis():
        for outer in (False, True):
            want = moments.eager_local_moments(fam, natural, y, phi, outer=outer)
            got = fused.fused_local_moments(fam, natural, y, phi, outer=outer)
            assert got is not None, (family, spec)
            for name in ("value", "grad", "hess", "outer"):
                w, g = getattr(want, name), getattr(got, name)
                if w is None:
                    assert g is None
                    continue
                err = _close(w, g)
                assert err <= 1e-12, (family, spec, outer, name, err)
        want_v = moments.eager_local_value(fam, natural, y, phi)
        got_v = fused.fused_local_value(fam, natural, y, phi)
        assert _close(want_v, got_v) <= 1e-12, (family, spec)
    assert all(r.outcome == "ok" for r in fused.compile_report())


@pytest.mark.parametrize("family", list(TRUTHS))
def test_every_kernel_traces_as_one_graph_with_validation_on(family):
    """A graph break splits a kernel into several (each pass over the observations writes its
    intermediates to memory, each call pays the guards of each): torch's StudentT built its
    chi-square validating, and TorchDynamo breaks on that check (2.6x slower kernels). Traced
    here with ``fullgraph=True`` (a break raises) and argument validation on, as the user's
    default is restored after each compilation; the eager backend: tracing alone, no C++."""
    torch._dynamo.eval_frame.TorchPatcher.patch()  # what the first compilation does, once
    validate = torch.distributions.Distribution._validate_args
    fam = get_family(family)
    y, natural = _data(family, 5, 7), _natural(family, 5)
    try:
        torch.distributions.Distribution.set_default_validate_args(True)
        for i, (phi, outer) in enumerate(
            [(ExpLinear(lin=-1.0), False), (ExpLinear(coef=1.0, rate=0.5), True)]
        ):
            kernel = fused._own_code(fused._moments_fn(fam, fused._variant(phi), outer), 900 + i)
            traced = torch.compile(kernel, backend="eager", fullgraph=True, dynamic=True)
            traced(*fused._args(fam, natural, y, None, phi))
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)


def test_one_kernel_serves_every_rule_of_a_form():
    fam = get_family("normal")
    y, natural = _data("normal", 4, 11), _natural("normal", 4)
    before = len(fused.compile_report())
    for spec in ["lq:q=0.3", "lq:q=0.6", "gce:q=0.2", "linear", "mae"]:
        fused.fused_local_moments(fam, natural, y, phi_form(get_objective(spec)))
    compiled = fused.compile_report()[before:]
    assert len(compiled) <= 1  # the exp variant, unless an earlier test compiled it


def test_fused_moments_do_not_depend_on_the_thread_count_or_batch():
    fam = get_family("student_t")
    y, natural = _data("student_t", 300, 64), _natural("student_t", 300)
    phi = phi_form(get_objective("lq:q=0.5"))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fused.fused_local_moments(fam, natural, y, phi, outer=True)
        torch.set_num_threads(max(2, threads))
        two = fused.fused_local_moments(fam, natural, y, phi, outer=True)
    finally:
        torch.set_num_threads(threads)
    sub = fused.fused_local_moments(
        fam, {k: v[5:9] for k, v in natural.items()}, y[5:9], phi, outer=True
    )
    for name in ("value", "grad", "hess", "outer"):
        assert torch.equal(getattr(one, name), getattr(two, name)), name
        assert torch.equal(getattr(one, name)[5:9], getattr(sub, name)), name


def test_a_kernel_compiles_once_whatever_the_grad_mode_rows_or_views():
    """TorchDynamo compiles a kernel again where a guard fails (the grad mode, sizes equal at
    the first call, a view's base strides), and after 8 compilations runs it uncompiled: the
    calls of a fit (derivatives with autograd on, line searches off, rows of the active
    problems, parameters sliced from (B, p) iterates) all reuse the first compilation."""
    from torch._dynamo.utils import counters

    fam = get_family("normal")
    y = _data("normal", 12, 30)
    phi = ExpLinear(coef=1.0, rate=0.7)  # a rule no other test compiles first
    u = torch.randn(12, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    fused.fused_local_moments(fam, fam.to_natural(u), y, phi)  # compiles (or loads) once
    frames = counters["frames"]["ok"]
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            for rows in (None, torch.arange(3, 11), torch.tensor([7, 2, 2, 9])):
                uu = u if rows is None else u[rows]
                fused.fused_local_moments(fam, fam.to_natural(uu), y, phi, rows=rows)
                wide = torch.cat([uu, uu], -1)[:, 1:3]  # a strided view of another base
                fused.fused_local_moments(fam, fam.to_natural(wide), y, phi, rows=rows)
    assert counters["frames"]["ok"] == frames


_AFTER_COMPILING = """
import gc, json, sys, time
import torch
from likelab.estimate import fit
from likelab.families import get_family

y = get_family("normal").sample((3000, 100), seed=1, loc=0.0, scale=1.0)
fit(y, "normal", "lq:q=0.8")  # compiles (or loads) the kernels
full = []
gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2
                    and full.append(1))
for _ in range(4):
    fit(y, "normal", "lq:q=0.8")
print(json.dumps(len(full)))
"""


def test_no_fit_after_a_compilation_stalls_in_the_collectors_full_pass():
    """A compilation leaves ~400,000 objects for the cyclic garbage collector: its next full
    pass over them (0.3 s on a 1-second fit) fell inside a later fit. The compilation now runs
    that pass itself (its reported seconds include it), and the fits after it run none. In a
    fresh process, where those objects are most of the heap."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "LIKELAB_FUSED": "on"}
    proc = subprocess.run(
        [sys.executable, "-c", _AFTER_COMPILING], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == 0


def test_a_batch_of_one_uses_the_kernel_and_equals_its_row_in_a_batch():
    fam = get_family("student_t")
    y, natural = _data("student_t", 6, 40), _natural("student_t", 6)
    phi = phi_form(get_objective("log"))
    whole = fused.fused_local_moments(fam, natural, y, phi, outer=True)
    rows = torch.tensor([4])
    one = fused.fused_local_moments(
        fam, {k: v[rows] for k, v in natural.items()}, y, phi, outer=True, rows=rows
    )
    alone = fused.fused_local_moments(
        fam, {k: v[4:5] for k, v in natural.items()}, y[4:5], phi, outer=True
    )
    for name in ("value", "grad", "hess", "outer"):
        assert torch.equal(getattr(one, name), getattr(whole, name)[4:5]), name
        assert torch.equal(getattr(alone, name), getattr(whole, name)[4:5]), name


@pytest.mark.parametrize(
    ("family", "objective"),
    [
        ("student_t", "log"),
        ("normal", "lq:q=0.5"),
        ("gamma", "log"),
        ("poisson", "linear"),
        ("student_t", "focal:gamma=2"),
    ],
)
def test_fused_fit_equals_the_eager_fit(family, objective, monkeypatch):
    y = _data(family, 40, 50, seed=3).numpy()
    monkeypatch.setenv("LIKELAB_FUSED", "off")
    eager = fit(y, family, objective)
    monkeypatch.setenv("LIKELAB_FUSED", "on")
    fast = fit(y, family, objective)
    assert np.array_equal(eager.converged, fast.converged) and eager.converged.all()
    # where a sample looks normal, the t's likelihood keeps rising slowly as df -> infinity
    # (by ~1e-9 beyond df ~ 1e7): the two stop at different huge df, with values within 1e-8
    keep = eager.params["df"] < 1e4 if "df" in eager.params else np.ones(len(y), bool)
    assert keep.sum() >= 30
    np.testing.assert_allclose(fast.value[keep], eager.value[keep], rtol=1e-12)
    np.testing.assert_allclose(fast.value[~keep], eager.value[~keep], rtol=1e-8)
    for k in eager.params:
        np.testing.assert_allclose(fast.params[k][keep], eager.params[k][keep], rtol=1e-9)
        np.testing.assert_allclose(fast.se[k][keep], eager.se[k][keep], rtol=1e-7)


def test_auto_compiles_only_for_large_batches(monkeypatch):
    monkeypatch.setenv("LIKELAB_FUSED", "auto")
    fam, phi = get_family("normal"), phi_form(get_objective("log"))
    small = torch.zeros(10, 100, dtype=torch.float64)
    big = torch.zeros(fused.AUTO_MIN_ELEMENTS // 100 + 1, 100, dtype=torch.float64)
    assert not fused.use_fused(fam, phi, small)
    assert fused.use_fused(fam, phi, big)
    assert not fused.use_fused(fam, get_objective("log").phi, big)  # not an ExpLinear
    with fused.expected_work(fused.AUTO_MIN_ELEMENTS):  # a large job of small batches
        assert fused.use_fused(fam, phi, small)
    assert not fused.use_fused(fam, phi, small)
    monkeypatch.setenv("LIKELAB_FUSED", "off")
    assert not fused.use_fused(fam, phi, big)
    monkeypatch.setenv("LIKELAB_FUSED", "on")
    assert fused.use_fused(fam, phi, small)


def test_a_bad_mode_is_a_clear_error(monkeypatch):
    from likelab.errors import ParameterError

    monkeypatch.setenv("LIKELAB_FUSED", "fast")
    with pytest.raises(ParameterError, match="LIKELAB_FUSED must be one of auto, on, off"):
        fused.fused_mode()


def test_a_failed_compilation_falls_back_to_eager_and_is_reported(monkeypatch):
    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("compiler exploded")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(fused, "_KERNELS", {})
    monkeypatch.setattr(fused, "_REPORT", [])
    fam, phi = get_family("normal"), phi_form(get_objective("log"))
    y, natural = _data("normal", 3, 5), _natural("normal", 3)
    assert fused.fused_local_moments(fam, natural, y, phi) is None
    (record,) = fused.compile_report()
    assert record.outcome == "unavailable: RuntimeError: compiler exploded"
    m = moments.local_moments(fam, natural, y, phi, fused=True)  # the eager result instead
    e = moments.eager_local_moments(fam, natural, y, phi)
    assert torch.equal(m.grad, e.grad)
    assert len(fused.compile_report()) == 1  # not retried in this process


def test_ctrl_c_during_compilation_keeps_nothing(monkeypatch):
    calls = []

    def interrupted(fn, **kwargs):
        def call(*args):
            calls.append(1)
            raise KeyboardInterrupt

        return call

    monkeypatch.setattr(fused, "_KERNELS", {})
    monkeypatch.setattr(fused, "_REPORT", [])
    fam, phi = get_family("normal"), phi_form(get_objective("log"))
    y, natural = _data("normal", 3, 5), _natural("normal", 3)
    with monkeypatch.context() as m:
        m.setattr(torch, "compile", interrupted)
        with pytest.raises(KeyboardInterrupt):
            fused.fused_local_moments(fam, natural, y, phi)
    assert fused._KERNELS == {} and fused.compile_report() == []
    got = fused.fused_local_moments(fam, natural, y, phi)  # compiles again, for real
    want = moments.eager_local_moments(fam, natural, y, phi)
    assert _close(want.hess, got.hess) <= 1e-12


FUSED_STUDY = """
name: fused
seed: 3
dgps:
  - family: normal
    params: {loc: 0, scale: 1}
sample_sizes: [30]
replicates: 40
block: 20
model: {family: normal}
objectives: ["lq:q=0.8"]
"""


def test_ctrl_c_while_a_study_compiles_its_kernels_keeps_nothing_half_written(tmp_path):
    """A real Ctrl-C (SIGINT to the process group) while TorchInductor compiles the first
    kernel into an empty cache: exit 130, no store; the rerun, compiling into the same cache,
    equals a run that was never interrupted, bit for bit."""
    import os
    import signal
    import subprocess
    import time

    from tests.study.test_runner import _cli, _env, results, study_file

    path = study_file(tmp_path, FUSED_STUDY)
    cache = tmp_path / "inductor"
    env = {**_env(), "LIKELAB_FUSED": "on", "TORCHINDUCTOR_CACHE_DIR": str(cache)}
    store = tmp_path / "s.duckdb"
    args = ["study", "run", path, "--store", store, "--executor", "local"]
    proc = subprocess.Popen(
        _cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (cache.exists() and any(cache.iterdir())):  # the compilation has started
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if not ln.startswith("cell ")]
    assert len(lines) == 1 and "interrupted" in lines[0].lower(), err
    assert "Traceback" not in err
    assert not store.exists()  # no cell was done: nothing kept, no store claimed
    again = subprocess.run(_cli(*args), capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    whole = tmp_path / "whole.duckdb"
    once = subprocess.run(
        _cli("study", "run", path, "--store", whole, "--executor", "local"),
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert once.returncode == 0, once.stderr
    # 40 replicates x 2 parameters, the same bits
    assert results(store) == results(whole) and len(results(store)) == 40 * 2


def test_compiling_leaves_torch_distributions_validation_as_it_was():
    # TorchDynamo's first compilation switches argument validation off process-wide
    fused._KERNELS.pop(("moments", "exponential", ("rate",), "lin", "torch.float64", ""), None)
    before = torch.distributions.Distribution._validate_args
    fam, phi = get_family("exponential"), phi_form(get_objective("log"))
    fused.fused_local_moments(fam, _natural("exponential", 3), _data("exponential", 3, 5), phi)
    assert torch.distributions.Distribution._validate_args == before
    import torch._inductor.config as inductor  # likelab's options are its kernels' own

    assert not inductor.cpp.dynamic_threads and inductor.realize_reads_threshold == 4
    with pytest.raises(ValueError):
        torch.distributions.Exponential(torch.tensor(-1.0))


def test_a_bad_mode_is_bad_input_for_the_cli_not_a_failed_objective(monkeypatch, capsys, tmp_path):
    from cli_support import run

    data = tmp_path / "y.txt"
    data.write_text("\n".join(str(v) for v in np.random.default_rng(1).standard_t(4.0, 60)))
    monkeypatch.setenv("LIKELAB_FUSED", "fast")
    code, out, err = run(capsys, "fit", data, "--family", "student_t", "--objective", "log")
    assert code == 2 and out == ""
    assert err.strip() == "error: LIKELAB_FUSED must be one of auto, on, off; got 'fast'"
