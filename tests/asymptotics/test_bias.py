"""Asymptotic bias under contamination and the numerical breakdown point."""

from __future__ import annotations

import math

import pytest

from likelab.asymptotics import contamination_bias
from likelab.errors import ParameterError

CLEAN, OUT = "normal:loc=0,scale=1", "normal:loc=8,scale=1"


def test_log_bias_is_eps_times_outlier_and_breaks_at_half():
    # the KL projection onto N(μ, 1) is the mean: θ*(ε) = 8ε exactly; it crosses the default
    # bound (half the distance 8 between the centres) at ε = 1/2
    r = contamination_bias("log", "normal:scale=1", CLEAN, OUT, [0.0, 0.05, 0.1, 0.3, 0.6])
    assert r.bound == 4.0
    for e, b in zip(r.eps, r.bias["loc"], strict=True):
        assert abs(b - 8 * e) < 1e-8
    lo, hi = r.breakdown_evidence["bracket"]
    assert lo <= 0.5 <= hi and hi - lo <= 0.3 / 1024 + 1e-12
    assert abs(r.breakdown - 0.5) <= 0.3 / 1024


@pytest.mark.parametrize("spec", ["dpd:beta=0.5", "gamma:gamma=0.5", "quadratic"])
def test_robust_objectives_stay_put_under_ten_percent_at_eight(spec):
    # each weighs an observation by a power of its density: at y = 8 that is ~e^{-32 β}, so the
    # pull of the outliers on θ* is below 1e-3 (measured 2e-5 for β = 0.5, 1e-7 for quadratic)
    r = contamination_bias(spec, "normal:scale=1", CLEAN, OUT, [0.0, 0.1])
    assert abs(r.bias["loc"][1]) < 1e-3
    assert r.breakdown is None and "no ε" in r.breakdown_evidence["note"]


def test_bad_eps_and_bound_are_errors():
    for eps in ([1.0], [-0.1], [math.nan], ["x"], []):
        with pytest.raises(ParameterError):
            contamination_bias("log", "normal:scale=1", CLEAN, OUT, eps)
    with pytest.raises(ParameterError):
        contamination_bias("log", "normal:scale=1", CLEAN, OUT, [0.1], bound=-1)
    with pytest.raises(ParameterError):  # no θ* at ε = 0: linear with a free scale
        contamination_bias("linear", "normal", CLEAN, OUT, [0.1])


# ---------------------------------------------------------------------- a point mass
EPS = [0.0, 0.02, 0.1, 0.4]


def test_log_loc_bias_under_a_point_mass_is_eps_times_the_point():
    # the KL projection onto N(μ, 1) is the mean: θ*(ε) = ε x0 exactly, for x0 = 8 and -3
    for x0 in (8.0, -3.0):
        r = contamination_bias("log", "normal:scale=1", CLEAN, f"point:at={x0:g}", EPS)
        assert r.contamination == f"point:at={x0:g}" and r.bound == abs(x0) / 2
        for e, b in zip(r.eps, r.bias["loc"], strict=True):
            assert abs(b - x0 * e) < 1e-8, (x0, e, b)


def test_log_loc_and_scale_under_a_point_mass_match_the_mixture_moments():
    # free loc and scale: θ* matches the mean and variance of (1-ε) N(0,1) + ε δ_8,
    # μ* = 8ε and σ*² = (1-ε)(1 + μ*²) + ε(8 - μ*)² = (1-ε)(1 + 64ε); tolerance 1e-8 relative
    # to 1 + |θ| (the optimiser stops at a relative gradient of 1e-9)
    r = contamination_bias("log", "normal", CLEAN, "point:at=8", EPS)
    for k, e in enumerate(r.eps):
        mu = 8 * e
        sd = math.sqrt((1 - e) * (1 + mu**2) + e * (8 - mu) ** 2)
        assert abs(sd - math.sqrt((1 - e) * (1 + 64 * e))) < 1e-12  # the two forms agree
        assert abs(r.theta_star["loc"][k] - mu) < 1e-8 * (1 + mu), (e, r.theta_star)
        assert abs(r.theta_star["scale"][k] - sd) < 1e-8 * (1 + sd), (e, r.theta_star)
        assert abs(r.bias["scale"][k] - (sd - 1)) < 2e-8 * (1 + sd)


@pytest.mark.parametrize("x0", [3.0, 8.0])
def test_dpd_location_bias_under_a_point_mass_is_the_root_of_its_estimating_equation(x0):
    # dpd:beta=b, N(μ, 1): ψ(y, μ) ∝ (y - μ) e^{-b (y-μ)²/2}; θ*(ε) solves
    # (1-ε) ∫ φ(y) ψ(y, μ) dy + ε ψ(x0, μ) = 0 (scipy quad + brentq, near 0)
    from scipy import integrate, optimize, stats

    b = 0.5

    def psi(y, mu):
        return (y - mu) * math.exp(-b * (y - mu) ** 2 / 2)

    def equation(mu, e):
        part, _ = integrate.quad(
            lambda y: stats.norm.pdf(y) * psi(y, mu), -math.inf, math.inf, epsabs=1e-14
        )
        return (1 - e) * part + e * psi(x0, mu)

    eps = [0.0, 0.05, 0.2]
    r = contamination_bias(f"dpd:beta={b}", "normal:scale=1", CLEAN, f"point:at={x0:g}", eps)
    for e, got in zip(r.eps[1:], r.bias["loc"][1:], strict=True):
        want = optimize.brentq(lambda m, e=e: equation(m, e), -1.0, 1.5, xtol=1e-15)
        assert abs(got - want) < 1e-8, (x0, e, got, want)
    assert r.breakdown is None


def test_breakdown_of_log_against_a_point_mass_with_a_bound():
    # bias 8ε passes the bound 2 at ε = 1/4: bracketed by the grid, then bisected
    r = contamination_bias("log", "normal:scale=1", CLEAN, "point:at=8", [0.1, 0.2, 0.3], bound=2)
    lo, hi = r.breakdown_evidence["bracket"]
    assert lo <= 0.25 <= hi == r.breakdown and hi - lo <= 0.1 / 1024 + 1e-12


@pytest.mark.parametrize(
    "family, truth, at, match",
    [
        ("gamma", "gamma:concentration=2,rate=1", "point:at=-1", "outside the support"),
        ("gamma", "gamma:concentration=2,rate=1", "point:at=0", "outside the support"),
        ("poisson", "poisson:rate=3", "point:at=2.5", "outside the support"),
        ("normal:scale=1", CLEAN, "point", "needs its location"),
        ("normal:scale=1", CLEAN, "point:at=x", "needs a number"),
        ("normal:scale=1", CLEAN, "point:at=0", "give a bound"),
    ],
)
def test_bad_point_mass_contaminations_are_errors(family, truth, at, match):
    with pytest.raises(ParameterError, match=match):
        contamination_bias("log", family, truth, at, [0.1])


def test_a_point_mass_in_a_discrete_model():
    # log, Poisson: the rate is the mean, (1-ε) 3 + 20 ε
    r = contamination_bias("log", "poisson", "poisson:rate=3", "point:at=20", [0.1, 0.3])
    for e, th in zip(r.eps, r.theta_star["rate"], strict=True):
        assert abs(th - (3 + 17 * e)) < 1e-8
