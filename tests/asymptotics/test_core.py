"""likelab.asymptotics: θ*, V = A⁻¹BA⁻¹, ARE and influence functions against closed forms.

Oracles are independent of the quadrature: textbook Fisher informations (normal, gamma via the
trigamma function, Poisson; the Student t with free df from Lange, Little & Taylor 1989, JASA
84:881-896, Table 1 / appendix), the density power divergence's ARE at the normal location
(Basu et al. 1998, Biometrika 85:549-559) and influence functions derived by hand (below).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.special import polygamma

import likelab
from likelab.asymptotics import asymptotics
from likelab.errors import LikelabError, ParameterError, UnknownNameError

TIGHT = 1e-8


def _v(r) -> np.ndarray:
    return np.asarray(r.covariance, dtype=float)


# ------------------------------------------------------------------ normal location, known scale
@pytest.mark.parametrize("beta", [0.1, 0.25, 0.5, 1.0])
def test_dpd_are_at_normal_location_is_basu_closed_form(beta):
    # Basu et al. (1998): ARE = (1 + 2β)^{3/2} / (1 + β)^3, whatever μ and σ
    r = asymptotics(f"dpd:beta={beta}", "normal", "normal:loc=1,scale=2", fixed={"scale": 2})
    assert r.reason == ""
    want = (1 + 2 * beta) ** 1.5 / (1 + beta) ** 3
    assert abs(r.are_vs_log["loc"] - want) < TIGHT
    assert abs(r.theta_star["loc"] - 1.0) < TIGHT
    assert not r.theta_star_differs


def test_linear_is_dpd_with_beta_one():
    # linear = -f(y) is dpd:beta=1 up to a constant and a factor at known scale
    r = asymptotics("linear", "normal:scale=1", "normal:loc=0,scale=1")
    assert abs(r.are_vs_log["loc"] - 3**1.5 / 8) < TIGHT
    assert abs(r.asymptotic_sd["loc"] ** 2 - 8 / 3**1.5) < TIGHT


def test_log_influence_is_x_minus_mu_and_unbounded():
    r = asymptotics("log", "normal:scale=2", "normal:loc=1,scale=2")
    xs = np.array([-30.0, -1.0, 0.5, 1.0, 7.0, 100.0])
    infl = r.influence(xs)
    assert np.allclose(infl["loc"], xs - 1.0, rtol=0, atol=1e-9 * (1 + np.abs(xs)).max())
    ges = r.gross_error_sensitivity["loc"]
    assert ges["value"] == math.inf and ges["bounded"] is False
    # the evidence: |IF| grows along the far points, equal to the distance from μ
    far = ges["evidence"]["+"]
    assert np.allclose(far["abs_influence"], np.abs(np.asarray(far["x"]) - 1.0), rtol=1e-9)
    assert far["abs_influence"][-1] > 1e6


@pytest.mark.parametrize("beta", [0.2, 0.5])
def test_dpd_influence_is_bounded_redescending_closed_form(beta):
    # S = -(1 + 1/β) f^β + ∫f^{1+β}; at N(μ, σ²) with σ known, ψ = ∂_μ S = -(1+β) f^β (x-μ)/σ²
    # and A = E ∂_μ ψ = (2πσ²)^{-β/2} / (σ² √(1+β)), so
    # IF(x) = -ψ/A = (1+β)^{3/2} (x-μ) exp(-β (x-μ)² / (2σ²)),
    # maximal at |x-μ| = σ/√β: GES = (1+β)^{3/2} σ e^{-1/2} / √β.
    mu, sigma = 1.0, 2.0
    r = asymptotics(
        f"dpd:beta={beta}", "normal", f"normal:loc={mu},scale={sigma}", {"scale": sigma}
    )
    xs = np.linspace(-40, 40, 81)
    want = (1 + beta) ** 1.5 * (xs - mu) * np.exp(-beta * (xs - mu) ** 2 / (2 * sigma**2))
    assert np.allclose(r.influence(xs)["loc"], want, rtol=0, atol=1e-9)
    ges = r.gross_error_sensitivity["loc"]
    assert ges["bounded"] is True
    want_ges = (1 + beta) ** 1.5 * sigma * math.exp(-0.5) / math.sqrt(beta)
    # the supremum over a grid of spacing 100σ/4000 around a smooth maximum: error ~ (h/σ)²
    assert abs(ges["value"] - want_ges) < 1e-3 * want_ges
    assert ges["evidence"]["+"]["abs_influence"][-1] < 1e-12  # redescending


# ------------------------------------------------------------------ information-matrix equality
def test_normal_log_sandwich_is_inverse_fisher():
    sigma = 2.0
    r = asymptotics("log", "normal", f"normal:loc=1,scale={sigma}")
    assert r.params == ("loc", "scale")
    fisher = np.diag([1 / sigma**2, 2 / sigma**2])
    assert np.allclose(_v(r), np.linalg.inv(fisher), rtol=0, atol=TIGHT)
    assert np.allclose(r.a_matrix, fisher, atol=TIGHT) and np.allclose(
        r.b_matrix, fisher, atol=TIGHT
    )
    assert r.are_vs_log == {"loc": 1.0, "scale": 1.0}


def test_gamma_log_sandwich_is_inverse_fisher():
    a, b = 3.0, 2.0
    r = asymptotics("log", "gamma", f"gamma:concentration={a},rate={b}")
    fisher = np.array([[polygamma(1, a), -1 / b], [-1 / b, a / b**2]])
    assert np.allclose(_v(r), np.linalg.inv(fisher), rtol=TIGHT, atol=TIGHT)


def test_poisson_log_sandwich_is_inverse_fisher_by_exact_sums():
    r = asymptotics("log", "poisson", "poisson:rate=3.5")
    assert abs(_v(r)[0, 0] - 3.5) < TIGHT
    # IF of the Poisson MLE (the mean): x - λ, at integers
    assert np.allclose(r.influence([0, 1, 10])["rate"], [-3.5, -2.5, 6.5], atol=1e-10)


def test_student_t_free_df_log_sandwich_is_lange_little_taylor():
    nu, mu, s = 5.0, 0.5, 1.5
    r = asymptotics("log", "student_t", f"student_t:df={nu},loc={mu},scale={s}")
    assert r.params == ("df", "loc", "scale")
    # Lange, Little & Taylor (1989), per observation, parameters (ν, μ, σ)
    i_nn = 0.25 * (polygamma(1, nu / 2) - polygamma(1, (nu + 1) / 2)) - (nu + 5) / (
        2 * nu * (nu + 1) * (nu + 3)
    )
    i_ns = -2 / ((nu + 3) * (nu + 1) * s)
    i_mm = (nu + 1) / ((nu + 3) * s**2)
    i_ss = 2 * nu / ((nu + 3) * s**2)
    fisher = np.array([[i_nn, 0, i_ns], [0, i_mm, 0], [i_ns, 0, i_ss]])
    v_want = np.linalg.inv(fisher)
    assert np.allclose(_v(r), v_want, rtol=TIGHT, atol=TIGHT * np.abs(v_want).max())


# ------------------------------------------------------------------ contamination, misspecification
def test_log_under_gross_errors_moves_by_eps_times_outlier():
    # the KL projection onto N(μ, 1) matches the mean: 0.9·0 + 0.1·8 = 0.8
    r = asymptotics("log", "normal:scale=1", "0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1")
    assert abs(r.theta_star["loc"] - 0.8) < TIGHT
    # V = Var_P(Y) / 1² = 1 + 0.9·0.1·64
    assert abs(_v(r)[0, 0] - (1 + 0.09 * 64)) < TIGHT


def test_dpd_under_gross_errors_stays_near_zero_and_reports_mse_ratio():
    r = asymptotics(
        "dpd:beta=0.5",
        "normal:scale=1",
        "0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1",
        n=100,
        target={"loc": 0.0},
    )
    assert abs(r.theta_star["loc"]) < 1e-3  # weight of y=8 under dpd: e^{-β·64/2} ≈ 1e-7
    assert r.theta_star_differs and "differs" in r.are_reason
    mse_log = 0.8**2 + (1 + 0.09 * 64) / 100
    mse = r.theta_star["loc"] ** 2 + _v(r)[0, 0] / 100
    assert abs(r.mse_ratio["loc"] - mse_log / mse) < 1e-12 * mse_log / mse
    assert r.mse_ratio["loc"] > 10


# ------------------------------------------------------------------ kinked density: Laplace
def test_laplace_location_log_is_the_median_variance():
    # the sample median: V = 1 / (4 p(μ)²) = b² under Laplace(μ, b)
    b = 1.5
    r = asymptotics("log", "laplace", f"laplace:loc=0.3,scale={b}", fixed={"scale": b})
    assert r.reason == ""
    assert abs(_v(r)[0, 0] - b**2) < 1e-8
    assert r.gross_error_sensitivity["loc"]["bounded"] is True
    assert abs(r.gross_error_sensitivity["loc"]["value"] - b) < 1e-8  # IF = b sign(x - μ)


@pytest.mark.parametrize("beta", [0.25, 0.5])
def test_laplace_location_dpd_includes_the_kink_term(beta):
    # ψ = -(1+β) f^β sign(y-μ)/b, B = (1+β)² (2b)^{-2β} / (b² (1+2β)); the derivative of E ψ
    # has the jump at y = μ: A = (2b)^{-β} / b² (the pointwise Hessian alone is negative).
    # V = (1+β)² b² / (1+2β), ARE = (1+2β)/(1+β)².
    b = 1.5
    r = asymptotics(f"dpd:beta={beta}", "laplace", f"laplace:loc=0,scale={b}", fixed={"scale": b})
    assert abs(_v(r)[0, 0] - (1 + beta) ** 2 * b**2 / (1 + 2 * beta)) < 1e-8
    assert abs(r.are_vs_log["loc"] - (1 + 2 * beta) / (1 + beta) ** 2) < 1e-8


# ------------------------------------------------------------------ evidence when there is none
def test_linear_with_free_scale_has_no_theta_star():
    r = asymptotics("linear", "normal", "normal:loc=0,scale=1")
    assert r.reason.startswith("no θ*") and "scale → 0" in r.reason
    assert all(math.isnan(v) for v in r.asymptotic_sd.values())
    assert all(math.isnan(v) for v in r.are_vs_log.values())
    assert all(math.isnan(v) for v in r.influence([0.0, 1.0])["loc"])
    json.dumps(r.to_dict())


def test_log_score_under_cauchy_truth_has_no_theta_star():
    r = asymptotics("log", "normal", "cauchy:loc=0,scale=1")
    assert "no θ*" in r.reason and math.isnan(r.theta_star["loc"])


def test_user_objective_matches_builtin_log():
    def nll(dist, y):
        return -dist.log_prob(y)

    r = asymptotics(nll, "gamma", "gamma:concentration=2,rate=1")
    ref = asymptotics("log", "gamma", "gamma:concentration=2,rate=1")
    assert np.allclose(_v(r), _v(ref), rtol=1e-10)
    # a φ-objective of the log-likelihood: φ = -l must reproduce log
    r = asymptotics("phi:-l", "gamma", "gamma:concentration=2,rate=1")
    assert np.allclose(_v(r), _v(ref), rtol=1e-10)


def test_bad_inputs_are_likelab_errors():
    with pytest.raises(UnknownNameError):
        asymptotics("nope", "normal", "normal:loc=0,scale=1")
    with pytest.raises(UnknownNameError):
        asymptotics("log", "nope", "normal:loc=0,scale=1")
    with pytest.raises(ParameterError):  # a normal truth puts mass where a gamma has none
        asymptotics("log", "gamma", "normal:loc=0,scale=1")
    with pytest.raises(ParameterError):
        asymptotics("log", "normal", "normal:loc=0,scale=1", n=0)
    r = asymptotics("log", "poisson", "poisson:rate=2")
    with pytest.raises(ParameterError):
        r.influence([-1.0])
    with pytest.raises(LikelabError):
        asymptotics("log", "normal", "not a dgp")
    with pytest.raises(ParameterError):
        r.influence(["a"])
    with pytest.raises(UnknownNameError):
        asymptotics("log", "normal", "normal:loc=0,scale=1", fixed={"nope": 1})
    with pytest.raises(ParameterError):
        asymptotics("log", "normal", "normal:loc=0,scale=1", fixed={"scale": -1})
    with pytest.raises(ParameterError):
        asymptotics("log", "poisson", "poisson:rate=2", target={"rate": "x"})
    with pytest.raises(LikelabError):
        asymptotics("product", "normal", "normal:loc=0,scale=1")


def test_exported_and_json_ready():
    assert likelab.asymptotics is asymptotics
    r = asymptotics("dpd:beta=0.5", "normal:scale=1", "normal:loc=0,scale=1")
    d = r.to_dict()
    assert set(d["parameters"]["loc"]) >= {"theta_star", "asymptotic_sd", "are_vs_log"}
    json.dumps(d, allow_nan=True)
    grid = r.influence_grid(points=11)
    assert len(grid["x"]) == 11 and torch.isfinite(torch.tensor(grid["loc"])).all()


def test_non_regular_or_kinked_on_atoms_says_why():
    # a support that moves with θ (uniform): no √n theory at all
    r = asymptotics("log", "uniform", "uniform:low=0,high=1")
    assert "not regular" in r.reason and math.isnan(r.asymptotic_sd["low"])
    # a Laplace kink meeting the atoms of a Poisson truth: the expected gradient jumps
    r = asymptotics("log", "laplace:scale=1", "poisson:rate=3")
    assert r.reason.startswith("A does not exist") and math.isnan(r.asymptotic_sd["loc"])


def test_infinite_b_is_reported_not_a_number():
    # log fitted in the normal family to t₃ data: θ* exists (finite variance), but ∇S involves
    # (y - μ)² and E (y - μ)⁴ = ∞ under t₃
    r = asymptotics("log", "normal", "student_t:df=3,loc=0,scale=1")
    assert abs(r.theta_star["scale"] - math.sqrt(3.0)) < 1e-8  # moment matching: Var = 3
    assert "diverges" in r.reason and math.isnan(r.asymptotic_sd["loc"])


def test_crps_at_normal_location_is_three_over_pi():
    # ψ = -(2Φ(z) - 1) with z = (y - μ)/σ: B = Var(2U - 1) = 1/3 (U = Φ(Z) uniform),
    # A = 2 E φ(Z) / σ = 1/(√π σ), so V = π σ²/3 and ARE = 3/π; IF(x) = √π σ (2Φ(z) - 1)
    sigma = 1.5
    r = asymptotics("crps", f"normal:scale={sigma}", f"normal:loc=0,scale={sigma}")
    assert abs(r.are_vs_log["loc"] - 3 / math.pi) < TIGHT
    assert abs(r.gross_error_sensitivity["loc"]["value"] - math.sqrt(math.pi) * sigma) < 1e-8


def test_a_bounded_influence_is_not_called_unbounded_for_rounding_in_a():
    # the Laplace location fitted by log to N(0, 1) data is the median: IF = sign(x)/(2 f(0)),
    # bounded at sqrt(2 pi)/2; A's off-diagonal is 0 up to rounding (1e-16), which times x
    # drifts |IF| by 1e-8 relative at x = 7e7 and must not read as growth. The scale's IF,
    # |x| - E|X| over A, is unbounded.
    r = asymptotics("log", "laplace", "normal:loc=0,scale=1")
    ges = r.gross_error_sensitivity
    assert ges["loc"]["bounded"] and abs(ges["loc"]["value"] - math.sqrt(2 * math.pi) / 2) < 1e-7
    assert not ges["scale"]["bounded"] and ges["scale"]["value"] == math.inf


def test_under_contamination_the_mse_target_is_the_uncontaminated_part():
    # (1 - eps) N(0, 1) + eps N(8, 1): log's location converges to 8 eps = 0.8, dpd's stays near
    # 0; the MSE at n is measured against the main component's (0, 1), as a study does
    truth = "0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1"
    r = asymptotics("dpd:beta=0.5", "normal", truth, n=1000)
    assert r.target == {"loc": 0.0, "scale": 1.0} and "main component" in r.target_from
    assert "main component" in r.are_reason and r.theta_star_differs
    sd, sd_log = r.asymptotic_sd, asymptotics("log", "normal", truth).asymptotic_sd
    for k, t in r.target.items():
        mse = (r.theta_star[k] - t) ** 2 + sd[k] ** 2 / 1000
        mse_log = (r.log_theta_star[k] - t) ** 2 + sd_log[k] ** 2 / 1000
        assert r.mse_ratio[k] == pytest.approx(mse_log / mse, rel=1e-10) and r.mse_ratio[k] > 100
    assert abs(r.log_theta_star["loc"] - 0.8) < 1e-8


@pytest.mark.parametrize("free_scale", [False, True])
def test_a_score_whose_gradient_has_a_kink_in_theta_is_refused_not_given_a_wrong_a(free_scale):
    # S = log σ + |y - μ|/σ (the Laplace log score as an objective) on a normal family: its
    # pointwise Hessian in μ is 0 almost everywhere, while the derivative of its expected
    # gradient is 2 p(μ)/σ, so E[∇²S] misses a term; the check of A against the differences of
    # the expected gradient (along one direction when the family is smooth) must say so
    def laplace_nll(dist, y):
        return torch.log(dist.scale) + (y - dist.loc).abs() / dist.scale

    family = "normal" if free_scale else "normal:scale=1"
    r = asymptotics(laplace_nll, family, "normal:loc=0,scale=1")
    assert r.reason.startswith("A is undetermined"), r.reason
    assert all(math.isnan(v) for v in r.asymptotic_sd.values())
