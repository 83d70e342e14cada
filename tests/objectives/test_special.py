"""Differentiable incomplete beta / gamma functions and the Student-t CDF.

Oracles: scipy.special.betainc / gammainc / gammaincc and scipy.stats.t (values); the Student-t
CDF and density at integer df in mpmath (40 digits); exact
rational values of B(m, n) and B(1/2, n) in integer arithmetic (log B);
scipy.stats densities (the derivative in x is the density); five-point central differences of the
scipy functions (derivatives in the shape arguments); torch.autograd.gradcheck / gradgradcheck.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import scipy.special as sc
import torch
from scipy import stats
from torch.autograd import gradcheck, gradgradcheck

from likelab.objectives import _special
from likelab.objectives._special import (
    _lbeta,
    _student_t_cdf_betainc,
    _student_t_cdf_integer,
    betainc,
    gammainc,
    gammaincc,
    student_t_cdf,
    student_t_cdf_df_derivatives,
)

F64 = torch.float64


def t64(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=np.float64), dtype=F64)


def fd5(f, v: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Five-point central difference (-f(v+2h) + 8f(v+h) - 8f(v-h) + f(v-2h)) / 12h.

    Truncation error h⁴ f⁽⁵⁾/30: with h = 1e-3 v it is ~1e-12 relative. Round-off: scipy's values
    carry ~1e-14 relative error, divided by h >= 1e-4 (shape arguments >= 0.1 below): < 1e-9
    absolute. Hence the tolerances rtol=1e-6, atol=1e-9 of the derivative tests.
    """
    return (-f(v + 2 * h) + 8 * f(v + h) - 8 * f(v - h) + f(v - 2 * h)) / (12 * h)


def beta_grid(n: int, hi: float, seed: int):
    rng = np.random.default_rng(seed)
    a = np.exp(rng.uniform(np.log(0.05), np.log(hi), n))
    b = np.exp(rng.uniform(np.log(0.05), np.log(hi), n))
    x = np.concatenate([rng.uniform(0, 1, n - 40), 10.0 ** -rng.uniform(1, 12, 20)])
    x = np.concatenate([x, 1 - 10.0 ** -rng.uniform(1, 12, 20)])
    return a, b, x


# ----------------------------------------------------------------------------- values
@pytest.mark.parametrize(("hi", "seed"), [(10.0, 0), (200.0, 1)])
def test_betainc_matches_scipy(hi, seed):
    a, b, x = beta_grid(3000, hi, seed)
    want = sc.betainc(a, b, x)
    got = betainc(t64(a), t64(b), t64(x)).numpy()
    # scipy (Boost) is accurate to a few ulp. Ours: the prefactor x^a (1-x)^b / B(a,b) in log
    # space (~1e-14 relative with the cancellation-free log B), and where x > (a+1)/(a+b+2) the
    # complement 1 - I_{1-x}(b, a) whose absolute error is a few ulp: hence rtol 1e-12 with an
    # absolute floor of 1e-15. Results below 1e-250 are left out: scipy itself loses accuracy in
    # that underflow range (e.g. betainc(268, 30, 0.06) ≈ 5e-287 is 40 % off in scipy 1.17).
    keep = want > 1e-250
    assert keep.sum() > 0.9 * len(a)
    np.testing.assert_allclose(got[keep], want[keep], rtol=1e-12, atol=1e-15)


def test_betainc_end_points_symmetry_and_domain():
    a = t64([0.3, 2.0, 50.0])
    b = t64([4.0, 0.5, 70.0])
    assert torch.equal(betainc(a, b, torch.zeros(3, dtype=F64)), torch.zeros(3, dtype=F64))
    assert torch.equal(betainc(a, b, torch.ones(3, dtype=F64)), torch.ones(3, dtype=F64))
    x = t64([0.1, 0.6, 0.45])
    # I_x(a, b) + I_{1-x}(b, a) = 1 (Abramowitz & Stegun 26.5.2); float64 round-off only.
    total = betainc(a, b, x) + betainc(b, a, 1 - x)
    np.testing.assert_allclose(total.numpy(), 1.0, rtol=0, atol=1e-15)
    bad = betainc(t64([-1.0, 1.0, 1.0, 1.0]), t64([1.0, 0.0, 1.0, 1.0]), t64([0.5, 0.5, -0.1, 1.1]))
    assert torch.isnan(bad).all()


