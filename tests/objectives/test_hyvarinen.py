"""The Hyvärinen score S = 2 ∂²_y log f(y) + (∂_y log f(y))².

Oracles: closed forms derived by hand from the densities (normal, Student-t, logistic, gamma,
Cauchy, exponential; Laplace is refused); five-point finite differences of scipy.stats logpdf
(independent of those derivations); Gauss-Hermite expectations and the closed form of the
expected score under a normal truth; torch.autograd.gradcheck / gradgradcheck.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from torch import distributions as D
from torch.autograd import gradcheck, gradgradcheck

from likelab.errors import UnsupportedError
from likelab.families import Logistic
from likelab.objectives import get_objective
from likelab.objectives.hyvarinen import hyvarinen_score

F64 = torch.float64
HYV = get_objective("hyvarinen")


def t64(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=np.float64), dtype=F64)


def score_from(d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    return 2 * d2 + d1**2


# ----------------------------------------------------------------------------- closed forms
def test_normal_closed_form_on_a_batch():
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(0, 2, 50), np.exp(rng.uniform(-2, 1.5, 50))
    y = rng.normal(0, 3, (7, 1))
    got = HYV(D.Normal(t64(mu), t64(sigma)), t64(y)).numpy()
    assert got.shape == (7, 50)
    # log f = -(y-μ)²/(2σ²) + c: ∂ = -(y-μ)/σ², ∂² = -1/σ² (Hyvärinen 2005, sec. 2.2 example)
    want = (y - mu) ** 2 / sigma**4 - 2 / sigma**2
    # autograd evaluates the same two derivatives exactly; only round-off differs, relative to
    # the size of the two terms (their difference may cancel to ~0)
    size = (y - mu) ** 2 / sigma**4 + 2 / sigma**2
    assert np.all(np.abs(got - want) <= 1e-13 * size)


HAND_CASES = {
    # name: (torch forecast, scipy twin, y values, hand-derived (∂ log f, ∂² log f))
    "student_t": (
        D.StudentT(t64(3.5), t64(0.4), t64(1.7)),
        stats.t(3.5, 0.4, 1.7),
        [-9.0, -1.0, 0.4, 0.5, 3.0, 25.0],
        # log f = c - (ν+1)/2 log(1 + z²/ν) - log σ
        lambda y: (
            -(3.5 + 1) * ((y - 0.4) / 1.7) / (1.7 * (3.5 + ((y - 0.4) / 1.7) ** 2)),
            -(3.5 + 1)
            * (3.5 - ((y - 0.4) / 1.7) ** 2)
            / (1.7**2 * (3.5 + ((y - 0.4) / 1.7) ** 2) ** 2),
        ),
    ),
    "logistic": (
        Logistic(t64(-0.5), t64(0.8)),
        stats.logistic(-0.5, 0.8),
        [-9.0, -2.0, -0.5, 0.1, 4.0, 10.0],
        # log f = -z - 2 log(1 + e^{-z}) - log s: ∂_z = 1 - 2σ(z) = -tanh(z/2),
        # ∂²_z = -2σ(1-σ) = -(1 - tanh²(z/2))/2
        lambda y: (
            -np.tanh((y + 0.5) / 0.8 / 2) / 0.8,
            -(1 - np.tanh((y + 0.5) / 0.8 / 2) ** 2) / (2 * 0.8**2),
        ),
    ),
    "gamma": (
        D.Gamma(t64(3.5), t64(2.0)),
        stats.gamma(3.5, scale=0.5),
        [0.05, 0.5, 1.25, 2.0, 6.0],
        # log f = (α-1) log y - β y + c
        lambda y: ((3.5 - 1) / y - 2.0, -(3.5 - 1) / y**2),
    ),
    "cauchy": (
        D.Cauchy(t64(1.0), t64(0.3)),
        stats.cauchy(1.0, 0.3),
        [-4.0, 0.8, 1.0, 1.3, 40.0],
        # log f = -log(πγ) - log(1 + z²)
        lambda y: (
            -2 * ((y - 1) / 0.3) / (0.3 * (1 + ((y - 1) / 0.3) ** 2)),
            -2 * (1 - ((y - 1) / 0.3) ** 2) / (0.3**2 * (1 + ((y - 1) / 0.3) ** 2) ** 2),
        ),
    ),
}


@pytest.mark.parametrize("name", list(HAND_CASES))
def test_matches_hand_derived_derivatives(name):
    dist, _, ys, derivs = HAND_CASES[name]
    y = np.array(ys)
    got = HYV(dist, t64(y)).numpy()
    want = score_from(*derivs(y))
    # two exact derivatives by autograd vs the same algebra in numpy: round-off only
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def fd_derivatives(logpdf, y: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """∂ and ∂² of ``logpdf`` by five-point central differences (truncation O(h⁴))."""
    f = {k: logpdf(y + k * h) for k in (-2, -1, 0, 1, 2)}
    d1 = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * h)
    d2 = (-f[-2] + 16 * f[-1] - 30 * f[0] + 16 * f[1] - f[2]) / (12 * h**2)
    return d1, d2


# the length over which log f changes: the scale, or the smallest y for the gamma's 1/y terms
FD_LENGTH = {"student_t": 1.7, "logistic": 0.8, "gamma": 0.05, "cauchy": 0.3}


@pytest.mark.parametrize("name", list(HAND_CASES))
def test_matches_finite_differences_of_scipy_logpdf(name):
    # independent of the hand derivations above: scipy's logpdf, differentiated numerically
    dist, frozen, ys, _ = HAND_CASES[name]
    y = np.array(ys)
    h = 1e-3 * FD_LENGTH[name]
    d1, d2 = fd_derivatives(frozen.logpdf, y, h)
    got = HYV(dist, t64(y)).numpy()
    # Truncation h⁴ f⁽⁶⁾/90 is ~1e-12 relative at h = 1e-3 × (scale). Round-off of the second
    # difference is ~ 64 eps |log f| / (12 h²): up to ~2e-6 of the curvature term at the far
    # tail point of the Cauchy (y = 40, where that term is ~1e-3). Hence 1e-5 relative to the
    # size of the two terms, pointwise.
    size = np.abs(2 * d2) + d1**2
    assert np.all(np.abs(got - score_from(d1, d2)) <= 1e-5 * size), (got, score_from(d1, d2))


def test_laplace_forecast_is_refused_and_exponential_score_is_degenerate():
    # Laplace: ∂ log f = -sign(y-μ)/b and ∂² log f = -(2/b) δ(y-μ): a pointwise formula would
    # give 1/b² everywhere (minimised by b → ∞), which is not the score; it is refused by name
    with pytest.raises(UnsupportedError, match=r"Laplace.*kink"):
        HYV(D.Laplace(t64([1.0, 1.0]), t64([0.5, 2.0])), t64([[-3.0], [0.2], [5.0]]))
    # Exponential: log f = log λ - λy, S = λ² whatever y; with and without a parameter that
    # requires grad (the first derivative is then a graph node that does not depend on y)
    for rate in (t64([0.5, 3.0]), t64([0.5, 3.0]).requires_grad_(True)):
        got = HYV(D.Exponential(rate), t64([[0.1], [2.0]]))
        np.testing.assert_allclose(got.detach().numpy(), [[0.25, 9.0], [0.25, 9.0]], rtol=1e-15)
        if rate.requires_grad:
            (g,) = torch.autograd.grad(got.sum(), rate)
            np.testing.assert_allclose(g.numpy(), 2 * 2 * rate.detach().numpy(), rtol=1e-15)


# ----------------------------------------------------------------------------- batching, autograd
def test_shared_observation_is_not_summed_over_the_batch():
    # one scalar y against a batch of three forecasts: each derivative is that forecast's own
    mu, sigma = t64([0.0, 1.0, -1.0]), t64([1.0, 0.5, 2.0])
    got = HYV(D.Normal(mu, sigma), t64(0.3)).numpy()
    want = [hyvarinen_score(D.Normal(mu[i], sigma[i]), t64(0.3)).item() for i in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-15)
    sg = sigma.numpy()
    np.testing.assert_allclose(got, (0.3 - mu.numpy()) ** 2 / sg**4 - 2 / sg**2, rtol=1e-14)


def test_gradcheck_in_parameters():
    y = t64([-1.0, 0.3, 2.5])

    def normal(mu, sigma):
        return hyvarinen_score(D.Normal(mu, sigma), y)

    def student(df, mu, sigma):
        return hyvarinen_score(D.StudentT(df, mu, sigma), y)

    def logistic(mu, s):
        return hyvarinen_score(Logistic(mu, s), y)

    def gamma(a, b):
        return hyvarinen_score(D.Gamma(a, b), y.abs() + 0.2)

    p = [t64([0.2, -0.5, 1.0]), t64([0.7, 1.5, 0.4])]
    for fn, args in [
        (normal, p),
        (student, [t64([1.5, 4.0, 30.0]), *p]),
        (logistic, p),
        (gamma, [t64([0.7, 2.5, 9.0]), t64([0.5, 1.0, 3.0])]),
    ]:
        inputs = tuple(a.requires_grad_(True) for a in args)
        assert gradcheck(fn, inputs), fn.__name__
    assert gradgradcheck(normal, tuple(a.detach().requires_grad_(True) for a in p))


def test_no_graph_unless_something_requires_grad():
    y = t64([0.1, 2.0])
    assert not HYV(D.Normal(t64(0.0), t64(1.0)), y).requires_grad
    sigma = t64(1.0).requires_grad_(True)
    assert HYV(D.Normal(t64(0.0), sigma), y).requires_grad
    with torch.no_grad():
        assert not HYV(D.Normal(t64(0.0), sigma), y).requires_grad


def test_differentiable_in_y_when_y_requires_grad():
    mu, sigma = t64(0.5), t64(1.5)
    y = t64([-1.0, 0.5, 3.0]).requires_grad_(True)
    out = HYV(D.Normal(mu, sigma), y)
    (g,) = torch.autograd.grad(out.sum(), y)
    # d/dy [(y-μ)²/σ⁴ - 2/σ²] = 2(y-μ)/σ⁴
    np.testing.assert_allclose(g.numpy(), 2 * (y.detach().numpy() - 0.5) / 1.5**4, rtol=1e-14)
    assert y.grad is None  # nothing accumulated into the caller's tensor


# ----------------------------------------------------------------------------- properness
def expected_score(mu, sigma, m, s):
    """E_{Y ~ N(m, s²)} S(N(μ, σ²), Y) = ((m - μ)² + s²)/σ⁴ - 2/σ²."""
    return ((m - mu) ** 2 + s**2) / sigma**4 - 2 / sigma**2


def test_expected_score_under_a_normal_truth_is_minimised_at_the_truth():
    m, s = -0.3, 0.8
    mus = m + np.array([-0.2, -0.05, -0.01, 0.0, 0.01, 0.05, 0.2])
    sigmas = s * np.array([0.8, 0.95, 0.99, 1.0, 1.01, 1.05, 1.25])
    nodes, weights = np.polynomial.hermite.hermgauss(12)
    y = t64(m + np.sqrt(2) * s * nodes).reshape(-1, 1, 1)
    scores = HYV(D.Normal(t64(mus).reshape(-1, 1), t64(sigmas).reshape(1, -1)), y).numpy()
    expected = np.tensordot(weights / np.sqrt(np.pi), scores, axes=1)
    # the score is a quadratic polynomial in y: 12-node Gauss-Hermite is exact up to round-off
    want = expected_score(mus[:, None], sigmas[None, :], m, s)
    np.testing.assert_allclose(expected, want, rtol=1e-13, atol=1e-13)
    assert np.unravel_index(np.argmin(expected), expected.shape) == (3, 3)
    assert np.sum(expected == expected.min()) == 1
    # and the gradient of the expected score vanishes at the truth (it can be minimised)
    mu_t, sg_t = t64(m).requires_grad_(True), t64(s).requires_grad_(True)
    w = t64(weights / np.sqrt(np.pi))
    risk = (w * HYV(D.Normal(mu_t, sg_t), t64(m + np.sqrt(2) * s * nodes))).sum()
    grads = torch.autograd.grad(risk, (mu_t, sg_t))
    np.testing.assert_allclose([g.item() for g in grads], [0.0, 0.0], atol=1e-12)


# ----------------------------------------------------------------------------- errors, API
@pytest.mark.parametrize(
    ("dist", "y"),
    [
        (D.Poisson(t64(2.0)), t64([0.0, 3.0])),
        (D.Bernoulli(probs=t64(0.3)), t64([0.0, 1.0])),
        (D.Binomial(total_count=5, probs=t64(0.3)), t64([2.0])),
        (D.Categorical(probs=t64([0.2, 0.8])), torch.tensor([1])),
    ],
    ids=["poisson", "bernoulli", "binomial", "categorical"],
)
def test_discrete_forecasts_are_unsupported(dist, y):
    with pytest.raises(UnsupportedError, match="discrete"):
        HYV(dist, y)


def test_degenerate_and_multivariate_forecasts_are_refused():
    with pytest.raises(UnsupportedError, match="Uniform"):
        HYV(D.Uniform(t64(0.0), t64(1.0)), t64([0.5]))
    mvn = D.MultivariateNormal(torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64))
    with pytest.raises(UnsupportedError, match="univariate"):
        hyvarinen_score(mvn, torch.zeros(2, dtype=F64))


def test_objective_metadata_dtype_and_plain_inputs():
    props = HYV.properties
    assert (props.proper, props.strictly_proper, props.local, props.robust) == (
        True,
        True,
        False,
        False,
    )
    assert "order 2" in HYV.formula and "Hyvärinen (2005)" in HYV.reference
    out = HYV(D.Normal(torch.tensor(0.0), torch.tensor(2.0)), torch.tensor([1.0]))
    assert out.dtype == torch.float32
    # a list of observations follows the forecast's dtype
    out = hyvarinen_score(D.Normal(t64(0.0), t64(2.0)), [1.0, 2])
    assert out.dtype == F64
    np.testing.assert_allclose(out.numpy(), np.array([1.0, 4.0]) / 16 - 0.5, rtol=1e-15)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_follows_inputs():
    dev = torch.device("cuda")
    mu = torch.tensor([0.0, 1.0], dtype=F64, device=dev, requires_grad=True)
    out = HYV(D.Normal(mu, 2.0), torch.tensor([0.5, -1.0], dtype=F64, device=dev))
    assert out.device.type == "cuda"
    (g,) = torch.autograd.grad(out.sum(), mu)
    assert g.device.type == "cuda"


# ----------------------------------------------------------------------------- heavy tails
@pytest.mark.parametrize(
    ("make", "df"),
    [
        (lambda loc, scale: D.Cauchy(loc, scale), 1.0),
        (lambda loc, scale: D.StudentT(t64(2.5), loc, scale), 2.5),
    ],
)
def test_far_tail_values_and_parameter_derivatives_are_finite(make, df):
    # z² overflows beyond |z| ~ 1e154: torch's log1p(z²) then has 0 * inf = nan derivatives,
    # which quadrature nodes of a heavy-tailed truth (out to 1e300) used to hit
    loc, scale = t64(0.3).requires_grad_(True), t64(1.7).requires_grad_(True)
    y = t64([-1e300, -1e200, -3.0, 0.3, 40.0, 1e155, 1e250, 1e300])
    s = HYV(make(loc, scale), y)
    # closed form with w = z / √ν: S = (ν+1)/(σ²ν) [(ν+1) w²/(1+w²)² - 2 (1-w²)/(1+w²)²],
    # written in 1/w beyond |w| = 1 so that nothing overflows
    z = (y.detach() - 0.3) / 1.7
    w = z / np.sqrt(df)
    big = w.abs() > 1
    v = torch.where(big, 1 / torch.where(big, w, torch.ones_like(w)), w)
    ratio = torch.where(big, v**2 / (1 + v**2) ** 2, w**2 / (1 + w**2) ** 2)
    minus = torch.where(big, v**2 * (v**2 - 1) / (1 + v**2) ** 2, (1 - w**2) / (1 + w**2) ** 2)
    want = (df + 1) / (1.7**2 * df) * ((df + 1) * ratio - 2 * minus)
    np.testing.assert_allclose(s.detach().numpy(), want.numpy(), rtol=1e-12, atol=0)
    grads = torch.autograd.grad(s.sum(), (loc, scale), create_graph=True)
    second = [torch.autograd.grad(g, (loc, scale), retain_graph=True) for g in grads]
    assert all(torch.isfinite(g) for g in grads)
    assert all(torch.isfinite(h) for row in second for h in row)
