"""The Hyvärinen score S = 2 ∂²_y log f(y) + (∂_y log f(y))².

Oracles: closed forms derived by hand from the densities (normal, Student-t, logistic, gamma,
Cauchy, exponential; Laplace is refused); five-point finite differences of scipy.stats logpdf
(independent of those derivations); Gauss-Hermite expectations and the closed form of the
expected score under a normal truth; torch.autograd.gradcheck / gradgradcheck.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from scipy import stats
from torch import distributions as D
from torch.autograd import gradcheck, gradgradcheck

from likelab.errors import UnsupportedError
from likelab.families import Logistic
from likelab.families.distributions import StudentT as StudentTDistribution
from likelab.objectives import get_objective, hyvarinen
from likelab.objectives.hyvarinen import _autograd_score, hyvarinen_score

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


# ----------------------------------------------------------------------------- closed forms
# The registered closed forms (normal, Student-t, Cauchy, logistic, gamma, exponential) against
# the autograd path they replace (kept as _autograd_score), and the Student-t in the far tails
# against 40-digit derivatives; plus the rules for which forecasts take them.


def _derivatives(score, make, params, y):
    """Score, θ-gradient (k, n) and θ-Hessian (k, k, n) of ``score(make(*θ), y)``, elementwise
    (each element of the batch has its own parameters, so the sum's derivatives are its own)."""
    theta = [p.clone().requires_grad_(True) for p in params]
    s = score(make(*theta), y)
    grads = torch.autograd.grad(s.sum(), theta, create_graph=True)
    rows = []
    for g in grads:
        row = torch.autograd.grad(g.sum(), theta, retain_graph=True, allow_unused=True)
        rows.append(torch.stack([torch.zeros_like(y) if h is None else h for h in row]))
    return s.detach(), torch.stack([g.detach() for g in grads]), torch.stack(rows).detach()


def _assert_same(got, want, rtol):
    """``got`` and ``want`` = (score, gradient, Hessian) agree to ``rtol`` relative, or to
    ``rtol`` times the entry's natural size where it is (near) an exact zero: √|S H_ii| for
    ∂S/∂θ_i, √|H_ii H_jj| for ∂²S/∂θ_i∂θ_j (e.g. ∂S/∂μ = 0 at z = 0 by symmetry)."""
    v, _, h = want
    diag = torch.diagonal(h, dim1=0, dim2=1).T.abs()  # (k, n)
    natural = (v.abs(), (v.abs() * diag).sqrt(), (diag[:, None] * diag[None, :]).sqrt())
    for a, b, size in zip(got, want, natural, strict=True):
        assert torch.isfinite(a).all()
        err = (a - b).abs()
        ok = err <= rtol * (b.abs() + size)
        assert ok.all(), (err / b.abs())[~ok]


def _t_grid():
    dfs, scales = [0.5, 1.0, 2.5, 5.0, 30.0, 100.0], [1e-3, 1.0, 1e3]
    # z, and w = z/√ν (the switch of the closed form at |w| = 1) given as ("w", value)
    zs = [0.0, 1e-3, -1e-3, 0.5, -0.5, ("w", 1.0), ("w", -1.0), 3.0, -3.0, 10.0, -30.0]
    rows = [(d, s, z) for d in dfs for s in scales for z in zs]
    df = t64([r[0] for r in rows])
    scale = t64([r[1] for r in rows])
    z = t64([r[2][1] * np.sqrt(r[0]) if isinstance(r[2], tuple) else r[2] for r in rows])
    return df, 0.3 * scale, scale, z


@pytest.mark.parametrize("make", [D.StudentT, StudentTDistribution], ids=["torch", "likelab"])
def test_student_t_closed_form_matches_the_autograd_path(make):
    # df 0.5..100, scales 1e-3..1e3, |z| up to 30 and on both sides of the switch |w| = 1:
    # value, gradient and Hessian in (df, loc, scale). Both are exact formulas in float64; the
    # gap is round-off, at most ~3e-13 relative (an entry that is small next to the others of
    # its Hessian row, such as ∂²S/∂ν∂σ at df = 100). Farther out the autograd path loses
    # relative accuracy in the σ-derivatives (1e-10 at |z| = 1e3: a difference of two terms of
    # size 1 that is of size v² = νσ²/r²); there the closed form is checked against mpmath.
    df, loc, scale, z = _t_grid()
    y = loc + scale * z
    got = _derivatives(hyvarinen_score, make, (df, loc, scale), y)
    want = _derivatives(_autograd_score, make, (df, loc, scale), y)
    _assert_same(got, want, rtol=1e-12)


def _mp_t_score(nu, mu, s, y):
    """Hand-derived S = (ν+1)((ν+3) r² - 2νσ²)/(νσ² + r²)², r = y - μ (checked below against
    2 ∂² + ∂² of log f by mpmath's own differentiation)."""
    r, a = y - mu, nu * s * s
    return (nu + 1) * ((nu + 3) * r * r - 2 * a) / (a + r * r) ** 2


def test_student_t_closed_form_far_tail_derivatives_against_mpmath():
    # Out to |z| = 1e200: in the far tail the score is ~(ν+1)(ν+3)/r² and its σ- and
    # ν-derivatives are smaller by v² = νσ²/r²; the closed form keeps them to full relative
    # accuracy (σ enters through v alone there). 40-digit derivatives by mpmath.diff.
    with mpmath.workdps(40):
        for nu, mu, s, y in [(2.5, 0.3, 1.7, -4.0), (0.5, 0.0, 1e-3, 0.02), (30.0, 1.0, 3.0, 1e4)]:
            nu_, mu_, s_, y_ = map(mpmath.mpf, (nu, mu, s, y))

            def log_f(t, nu_=nu_, mu_=mu_, s_=s_):
                return -(nu_ + 1) / 2 * mpmath.log(1 + (t - mu_) ** 2 / (nu_ * s_ * s_))

            d1, d2 = mpmath.diff(log_f, y_), mpmath.diff(log_f, y_, 2)
            assert abs((2 * d2 + d1 * d1) / _mp_t_score(nu_, mu_, s_, y_) - 1) < 1e-30
        cases = [
            (nu, 0.3 * s, s, 0.3 * s + s * z)
            for nu in (0.5, 1.0, 5.0, 100.0)
            for s in (1e-3, 1.0, 1e3)
            for z in (0.4, -3.0, 1e4, -1e8, 1e8, 1e200)
        ]
        want_v, want_g, want_h = [], [], []
        for case in cases:
            point = tuple(mpmath.mpf(v) for v in case[:3])
            y_ = mpmath.mpf(case[3])

            def fn(a, b, c, y_=y_):
                return _mp_t_score(a, b, c, y_)

            want_v.append(float(fn(*point)))
            unit = [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
            want_g.append([float(mpmath.diff(fn, point, o)) for o in unit])
            want_h.append(
                [
                    [
                        float(
                            mpmath.diff(
                                fn, point, tuple(a + b for a, b in zip(oi, oj, strict=True))
                            )
                        )
                        for oj in unit
                    ]
                    for oi in unit
                ]
            )
    df, loc, scale, y = (t64([c[k] for c in cases]) for k in range(4))
    v, g, h = _derivatives(hyvarinen_score, StudentTDistribution, (df, loc, scale), y)
    np.testing.assert_allclose(v.numpy(), want_v, rtol=1e-12, atol=0)
    np.testing.assert_allclose(g.numpy(), np.array(want_g).T, rtol=1e-12, atol=0)
    np.testing.assert_allclose(h.numpy(), np.array(want_h).transpose(1, 2, 0), rtol=1e-12, atol=0)


OTHER_CLOSED = {
    # name: (forecast from its parameters, parameters (n,), observations (n,))
    "normal": (D.Normal, lambda r: (r.normal(0, 2, 60), np.exp(r.uniform(-7, 7, 60)))),
    "cauchy": (D.Cauchy, lambda r: (r.normal(0, 2, 60), np.exp(r.uniform(-7, 7, 60)))),
    "logistic": (Logistic, lambda r: (r.normal(0, 2, 60), np.exp(r.uniform(-7, 7, 60)))),
    "gamma": (
        lambda a, b: D.Gamma(a, b, validate_args=False),
        lambda r: (np.exp(r.uniform(-2, 4, 60)), np.exp(r.uniform(-4, 4, 60))),
    ),
    "exponential": (
        lambda b: D.Exponential(b, validate_args=False),
        lambda r: (np.exp(r.uniform(-4, 4, 60)),),
    ),
}


@pytest.mark.parametrize("name", list(OTHER_CLOSED))
def test_other_closed_forms_match_the_autograd_path(name):
    make, draw = OTHER_CLOSED[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    params = tuple(t64(p) for p in draw(rng))
    if name in ("gamma", "exponential"):  # positive observations around the forecast's mean
        mean = params[0] / params[1] if name == "gamma" else 1 / params[0]
        y = mean * t64(np.exp(rng.uniform(-3, 3, 60)))
    else:  # |z| up to 30 (logistic: 5), where the autograd path keeps its relative accuracy
        zmax = 5.0 if name == "logistic" else 30.0
        z = t64(
            np.concatenate([[0.0, 1e-3], rng.choice([-1, 1], 58) * np.geomspace(1e-2, zmax, 58)])
        )
        y = params[0] + params[1] * z
    got = _derivatives(hyvarinen_score, make, params, y)
    want = _derivatives(_autograd_score, make, params, y)
    _assert_same(got, want, rtol=1e-12)


def test_closed_forms_are_taken_for_registered_types_and_unchanged_subclasses(monkeypatch):
    y = t64([-2.0, 0.1, 3.0])

    def no_autograd(dist, y):
        raise AssertionError("the autograd path ran")

    class MyT(StudentTDistribution):  # keeps the density: same closed form
        pass

    with monkeypatch.context() as m:
        m.setattr(hyvarinen, "_autograd_score", no_autograd)
        for dist in [
            D.Normal(t64(0.2), t64(1.5)),
            D.StudentT(t64(3.0), t64(0.2), t64(1.5)),
            StudentTDistribution(t64(3.0), t64(0.2), t64(1.5)),
            MyT(t64(3.0), t64(0.2), t64(1.5)),
            D.Cauchy(t64(0.2), t64(1.5)),
            Logistic(t64(0.2), t64(1.5)),
            D.Gamma(t64(2.0), t64(1.5)),
            D.Exponential(t64(1.5)),
        ]:
            hyvarinen_score(dist, y.abs())
    assert hyvarinen._closed_form(MyT(t64(3.0), t64(0.0), t64(1.0))) is hyvarinen._student_t

    class Shifted(D.Normal):  # redefines the density: N(loc + 1, scale²), by autograd
        def log_prob(self, value):
            return super().log_prob(value - 1.0)

    assert hyvarinen._closed_form(Shifted(t64(0.0), t64(1.0))) is None
    got = hyvarinen_score(Shifted(t64(0.2), t64(1.5)), y)
    np.testing.assert_allclose(got.numpy(), ((y.numpy() - 1.2) ** 2 - 2 * 1.5**2) / 1.5**4)

    class ShiftedT(D.StudentT):  # likewise: not the t formula of the base class
        def log_prob(self, value):
            return super().log_prob(value - 1.0)

    assert hyvarinen._closed_form(ShiftedT(t64(3.0), t64(0.0), t64(1.0))) is None
    np.testing.assert_allclose(
        hyvarinen_score(ShiftedT(t64(3.0), t64(0.2), t64(1.5)), y).numpy(),
        hyvarinen_score(D.StudentT(t64(3.0), t64(1.2), t64(1.5)), y).numpy(),
        rtol=1e-13,
    )

    # a registration is found for the type and its unchanged subclasses, then removed again
    calls = []

    @hyvarinen.register_hyvarinen(Shifted)
    def shifted(dist, y):
        calls.append(type(dist))
        return hyvarinen._normal(D.Normal(dist.loc + 1.0, dist.scale), y)

    class SubShifted(Shifted):
        pass

    try:
        for cls in (Shifted, SubShifted):
            out = hyvarinen_score(cls(t64(0.2), t64(1.5)), y)
            np.testing.assert_allclose(out.numpy(), got.numpy(), rtol=1e-14)
        assert calls == [Shifted, SubShifted]
    finally:
        del hyvarinen._CLOSED_FORMS[Shifted]


def test_closed_forms_keep_the_autograd_path_conventions():
    # dtype of y (that of the derivatives in y), graphs only where something requires grad,
    # support validation where the forecast asks for it, same values outside the support
    f64 = D.StudentT(t64(3.0), t64(0.0), t64(2.0))
    y32 = torch.tensor([0.5, -1.0])
    assert hyvarinen_score(f64, y32).dtype == torch.float32
    assert hyvarinen_score(D.StudentT(3.0, 0.0, 2.0), t64([0.5])).dtype == F64
    assert not hyvarinen_score(f64, t64([0.5])).requires_grad
    loc = t64(0.0).requires_grad_(True)
    assert hyvarinen_score(D.StudentT(t64(3.0), loc, t64(2.0)), t64([0.5])).requires_grad
    with torch.no_grad():
        assert not hyvarinen_score(D.StudentT(t64(3.0), loc, t64(2.0)), t64([0.5])).requires_grad
    with pytest.raises(RuntimeError):  # shapes that do not broadcast
        hyvarinen_score(D.Normal(t64([0.0, 1.0]), t64(1.0)), t64([1.0, 2.0, 3.0]))
    y = t64([-1.0, 0.0, 0.5, 2.0])
    with pytest.raises(ValueError, match="support"):
        hyvarinen_score(D.Gamma(t64(2.5), t64(2.0), validate_args=True), y)
    for a in (2.5, 1.0, 0.5):
        dist = D.Gamma(t64(a), t64(2.0), validate_args=False)
        got, want = hyvarinen_score(dist, y), _autograd_score(dist, y)
        np.testing.assert_array_equal(got.isnan().numpy(), want.isnan().numpy())
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-14)
    # y requiring grad: derivatives in y of the closed form, nothing accumulated in y
    yg = t64([-3.0, 0.4, 7.0]).requires_grad_(True)
    (dy,) = torch.autograd.grad(hyvarinen_score(f64, yg).sum(), yg)
    (dy_auto,) = torch.autograd.grad(_autograd_score(f64, yg).sum(), yg)
    np.testing.assert_allclose(dy.numpy(), dy_auto.numpy(), rtol=1e-13)
    assert yg.grad is None


def test_logistic_closed_form_tails_against_mpmath():
    # (1 - 8pq)/s² with both sigmoids taken directly: pq ≈ e^{-|z|} and its derivatives keep
    # their relative accuracy in both tails (the autograd path's right tail loses 4e-4 at z = 29)
    z = [-700.0, -100.0, -29.0, -20.0, 20.0, 29.0, 100.0, 700.0]
    mu, s = 0.3, 1.7
    want_g, want_h = [], []
    with mpmath.workdps(400):  # 1 - 8pq must keep pq ~ e^{-700}
        for zi in z:
            y_ = mpmath.mpf(mu + s * zi)

            def fn(a, b, y_=y_):
                p = 1 / (1 + mpmath.exp(-(y_ - a) / b))
                return (1 - 8 * p * (1 - p)) / b**2

            point = (mpmath.mpf(mu), mpmath.mpf(s))
            want_g.append([float(mpmath.diff(fn, point, o)) for o in [(1, 0), (0, 1)]])
            want_h.append([float(mpmath.diff(fn, point, o)) for o in [(2, 0), (1, 1), (0, 2)]])
    y = t64(mu + s * np.array(z))
    _, g, h = _derivatives(hyvarinen_score, Logistic, (t64([mu] * 8), t64([s] * 8)), y)
    np.testing.assert_allclose(g.numpy().T, want_g, rtol=1e-13, atol=0)
    hs = np.stack([h[0, 0], h[0, 1], h[1, 1]], axis=1)
    np.testing.assert_allclose(hs, want_h, rtol=1e-13, atol=0)