@pytest.mark.parametrize(("hi", "seed"), [(10.0, 2), (200.0, 3)])
def test_gammainc_and_gammaincc_match_scipy(hi, seed):
    rng = np.random.default_rng(seed)
    n = 3000
    a = np.exp(rng.uniform(np.log(0.05), np.log(hi), n))
    # x around a (where both series and continued fraction work hardest) and far from it
    x = np.concatenate(
        [a[: n // 2] * np.exp(rng.normal(0, 0.6, n // 2)), 10 ** rng.uniform(-8, 3, n - n // 2)]
    )
    p, q = gammainc(t64(a), t64(x)).numpy(), gammaincc(t64(a), t64(x)).numpy()
    p_want, q_want = sc.gammainc(a, x), sc.gammaincc(a, x)
    # scipy's igam loses ~eps·a relative accuracy for large a (its prefactor is
    # exp(a log x - x - lgamma a)): about 1e-13 at a = 200; ours uses the cancellation-free
    # Temme form. Each of P, Q is computed directly where it is the smaller, the
    # other as 1 - that (a few ulp absolute): rtol 1e-12, atol 1e-15. Below 1e-250 scipy itself
    # degrades (underflow of its prefactor), so those points are left out.
    for got, want in ((p, p_want), (q, q_want)):
        keep = want > 1e-250
        assert keep.sum() > 0.8 * n
        np.testing.assert_allclose(got[keep], want[keep], rtol=1e-12, atol=1e-15)


def test_gammainc_end_points_and_domain():
    a = t64([0.2, 1.0, 30.0])
    zero, inf = torch.zeros(3, dtype=F64), torch.full((3,), float("inf"), dtype=F64)
    assert torch.equal(gammainc(a, zero), zero)
    assert torch.equal(gammaincc(a, zero), torch.ones(3, dtype=F64))
    assert torch.equal(gammainc(a, inf), torch.ones(3, dtype=F64))
    assert torch.equal(gammaincc(a, inf), zero)
    # P(1, x) = 1 - e^{-x} exactly (the exponential CDF): round-off only
    x = t64([1e-8, 0.3, 2.0, 40.0])
    np.testing.assert_allclose(
        gammainc(torch.ones(4, dtype=F64), x).numpy(), -np.expm1(-x.numpy()), rtol=1e-14
    )
    assert torch.isnan(gammainc(t64([0.0, -1.0, 1.0]), t64([1.0, 1.0, -1.0]))).all()


@pytest.mark.parametrize(("hi", "seed"), [(10.0, 4), (300.0, 5)])
def test_student_t_cdf_matches_scipy(hi, seed):
    rng = np.random.default_rng(seed)
    n = 3000
    df = np.exp(rng.uniform(np.log(0.1), np.log(hi), n))
    z = rng.standard_cauchy(n) * rng.choice([0.01, 1.0, 30.0], n)
    z[:10] = 0.0
    got = student_t_cdf(t64(z), t64(df)).numpy()
    want = stats.t.cdf(z, df)
    # Same error budget as betainc (F is 1/2 I_x or 1 - 1/2 I_x): rtol 1e-12, atol 1e-15 for the
    # complement; tails below 1e-250 excluded (scipy's own underflow range).
    keep = want > 1e-250
    np.testing.assert_allclose(got[keep], want[keep], rtol=1e-12, atol=1e-15)
    assert np.all(got[:10] == 0.5)
    ends = student_t_cdf(t64([-np.inf, np.inf]), t64([3.0, 3.0]))
    assert ends.tolist() == [0.0, 1.0]


# ----------------------------------------------------------------------------- integer df
INT_DF = list(range(1, _special._INT_DF_MAX + 1))
# z on both sides of the branch switch |z| = 1 (and of 2, √ν) and out to the far tails
Z_MAG = np.array(
    [0.0, 1e-12, 1e-3, 0.3, 0.999, 1.0, 1.001, 1.7, 1.99, 2.01, 2.2, 2.5, 3.0, 4.2, 5.6, 7.0]
)
Z_MAG = np.concatenate([Z_MAG, [12.0, 30.0, 1e2, 1e3, 1e5, 1e8]])
Z_INT = np.concatenate([-Z_MAG[::-1], Z_MAG[1:]])


def _mp_t(z: float, df: int) -> tuple[float, float, float]:
    """(F, f, f') of the standard t_ν at z in 40-digit arithmetic: F = ½ I_x(ν/2, ½) (z < 0)."""
    with mpmath.workdps(40):
        zz, nu = mpmath.mpf(z), mpmath.mpf(df)
        tail = mpmath.betainc(nu / 2, mpmath.mpf(0.5), 0, nu / (nu + zz * zz), regularized=True) / 2
        cdf = tail if zz < 0 else 1 - tail
        pdf = (1 + zz * zz / nu) ** (-(nu + 1) / 2) / (mpmath.sqrt(nu) * mpmath.beta(0.5, nu / 2))
        return float(cdf), float(pdf), float(-(nu + 1) * zz / (nu + zz * zz) * pdf)


@pytest.fixture(scope="module")
def exact_t():
    return {df: np.array([_mp_t(z, df) for z in Z_INT]).T for df in INT_DF}


def test_integer_df_cdf_is_exact_in_both_tails(exact_t):
    # The finite forms give the left tail from positive terms only (and the right as 1 - it),
    # so F keeps its relative accuracy down to F ~ 1e-150 (ν = 30, z = -1e5). Error budget:
    # the rounding of 1/|w| = √ν/|z| and of the quadrature's nodes, amplified ~ν-fold in the
    # tails (F ∝ |z|^-ν), plus the centre's difference from 1/2 for F >= F(-1) > 0.15; observed
    # <= 36 ulp over ν <= 30 (the continued fraction: up to ~400), so 2e-14 relative. scipy
    # (Boost) and the continued fraction are checked at their own 1e-12.
    z = t64(Z_INT)
    for df in INT_DF:
        want = exact_t[df][0]
        got = student_t_cdf(z, t64(np.full(len(Z_INT), float(df)))).numpy()
        np.testing.assert_allclose(got, want, rtol=2e-14, atol=0, err_msg=f"df={df}")
        general = _student_t_cdf_betainc(z, t64(float(df)).expand(len(Z_INT)), z != z, 2000)
        np.testing.assert_allclose(general.numpy(), want, rtol=1e-12, atol=0)
        np.testing.assert_allclose(stats.t.cdf(Z_INT, df), want, rtol=1e-12, atol=0)
        # log F where F carries relative accuracy (left of the centre: scipy's logcdf returns
        # log ½ at z = -1e-12, a relative error of 1e-12 that F itself does not have)
        left = Z_INT < -1e-6
        np.testing.assert_allclose(
            np.log(got[left]), stats.t.logcdf(Z_INT[left], df), rtol=1e-13, atol=0
        )
    assert student_t_cdf(t64([0.0, -0.0]), 7.0).tolist() == [0.5, 0.5]


def test_integer_df_derivatives_are_the_density_and_its_slope(exact_t):
    # The sums are differentiated by autograd through z = w√ν: the first derivative must be
    # the density, the second its slope -(ν+1) z f / (ν + z²), in both tails too (relative),
    # including across the branch switches where a stand-in input could leak.
    for df in INT_DF:
        _, pdf, slope = exact_t[df]
        z = t64(Z_INT).requires_grad_(True)
        (d1,) = torch.autograd.grad(student_t_cdf(z, float(df)).sum(), z, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), z)
        np.testing.assert_allclose(d1.detach().numpy(), pdf, rtol=1e-13, err_msg=f"df={df}")
        np.testing.assert_allclose(d2.numpy(), slope, rtol=1e-12, atol=1e-300, err_msg=f"{df}")
    # beyond |z| ~ 1e154, z² overflows: the sums are written in 1/|w|, so values and
    # derivatives of orders 1-3 stay finite (they underflow to 0 where the truth does)
    z = t64([-1e300, -1e200, -1e160, 1e160, 1e300]).requires_grad_(True)
    for df in (1, 2, 5, 30):
        out = student_t_cdf(z, float(df))
        assert out.detach().tolist()[-2:] == [1.0, 1.0]
        # (scipy returns 0 there; 40-digit values where they are normal floats)
        want = np.array([_mp_t(v, df)[0] for v in z.detach().numpy()[:3]])
        keep = want > 1e-305
        assert keep.all() == (df == 1)
        left = out.detach()[:3].numpy()
        np.testing.assert_allclose(left[keep], want[keep], rtol=1e-13)
        assert np.all(left[~keep] < 1e-290)
        grad = out.sum()
        for _ in range(3):
            (grad,) = torch.autograd.grad(grad.sum(), z, create_graph=True)
            assert torch.isfinite(grad).all()
    zc = t64([-40.0, -2.5, -0.3, 0.0, 1.0, 2.6, 1e4]).requires_grad_(True)
    for df in (1, 2, 3, 8, 29):
        assert gradgradcheck(lambda v, d=df: student_t_cdf(v, float(d)), (zc,))


def test_general_path_far_tails_are_finite():
    # the continued-fraction path formed z² (inf beyond |z| ~ 1e154) and returned nan there;
    # it now works in w = z/√ν and 1/|w|, like the integer path
    z = t64([-1e300, -1e200, -1e160, -1e30, 1e160, 1e300]).requires_grad_(True)
    for df in (0.7, 2.5, "grad"):
        nu = t64(5.0).requires_grad_(True) if df == "grad" else t64(df)
        out = student_t_cdf(z, nu)
        want = np.array([_mp_t(v, float(nu.detach()))[0] for v in z.detach().numpy()])
        keep = (want > 1e-305) & (want < 0.5)
        np.testing.assert_allclose(out.detach().numpy()[keep], want[keep], rtol=1e-12)
        assert out.detach().tolist()[-2:] == [1.0, 1.0]
        assert np.all(out.detach().numpy()[:4][~keep[:4]] < 1e-290)
        wrt = (z, nu) if nu.requires_grad else (z,)
        grads = torch.autograd.grad(out.sum(), wrt, create_graph=True)
        assert all(torch.isfinite(g).all() for g in grads)
        second = torch.autograd.grad(grads[0].sum(), wrt)
        assert all(torch.isfinite(h).all() for h in second)


def test_integer_df_path_is_taken_only_where_it_applies(monkeypatch):
    z = t64([-1e6, -3.0, -0.4, 0.0, 0.8, 2.2, 90.0])

    def no_fraction(*args, **kwargs):
        raise AssertionError("the continued fraction ran")

    # every df an integer in [1, K], no gradient through df: no continued fraction at all,
    # several distinct values included (each its own pass, values identical to one alone)
    df = t64([1.0, 2.0, 5.0, 5.0, 30.0, 2.0, 1.0])
    with monkeypatch.context() as m:
        m.setattr(_special, "_betacf", no_fraction)
        mixed = student_t_cdf(z, df)
        alone = [student_t_cdf(z[i : i + 1], df[i : i + 1]) for i in range(len(z))]
        with torch.no_grad():
            student_t_cdf(z, df.clone().requires_grad_(True))  # no graph: df needs no gradient
    assert torch.equal(mixed, torch.cat(alone))
    for i in range(len(z)):
        assert torch.equal(mixed[i : i + 1], _student_t_cdf_integer(z[i : i + 1], int(df[i])))
    # otherwise the general path, element for element
    others = [
        t64([1.0, 2.0, 5.0, 5.5, 30.0, 2.0, 1.0]),  # one non-integer
        t64([1.0, 2.0, 5.0, 5.0, 31.0, 2.0, 1.0]),  # one above K
        t64([0.5, 2.0, 5.0, 5.0, 3.0, 2.0, 1.0]),  # one below 1
        t64([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])[:7],  # 7 distinct: still fast
    ]
    for df in others[:3]:
        general = _student_t_cdf_betainc(z, df, z != z, 2000)
        assert torch.equal(student_t_cdf(z, df), general)
    assert torch.equal(
        student_t_cdf(z, others[3]),
        torch.cat([student_t_cdf(z[i], others[3][i]).reshape(1) for i in range(7)]),
    )
    many = t64(np.arange(1.0, 10.0))  # 9 distinct values: more passes than the fraction costs
    zm = t64(np.linspace(-5, 5, 9))
    assert torch.equal(student_t_cdf(zm, many), _student_t_cdf_betainc(zm, many, zm != zm, 2000))
    dfg = t64([5.0] * 7).requires_grad_(True)  # gradient through df wanted: general path
    got = student_t_cdf(z, dfg)
    assert torch.equal(got.detach(), _student_t_cdf_betainc(z, dfg.detach(), z != z, 2000))
    (gd,) = torch.autograd.grad(got.sum(), dfg)
    zn = z.numpy()
    np.testing.assert_allclose(
        gd.numpy(),
        fd5(lambda v: stats.t.cdf(zn, v), np.full(7, 5.0), np.full(7, 5e-3)),
        **{"rtol": 1e-6, "atol": 1e-9},
    )
    # float32 follows the inputs on the integer path too (eps 1.2e-7)
    z32 = torch.tensor([-200.0, -3.0, 0.5, 4.0], dtype=torch.float32)
    got32 = student_t_cdf(z32, 3.0)
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), stats.t.cdf(z32.numpy(), 3), rtol=2e-6)


