"""The unrolled small-batch arithmetic equals torch's reductions and factorisations."""

from __future__ import annotations

import pytest
import torch

from likelab.estimate.small import (
    cholesky_direction,
    row_dot,
    row_max_abs,
    row_sum,
    rows_finite,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("p", [1, 2, 3, 4])
def test_reductions_equal_torchs(p):
    a = torch.randn(50, p, generator=_gen(), dtype=torch.float64)
    b = torch.randn(50, p, generator=_gen(1), dtype=torch.float64)
    torch.testing.assert_close(row_sum(a), a.sum(-1), rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(row_dot(a, b), (a * b).sum(-1), rtol=1e-14, atol=1e-15)
    assert torch.equal(row_max_abs(a), a.abs().amax(-1))


def test_empty_rows():
    x = torch.zeros(3, 0, dtype=torch.float64)
    assert torch.equal(row_sum(x), torch.zeros(3, dtype=torch.float64))
    assert torch.equal(row_max_abs(x), torch.zeros(3, dtype=torch.float64))
    d, ok = cholesky_direction(x, torch.zeros(3, 0, 0, dtype=torch.float64), 1e-12)
    assert d.shape == (3, 0) and ok.all()


def test_rows_finite_sees_every_entry():
    v = torch.zeros(6, dtype=torch.float64)
    g = torch.zeros(6, 2, dtype=torch.float64)
    h = torch.zeros(6, 2, 2, dtype=torch.float64)
    v[1] = float("nan")
    g[2, 1] = float("inf")
    h[3, 1, 0] = float("-inf")
    h[4, 0, 1] = float("nan")
    g[5, 0] = 1e308  # large but finite
    assert rows_finite(v, g, h).tolist() == [True, False, False, False, False, True]
    assert row_max_abs(torch.tensor([[1.0, float("nan")]])).isnan().all()


@pytest.mark.parametrize("p", [1, 2, 3, 4])
def test_cholesky_direction_is_the_newton_step(p):
    gen = _gen(p)
    a = torch.randn(200, p, p, generator=gen, dtype=torch.float64)
    h = a @ a.transpose(-1, -2) + 0.1 * torch.eye(p, dtype=torch.float64)
    h[:, 0, -1] += 1e-3 * (p > 1)  # not exactly symmetric: its symmetric part is used
    g = torch.randn(200, p, generator=gen, dtype=torch.float64)
    d, ok = cholesky_direction(g, h, 1e-12)
    sym = 0.5 * (h + h.transpose(-1, -2))
    want = -torch.linalg.solve(sym, g)
    assert ok.all()
    torch.testing.assert_close(d, want, rtol=1e-10, atol=1e-12)


def test_cholesky_direction_flags_what_is_not_safely_positive_definite():
    h = torch.tensor(
        [
            [[2.0, 0.0], [0.0, 3.0]],  # positive definite
            [[1.0, 2.0], [2.0, 1.0]],  # indefinite
            [[1.0, 1.0], [1.0, 1.0]],  # singular
            [[1e-14, 0.0], [0.0, 1.0]],  # a pivot below delta
            [[float("nan"), 0.0], [0.0, 1.0]],
        ],
        dtype=torch.float64,
    )
    g = torch.ones(5, 2, dtype=torch.float64)
    d, ok = cholesky_direction(g, h, 1e-12)
    assert ok.tolist() == [True, False, False, False, False]
    torch.testing.assert_close(d[0], torch.tensor([-0.5, -1 / 3], dtype=torch.float64))
    _, info = torch.linalg.cholesky_ex(h[:3])
    assert info.tolist() == [0, 2, 2]  # torch agrees on the first three
