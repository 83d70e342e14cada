"""``∫ f^k`` / ``Σ p^k``: closed forms against scipy quadrature, the numerical fallback against
the closed forms, Poisson against a long direct sum.

Oracles are independent of likelab: ``scipy.integrate.quad`` of the ``scipy.stats`` density to the
power k (with its own error estimate), and plain numpy sums of ``scipy.stats`` pmfs.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats
from torch import distributions as D

from likelab.errors import LikelabError, UnsupportedError
from likelab.families import Logistic, numerical_power_integral, power_integral
from likelab.families.quadrature import gauss_legendre_nodes

F64 = torch.float64


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values[0] if len(values) == 1 else values, dtype=F64)


# (name, torch distribution, scipy frozen distribution, points where the density is not smooth)
def _continuous_cases():
    return [
        ("normal", D.Normal(t(0.3), t(0.1)), stats.norm(0.3, 0.1), [0.3]),
        ("normal-wide", D.Normal(t(-2.0), t(5.0)), stats.norm(-2.0, 5.0), [-2.0]),
        ("student_t", D.StudentT(t(4.0), t(1.0), t(2.0)), stats.t(4.0, 1.0, 2.0), [1.0]),
        ("student_t-2.5", D.StudentT(t(2.5), t(-1.0), t(0.5)), stats.t(2.5, -1.0, 0.5), [-1.0]),
        ("laplace", D.Laplace(t(1.0), t(2.0)), stats.laplace(1.0, 2.0), [1.0]),
        ("logistic", Logistic(t(1.0), t(2.0)), stats.logistic(1.0, 2.0), [1.0]),
        ("cauchy", D.Cauchy(t(1.0), t(2.0)), stats.cauchy(1.0, 2.0), [1.0]),
        ("uniform", D.Uniform(t(-1.0), t(3.0)), stats.uniform(-1.0, 4.0), [-1.0, 3.0]),
        ("exponential", D.Exponential(t(2.5)), stats.expon(scale=0.4), [0.0]),
        ("gamma", D.Gamma(t(3.5), t(0.5)), stats.gamma(3.5, scale=2.0), [0.0]),
        ("gamma-0.7", D.Gamma(t(0.7), t(2.0)), stats.gamma(0.7, scale=0.5), [0.0]),
    ]


CONTINUOUS = _continuous_cases()
KS = [0.3, 0.5, 0.75, 1.0, 1.2, 2.0, 3.5]


def _diverges(name: str, dist, k: float) -> bool:
    """Where ∫ f^k = ∞ (the integrals' own finiteness conditions)."""
    if name.startswith("student_t"):
        return k * (float(dist.df) + 1) <= 1
    if name == "cauchy":
        return k <= 0.5
    if name.startswith("gamma"):
        return k * (float(dist.concentration) - 1) + 1 <= 0
    return False


def _quad_power(frozen, k: float, breaks: list[float]) -> tuple[float, float]:
    """∫ pdf^k over the support by scipy quad, split at the non-smooth points.

    A Gamma density with shape a < 1 makes pdf^k ~ y^{k(a-1)} singular at 0; on [0, 1] that
    factor is handed to quad as its algebraic weight (QAWS, ``weight="alg"``), leaving a smooth
    integrand. Returns the value and quad's summed error estimate.
    """
    lo, hi = frozen.support()
    edges = sorted({lo, hi, *[b for b in breaks if lo < b < hi]})
    total, err = 0.0, 0.0
    name = frozen.dist.name
    a_shape = frozen.args[0] if name == "gamma" else None
    if a_shape is not None and a_shape < 1:
        alpha = k * (a_shape - 1)
        # (quad evaluates the smooth factor at y = 0 itself: take its limit from 1e-300)
        val, e = integrate.quad(
            lambda y: frozen.pdf(max(y, 1e-300)) ** k / max(y, 1e-300) ** alpha,
            0.0,
            1.0,
            weight="alg",
            wvar=(alpha, 0.0),
            epsabs=0.0,
            epsrel=1e-12,
        )
        total, err = val, e
        edges = [1.0, math.inf]
    for a, b in itertools.pairwise(edges):
        val, e = integrate.quad(
            lambda y: frozen.pdf(y) ** k, a, b, epsabs=0.0, epsrel=1e-12, limit=500
        )
        total += val
        err += e
    return total, err


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("case", CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_closed_form_matches_scipy_quadrature(case, k):
    name, dist, frozen, breaks = case
    closed = power_integral(dist, k)
    assert closed.dtype == F64 and closed.shape == dist.batch_shape
    if _diverges(name, dist, k):
        assert math.isinf(closed.item())
        return
    ref, err = _quad_power(frozen, k, breaks)
    # closed forms evaluated in float64 (a few lgamma/exp): ~1e-14; quad reaches epsrel 1e-12
    # except near singular endpoints, where its own error estimate is the honest tolerance.
    assert closed.item() == pytest.approx(ref, rel=1e-9, abs=10 * err)


@pytest.mark.parametrize(
    "name, dist, k",
    [
        ("student_t", D.StudentT(t(1.5), t(0.0), t(1.0)), 0.4),  # k (ν + 1) = 1
        ("student_t", D.StudentT(t(0.5), t(0.0), t(1.0)), 0.5),  # k (ν + 1) = 0.75
        ("cauchy", D.Cauchy(t(0.0), t(1.0)), 0.5),
        ("cauchy", D.Cauchy(t(0.0), t(1.0)), 0.3),
        ("gamma", D.Gamma(t(0.5), t(1.0)), 2.0),  # k (α - 1) + 1 = 0
        ("gamma", D.Gamma(t(0.2), t(1.0)), 1.5),
    ],
)
def test_divergent_integrals_are_inf_in_closed_form_and_numerically(name, dist, k):
    assert _diverges(name, dist, k)
    assert math.isinf(power_integral(dist, k).item())
    assert math.isinf(numerical_power_integral(dist, k).item())
    # and quadrature of the truncated integral keeps growing with the range (a sanity check
    # that these really diverge): compare the range to 1e4 and 1e8 scales
    frozen = {
        "student_t": lambda: stats.t(float(dist.df)),
        "cauchy": lambda: stats.cauchy(),
        "gamma": lambda: stats.gamma(float(dist.concentration)),
    }[name]()
    if name == "gamma":
        parts = [
            integrate.quad(lambda y: frozen.pdf(y) ** k, 10.0**-e, 1.0, limit=200)[0]
            for e in (4, 8)
        ]
    else:
        parts = [
            integrate.quad(lambda y: frozen.pdf(y) ** k, 0.0, 10.0**e, limit=500)[0] for e in (4, 8)
        ]
    assert parts[1] > parts[0] * 1.05


def _numeric_cases():
    cases = [(name, dist, k) for name, dist, _, _ in CONTINUOUS for k in KS]
    cases += [
        ("cauchy", D.Cauchy(t(1.0), t(2.0)), 0.6),
        ("gamma-0.7", D.Gamma(t(0.7), t(2.0)), 1.2),
        ("gamma-200", D.Gamma(t(200.0), t(2.0)), 2.0),
        ("bernoulli", D.Bernoulli(probs=t(0.3, 0.9)), 0.5),
        ("bernoulli", D.Bernoulli(probs=t(0.3, 0.9)), 2.5),
        ("categorical", D.Categorical(probs=torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64)), 0.5),
        (
            "categorical",
            D.Categorical(
                probs=torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]], dtype=F64)
            ),
            3.0,
        ),
    ]
    return cases