def test_per_value_evaluates_once_per_distinct_value_with_the_same_numbers():
    calls = []

    def fn(v):
        calls.append(v.numel())
        return _lbeta(torch.full_like(v, 0.5), v), torch.sqrt(v)

    for x in (t64([[3.5, 3.5], [3.5, 3.5]]), t64([2.0, 7.0, 2.0, 7.0, 7.0]), t64(4.0)):
        calls.clear()
        got = _special._per_value(fn, x)
        want = fn(x)
        assert calls[0] == x.unique().numel()
        for g, w in zip(got, want, strict=True):
            assert g.shape == x.shape and torch.equal(g, w)
    xg = t64([2.0, 2.0]).requires_grad_(True)  # a gradient through x: element by element
    calls.clear()
    (g,) = torch.autograd.grad(_special._per_value(fn, xg)[1].sum(), xg)
    assert calls == [2] and torch.allclose(g, 0.5 / xg.detach().sqrt())


def _exact_log_ratio(p: int, q: int) -> float:
    """log(p / q) for big positive integers, with one rounding (no cancellation of large logs)."""
    shift = q.bit_length() - p.bit_length() + 64
    ratio = (p << shift) // q if shift >= 0 else (p >> -shift) // q  # ~2^64, exact to 2^-64
    return math.log(ratio) - shift * math.log(2.0)


