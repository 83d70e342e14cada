"""Sandwich (Godambe) standard errors of ``likelab.estimate.fit``.

Oracles: (1) the sandwich sqrt(diag(H^-1 J H^-1)/n) computed in numpy from per-observation scores
written from the formulas (Hessians analytic, or by central differences of the analytic scores),
at the returned parameters; (2) the inverse Fisher information at the true parameters under the
correct model (``family.fisher_information``, tested against quadrature in tests/families); (3)
the Monte Carlo standard deviation of the estimates across replicates, for a misspecified model
and a robust objective.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from likelab.estimate import fit
from likelab.families import get_family, parse_dgp


def _sandwich_se(scores: np.ndarray, hessian: np.ndarray) -> np.ndarray:
    """sqrt(diag(H^-1 J H^-1) / n): scores (R, n, p) of the loss, H (R, p, p) of the mean loss."""
    n = scores.shape[1]
    j = np.einsum("rni,rnj->rij", scores, scores) / n
    h_inv = np.linalg.inv(hessian)
    v = h_inv @ j @ np.swapaxes(h_inv, -1, -2) / n
    return np.sqrt(np.diagonal(v, axis1=-2, axis2=-1))


def _fd_hessian(mean_score, theta: np.ndarray, rel: float = 1e-5) -> np.ndarray:
    """(R, p, p) Jacobian of mean_score (R, p) by central differences with step rel*|theta|.

    Error O(h^2) ~ 1e-10 relative plus rounding eps/h ~ 1e-11: SEs to ~1e-9 relative.
    """
    r, p = theta.shape
    out = np.empty((r, p, p))
    for j in range(p):
        h = rel * np.maximum(np.abs(theta[:, j]), 1.0)
        e = np.zeros_like(theta)
        e[:, j] = h
        out[:, :, j] = (mean_score(theta + e) - mean_score(theta - e)) / (2 * h[:, None])
    return 0.5 * (out + np.swapaxes(out, -1, -2))


# --------------------------------------------------------------------------- the formula
def test_normal_sandwich_equals_the_closed_form():
    # Misspecified on purpose (t_5 data), so that J != H and the sandwich differs from 1/I.
    y = 1.0 + np.random.default_rng(20).standard_t(5.0, size=(100, 50))
    res = fit(y, "normal")
    mu, s = res.params["loc"][:, None], res.params["scale"][:, None]
    z = y - mu
    # loss -log f; scores d/d(mu, sigma) and the Hessian of the mean loss, closed form
    scores = np.stack([-z / s**2, 1 / s - z**2 / s**3], -1)
    h = np.empty((len(y), 2, 2))
    h[:, 0, 0] = 1 / s[:, 0] ** 2
    h[:, 0, 1] = h[:, 1, 0] = 2 * z.mean(1) / s[:, 0] ** 3
    h[:, 1, 1] = -1 / s[:, 0] ** 2 + 3 * (z**2).mean(1) / s[:, 0] ** 4
    expected = _sandwich_se(scores, h)
    # At the MLE (gradient ~1e-15) the delta method from likelab's unconstrained coordinates is
    # exact; what remains is float64 rounding of means of n terms: 1e-9 is generous.
    np.testing.assert_allclose(res.se["loc"], expected[:, 0], rtol=1e-9)
    np.testing.assert_allclose(res.se["scale"], expected[:, 1], rtol=1e-9)
    # and it is not the model-based SE (the test can tell them apart): for loc the sandwich is
    # sqrt(mean z^2 / n) = s/sqrt(n) exactly, for scale the kurtosis of t_5 inflates it
    np.testing.assert_allclose(res.se["loc"], s[:, 0] / np.sqrt(50), rtol=1e-9)
    assert np.mean(res.se["scale"] / (s[:, 0] / np.sqrt(100))) > 1.2


def test_gamma_sandwich_equals_the_closed_form():
    # Lognormal data: the gamma model is misspecified.
    y = np.exp(np.random.default_rng(21).normal(0.5, 0.6, size=(60, 80)))
    res = fit(y, "gamma")
    assert res.converged.all()
    a, b = res.params["concentration"][:, None], res.params["rate"][:, None]
    # loss -log f = -a log b + lgamma(a) - (a-1) log y + b y
    scores = np.stack([-(np.log(b) - special.digamma(a) + np.log(y)), -(a / b - y)], -1)
    h = np.empty((len(y), 2, 2))
    h[:, 0, 0] = special.polygamma(1, a[:, 0])
    h[:, 0, 1] = h[:, 1, 0] = -1 / b[:, 0]
    h[:, 1, 1] = a[:, 0] / b[:, 0] ** 2
    expected = _sandwich_se(scores, h)
    # likelab's sandwich is taken in (log a, log b) and mapped by the delta method, which equals
    # the natural-coordinate sandwich up to O(|gradient| / smallest Hessian eigenvalue): fits stop
    # with gradients up to ~6e-9 (observed here, an "ftol" stop) and the eigenvalue is ~0.3,
    # so 1e-7 relative.
    np.testing.assert_allclose(res.se["concentration"], expected[:, 0], rtol=1e-7)
    np.testing.assert_allclose(res.se["rate"], expected[:, 1], rtol=1e-7)


def _t_scores(y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Scores of the loss -log f for Student-t, theta (R, 3) = (df, loc, scale), out (R, n, 3).

    log f = lgamma((v+1)/2) - lgamma(v/2) - log(v pi)/2 - log s - (v+1)/2 log(1 + z^2/v).
    """
    v, m, s = (theta[:, k : k + 1] for k in range(3))
    z = (y - m) / s
    d_v = 0.5 * (
        special.digamma((v + 1) / 2)
        - special.digamma(v / 2)
        - 1 / v
        - np.log1p(z**2 / v)
        + (v + 1) * z**2 / (v * (v + z**2))
    )
    d_m = (v + 1) * z / (s * (v + z**2))
    d_s = -1 / s + (v + 1) * z**2 / (s * (v + z**2))
    return -np.stack([d_v, d_m, d_s], -1)