NUMERIC = _numeric_cases()


@pytest.mark.parametrize("name, dist, k", NUMERIC, ids=[f"{c[0]}-{c[2]}" for c in NUMERIC])
def test_numerical_fallback_reproduces_every_closed_form(name, dist, k):
    exact = power_integral(dist, k)
    approx = numerical_power_integral(dist, k)
    assert approx.dtype == exact.dtype and approx.shape == exact.shape
    if _diverges(name, dist, k):
        assert torch.isinf(approx).all()
        return
    if name == "student_t-2.5" and k == 0.3:
        # k (ν + 1) = 1.05: within 0.05 of divergence. The documented worst case: the tail
        # beyond the last node is the truncation error, ~1.1e-7 (see quadrature docstring).
        torch.testing.assert_close(approx, exact, rtol=2e-7, atol=0)
        return
    # adaptive Gauss-Legendre / double-exponential rule: successive levels agree to 1e-10,
    # geometric convergence puts the accepted level well below 1e-9 (measured: < 1e-13)
    torch.testing.assert_close(approx, exact, rtol=1e-9, atol=0)


def test_numerical_reports_inf_just_above_the_divergence_threshold():
    # Cauchy with k = 0.51: ∫ f^k is finite (closed form) but the tail y^{-1.02} has not
    # decayed at the end of the double-exponential range: documented as reported inf.
    dist = D.Cauchy(t(0.0), t(1.0))
    assert math.isfinite(power_integral(dist, 0.51).item())
    assert math.isinf(numerical_power_integral(dist, 0.51).item())