def test_lbeta_against_exact_rational_values():
    # Exact oracles in integer arithmetic: B(m, n) = (m-1)! (n-1)! / (m+n-1)! and
    # B(1/2, n) = 4^n (n-1)! n! / (2n)!  (from Γ(n + 1/2) = (2n)! √π / (4^n n!)).
    # scipy.special.betaln is no oracle here: it loses ~1e-11 absolute for arguments ~1e4.
    rng = np.random.default_rng(6)
    m = np.concatenate([[1, 3, 9, 10, 11, 50], rng.integers(1, 4000, 30)])
    n = np.concatenate([[1, 12, 9, 3000, 10, 4000], rng.integers(1, 4000, 30)])
    want = [
        _exact_log_ratio(math.factorial(i - 1) * math.factorial(j - 1), math.factorial(i + j - 1))
        for i, j in zip(m.tolist(), n.tolist(), strict=True)
    ]
    got = _lbeta(t64(m), t64(n)).numpy()
    # a few ulp of |log B| (the Stirling series is truncated below 3e-17 for arguments >= 10),
    # where the naive lgamma sum would lose eps·lgamma(8000) ~ 1e-11 absolute
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)
    k = np.array([1, 2, 5, 9, 10, 11, 40, 700, 3999])
    want = [
        _exact_log_ratio(4**j * math.factorial(j - 1) * math.factorial(j), math.factorial(2 * j))
        for j in k.tolist()
    ]
    got = _lbeta(torch.full((len(k),), 0.5, dtype=F64), t64(k)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)


