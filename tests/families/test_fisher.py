"""Fisher information of every family against an independent computation.

Oracle: the per-observation information E[s sᵀ] (s the score) and, for families whose log density
is twice differentiable, E[-∇² log f] as well, with the score and Hessian from torch autograd of
``log_prob`` (not from the closed forms) and the expectation by ``scipy.integrate.tanhsinh`` over
the scipy.stats density (continuous) or a plain sum over the support (discrete).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from likelab.errors import UnsupportedError
from likelab.families import get_family

F64 = torch.float64


def _score_hessian(fam, free: dict[str, float], y: np.ndarray):
    """Per-observation score (m, p) and Hessian (m, p, p) of log f(y) in the free parameters."""
    yt = torch.as_tensor(np.atleast_1d(y), dtype=F64)
    leaves = {k: torch.full_like(yt, v, requires_grad=True) for k, v in free.items()}
    lp = fam.distribution(**leaves).log_prob(yt).sum()
    names = list(fam.free)
    grads = torch.autograd.grad(lp, [leaves[k] for k in names], create_graph=True)
    score = torch.stack(grads, -1)
    rows = []
    for g in grads:
        second = torch.autograd.grad(
            g.sum(), [leaves[k] for k in names], retain_graph=True, allow_unused=True
        )
        rows.append(torch.stack([torch.zeros_like(yt) if s is None else s for s in second], -1))
    return score.detach().numpy(), torch.stack(rows, -2).detach().numpy()


def _expect_continuous(fam, free, frozen, breaks, which):
    """E[m(Y)] = ∫ pdf(y) m(y) dy, entry by entry, by scipy's tanh-sinh rule (vectorised calls;
    infinite limits and integrable endpoint singularities allowed), split at ``breaks``."""
    p = len(fam.free)
    entries = np.arange(p * p)

    def integrand(y):
        s, h = _score_hessian(fam, free, y.ravel())
        m = np.einsum("ni,nj->nij", s, s) if which == "score" else -h
        m = m.reshape(*y.shape, p * p)
        idx = entries.reshape((p * p,) + (1,) * (y.ndim - 1))
        picked = np.take_along_axis(m, idx[..., None], axis=-1)[..., 0]
        return frozen.pdf(y) * picked

    lo, hi = frozen.support()
    edges = sorted({lo, hi, *breaks})
    total = np.zeros(p * p)
    for a, b in itertools.pairwise(edges):
        res = integrate.tanhsinh(
            integrand,
            np.full(p * p, a),
            np.full(p * p, b),
            preserve_shape=True,
            rtol=1e-12,
            atol=1e-14,
            maxlevel=14,
        )
        assert np.all(res.success), (res.status, res.error)
        total += res.integral
    return total.reshape(p, p)


def _expect_discrete(fam, free, frozen, support, which):
    s, h = _score_hessian(fam, free, support)
    w = frozen.pmf(support)
    if which == "score":
        return np.einsum("m,mi,mj->ij", w, s, s)
    return -np.einsum("m,mij->ij", w, h)


# (spec, free parameters, scipy frozen distribution, break points, smooth log density?)
CONTINUOUS = [
    ("normal", {"loc": 0.3, "scale": 1.7}, stats.norm(0.3, 1.7), [0.3], True),
    ("normal:scale=0.5", {"loc": -1.0}, stats.norm(-1.0, 0.5), [-1.0], True),
    ("student_t", {"df": 4.5, "loc": -1.0, "scale": 0.5}, stats.t(4.5, -1.0, 0.5), [-1.0], True),
    ("student_t", {"df": 1.3, "loc": 0.0, "scale": 2.0}, stats.t(1.3, 0.0, 2.0), [0.0], True),
    ("student_t:df=3", {"loc": 2.0, "scale": 3.0}, stats.t(3.0, 2.0, 3.0), [2.0], True),
    ("student_t:loc=0", {"df": 7.0, "scale": 0.4}, stats.t(7.0, 0.0, 0.4), [0.0], True),
    ("laplace", {"loc": 1.0, "scale": 2.0}, stats.laplace(1.0, 2.0), [1.0], False),
    ("logistic", {"loc": 1.0, "scale": 2.0}, stats.logistic(1.0, 2.0), [1.0], True),
    ("cauchy", {"loc": 1.0, "scale": 2.0}, stats.cauchy(1.0, 2.0), [1.0], True),
    ("exponential", {"rate": 2.5}, stats.expon(scale=0.4), [], True),
    ("gamma", {"concentration": 2.7, "rate": 2.0}, stats.gamma(2.7, scale=0.5), [1.35], True),
    ("gamma:rate=1", {"concentration": 0.6}, stats.gamma(0.6), [0.6], True),
]


@pytest.mark.parametrize(
    "spec, free, frozen, breaks, smooth",
    CONTINUOUS,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CONTINUOUS)],
)
def test_continuous_fisher_information(spec, free, frozen, breaks, smooth):
    fam = get_family(spec)
    info = fam.fisher_information(**free)
    p = len(fam.free)
    assert info.shape == (p, p) and info.dtype == F64
    # tanh-sinh to rtol 1e-12 (converged, by its own error estimate); 1e-7 is the
    # tolerance the closed forms are held to (they are exact up to float64 rounding)
    oracle = _expect_continuous(fam, free, frozen, breaks, "score")
    np.testing.assert_allclose(info.numpy(), oracle, rtol=1e-7, atol=1e-10 * np.abs(oracle).max())
    if smooth:  # the information equality E[s sᵀ] = E[-∇² log f]
        hess = _expect_continuous(fam, free, frozen, breaks, "hessian")
        np.testing.assert_allclose(info.numpy(), hess, rtol=1e-7, atol=1e-10 * np.abs(hess).max())


DISCRETE = [
    ("poisson", {"rate": 3.2}, stats.poisson(3.2), np.arange(0, 80)),
    ("poisson", {"rate": 0.05}, stats.poisson(0.05), np.arange(0, 40)),
    ("bernoulli", {"probs": 0.3}, stats.bernoulli(0.3), np.arange(0, 2)),
]


@pytest.mark.parametrize("spec, free, frozen, support", DISCRETE)
def test_discrete_fisher_information(spec, free, frozen, support):
    fam = get_family(spec)
    info = fam.fisher_information(**free)
    # sums over the support (Poisson truncated where the pmf is below 1e-60): exact to rounding
    for which in ("score", "hessian"):
        oracle = _expect_discrete(fam, free, frozen, support, which)
        np.testing.assert_allclose(info.numpy(), oracle, rtol=1e-10)


def test_student_t_fisher_is_batched_and_restricted_to_free_parameters():
    full = get_family("student_t").fisher_information(
        df=torch.tensor([3.0, 10.0], dtype=F64), loc=0.0, scale=torch.tensor([1.0, 2.0], dtype=F64)
    )
    assert full.shape == (2, 3, 3)
    torch.testing.assert_close(full, full.transpose(-1, -2))
    assert bool((torch.linalg.eigvalsh(full) > 0).all())  # positive definite
    fixed_df = get_family("student_t:df=3").fisher_information(loc=0.0, scale=1.0)
    torch.testing.assert_close(fixed_df, full[0][1:, 1:], rtol=1e-15, atol=0)
    # df -> infinity: the location/scale block tends to the normal's diag(1/σ², 2/σ²)
    big = get_family("student_t").fisher_information(df=1e8, loc=0.0, scale=2.0)
    torch.testing.assert_close(
        big[1:, 1:], torch.diag(torch.tensor([0.25, 0.5], dtype=F64)), rtol=1e-7, atol=0
    )
    assert abs(big[0, 0].item()) < 1e-15


@pytest.mark.parametrize(
    "spec, params",
    [
        ("uniform", {"low": 0.0, "high": 1.0}),
        ("categorical", {"probs": [0.2, 0.8]}),
    ],
)
def test_families_without_fisher_information_say_so(spec, params):
    # uniform: the support depends on the parameters (not a regular model); categorical: no
    # closed form is implemented for the simplex parametrisation
    with pytest.raises(UnsupportedError, match="Fisher information"):
        get_family(spec).fisher_information(**params)


def test_fisher_information_validates_parameters():
    with pytest.raises(Exception) as err:
        get_family("student_t").fisher_information(df=-1.0, loc=0.0, scale=1.0)
    assert "must be > 0" in str(err.value)
    assert math.isfinite(get_family("normal").fisher_information(loc=0.0, scale=1.0)[0, 0].item())


@pytest.mark.parametrize("name", ["normal", "laplace", "logistic", "cauchy"])
def test_fisher_information_follows_the_parameters_dtype(name):
    f32 = {
        "loc": torch.tensor(0.5, dtype=torch.float32),
        "scale": torch.tensor(2.0, dtype=torch.float32),
    }
    info32 = get_family(name).fisher_information(**f32)
    info64 = get_family(name).fisher_information(loc=0.5, scale=2.0)
    assert info32.dtype == torch.float32 and info64.dtype == torch.float64
    torch.testing.assert_close(info32, info64.to(torch.float32))
