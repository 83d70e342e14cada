"""newton_minimize with closed-form derivatives evaluates the full Newton step with them and
reuses them at the next iterate where the step is accepted: the same iterates, values, counts
and reasons as evaluating the value there and the derivatives again, with fewer passes."""

from __future__ import annotations

import numpy as np
import torch

from likelab.estimate import newton
from likelab.estimate.newton import newton_minimize, value_grad_hess


def _cauchy_problems(r: int = 300, n: int = 25, seed: int = 0):
    """Cauchy NLL in (loc, log scale) per dataset, from far-off starts: non-convex, so that
    some full steps are rejected and some line searches halve."""
    y = torch.as_tensor(np.random.default_rng(seed).standard_cauchy((r, n)) * 2.0 + 1.0)
    rows = {"value": 0, "derivatives": 0}

    def fun(u, idx):
        z = (y[idx] - u[:, :1]) * torch.exp(-u[:, 1:])
        return (torch.log1p(z**2) + u[:, 1:]).mean(-1)

    def counted(u, idx):
        rows["value"] += u.shape[0]
        return fun(u, idx)

    def derivatives(u, idx):
        rows["derivatives"] += u.shape[0]
        return value_grad_hess(fun, u, idx)

    u0 = torch.as_tensor(np.random.default_rng(seed + 1).normal(0.0, 3.0, (r, 2)))
    return counted, derivatives, u0, rows


def test_look_ahead_gives_the_same_fit_with_fewer_value_passes(monkeypatch):
    monkeypatch.setattr(newton, "LINE_SEARCH_ROWS", 1)  # one step length per call: rows count
    fun, derivatives, u0, rows = _cauchy_problems()
    got = newton_minimize(fun, u0, derivatives=derivatives)
    with_look_ahead = dict(rows)
    rows.update(value=0, derivatives=0)
    monkeypatch.setattr(newton, "_Ahead", lambda b, u: None)  # evaluate everything again
    ref = newton_minimize(fun, u0, derivatives=derivatives)
    assert torch.equal(got.u, ref.u)
    assert torch.equal(got.value, ref.value)
    assert torch.equal(got.n_iter, ref.n_iter)
    assert got.reason == ref.reason
    assert all(r in ("gtol", "ftol") for r in got.reason)
    # the full steps are no longer evaluated by value; a rejected one costs derivatives there
    assert with_look_ahead["value"] < ref.n_iter.sum() / 3 < rows["value"]
    assert with_look_ahead["derivatives"] < 1.25 * rows["derivatives"]


def test_several_step_lengths_per_call_give_the_same_fit_in_fewer_calls(monkeypatch):
    """The last few problems of a line search try k halvings in one call: the same trial
    points, so the same accepted steps, iterates, values, counts and reasons, bit for bit."""
    calls = {"value": 0}
    fun, derivatives, u0, _ = _cauchy_problems(r=60)

    def counted(u, idx):
        calls["value"] += 1
        return fun(u, idx)

    for ahead in (True, False):  # the line search with and without closed-form derivatives
        kw = {"derivatives": derivatives} if ahead else {}
        calls["value"] = 0
        got = newton_minimize(counted, u0, **kw)
        batched = calls["value"]
        monkeypatch.setattr(newton, "LINE_SEARCH_ROWS", 1)
        calls["value"] = 0
        ref = newton_minimize(counted, u0, **kw)
        monkeypatch.undo()
        assert torch.equal(got.u, ref.u)
        assert torch.equal(got.value, ref.value)
        assert torch.equal(got.n_iter, ref.n_iter)
        assert got.reason == ref.reason
        assert batched < calls["value"], (batched, calls["value"])


def test_a_few_problems_try_as_many_halvings_as_fill_the_minimum_rows_at_once(monkeypatch):
    """A block of halvings starts with as many step lengths as fill LINE_SEARCH_MIN_ROWS rows:
    a handful of problems in Newton's tail no longer pays one call (its fixed cost) per
    doubling. Same trial points, so the same fit bit for bit, in fewer calls."""
    fun, derivatives, u0, _ = _cauchy_problems(r=8, seed=3)
    calls = {"value": 0}

    def counted(u, idx):
        calls["value"] += 1
        return fun(u, idx)

    got = newton_minimize(counted, u0, derivatives=derivatives)
    batched = calls["value"]
    monkeypatch.setattr(newton, "LINE_SEARCH_MIN_ROWS", 1)  # doubling from 1, as before
    calls["value"] = 0
    ref = newton_minimize(counted, u0, derivatives=derivatives)
    assert torch.equal(got.u, ref.u) and torch.equal(got.value, ref.value)
    assert torch.equal(got.n_iter, ref.n_iter) and got.reason == ref.reason
    assert batched < calls["value"], (batched, calls["value"])