def test_lognormal_without_closed_form_matches_quadrature():
    # LogNormal has no registered closed form: power_integral must fall back by itself.
    dist = D.LogNormal(t(0.2), t(0.8))
    frozen = stats.lognorm(0.8, scale=math.exp(0.2))
    for k in (0.5, 1.5, 3.0):
        ref, err = _quad_power(frozen, k, [])
        assert power_integral(dist, k).item() == pytest.approx(ref, rel=1e-10, abs=10 * err)
        # and the closed form in terms of the normal: ∫ f^k = σ^{1-k}(2π)^{(1-k)/2} k^{-1/2}
        # exp((1-k)μ + (1-k)^2 σ^2 / (2k)) (complete the square in log y)
        mu, s = 0.2, 0.8
        closed = (
            s ** (1 - k)
            * (2 * math.pi) ** ((1 - k) / 2)
            / math.sqrt(k)
            * math.exp((1 - k) * mu + (1 - k) ** 2 * s**2 / (2 * k))
        )
        assert power_integral(dist, k).item() == pytest.approx(closed, rel=1e-10)


@pytest.mark.parametrize("rate", [1e-3, 0.5, 3.0, 40.0, 1e4])
@pytest.mark.parametrize("k", [0.3, 1.0, 2.0, 2.5])
def test_poisson_sum_matches_long_direct_sum(rate, k):
    # k = 2 has a closed form (e^-2λ I0(2λ)), other k the truncated sum. Reference: numpy sum
    # of scipy's pmf^k over 0..λ + 50√λ + 200, far beyond any contributing term.
    y = np.arange(0, int(rate + 50 * math.sqrt(rate) + 200))
    ref = np.exp(special.logsumexp(k * stats.poisson.logpmf(y, rate)))
    got = power_integral(D.Poisson(t(rate)), k)
    assert got.dtype == F64
    if k == 1.0:  # a pmf sums to 1 exactly; scipy's logpmf at λ = 1e4 is off by ~1e-11
        assert got.item() == 1.0 and abs(ref - 1.0) < 1e-10
        return
    # summation of a few thousand positive terms in float64: relative rounding ~1e-13
    assert got.item() == pytest.approx(ref, rel=1e-11)


def test_poisson_quadratic_closed_form_is_cheap_and_twice_differentiable():
    # the window sum would need millions of terms at λ = 1e10; i0e costs O(1)
    rate = t(1e10, 30.0).requires_grad_()
    total = power_integral(D.Poisson(rate), 2.0)
    assert total[0].item() == pytest.approx(1 / math.sqrt(4 * math.pi * 1e10), rel=1e-9)
    assert numerical_power_integral(D.Poisson(t(30.0)), 2.0).item() == pytest.approx(
        total[1].item(), rel=1e-13
    )
    assert torch.autograd.gradgradcheck(
        lambda r: power_integral(D.Poisson(r), 2.0), (t(0.3, 30.0).requires_grad_(),)
    )