def test_values_do_not_depend_on_the_rest_of_the_batch():
    # The iteration stops when every element has converged; converged elements are frozen, so an
    # easy element gives the same result alone or next to one that needs hundreds of iterations.
    a, b, x = t64([2.0, 900.0]), t64([3.0, 1100.0]), t64([0.3, 0.45])
    batch = betainc(a, b, x)
    alone = betainc(a[:1], b[:1], x[:1])
    np.testing.assert_allclose(batch[:1].numpy(), alone.numpy(), rtol=4e-16, atol=0)
    g_batch = gammainc(t64([2.0, 5000.0]), t64([1.5, 5050.0]))
    g_alone = gammainc(t64([2.0]), t64([1.5]))
    np.testing.assert_allclose(g_batch[:1].numpy(), g_alone.numpy(), rtol=4e-16, atol=0)


# ----------------------------------------------------------------------------- derivatives
def test_derivatives_in_x_are_the_densities():
    rng = np.random.default_rng(7)
    a, b = np.exp(rng.uniform(np.log(0.1), np.log(50), (2, 1000)))
    x = rng.uniform(0.001, 0.999, 1000)
    xt = t64(x).requires_grad_(True)
    (g,) = torch.autograd.grad(betainc(t64(a), t64(b), xt).sum(), xt)
    # autograd differentiates the converged continued fraction: the derivative keeps the
    # accuracy of the value (~1e-14), checked at rtol 1e-11.
    np.testing.assert_allclose(g.numpy(), stats.beta.pdf(x, a, b), rtol=1e-11)

    a = np.exp(rng.uniform(np.log(0.1), np.log(100), 1000))
    x = a * np.exp(rng.normal(0, 0.5, 1000))
    xt = t64(x).requires_grad_(True)
    (g,) = torch.autograd.grad(gammainc(t64(a), xt).sum(), xt)
    np.testing.assert_allclose(g.numpy(), stats.gamma.pdf(x, a), rtol=1e-11)

    df = np.exp(rng.uniform(np.log(0.2), np.log(100), 1000))
    z = np.concatenate([[0.0, -0.0, 1e-12], rng.standard_cauchy(997)])
    zt = t64(z).requires_grad_(True)
    (g,) = torch.autograd.grad(student_t_cdf(zt, t64(df)).sum(), zt)
    # including z = 0, where the derivative through betainc(z²) would be 0 · ∞
    np.testing.assert_allclose(g.numpy(), stats.t.pdf(z, df), rtol=1e-11)