def test_student_t_scores_of_the_oracle_match_scipy_logpdf():
    # Self-check of the oracle: its scores against central differences of scipy's logpdf.
    y = np.random.default_rng(22).standard_t(4.0, size=(3, 7))
    theta = np.array([[4.0, 0.3, 1.5], [2.5, -1.0, 0.7], [30.0, 0.0, 2.0]])
    got = _t_scores(y, theta)
    for k in range(3):
        h = 1e-6 * np.maximum(np.abs(theta[:, k]), 1.0)
        e = np.zeros_like(theta)
        e[:, k] = h

        def loss(t):
            return -stats.t.logpdf(y, t[:, :1], t[:, 1:2], t[:, 2:3])

        fd = (loss(theta + e) - loss(theta - e)) / (2 * h[:, None])
        np.testing.assert_allclose(got[..., k], fd, rtol=1e-6, atol=1e-8)


def test_student_t_sandwich_matches_the_oracle():
    y = 1.0 + 2.0 * np.random.default_rng(23).standard_t(4.0, size=(30, 150))
    res = fit(y, "student_t")
    assert res.converged.all()
    theta = np.stack([res.params[k] for k in ("df", "loc", "scale")], -1)
    h = _fd_hessian(lambda t: _t_scores(y, t).mean(1), theta)
    expected = _sandwich_se(_t_scores(y, theta), h)
    # Finite-difference Hessian (~1e-9) and a stopping gradient up to ~1e-9 (which perturbs
    # the delta-method map by as much): 1e-6 relative.
    for k, name in enumerate(("df", "loc", "scale")):
        np.testing.assert_allclose(res.se[name], expected[:, k], rtol=1e-6)


BETA = 0.5