def test_poisson_batched_gradient_matches_analytic_derivative():
    rate = t(0.7, 5.0, 60.0).requires_grad_()
    k = 0.6
    total = power_integral(D.Poisson(rate), k)
    (grad,) = torch.autograd.grad(total.sum(), rate)
    for i, lam in enumerate([0.7, 5.0, 60.0]):
        y = np.arange(0, 400)
        p = stats.poisson.pmf(y, lam)
        ref_val = np.sum(p**k)
        # d/dλ Σ p^k = Σ k p^k (y/λ - 1)
        ref_grad = np.sum(k * p**k * (y / lam - 1))
        assert total[i].item() == pytest.approx(ref_val, rel=1e-12)
        assert grad[i].item() == pytest.approx(ref_grad, rel=1e-10, abs=1e-14)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: D.Normal(p[0], p[1]),
        lambda p: D.StudentT(2.5 + p[1], p[0], p[1]),
        lambda p: D.Gamma(0.7 * p[1], p[1] + p[0] ** 2),
        lambda p: Logistic(p[0], p[1]),
        lambda p: D.Laplace(p[0], p[1]),
    ],
)
@pytest.mark.parametrize("k", [0.5, 2.0])
def test_numerical_fallback_is_differentiable(make, k):
    # gradients of the closed form (autograd through lgamma etc.) are the oracle
    p = t(0.3, 1.7).requires_grad_()
    (g_exact,) = torch.autograd.grad(power_integral(make(p), k), p)
    (g_num,) = torch.autograd.grad(numerical_power_integral(make(p), k), p)
    torch.testing.assert_close(g_num, g_exact, rtol=1e-8, atol=1e-12)


def test_batched_shapes_and_float32():
    loc = torch.zeros(2, 3, dtype=F64)
    scale = torch.linspace(0.5, 3.0, 6, dtype=F64).reshape(2, 3)
    dist = D.Normal(loc, scale)
    out = numerical_power_integral(dist, 1.5)
    assert out.shape == (2, 3)
    torch.testing.assert_close(out, power_integral(dist, 1.5), rtol=1e-10, atol=0)
    d32 = D.Gamma(torch.tensor([0.7, 3.0]), torch.tensor([0.5, 2.0]))
    out32 = numerical_power_integral(d32, 1.2)
    assert out32.dtype == torch.float32
    # float32 rule: successive levels agree to 100 eps(float32) ~ 1.2e-5; log-space terms
    # carry float32 rounding ~1e-6 relative
    torch.testing.assert_close(out32, power_integral(d32, 1.2), rtol=1e-5, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_follows_distribution():
    dist = D.Normal(
        torch.zeros(3, dtype=F64, device="cuda"), torch.ones(3, dtype=F64, device="cuda")
    )
    out = numerical_power_integral(dist, 2.0)
    assert out.device.type == "cuda"
    torch.testing.assert_close(
        out.cpu(), power_integral(D.Normal(t(0.0), t(1.0)), 2.0).expand(3), rtol=1e-10, atol=0
    )
    pois = numerical_power_integral(D.Poisson(torch.tensor([3.0], device="cuda")), 2.0)
    assert pois.device.type == "cuda"


def test_unsupported_inputs_raise_likelab_errors():
    with pytest.raises(UnsupportedError, match="k > 0"):
        numerical_power_integral(D.Normal(t(0.0), t(1.0)), 0.0)
    with pytest.raises(UnsupportedError, match="k > 0"):
        power_integral(D.Normal(t(0.0), t(1.0)), -1.0)
    mvn = D.MultivariateNormal(torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64))
    with pytest.raises(UnsupportedError, match="univariate"):
        numerical_power_integral(mvn, 2.0)

    class OnSimplex(D.Distribution):
        arg_constraints = {}  # noqa: RUF012
        support = D.constraints.simplex

        def __init__(self):
            super().__init__(torch.Size(), validate_args=False)

    with pytest.raises(UnsupportedError, match="OnSimplex") as err:
        power_integral(OnSimplex(), 2.0)
    assert isinstance(err.value, LikelabError)