def test_derivatives_in_shape_arguments_match_finite_differences():
    rng = np.random.default_rng(8)
    n = 600
    a, b = np.exp(rng.uniform(np.log(0.1), np.log(50), (2, n)))
    x = rng.uniform(0.001, 0.999, n)
    at, bt = t64(a).requires_grad_(True), t64(b).requires_grad_(True)
    ga, gb = torch.autograd.grad(betainc(at, bt, t64(x)).sum(), (at, bt))
    tol = {"rtol": 1e-6, "atol": 1e-9}  # see fd5
    np.testing.assert_allclose(ga.numpy(), fd5(lambda v: sc.betainc(v, b, x), a, 1e-3 * a), **tol)
    np.testing.assert_allclose(gb.numpy(), fd5(lambda v: sc.betainc(a, v, x), b, 1e-3 * b), **tol)

    a = np.exp(rng.uniform(np.log(0.1), np.log(100), n))
    x = a * np.exp(rng.normal(0, 0.5, n))
    at = t64(a).requires_grad_(True)
    (ga,) = torch.autograd.grad(gammainc(at, t64(x)).sum(), at)
    np.testing.assert_allclose(ga.numpy(), fd5(lambda v: sc.gammainc(v, x), a, 1e-3 * a), **tol)

    df = np.exp(rng.uniform(np.log(0.2), np.log(100), n))
    z = rng.standard_cauchy(n)
    dft = t64(df).requires_grad_(True)
    (gd,) = torch.autograd.grad(student_t_cdf(t64(z), dft).sum(), dft)
    np.testing.assert_allclose(gd.numpy(), fd5(lambda v: stats.t.cdf(z, v), df, 1e-3 * df), **tol)


def test_gradcheck_float64():
    a = t64([0.5, 2.0, 7.0, 30.0]).requires_grad_(True)
    b = t64([3.0, 0.7, 7.0, 12.0]).requires_grad_(True)
    x = t64([0.2, 0.9, 0.5, 0.8]).requires_grad_(True)  # both sides of the switch point
    assert gradcheck(betainc, (a, b, x))
    assert gradgradcheck(betainc, (a, b, x))
    xg = t64([0.1, 1.5, 9.0, 45.0]).requires_grad_(True)  # series and continued fraction
    assert gradcheck(gammainc, (a, xg))
    assert gradgradcheck(gammainc, (a, xg))
    assert gradcheck(gammaincc, (a, xg))
    z = t64([-40.0, -0.3, 0.0, 2.5]).requires_grad_(True)  # tail, centre, z = 0, centre/tail
    df = t64([1.5, 4.0, 0.7, 25.0]).requires_grad_(True)
    assert gradcheck(student_t_cdf, (z, df))
    assert gradgradcheck(student_t_cdf, (z, df))


