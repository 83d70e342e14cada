"""Asymptotics on a truth with an atom (a point mass ``point:at=X`` in the mixture): θ*, A, B
and the influence function are exact, against closed forms; where a family's kink meets the atom
at θ*, no number is given and ``reason`` says why."""

from __future__ import annotations

import math

import pytest

from likelab.asymptotics import asymptotics

EPS = 0.1
TRUTH = f"{1 - EPS} normal:loc=0,scale=1 + {EPS} point:at=8"


def test_log_normal_location_under_a_point_mass():
    # θ* = mean = 8ε, A = 1, B = V = variance of the mixture = (1-ε)(1 + 64ε), IF(x) = x - θ*
    r = asymptotics("log", "normal:scale=1", TRUTH)
    assert r.reason == ""
    assert abs(r.theta_star["loc"] - 8 * EPS) < 1e-10
    assert abs(r.a_matrix[0][0] - 1.0) < 1e-10
    var = (1 - EPS) * (1 + 64 * EPS)
    assert abs(r.b_matrix[0][0] - var) < 1e-10 * var
    assert abs(r.asymptotic_sd["loc"] - math.sqrt(var)) < 1e-10
    inf = r.influence([-2.0, 8.0, 20.0])
    assert inf["loc"] == pytest.approx([-2.8, 7.2, 19.2], abs=1e-9)
    assert r.gross_error_sensitivity["loc"]["value"] == math.inf
    # the target of the MSE ratio is the uncontaminated component's location
    assert r.target == {"loc": 0.0} and "main component" in r.target_from


def test_laplace_median_under_a_point_mass_with_the_kink_term():
    # log in laplace(μ, 1) is the median: 0.9 F(θ) = 1/2, θ* = -log(8/9); A = 2 · 0.9 · p(θ*)
    # with p the Laplace density (the kink's Leibniz term; the atom at 8 adds no density),
    # = 0.9 e^{-θ*} = 0.8; B = E sign² = 1; V = 1/0.64
    r = asymptotics("log", "laplace:scale=1", "0.9 laplace:loc=0,scale=1 + 0.1 point:at=8")
    assert r.reason == ""
    assert abs(r.theta_star["loc"] + math.log(8 / 9)) < 1e-9
    assert abs(r.a_matrix[0][0] - 0.8) < 1e-6
    assert abs(r.b_matrix[0][0] - 1.0) < 1e-10
    assert abs(r.covariance[0][0] - 1 / 0.64) < 1e-5


def test_a_lone_point_mass_is_a_degenerate_truth():
    # every observation is 8: with the scale known the estimate is exactly 8 (V = 0); with the
    # scale free there is no θ* (the scale runs to 0), and the result says so
    r = asymptotics("log", "normal:scale=1", "point:at=8")
    assert r.theta_star == {"loc": 8.0} and r.covariance == [[0.0]]
    r = asymptotics("log", "normal", "point:at=8")
    assert math.isnan(r.theta_star["loc"]) and "no θ*" in r.reason and "scale → 0" in r.reason


@pytest.mark.parametrize("objective", ["log", "dpd:beta=0.3"])
def test_a_degenerate_truth_says_why_the_are_is_undefined(objective):
    # a lone atom at -3 under a known scale: θ* = -3 exactly and V = 0 for the objective and for
    # log, so V_log / V = 0/0; the ARE is NaN with the reason, never an unexplained NaN
    r = asymptotics(objective, "normal:scale=2", "point:at=-3")
    assert r.reason == ""
    assert abs(r.theta_star["loc"] + 3.0) < 1e-12 and r.covariance == [[0.0]]
    assert math.isnan(r.are_vs_log["loc"])
    assert "degenerate" in r.are_reason and "V = 0 for both" in r.are_reason
    assert "undefined" in r.are_reason


def test_an_atom_at_the_kink_of_the_score_at_theta_star_is_named():
    # 0.7 Laplace(1, 2) + 0.3 δ_1: the median (θ* of log in laplace(μ, 2)) is the atom at 1, the
    # kink of the Laplace score; the expected gradient jumps there (by 2 · 0.3 / 2), so A does
    # not exist: the reason names the atom at the kink, not a failed differentiability check
    r = asymptotics("log", "laplace:scale=2", "0.7 laplace:loc=1,scale=2 + 0.3 point:at=1")
    assert abs(r.theta_star["loc"] - 1.0) < 1e-9
    assert math.isnan(r.asymptotic_sd["loc"]) and math.isnan(r.are_vs_log["loc"])
    assert "point of the truth" in r.reason and "at y = 1" in r.reason
    assert "kink" in r.reason and "not twice differentiable" in r.reason
    assert "undetermined" not in r.reason