def test_gauss_legendre_nodes_are_cached_and_exact_for_polynomials():
    cpu = torch.device("cpu")
    a = gauss_legendre_nodes(64, 1, F64, cpu)
    assert a is gauss_legendre_nodes(64, 1, F64, cpu)
    u_max = math.asinh(0.45 * math.log(torch.finfo(F64).max) / (math.pi / 2))
    for panels in (1, 3):
        u, log_w = (
            gauss_legendre_nodes(64, panels, F64, cpu)[0],
            gauss_legendre_nodes(64, panels, F64, cpu)[3],
        )
        assert u.shape == (64 * panels,) and bool((u.diff() > 0).all())
        assert -u_max < float(u.min()) and float(u.max()) < u_max
        # ∫_{-U}^{U} u^6 du = 2 U^7 / 7: exact for 64-point panels (degree <= 127)
        w = log_w.exp()
        assert float((w * u**6).sum()) == pytest.approx(2 * u_max**7 / 7, rel=1e-13)
    assert gauss_legendre_nodes(64, 1, torch.float32, cpu)[0].dtype == torch.float32


def test_poisson_power_integral_of_a_large_rate_costs_the_same_as_of_a_small_one(monkeypatch):
    # Σ p^k of a Poisson with a large rate is the integral of the pmf's continuous extension
    # (Poisson summation), 32 Gauss-Hermite nodes per rate, whatever λ: the window sum over
    # λ ± (12√λ + 20), thousands of terms with their autograd graph at λ = 1e4, is not built.
    import likelab.families.quadrature as quadrature

    big = t(80.0, 1e3, 1e4, 1e6)
    want = [power_integral(D.Poisson(t(v)), 1.3).item() for v in (80.0, 1e3)]
    y = np.arange(0, 3000)
    for lam, got in zip((80.0, 1e3), want, strict=True):
        ref = np.exp(special.logsumexp(1.3 * stats.poisson.logpmf(y, lam)))
        assert got == pytest.approx(ref, rel=1e-12)

    def refuse(*args, **kwargs):
        raise AssertionError("the window sum was built for a large rate")

    monkeypatch.setattr(quadrature, "numerical_power_integral", refuse)
    rate = big.clone().requires_grad_()
    total = power_integral(D.Poisson(rate), 1.3)
    assert total[:2].tolist() == pytest.approx(want, rel=1e-14)
    # the normal limit: Σ p^k ~ (2πλ)^((1-k)/2) / √k (1 + O(1/λ))
    assert total[3].item() == pytest.approx((2 * math.pi * 1e6) ** (-0.15) / math.sqrt(1.3), 1e-5)
    (grad,) = torch.autograd.grad(total.sum(), rate)
    for i, lam in enumerate((80.0, 1e3)):  # d/dλ Σ p^k = Σ k p^k (y/λ - 1)
        p = stats.poisson.pmf(y, lam)
        assert grad[i].item() == pytest.approx(np.sum(1.3 * p**1.3 * (y / lam - 1)), rel=1e-9)


def test_poisson_power_integral_of_mixed_rates_equals_each_alone():
    rates = [0.3, 7.0, 30.0, 200.0, 5e3]
    for k in (0.5, 1.3, 3.0):
        together = power_integral(D.Poisson(t(*rates)), k)
        alone = [power_integral(D.Poisson(t(r)), k).item() for r in rates]
        assert together.tolist() == pytest.approx(alone, rel=1e-14)