# ----------------------------------------------------------------------------- dtype / device
def test_float32_follows_inputs():
    rng = np.random.default_rng(9)
    a, b = rng.uniform(0.2, 20, (2, 200))
    x = rng.uniform(0.01, 0.99, 200)
    f32 = torch.float32
    got = betainc(
        torch.tensor(a, dtype=f32), torch.tensor(b, dtype=f32), torch.tensor(x, dtype=f32)
    )
    assert got.dtype == f32
    # float32: eps = 1.2e-7; the prefactor exp(a log x + ... ) amplifies the input rounding of
    # x by ~a·eps, so 1e-4 relative (with a 1e-6 floor for the complement).
    want = sc.betainc(a.astype(np.float32), b.astype(np.float32), x.astype(np.float32))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-6)
    xg = a * rng.uniform(0.5, 1.5, 200)
    got = gammainc(torch.tensor(a, dtype=f32), torch.tensor(xg, dtype=f32))
    assert got.dtype == f32
    np.testing.assert_allclose(
        got.numpy(), sc.gammainc(a.astype(np.float32), xg.astype(np.float32)), rtol=1e-4, atol=1e-6
    )
    z = torch.tensor(rng.normal(0, 3, 200), dtype=f32, requires_grad=True)
    cdf = student_t_cdf(z, 4.0)
    assert cdf.dtype == f32
    (g,) = torch.autograd.grad(cdf.sum(), z)
    assert g.dtype == f32 and torch.isfinite(g).all()
    # python numbers with a float64 tensor: float64 out
    assert betainc(2.0, 3.0, t64([0.5])).dtype == F64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_follows_inputs():
    dev = torch.device("cuda")
    a = torch.tensor([0.5, 3.0, 40.0], dtype=F64, device=dev, requires_grad=True)
    x = torch.tensor([0.2, 0.5, 0.6], dtype=F64, device=dev)
    out = betainc(a, 2.0, x)
    assert out.device.type == "cuda"
    out.sum().backward()
    assert a.grad.device.type == "cuda"
    # same algorithm, same float64 arithmetic on either device: round-off only
    np.testing.assert_allclose(
        out.detach().cpu().numpy(),
        sc.betainc(a.detach().cpu().numpy(), 2.0, [0.2, 0.5, 0.6]),
        rtol=1e-12,
    )
    g = gammainc(a, x * 50)
    t = student_t_cdf(x - 0.4, a)
    assert g.device.type == "cuda" and t.device.type == "cuda"


# ------------------------------------------------------------------ d/dν of the t CDF
def _t_cdf_mp(z, nu):
    """The t CDF from mpmath's incomplete beta function (its own algorithm), 40 digits, as
    -P(T > z) for z > 0: 1 - P(T > z) would round to 1 in a far tail (same ν-derivatives)."""
    tail = mpmath.betainc(nu / 2, mpmath.mpf(1) / 2, 0, nu / (nu + z * z), regularized=True) / 2
    return -tail if z > 0 else tail


DF_GRID = [0.5, 1.001, 1.2, 1.9, 2.9, 3.0, 3.5, 4.5, 7.5, 30.0, 150.0, 1000.0]
Z_GRID = [-300.0, -40.0, -8.0, -6.0, -4.4, -3.0, -2.0, -1.2, -0.3, -1e-3, 0.0, 0.05, 0.7, 1.9]
Z_GRID += [2.5, 2.56, 3.2]
Z_GRID += [4.0, 6.0, 10.0, 25.0, 1e5]


@pytest.mark.parametrize("df", DF_GRID)
def test_student_t_cdf_df_derivatives_match_mpmath(df, monkeypatch):
    # Every rule (Gauss-Legendre core, Gauss-Laguerre far tail, series) and the switches between
    # them, against mpmath.diff of mpmath's betainc: 2e-13 relative in value, including tails
    # far below 1e-100 (measured worst 1.0e-13, at df = 1000 in the core, where the density's
    # df-score is a difference of terms of order 1/df)
    monkeypatch.setattr(mpmath.mp, "dps", 40)  # restored after the test
    z = torch.tensor(Z_GRID, dtype=torch.float64)
    d1, d2 = student_t_cdf_df_derivatives(z, torch.tensor(df, dtype=torch.float64))
    nu = mpmath.mpf(df)
    for i, zi in enumerate(Z_GRID):
        zm = mpmath.mpf(zi)
        w1 = mpmath.diff(lambda v, zm=zm: _t_cdf_mp(zm, v), nu) if zi else 0
        w2 = mpmath.diff(lambda v, zm=zm: _t_cdf_mp(zm, v), nu, 2) if zi else 0
        for got, want in ((d1[i], w1), (d2[i], w2)):
            assert abs(float(got) - float(want)) <= 2e-13 * abs(float(want)), (zi, got, want)