def _dpd_scores(y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Per-observation gradients of the dpd loss of N(mu, sigma^2), theta (R, 2) = (mu, sigma).

    loss = (2 pi s^2)^(-b/2)/sqrt(1+b) - (1 + 1/b) phi(y)^b  (Basu et al. 1998).
    """
    m, s = theta[:, :1], theta[:, 1:2]
    z = (y - m) / s
    fb = (np.exp(-0.5 * z**2) / (s * np.sqrt(2 * np.pi))) ** BETA
    integral = (2 * np.pi * s**2) ** (-BETA / 2) / np.sqrt(1 + BETA)
    d_m = -(1 + BETA) * fb * z / s
    d_s = (-BETA * integral - (1 + BETA) * fb * (z**2 - 1)) / s
    return np.stack([d_m, np.broadcast_to(d_s, z.shape)], -1)


def test_dpd_sandwich_matches_the_oracle():
    dgp = parse_dgp("0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1")
    y = dgp.sample((30, 200), seed=24)
    res = fit(y, "normal", f"dpd:beta={BETA}")
    assert res.converged.all()
    theta = np.stack([res.params["loc"], res.params["scale"]], -1)
    # the oracle's scores average to zero at likelab's optimum (stationarity, ~1e-9)
    assert np.abs(_dpd_scores(y, theta).mean(1)).max() < 1e-8
    h = _fd_hessian(lambda t: _dpd_scores(y, t).mean(1), theta)
    expected = _sandwich_se(_dpd_scores(y, theta), h)
    np.testing.assert_allclose(res.se["loc"], expected[:, 0], rtol=1e-6)
    np.testing.assert_allclose(res.se["scale"], expected[:, 1], rtol=1e-6)


def test_se_false_gives_nan_and_the_same_estimates():
    y = np.random.default_rng(25).gamma(2.0, 1.0, size=(5, 40))
    with_se, without = fit(y, "gamma"), fit(y, "gamma", se=False)
    for k in with_se.free:
        np.testing.assert_array_equal(without.params[k], with_se.params[k])
        assert np.isnan(without.se[k]).all() and without.se[k].shape == (5,)
        assert np.isfinite(with_se.se[k]).all()


def test_laplace_log_sandwich_equals_the_closed_form():
    # The Laplace NLL is piecewise linear in loc: the average pointwise Hessian in loc is 0, but
    # the bread is the derivative of the *expected* score, 2 g(m) / b = 1/b² under the fitted
    # model (the kink's term; issue 12). With the median m of an odd sample, one score is
    # sign(0) = 0, so J_loc = (n - 1)/(n b²) and SE_loc = b sqrt((n - 1)/n) / sqrt(n). The
    # scale, decoupled (A_loc,scale = mean(sign)/b² = 0), has the analytic sandwich
    # sqrt(mean((|y - m| - b)²) / n).
    n = 101
    y = np.random.default_rng(1).laplace(-1.0, 0.5, size=(30, n))
    res = fit(y, "laplace")
    m, b = res.params["loc"][:, None], res.params["scale"]
    np.testing.assert_allclose(m[:, 0], np.median(y, axis=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.se["loc"], b * np.sqrt((n - 1) / n) / np.sqrt(n), rtol=1e-6)
    scale_se = np.sqrt(((np.abs(y - m) - b[:, None]) ** 2).mean(1) / n)
    np.testing.assert_allclose(res.se["scale"], scale_se, rtol=1e-6)
    assert set(res.se_reason) == {""}


# --------------------------------------------------------------------------- large n: 1/I
@pytest.mark.parametrize(
    ("name", "truth", "tol"),
    [
        ("normal", {"loc": 1.0, "scale": 2.0}, {"loc": 0.02, "scale": 0.02}),
        ("gamma", {"concentration": 2.5, "rate": 1.5}, {"concentration": 0.02, "rate": 0.02}),
        (
            "student_t",
            {"df": 5.0, "loc": 1.0, "scale": 2.0},
            {"df": 0.06, "loc": 0.02, "scale": 0.02},
        ),
    ],
)
def test_sandwich_is_the_inverse_fisher_se_under_the_correct_model(name, truth, tol):
    n, r = 20_000, 20
    fam = get_family(name)
    y = fam.sample((r, n), seed=26, **truth)
    res = fit(y, name)
    assert res.converged.all()
    info = fam.fisher_information(**truth).numpy()
    fisher_se = np.sqrt(np.diag(np.linalg.inv(info)) / n)
    # Under the model H and J both estimate I, so each replicate's sandwich SE is consistent for
    # sqrt(I^-1/n). Its own sampling noise at n = 20,000 (observed with seed 26: coefficient of
    # variation across replicates / sqrt(R) <= 0.3% for locations, scales, shape and rate; 1.5%
    # for df, whose score has heavy tails) plus O(1/n) bias: 2% is >= 7 Monte Carlo SEs of the
    # mean for every parameter but df, 6% is 4 for df.
    for j, k in enumerate(fam.free):
        mean_se = res.se[k].mean()
        assert abs(mean_se / fisher_se[j] - 1) < tol[k], (k, mean_se / fisher_se[j])


# --------------------------------------------------------------------------- Monte Carlo
def _mc_check(res, free, model_se=None):
    """Mean sandwich SE vs the Monte Carlo SD of the estimates across R replicates.

    With R = 400 replicates the sample SD of near-normal estimates has relative standard error
    about 1/sqrt(2R) = 3.5%; 12% is ~3.4 of those (the sandwich's own O(1/n) bias at n = 400 is
    a few percent at most).
    """
    for k in free:
        mc_sd = res.params[k].std(ddof=1)
        mean_se = res.se[k].mean()
        assert abs(mean_se / mc_sd - 1) < 0.12, (k, mean_se / mc_sd)
        if model_se is not None and k in model_se:
            # the model-based SE is clearly wrong here: the check can tell them apart
            assert abs(model_se[k] / mc_sd - 1) > 0.25, (k, model_se[k] / mc_sd)


def test_sandwich_matches_monte_carlo_for_a_misspecified_model():
    # Normal fitted to Laplace(0, 1) data: sd sqrt(2), kurtosis 6. The sandwich var of the
    # scale is sigma^2 (kurtosis - 1) / (4n), the model-based 1/(I n) = sigma^2 / (2n): off by
    # a factor sqrt(5/2) = 1.58 in SE.
    n, r = 400, 400
    y = np.random.default_rng(27).laplace(0.0, 1.0, size=(r, n))
    res = fit(y, "normal")
    assert res.converged.all()
    model_scale_se = float(np.mean(res.params["scale"] / np.sqrt(2 * n)))
    _mc_check(res, ("loc", "scale"), {"scale": model_scale_se})


def test_sandwich_matches_monte_carlo_for_the_robust_dpd():
    n, r = 400, 400
    dgp = parse_dgp("0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1")
    y = dgp.sample((r, n), seed=28)
    res = fit(y, "normal", f"dpd:beta={BETA}")
    assert res.converged.all()
    _mc_check(res, ("loc", "scale"))
