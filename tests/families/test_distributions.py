"""likelab's own torch distributions against high-precision oracles (mpmath, 40 digits)."""

import mpmath
import pytest
import torch

from likelab.families import get_family
from likelab.families.distributions import lgamma_half_difference

mpmath.mp.dps = 40


@pytest.mark.parametrize("x", [0.05, 0.5, 3.0, 29.9, 30.0, 31.0, 1e3, 1e6, 1e9, 1e12])
def test_lgamma_half_difference_matches_mpmath(x):
    exact = mpmath.loggamma(mpmath.mpf(x) + mpmath.mpf("0.5")) - mpmath.loggamma(mpmath.mpf(x))
    got = lgamma_half_difference(torch.tensor(x, dtype=torch.float64)).item()
    # Series branch (x >= 30): a few ulps of the result. Direct branch (x < 30): a difference of
    # two lgamma values, each good to an ulp of its own magnitude, so 2 ulps of lgamma(x + 1/2).
    eps = 2.2e-16
    direct = (
        2 * eps * abs(float(mpmath.loggamma(mpmath.mpf(x) + mpmath.mpf("0.5")))) if x < 30 else 0
    )
    assert abs(got - float(exact)) <= 4 * eps * abs(float(exact)) + direct + 1e-300


@pytest.mark.parametrize("df", [0.7, 3.0, 60.0, 1.87e6, 5.2e9, 1e13])
@pytest.mark.parametrize("y", [-40.0, -0.7, 0.0, 2.5])
def test_student_t_log_density_is_accurate_at_any_df(df, y):
    # torch's own StudentT loses ~1e-9 at df = 2e6 and ~1e-6 at 5e9 to cancellation in
    # lgamma((df+1)/2) - lgamma(df/2); fits of normal-looking samples need those df.
    loc, scale = 0.3, 1.7
    dist = get_family("student_t").distribution(df=df, loc=loc, scale=scale)
    nu, z = mpmath.mpf(df), (mpmath.mpf(y) - mpmath.mpf(loc)) / mpmath.mpf(scale)
    exact = (
        mpmath.loggamma((nu + 1) / 2)
        - mpmath.loggamma(nu / 2)
        - mpmath.log(nu * mpmath.pi) / 2
        - mpmath.log(mpmath.mpf(scale))
        - (nu + 1) / 2 * mpmath.log1p(z * z / nu)
    )
    got = dist.log_prob(torch.tensor(y, dtype=torch.float64)).item()
    assert abs(got - float(exact)) <= 1e-13 * max(1.0, abs(float(exact)))


@pytest.mark.parametrize("x", [0.05, 0.5, 3.0, 29.9, 30.0, 31.0, 1e3, 1e6, 1e9])
def test_digamma_half_difference_matches_mpmath(x):
    from likelab.families.distributions import digamma_half_difference

    exact = float(mpmath.digamma(mpmath.mpf(x) + mpmath.mpf("0.5")) - mpmath.digamma(mpmath.mpf(x)))
    got = digamma_half_difference(torch.tensor(x, dtype=torch.float64)).item()
    # series branch: 2e-15 relative (checked at x = 30); direct branch: 2 ulps of digamma(x+1/2)
    eps = 2.2e-16
    direct = (
        2 * eps * abs(float(mpmath.digamma(mpmath.mpf(x) + mpmath.mpf("0.5")))) if x < 30 else 0
    )
    assert abs(got - exact) <= 1e-14 * abs(exact) + direct


@pytest.mark.parametrize("x", [1e-3, 0.05, 0.5, 0.75, 3.0, 7.5, 15.0, 29.9, 30.0, 31.0, 1e3, 1e9])
def test_trigamma_half_difference_matches_mpmath(x):
    from likelab.families.distributions import trigamma_half_difference

    half = mpmath.mpf(x) + mpmath.mpf("0.5")
    exact = float(mpmath.psi(1, half) - mpmath.psi(1, mpmath.mpf(x)))
    got = trigamma_half_difference(torch.tensor(x, dtype=torch.float64)).item()
    # series branch (x >= 30): 1e-13 relative (measured 2e-14 at x = 30). Direct branch:
    # torch's polygamma(1, x) is itself off by up to 3.1e-10 relative (measured against mpmath
    # for x in [0.5, 29]; scipy's is exact to rounding): bounded by 4e-10 of each term
    direct = 4e-10 * (abs(float(mpmath.psi(1, half))) + abs(float(mpmath.psi(1, x))))
    assert abs(got - exact) <= 1e-13 * abs(exact) + (direct if x < 30 else 0.0)
    # recurrence=True: 30 steps of psi'(x) = psi'(x + 1) + 1/x^2 then the series, 1e-13 throughout
    got = trigamma_half_difference(torch.tensor(x, dtype=torch.float64), recurrence=True).item()
    assert abs(got - exact) <= 1e-13 * abs(exact)


@pytest.mark.parametrize("df_requires_grad", [False, True])
def test_a_fixed_df_broadcast_over_nodes_gives_the_per_element_numbers(df_requires_grad):
    # a df broadcast to the nodes' shape (every stride 0) has its special functions evaluated
    # once; values and first and second derivatives (in loc, scale and df) must be those of a
    # df that is a genuine per-element tensor (same numbers in every element)
    from likelab.families.distributions import StudentT, once_per_value
    from likelab.families.integrals import power_integral

    y = torch.linspace(-30.0, 30.0, 101, dtype=torch.float64)

    def numbers(expanded: bool):
        df0 = torch.tensor(4.5, dtype=torch.float64, requires_grad=df_requires_grad)
        loc = torch.zeros(101, dtype=torch.float64, requires_grad=True)
        scale = torch.full((101,), 2.0, dtype=torch.float64, requires_grad=True)
        df = df0.expand(101) if expanded else df0 * torch.ones(101, dtype=torch.float64)
        assert (all(st == 0 for st in df.stride())) == expanded
        d = StudentT(df, loc, scale)
        value = d.log_prob(y) + power_integral(d, 1.3)
        wrt = [loc, scale] + ([df0] if df_requires_grad else [])
        grads = torch.autograd.grad(value.sum(), wrt, create_graph=True)
        second = torch.autograd.grad(grads[1].sum(), wrt)
        return [value.detach(), *[g.detach() for g in grads], *second]

    for a, b in zip(numbers(True), numbers(False), strict=True):
        assert torch.allclose(a, b, rtol=1e-14, atol=0)
    # not a broadcast single value: computed elementwise as it is
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert torch.equal(once_per_value(torch.lgamma, x), torch.lgamma(x))