def test_student_t_cdf_df_derivatives_agree_with_autograd_in_bulk():
    # 6,000 points over df in (1, 60), every rule: the first derivative against autograd through
    # student_t_cdf's continued fraction (an independent route), 1e-12 relative to the largest
    g = torch.Generator().manual_seed(3)
    df = 1.0 + 59.0 * torch.rand(60, 1, generator=g, dtype=torch.float64)
    z = (
        4.0
        * torch.randn(60, 100, generator=g, dtype=torch.float64)
        / torch.rand(60, 1, generator=g)
    )
    nu = df.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(student_t_cdf(z, nu).sum(), nu)
    d1, _ = student_t_cdf_df_derivatives(z, df)
    scale = d1.abs().amax(dim=1)
    assert torch.all((d1.sum(dim=1) - auto[:, 0]).abs() <= 1e-12 * 100 * scale)
    # the same numbers however the batch is shaped (per-element rules, no cross-talk)
    e1, e2 = student_t_cdf_df_derivatives(z.reshape(-1), df.expand(60, 100).reshape(-1))
    f1, f2 = student_t_cdf_df_derivatives(z, df)
    assert torch.equal(e1, f1.reshape(-1)) and torch.equal(e2, f2.reshape(-1))


def test_student_t_cdf_df_derivatives_domain():
    t = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    d1, d2 = student_t_cdf_df_derivatives(t(1.0, math.inf, -math.inf, math.nan, 1.0), t(3.0))
    assert d1[0] != 0 and d1[1] == 0 and d1[2] == 0 and d1[3].isnan()
    d1, d2 = student_t_cdf_df_derivatives(t(1.0, 1.0), t(0.0, -1.0))
    assert d1.isnan().all() and d2.isnan().all()
    assert student_t_cdf_df_derivatives(t(0.0), t(4.0))[0] == 0  # F(0) = 1/2 for every df
    from likelab.objectives._special import _student_t_cdf_and_df_derivatives

    cdf, d1, d2 = _student_t_cdf_and_df_derivatives(t(math.inf, -math.inf, 0.0), t(3.5))
    assert cdf.tolist() == [1.0, 0.0, 0.5] and d1[:2].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("df", [0.5, 1.05, 2.2, 3.3, 4.5, 7.5, 30.5, 150.5, 1000.5])
def test_the_cdf_from_the_df_rules_equals_student_t_cdf(df):
    # the CDF integrated beside its df-derivatives (the CRPS form's value, no continued fraction)
    # against student_t_cdf: within 2e-15 absolutely (measured 2.7e-15 at df = 1000, 9e-16 below
    # 30), and each tail to 2e-11 relative down to 1e-280 (measured 1.7e-11, at the switch from
    # the Gauss-Legendre core, where the tail is 1/2 less an integral)
    from likelab.objectives._special import _student_t_cdf_and_df_derivatives

    z = torch.cat([torch.linspace(-60, 60, 6001, dtype=F64), torch.logspace(1, 8, 50, dtype=F64)])
    z = torch.cat([z, -z[-50:]])
    nu = torch.tensor(df, dtype=F64)
    want = student_t_cdf(z, nu)
    got = _student_t_cdf_and_df_derivatives(z, nu)[0]
    assert float((got - want).abs().max()) <= (3e-15 if df > 100 else 1e-15)
    tail, got_tail = torch.minimum(want, 1 - want), torch.minimum(got, 1 - got)
    keep = tail > 1e-280
    assert float(((got_tail - tail).abs() / tail)[keep].max()) <= 2e-11


@pytest.mark.parametrize(
    "a", [1e-3, 0.25, 0.5, 1.5, 7.5, 15.25, 29.9, 50.0, 99.9, 100.0, 500.0, 1e8]
)
def test_digamma_half_excess_matches_mpmath(a, monkeypatch):
    # ψ(a+½) - ψ(a) - 1/(2a) and its derivative, remainders of order 1/a² of terms of order 1/a:
    # 2e-15 relative (measured 7.7e-16), on both sides of the switch to the series at a = 100
    from likelab.objectives._special import _digamma_half_excess

    monkeypatch.setattr(mpmath.mp, "dps", 40)  # restored after the test
    e1, e2 = _digamma_half_excess(torch.tensor([a], dtype=F64))
    x = mpmath.mpf(a)
    want1 = mpmath.psi(0, x + 0.5) - mpmath.psi(0, x) - 1 / (2 * x)
    want2 = mpmath.psi(1, x + 0.5) - mpmath.psi(1, x) + 1 / (2 * x * x)
    assert abs(e1.item() - float(want1)) <= 2e-15 * abs(float(want1))
    assert abs(e2.item() - float(want2)) <= 2e-15 * abs(float(want2))