@pytest.mark.parametrize("k", [1.5, 2.0, 3.0])
def test_student_t_power_integral_keeps_its_accuracy_far_along_df(k):
    # ∫f^k of a t tends to the normal's (2πσ²)^((1-k)/2)/√k as df → ∞, with a relative
    # correction O(1/df). Differences of lgamma at df = 1e11 lost 2e-4 of it (the ridge a fit
    # walks along when a sample looks normal); the half-differences keep it to rounding.
    for df in (1e6, 1e9, 1e11, 1e14):
        got = power_integral(D.StudentT(t(df), t(0.0), t(2.0)), k).item()
        limit = (2 * math.pi * 4.0) ** ((1 - k) / 2) / math.sqrt(k)
        assert got == pytest.approx(limit, rel=10 * k * k / df + 1e-14)


# ----------------------------------------------- closed-form derivatives of log ∫ f^k
def _log_derivative_cases():
    from likelab.families.distributions import StudentT

    loc, scale = t(0.0, 1.0, -2.0, 0.5), t(1.0, 0.3, 4.0, 2.0)
    return [
        ("normal", D.Normal, (loc, scale)),
        ("laplace", D.Laplace, (loc, scale)),
        ("logistic", Logistic, (loc, scale)),
        ("cauchy", D.Cauchy, (loc, scale)),
        # df across the series' switch at df/2 = 30 and b = 30, and far along the df ridge
        ("student_t", StudentT, (t(3.0, 1.5, 59.0, 61.0, 0.4, 1e3, 2e7), *(t(0.2),) * 2)),
        ("student_t-torch", D.StudentT, (t(3.0, 1.5, 59.0, 61.0), t(0.0), t(1.0))),
        ("exponential", D.Exponential, (t(0.5, 2.0, 10.0),)),
        ("gamma", D.Gamma, (t(3.0, 1.2, 0.3, 40.0), t(2.0, 0.5, 1.0, 3.0))),
    ]


LOG_DERIVATIVE_CASES = _log_derivative_cases()


@pytest.mark.parametrize("k", [0.7, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("case", LOG_DERIVATIVE_CASES, ids=[c[0] for c in LOG_DERIVATIVE_CASES])
def test_log_power_integral_derivatives_equal_autograd_of_the_closed_form(case, k):
    """Oracle: autograd of log ∫f^k through the closed forms (tested against scipy quadrature
    above), exact derivatives of a verified function. 1e-12 of the largest entry per forecast;
    where the integral diverges, L = inf and every derivative given is nan."""
    from likelab.families.integrals import log_power_integral_derivatives

    _, make, raw = case
    params = [p.clone().requires_grad_(True) for p in torch.broadcast_tensors(*raw)]
    names = list(make.arg_constraints)[: len(params)]
    want_l = torch.log(power_integral(make(*params, validate_args=False), k))
    got_l, grad, hess = log_power_integral_derivatives(make(*raw, validate_args=False), k)
    finite = torch.isfinite(want_l)
    assert torch.equal(got_l[finite], want_l.detach()[finite])
    assert torch.all(got_l[~finite] == math.inf)
    firsts = torch.autograd.grad(want_l.sum(), params, create_graph=True, allow_unused=True)
    zeros = torch.zeros_like(want_l)

    def second(g, q):
        if g is None or not g.requires_grad:
            return zeros
        (h,) = torch.autograd.grad(g.sum(), q, retain_graph=True, allow_unused=True)
        return zeros if h is None else h

    g_want = torch.stack([zeros if g is None else g for g in firsts], -1)
    h_want = torch.stack(
        [torch.stack([second(g, q) for q in params], -1) for g in firsts], -2
    ).detach()
    zero = torch.zeros_like(got_l)
    g_got = torch.stack([grad.get(n, zero) for n in names], -1)
    h_got = torch.stack(
        [torch.stack([hess.get((m, n), hess.get((n, m), zero)) for n in names], -1) for m in names],
        -2,
    )
    g_want, h_want = g_want.detach()[finite], h_want[finite]
    assert torch.all((g_got[finite] - g_want).abs() <= 1e-12 * g_want.abs().amax(-1, True))
    big = h_want.abs().amax((-1, -2), True)
    assert torch.all((h_got[finite] - h_want).abs() <= 1e-12 * big)
    assert all(bool(v[~finite].isnan().all()) for v in (*grad.values(), *hess.values()))
