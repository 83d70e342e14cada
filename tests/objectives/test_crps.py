"""The CRPS objective: closed forms per family.

Oracles, each independent of the code under test:
- the ``scoringrules`` package (Jordan, Krüger & Lerch 2019) on many seeded points;
- scipy.integrate.quad of the defining integral ∫ (F(x) - 1{y <= x})² dx with scipy.stats CDFs,
  and the exact step-function sum for discrete forecasts;
- the kernel identity CRPS = E|X - y| - ½ E|X - X'| by quadrature;
- Gauss-Hermite expectations and the closed form of E|N(δ, τ²)| for properness;
- torch.autograd.gradcheck for derivatives.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scoringrules as sr
import torch
from scipy import integrate, special, stats
from torch import distributions as D
from torch.autograd import gradcheck, gradgradcheck

from likelab.errors import UnsupportedError
from likelab.families import Logistic, get_family
from likelab.objectives import get_objective
from likelab.objectives.crps import _CLOSED_FORMS, crps, register_crps

F64 = torch.float64
CRPS = get_objective("crps")


def t64(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=np.float64), dtype=F64)


# ----------------------------------------------------------------------------- scoringrules
def _random_points(seed: int, n: int = 400):
    rng = np.random.default_rng(seed)
    return {
        "y": rng.normal(0, 3, n),
        "loc": rng.normal(0, 1, n),
        "scale": np.exp(rng.uniform(np.log(0.05), np.log(5), n)),
        "df": np.exp(rng.uniform(np.log(1.05), np.log(200), n)),
        "pos": np.exp(rng.uniform(np.log(1e-3), np.log(20), n)),
        "shape": np.exp(rng.uniform(np.log(0.1), np.log(50), n)),
        "rate": np.exp(rng.uniform(np.log(0.05), np.log(20), n)),
        "count": rng.integers(0, 40, n).astype(np.float64),
        "lam": np.exp(rng.uniform(np.log(0.01), np.log(60), n)),
        # integer df (at most 8 distinct values): the finite sums of the t CDF, not the fraction
        "int_df": rng.choice([2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 17.0, 30.0], n),
    }


SR_CASES = {
    "normal": (
        lambda p: D.Normal(t64(p["loc"]), t64(p["scale"])),
        "y",
        lambda p: sr.crps_normal(p["y"], p["loc"], p["scale"]),
    ),
    "student_t": (
        lambda p: D.StudentT(t64(p["df"]), t64(p["loc"]), t64(p["scale"])),
        "y",
        lambda p: sr.crps_t(p["y"], p["df"], p["loc"], p["scale"]),
    ),
    "student_t_integer_df": (
        lambda p: D.StudentT(t64(p["int_df"]), t64(p["loc"]), t64(p["scale"])),
        "y",
        lambda p: sr.crps_t(p["y"], p["int_df"], p["loc"], p["scale"]),
    ),
    "laplace": (
        lambda p: D.Laplace(t64(p["loc"]), t64(p["scale"])),
        "y",
        lambda p: sr.crps_laplace(p["y"], p["loc"], p["scale"]),
    ),
    "logistic": (
        lambda p: Logistic(t64(p["loc"]), t64(p["scale"])),
        "y",
        lambda p: sr.crps_logistic(p["y"], p["loc"], p["scale"]),
    ),
    "exponential": (
        lambda p: D.Exponential(t64(p["rate"])),
        "pos",
        lambda p: sr.crps_exponential(p["pos"], p["rate"]),
    ),
    "uniform": (  # y inside and outside [low, high]
        lambda p: D.Uniform(t64(p["loc"]), t64(p["loc"] + p["scale"])),
        "y",
        lambda p: sr.crps_uniform(p["y"], p["loc"], p["loc"] + p["scale"]),
    ),
    "gamma": (
        lambda p: D.Gamma(t64(p["shape"]), t64(p["rate"])),
        "pos",
        lambda p: sr.crps_gamma(p["pos"], p["shape"], p["rate"]),
    ),
    "poisson": (
        lambda p: D.Poisson(t64(p["lam"])),
        "count",
        lambda p: sr.crps_poisson(p["count"], p["lam"]),
    ),
}


@pytest.mark.parametrize("name", list(SR_CASES))
def test_matches_scoringrules(name):
    build, obs_key, reference = SR_CASES[name]
    p = _random_points(seed=sum(map(ord, name)))
    got = CRPS.loss(build(p), t64(p[obs_key]), validate=False).numpy()
    want = np.asarray(reference(p), dtype=np.float64)
    # Both are the same closed forms in float64. The special functions differ (scipy's in
    # scoringrules, likelab's betainc / gammainc here); the largest gap, ~4e-13, is the Student-t
    # at df ~ 200, where the plain lgamma sums inside scoringrules' beta functions lose
    # ~eps·lgamma(df). rtol 1e-11 (atol for scores near 0).
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)


# ----------------------------------------------------------------------------- quadrature
def crps_by_quadrature(frozen, y: float, breaks: tuple[float, ...]) -> tuple[float, float]:
    """∫_{-∞}^{y} F(x)² dx + ∫_{y}^{∞} (1 - F(x))² dx with scipy.stats, split at ``breaks``.

    Returns (value, summed quad error estimate). ``breaks`` are the ends of the support and the
    points where the integrand has a kink or a narrow peak; y is added to them.
    """
    points = sorted({*breaks, y})
    total, err = 0.0, 0.0
    for a, b in itertools.pairwise(points):
        if b <= y:
            fn = lambda x: frozen.cdf(x) ** 2  # noqa: E731
        else:
            fn = lambda x: frozen.sf(x) ** 2  # noqa: E731
        val, e = integrate.quad(fn, a, b, epsabs=1e-15, epsrel=1e-13, limit=500)
        total, err = total + val, err + e
    # below the lowest break F = 0 and (for y at or above it) the integrand is 0 there
    assert points[0] <= y and points[-1] == math.inf
    return total, err


def crps_of_step_cdf(cdf_at: np.ndarray, y: float) -> float:
    """Exact CRPS of an integer-valued forecast: F = cdf_at[k] on [k, k+1), 0 below 0.

    ∫ (F(x) - 1{y <= x})² dx summed interval by interval; the last interval stands for [K, ∞),
    where 1 - F(K) must be negligible.
    """
    total = max(0.0, -y)  # x in [y, 0): F = 0 and the step is 1
    for k, fk in enumerate(cdf_at):
        below = min(max(y - k, 0.0), 1.0)  # length of [k, k+1) to the left of y
        total += below * fk**2 + (1.0 - below) * (1.0 - fk) ** 2
    return total


inf = math.inf
QUAD_CASES = [
    ("normal", D.Normal(t64(0.3), t64(1.2)), stats.norm(0.3, 1.2),
     (-2.0, 0.3, 1.0, 4.5), (-inf, 0.3, inf)),
    ("normal-narrow", D.Normal(t64(-1.0), t64(0.05)), stats.norm(-1.0, 0.05),
     (-1.1, -1.0, -0.97, -0.8), (-inf, -1.0, inf)),
    ("student_t-df1.5", D.StudentT(t64(1.5), t64(0.0), t64(1.0)), stats.t(1.5, 0.0, 1.0),
     (-10.0, -0.5, 0.0, 3.0), (-inf, 0.0, inf)),
    ("student_t-df5", D.StudentT(t64(5.0), t64(2.0), t64(0.5)), stats.t(5.0, 2.0, 0.5),
     (0.0, 1.9, 2.0, 2.7), (-inf, 2.0, inf)),
    ("laplace", D.Laplace(t64(1.0), t64(0.7)), stats.laplace(1.0, 0.7),
     (-1.0, 0.5, 1.0, 4.0), (-inf, 1.0, inf)),
    ("logistic", Logistic(t64(-0.5), t64(2.0)), stats.logistic(-0.5, 2.0),
     (-9.0, -0.5, 0.0, 3.0), (-inf, -0.5, inf)),
    ("uniform", D.Uniform(t64(-1.0), t64(2.5)), stats.uniform(-1.0, 3.5),
     (-0.9, 0.0, 2.4, 3.0, 7.5), (-1.0, 2.5, inf)),
    ("exponential", D.Exponential(t64(3.0)), stats.expon(scale=1 / 3.0),
     (0.0, 0.1, 1.0, 4.0), (0.0, inf)),
    ("gamma-a0.8", D.Gamma(t64(0.8), t64(2.0)), stats.gamma(0.8, scale=0.5),
     (0.01, 0.3, 1.0, 5.0), (0.0, inf)),
    ("gamma-a3", D.Gamma(t64(3.0), t64(0.5)), stats.gamma(3.0, scale=2.0),
     (0.5, 4.0, 10.0, 30.0), (0.0, 4.0, inf)),
    ("gamma-a40", D.Gamma(t64(40.0), t64(8.0)), stats.gamma(40.0, scale=1 / 8.0),
     (3.0, 5.0, 5.2, 9.0), (0.0, 5.0, inf)),
]  # fmt: skip


@pytest.mark.parametrize("case", QUAD_CASES, ids=[c[0] for c in QUAD_CASES])
def test_matches_quadrature_of_the_definition(case):
    _, dist, frozen, ys, breaks = case
    got = CRPS.loss(dist, t64(ys), validate=False).numpy()
    for y, g in zip(ys, got, strict=True):
        want, err = crps_by_quadrature(frozen, y, breaks)
        # quad's own error estimate (×10: it is an estimate) plus 1e-12 relative for the
        # float64 round-off of summing ~1e3 evaluations of a cdf accurate to ~1e-15.
        assert abs(g - want) <= 10 * err + 1e-12 * abs(want), (y, g, want, err)


@pytest.mark.parametrize(
    ("lam", "ys"),
    [(3.5, (0.0, 2.0, 3.0, 11.0)), (0.2, (0.0, 1.0, 4.0)), (400.0, (0.0, 350.0, 400.0, 455.0))],
)
def test_poisson_matches_exact_sum(lam, ys):
    # F(k) up to k = λ + 40√λ + 40, where 1 - F < 1e-100: the neglected tail Σ (1 - F)² is
    # below 1e-200.
    kmax = int(lam + 40 * math.sqrt(lam) + 40)
    cdf = stats.poisson(lam).cdf(np.arange(kmax + 1))
    assert stats.poisson(lam).sf(kmax) < 1e-100
    got = CRPS(D.Poisson(t64(lam)), t64(ys)).numpy()
    want = [crps_of_step_cdf(cdf, y) for y in ys]
    # a sum of ~1e3 terms of size <= 1 with ~1e-15 error each, and the exact Bessel closed form:
    # rtol 1e-11. (At λ = 400 the textbook e^{-2λ} I0(2λ) overflows; the i0e form does not.)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)


def test_poisson_closed_form_holds_between_integers_and_below_zero():
    # The closed form is piecewise linear in y with slope 2F(y) - 1; the step-sum oracle
    # integrates the definition for any real y (the library validates y only in Objective.loss).
    lam = 2.7
    cdf = stats.poisson(lam).cdf(np.arange(200))
    ys = (-1.5, 0.25, 2.5, 3.999, 7.3)
    got = crps(D.Poisson(t64(lam)), t64(ys)).numpy()
    np.testing.assert_allclose(got, [crps_of_step_cdf(cdf, y) for y in ys], rtol=1e-12)


def test_bernoulli_matches_exact_sum_and_brier():
    p = np.array([0.0, 0.3, 0.5, 0.9, 1.0])
    for y in (0.0, 1.0):
        got = CRPS(D.Bernoulli(probs=t64(p)), t64([y] * 5)).numpy()
        # F = 1 - p on [0, 1), 1 from 1 on: the step sum over the two intervals
        want = [crps_of_step_cdf(np.array([1.0 - pi, 1.0]), y) for pi in p]
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-16)
        np.testing.assert_allclose(got, (p - y) ** 2, rtol=1e-15, atol=1e-16)


def test_formulas_hold_outside_the_support():
    # y below 0 for exponential / gamma, and both sides of a uniform: the definition still holds
    # (F = 0 or 1 there); oracle: quadrature, plus the exact ∫_y^0 1 dx = -y for the part below 0.
    for dist, frozen, lo in [
        (D.Exponential(t64(1.7)), stats.expon(scale=1 / 1.7), 0.0),
        (D.Gamma(t64(2.5), t64(1.5)), stats.gamma(2.5, scale=1 / 1.5), 0.0),
    ]:
        y = -0.8
        at_lo, err = crps_by_quadrature(frozen, lo, (lo, inf))
        got = crps(dist, t64([y])).item()
        assert abs(got - (lo - y + at_lo)) <= 10 * err + 1e-12, (type(dist).__name__, got)
    got = crps(D.Uniform(t64(1.0), t64(3.0)), t64([-2.0, 6.0])).numpy()
    # U(1, 3): E|X - y| = |y - 2| for y outside, E|X - X'| = (3 - 1)/3
    np.testing.assert_allclose(got, [4.0 - 1.0 / 3.0, 4.0 - 1.0 / 3.0], rtol=1e-15)


def test_kernel_identity_for_student_t():
    # CRPS = E|X - y| - ½ E|X - X'| (Gneiting & Raftery 2007, eq. 21), with E|X - X'| =
    # 2 ∫ F (1 - F) dx; both by quadrature, independent of the closed form and of its betainc.
    df, loc, scale = 3.0, 0.5, 1.3
    frozen = stats.t(df, loc, scale)
    got = crps(D.StudentT(t64(df), t64(loc), t64(scale)), t64([-4.0, 0.5, 2.0])).numpy()
    opts = {"epsabs": 1e-14, "epsrel": 1e-13, "limit": 500}
    e_xx = 0.0
    for a, b in ((-inf, loc), (loc, inf)):
        e_xx += 2 * integrate.quad(lambda x: frozen.cdf(x) * frozen.sf(x), a, b, **opts)[0]
    for y, g in zip((-4.0, 0.5, 2.0), got, strict=True):
        pts = sorted({-inf, loc, y, inf})
        e_xy = 0.0
        for a, b in itertools.pairwise(pts):
            e_xy += integrate.quad(lambda x, y=y: abs(x - y) * frozen.pdf(x), a, b, **opts)[0]
        # quad at epsrel 1e-13 on each of a handful of pieces: rtol 1e-10 is ample
        np.testing.assert_allclose(g, e_xy - 0.5 * e_xx, rtol=1e-10)


# ----------------------------------------------------------------------------- derivatives
GRAD_CASES = {
    "normal": (lambda p: D.Normal(*p), [[0.2, -1.0, 3.0], [0.5, 2.0, 0.1]], [0.0, -1.0, 1.5]),
    "student_t": (
        lambda p: D.StudentT(*p),
        [[1.5, 4.0, 60.0], [0.2, -1.0, 3.0], [0.5, 2.0, 0.1]],
        [-3.0, -1.0, 3.05],
    ),
    "laplace": (lambda p: D.Laplace(*p), [[0.2, -1.0, 3.0], [0.5, 2.0, 0.1]], [0.2, 0.0, 3.3]),
    "logistic": (lambda p: Logistic(*p), [[0.2, -1.0, 3.0], [0.5, 2.0, 0.1]], [1.0, -7.0, 3.0]),
    "uniform": (lambda p: D.Uniform(*p), [[0.0, -1.0, 2.0], [1.0, 3.0, 2.5]], [0.4, 5.0, 1.0]),
    "exponential": (lambda p: D.Exponential(*p), [[0.5, 2.0, 10.0]], [0.3, 1.0, 0.01]),
    "gamma": (lambda p: D.Gamma(*p), [[0.6, 3.0, 25.0], [2.0, 0.5, 5.0]], [0.2, 8.0, 4.0]),
    "poisson": (lambda p: D.Poisson(*p), [[0.3, 4.0, 80.0]], [0.0, 3.0, 85.0]),
    "bernoulli": (lambda p: D.Bernoulli(probs=p[0]), [[0.1, 0.5, 0.95]], [0.0, 1.0, 1.0]),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradcheck_in_parameters_and_y(name):
    build, params, ys = GRAD_CASES[name]
    theta = [t64(v).requires_grad_(True) for v in params]
    # the score of a discrete forecast has kinks at the integers: no derivative in y there
    y_diff = name not in ("poisson", "bernoulli")
    y = t64(ys).requires_grad_(y_diff)

    def f(*args):
        return crps(build(list(args[: len(theta)])), args[len(theta)] if y_diff else y)

    inputs = (*theta, y) if y_diff else tuple(theta)
    assert gradcheck(f, inputs)


def test_gradgradcheck_student_t_and_gamma():
    # Newton-type fitting needs second derivatives through the incomplete beta / gamma functions
    df, loc, scale = (t64(v).requires_grad_(True) for v in ([2.5, 9.0], [0.1, -0.4], [0.7, 2.0]))
    y = t64([1.0, -5.0])
    assert gradgradcheck(lambda a, b, c: crps(D.StudentT(a, b, c), y), (df, loc, scale))
    conc, rate = t64([0.7, 6.0]).requires_grad_(True), t64([1.5, 0.8]).requires_grad_(True)
    assert gradgradcheck(lambda a, b: crps(D.Gamma(a, b), t64([0.4, 9.0])), (conc, rate))


def test_derivative_in_y_is_2F_minus_1():
    # d/dy ∫ (F - 1{y <= x})² dx = F(y)² - (F(y) - 1)² = 2F(y) - 1, for every family
    y = t64([-0.7, 0.4, 2.2]).requires_grad_(True)
    for dist, frozen in [
        (D.StudentT(t64(3.0), t64(0.1), t64(0.9)), stats.t(3.0, 0.1, 0.9)),
        (D.Gamma(t64(2.0), t64(1.5)), stats.gamma(2.0, scale=1 / 1.5)),
        (Logistic(t64(0.3), t64(0.4)), stats.logistic(0.3, 0.4)),
    ]:
        (g,) = torch.autograd.grad(crps(dist, y).sum(), y)
        np.testing.assert_allclose(g.numpy(), 2 * frozen.cdf(y.detach().numpy()) - 1, rtol=1e-12)
    # at the ends of a support, where a careless abs() or clamp() would give a wrong derivative
    for dist, frozen, ends in [
        (D.Exponential(t64(2.0)), stats.expon(scale=0.5), [0.0, 1e-9, 0.5]),
        (D.Uniform(t64(-1.0), t64(2.0)), stats.uniform(-1.0, 3.0), [-1.0, 0.0, 2.0]),
    ]:
        y = t64(ends).requires_grad_(True)
        (g,) = torch.autograd.grad(crps(dist, y).sum(), y)
        np.testing.assert_allclose(g.numpy(), 2 * frozen.cdf(ends) - 1, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------- properness
def expected_crps_normal(mu, sigma, m, s):
    """E_{Y ~ N(m, s²)} CRPS(N(mu, sigma²), Y) = E|X - Y| - sigma/√π, X - Y ~ N(mu - m, τ²).

    E|N(δ, τ²)| is the mean of the folded normal: scipy.stats.foldnorm(|δ|/τ, scale=τ).mean().
    """
    tau = np.sqrt(sigma**2 + s**2)
    return stats.foldnorm(np.abs(mu - m) / tau, scale=tau).mean() - sigma / np.sqrt(np.pi)


def test_expected_crps_is_minimised_by_the_truth():
    m, s = 0.4, 1.5
    mus = m + np.array([-0.3, -0.1, -0.02, 0.0, 0.02, 0.1, 0.3])
    sigmas = s * np.array([0.7, 0.9, 0.98, 1.0, 1.02, 1.1, 1.4])
    nodes, weights = np.polynomial.hermite.hermgauss(80)
    y = t64(m + np.sqrt(2) * s * nodes).reshape(-1, 1, 1)
    mu_t, sigma_t = t64(mus).reshape(-1, 1), t64(sigmas).reshape(1, -1)
    scores = crps(D.Normal(mu_t, sigma_t), y).numpy()  # (nodes, mu, sigma)
    expected = np.tensordot(weights / np.sqrt(np.pi), scores, axes=1)
    # Gauss-Hermite with 80 nodes integrates the smooth (entire) CRPS to ~1e-15
    want = expected_crps_normal(mus[:, None], sigmas[None, :], m, s)
    np.testing.assert_allclose(expected, want, rtol=1e-12)
    i, j = np.unravel_index(np.argmin(expected), expected.shape)
    assert (mus[i], sigmas[j]) == (m, s)
    assert np.all(expected >= expected[3, 3])  # strictly: the truth is the unique minimiser
    assert np.sum(expected == expected[3, 3]) == 1


# ----------------------------------------------------------------------------- errors, API
def test_undefined_and_unsupported_forecasts():
    with pytest.raises(UnsupportedError, match="Cauchy distribution has no finite mean"):
        CRPS(D.Cauchy(t64(0.0), t64(1.0)), t64([0.5]))
    with pytest.raises(UnsupportedError, match=r"ordered.*brier"):
        CRPS(D.Categorical(probs=t64([0.2, 0.8])), torch.tensor([1]))
    with pytest.raises(UnsupportedError, match=r"no closed form for Beta forecasts"):
        CRPS(D.Beta(t64(2.0), t64(3.0)), t64([0.5]))
    with pytest.raises(UnsupportedError, match=r"no closed form for LogNormal"):
        CRPS(D.LogNormal(t64(0.0), t64(1.0)), t64([0.5]))


def test_student_t_with_df_at_most_one_is_infinite_without_nan_gradients():
    df = t64([0.5, 1.0, 1.0 + 1e-6, 4.0]).requires_grad_(True)
    loc = t64([0.0, 0.0, 0.0, 0.0]).requires_grad_(True)
    out = crps(D.StudentT(df, loc, t64([1.0] * 4)), t64([0.3] * 4))
    assert torch.isinf(out[:2]).all() and (out[:2] > 0).all()
    assert torch.isfinite(out[2:]).all()
    g_df, g_loc = torch.autograd.grad(out[2:].sum(), (df, loc))
    assert torch.isfinite(g_df).all() and torch.isfinite(g_loc).all()
    assert g_df[:2].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("df", [5.0, 2.5, "grad"], ids=["integer", "real", "df-requires-grad"])
def test_student_t_far_tail_is_finite_with_finite_derivatives(df):
    # |z| > 1e154: z² overflows, and the density term f(z)(ν + z²) was 0 · inf = nan. For
    # |z| → ∞ the score is σ|z| - σ c_ν + O(|z|^{1-ν}), c_ν = 2√ν B(½, ν - ½)/((ν-1) B(½, ν/2)²),
    # so ∂/∂μ = -sign(y - μ) and ∂/∂σ = -c_ν; second derivatives vanish.
    nu = t64(3.5).requires_grad_(True) if df == "grad" else t64(df)
    loc, scale = t64(0.3).requires_grad_(True), t64(1.7).requires_grad_(True)
    y = t64([-1e300, -1e200, -1e160, 1e160, 1e250, 1e300])
    out = crps(D.StudentT(nu, loc, scale), y)
    np.testing.assert_allclose(out.detach().numpy(), np.abs(y.numpy()), rtol=1e-15)
    v = float(nu.detach())
    c = 2 * math.sqrt(v) * special.beta(0.5, v - 0.5) / ((v - 1) * special.beta(0.5, v / 2) ** 2)
    wrt = (loc, scale, nu) if nu.requires_grad else (loc, scale)
    for i in range(len(y)):
        grads = torch.autograd.grad(out[i], wrt, create_graph=True)
        assert grads[0].item() == -np.sign(y[i].item())
        np.testing.assert_allclose(grads[1].item(), -c, rtol=1e-13)
        for g in grads:
            second = torch.autograd.grad(g, wrt, retain_graph=True, allow_unused=True)
            assert all(h is None or torch.isfinite(h) for h in second)


def test_registry_walks_the_mro_and_accepts_new_types():
    class MyNormal(D.Normal):
        pass

    y = t64([0.3, -2.0])
    np.testing.assert_array_equal(
        crps(MyNormal(t64(0.0), t64(2.0)), y).numpy(), crps(D.Normal(t64(0.0), t64(2.0)), y).numpy()
    )

    class MyExponential(D.Exponential):
        pass

    try:
        register_crps(MyExponential)(lambda dist, y: torch.zeros_like(y))
        assert crps(MyExponential(t64(1.0)), y.abs()).tolist() == [0.0, 0.0]
        assert crps(D.Exponential(t64(1.0)), y.abs()).min() > 0
    finally:
        _CLOSED_FORMS.pop(MyExponential, None)


def test_objective_metadata():
    assert CRPS.spec == "crps"
    assert CRPS.kind == "crps"
    props = CRPS.properties
    assert (props.proper, props.strictly_proper, props.local, props.robust) == (
        True,
        True,
        False,
        False,
    )
    assert "Matheson" in CRPS.reference and "(F(x) - 1{y <= x})²" in CRPS.formula


def test_dtype_device_and_broadcasting_follow_the_inputs():
    mu = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float32)
    sigma = torch.tensor([1.0, 0.5, 3.0], dtype=torch.float32)
    y = torch.tensor([[0.3], [1.0], [-4.0], [2.0]], dtype=torch.float32)
    out = CRPS(D.Normal(mu, sigma), y)
    assert out.shape == (4, 3) and out.dtype == torch.float32
    ref = crps(D.Normal(mu.double(), sigma.double()), y.double())
    # float32 round-off (eps 1.2e-7) in a handful of operations
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    for i in range(4):
        for j in range(3):
            one = crps(D.Normal(mu[j].double(), sigma[j].double()), y[i, 0].double())
            assert one.item() == pytest.approx(ref[i, j].item(), rel=1e-15)
    out32 = CRPS(D.StudentT(torch.tensor(4.0), mu, sigma), y)
    assert out32.dtype == torch.float32 and torch.isfinite(out32).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_follows_inputs():
    dev = torch.device("cuda")
    y = torch.tensor([0.5, 2.0, 7.0], dtype=F64, device=dev)
    for dist in [
        D.StudentT(torch.tensor(3.0, dtype=F64, device=dev), 0.0, 1.0),
        D.Gamma(torch.tensor(2.0, dtype=F64, device=dev), 1.0),
        D.Poisson(torch.tensor(3.0, dtype=F64, device=dev)),
    ]:
        out = crps(dist, y)
        assert out.device.type == "cuda"
        cpu = crps(type(dist)(**{k: getattr(dist, k).cpu() for k in dist.arg_constraints}), y.cpu())
        np.testing.assert_allclose(out.cpu().numpy(), cpu.numpy(), rtol=1e-12)


def test_every_family_with_a_finite_mean_has_a_crps():
    # the families of likelab.families build exactly the distribution types registered here
    params = {
        "normal": {"loc": 0.0, "scale": 1.0},
        "student_t": {"df": 3.0, "loc": 0.0, "scale": 1.0},
        "laplace": {"loc": 0.0, "scale": 1.0},
        "logistic": {"loc": 0.0, "scale": 1.0},
        "uniform": {"low": 0.0, "high": 2.0},
        "exponential": {"rate": 1.0},
        "gamma": {"concentration": 2.0, "rate": 1.0},
        "poisson": {"rate": 2.0},
        "bernoulli": {"probs": 0.3},
    }
    for name, kw in params.items():
        dist = get_family(name).distribution(**{k: t64(v) for k, v in kw.items()})
        value = CRPS(dist, t64([1.0]))
        assert torch.isfinite(value).all() and (value > 0).all(), name
