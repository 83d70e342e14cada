"""likelab._threads: the thread policy of batched work (the cores other processes leave idle).

The policy may change the thread count from one Newton iteration to the next, so it is only
sound if the thread count changes no bit of any result: checked on fits of several families and
objectives (closed-form and autograd paths, a kinked density, multistart) whose batches are
large enough for torch to split them between threads, at 1, 2 and 3 threads. The load estimate
is checked on synthetic ``/proc/stat`` snapshots, the policy's formula, its respect of the user's
thread count, its override and the restoring of the previous count on a fit.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from likelab import _threads
from likelab.errors import LikelabError
from likelab.estimate import fit
from likelab.families import get_family


@pytest.fixture
def torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _digest(res) -> str:
    h = hashlib.sha256()
    for part in (res.params, res.se):
        for k in sorted(part):
            h.update(np.ascontiguousarray(part[k], dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(res.value, dtype=np.float64).tobytes())
    h.update(np.asarray(res.n_iter, dtype=np.int64).tobytes())
    return h.hexdigest()


# R * n above torch's grain size (32,768) and not a multiple of the vector width, so that the
# elementwise operations and the per-row reductions are split between threads at odd places.
CASES = [
    ("student_t", "log", dict(df=3.0, loc=1.0, scale=2.0), 1, 0),
    ("gamma", "log", dict(concentration=2.5, rate=0.7), 1, 0),
    ("normal", "dpd:beta=0.5", dict(loc=-1.0, scale=0.5), 1, 0),
    ("normal", "crps", dict(loc=0.0, scale=1.0), 1, 0),
    ("laplace", "log", dict(loc=0.0, scale=1.0), 1, 0),
    ("logistic", "lq:q=0.7", dict(loc=0.5, scale=1.5), 2, 3),
]


@pytest.mark.parametrize(("family", "objective", "truth", "multistart", "seed"), CASES)
def test_a_fit_is_the_same_to_the_bit_whatever_the_thread_count(
    family, objective, truth, multistart, seed, monkeypatch, torch_threads
):
    y = get_family(family).sample((683, 53), seed=11, **truth)
    digests = set()
    for threads in (1, 2, 3, 1):
        monkeypatch.setenv(_threads.ENV, str(threads))
        res = fit(y, family, objective, multistart=multistart, seed=seed)
        assert np.asarray(res.converged).mean() > 0.95
        digests.add(_digest(res))
    assert len(digests) == 1


def test_per_row_reductions_do_not_depend_on_the_thread_count(torch_threads):
    """The premise of the policy, on torch itself: each row of a (B, n) reduction is summed on
    one thread in one order; only a reduction to a single number is split."""
    x = torch.as_tensor(np.random.default_rng(3).standard_t(2.0, (517, 301)))
    results = []
    for threads in (1, 2, 3):
        torch.set_num_threads(threads)
        results.append(
            [x.mean(-1), x.sum(-1), x.std(-1), torch.logsumexp(x, -1), x.exp().log1p().mean(-1)]
        )
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert torch.equal(a, b)


def test_a_single_long_row_keeps_the_thread_count(monkeypatch, torch_threads):
    """A reduction to one number over GRAIN elements or more is split between threads, so for
    such rows the policy does not adapt (the load must not change the numbers)."""
    monkeypatch.setattr(_threads, "idle_cpus", lambda: 1.0)
    monkeypatch.delenv(_threads.ENV, raising=False)
    torch.set_num_threads(2)
    with _threads.batch_threads(_threads.GRAIN) as chosen:
        _threads.adapt()
        assert chosen == torch.get_num_threads() == 2
    with _threads.batch_threads(_threads.GRAIN - 1) as chosen:
        assert chosen == torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize(
    ("idle", "ceiling", "current", "expected"),
    [
        (2.0, 2, None, 2),
        (1.8, 2, None, 2),
        (1.7, 2, None, 1),
        (1.0, 2, None, 1),
        (0.1, 2, None, 1),
        (7.9, 4, None, 4),
        (3.3, 8, None, 3),
        # a thread in use is kept until others use half a CPU; one more needs 3/4 of one idle
        (1.6, 2, 2, 2),
        (1.4, 2, 2, 1),
        (1.7, 2, 1, 1),
        (1.8, 2, 1, 2),
        (2.6, 4, 3, 3),
        (2.4, 4, 3, 2),
    ],
)
def test_the_policy_takes_the_cpus_that_others_leave_idle(
    idle, ceiling, current, expected, monkeypatch
):
    monkeypatch.setattr(_threads, "idle_cpus", lambda: idle)
    assert _threads.policy_threads(ceiling, current) == expected


def test_without_a_load_reading_the_policy_keeps_the_users_count(monkeypatch):
    monkeypatch.setattr(_threads, "idle_cpus", lambda: None)
    assert _threads.policy_threads(3) == 3
    assert _threads.policy_threads(1) == 1


def test_the_load_is_the_busy_time_of_the_allowed_cpus_less_this_processs_own(monkeypatch):
    """Two CPUs over 0.3 s (30 jiffies each at 100 Hz): 42 busy jiffies, 0.15 s of which this
    process used itself (15 jiffies), leave 27 jiffies = 0.9 of a core used by others. A second
    reading within the window keeps the estimate."""
    readings = iter([(100, 400), (142, 460), (150, 470)])
    clock = SimpleNamespace(now=10.0, cpu=1.0)
    monkeypatch.setattr(_threads, "_jiffies", lambda cpus: next(readings))
    monkeypatch.setattr(
        _threads,
        "time",
        SimpleNamespace(monotonic=lambda: clock.now, process_time=lambda: clock.cpu),
    )
    monkeypatch.setattr(_threads, "_allowed_cpus", lambda: [0, 1])
    monkeypatch.setattr(_threads, "_quota_cpus", lambda: 1.5)
    load = _threads._Load()
    load.hz = 100
    clock.now, clock.cpu = 10.3, 1.15
    assert load.update() == pytest.approx(0.9)
    clock.now = 10.3 + _threads.WINDOW / 2
    assert load.update() == pytest.approx(0.9)  # within the window: no new reading
    monkeypatch.setattr(_threads, "_LOAD", load)
    assert _threads.idle_cpus() == pytest.approx(1.1)  # 2 - 0.9, below the quota of 1.5


def test_a_fit_runs_on_the_idle_cpus_and_restores_the_count(monkeypatch, torch_threads):
    """Inside the fit (a user objective sees it) the policy's count; after it, the previous one,
    also when the fit raises."""
    seen = []

    def user_loss(dist, y):
        seen.append(torch.get_num_threads())
        return -dist.log_prob(y)

    monkeypatch.delenv(_threads.ENV, raising=False)
    monkeypatch.setattr(_threads, "idle_cpus", lambda: 1.1)  # one CPU left idle by others
    torch.set_num_threads(2)
    y = get_family("normal").sample((40, 30), seed=1, loc=0.0, scale=1.0)
    fit(y, "normal", user_loss)
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2

    def broken(dist, y):
        raise RuntimeError("broken")

    with pytest.raises(Exception):  # noqa: B017 (whatever fit makes of it)
        fit(y, "normal", broken)
    assert torch.get_num_threads() == 2


def test_the_users_thread_count_is_a_ceiling_and_the_variable_overrides_it(
    monkeypatch, torch_threads
):
    seen = []

    def user_loss(dist, y):
        seen.append(torch.get_num_threads())
        return -dist.log_prob(y)

    y = get_family("normal").sample((20, 30), seed=2, loc=0.0, scale=1.0)
    monkeypatch.setattr(_threads, "idle_cpus", lambda: 16.0)  # a quiet 16-core machine
    monkeypatch.delenv(_threads.ENV, raising=False)
    torch.set_num_threads(1)  # the user's choice: never exceeded
    fit(y, "normal", user_loss)
    assert set(seen) == {1}
    seen.clear()
    monkeypatch.setenv(_threads.ENV, "3")  # the override: exactly 3, whatever the load
    monkeypatch.setattr(_threads, "idle_cpus", lambda: 0.0)
    fit(y, "normal", user_loss)
    assert set(seen) == {3}
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_variable_is_a_likelab_error(value, monkeypatch):
    monkeypatch.setenv(_threads.ENV, value)
    y = np.random.default_rng(0).normal(size=20)
    with pytest.raises(LikelabError, match=_threads.ENV):
        fit(y, "normal")


def test_a_landscape_is_the_same_to_the_bit_whatever_the_thread_count(monkeypatch, torch_threads):
    from likelab.landscape import evaluate

    y = np.random.default_rng(1).standard_t(3.0, 601)
    grid = {"loc": np.linspace(-1.0, 1.0, 61), "scale": np.linspace(0.5, 2.0, 37)}
    digests = set()
    for threads in (1, 2, 3):
        monkeypatch.setenv(_threads.ENV, str(threads))
        land = evaluate(y, "student_t:df=3", ["log", "dpd:beta=0.5", "linear"], grid)
        digests.add(b"".join(r.values.tobytes() for r in land.results.values()))
    assert len(digests) == 1


def test_a_bad_variable_is_bad_input_for_the_cli_not_a_failed_objective(
    monkeypatch, capsys, tmp_path
):
    from cli_support import run

    data = tmp_path / "y.txt"
    data.write_text("\n".join(str(v) for v in np.random.default_rng(1).standard_t(4.0, 60)))
    monkeypatch.setenv(_threads.ENV, "many")
    code, out, err = run(capsys, "fit", data, "--family", "student_t", "--objective", "log")
    assert code == 2 and out == ""
    assert err.startswith("error: LIKELAB_THREADS must be 'auto' or a positive integer")
