"""score_profile: the curve the properness figure draws, over the whole path or near the truth."""

import math

import numpy as np
import pytest

from likelab.errors import ParameterError
from likelab.properness import check_classes, score_profile
from likelab.properness.density import DensityVerdict


@pytest.fixture(scope="module")
def spherical_on_4():
    return check_classes("spherical", 4, seed=2)


def test_a_window_zooms_on_the_truth_with_the_same_values(spherical_on_4):
    full = score_profile(spherical_on_4)
    near = score_profile(spherical_on_4, 41, window=3.0)
    assert near.x[0] == pytest.approx(1 / 3) and near.x[-1] == pytest.approx(3.0)
    assert near.x[20] == pytest.approx(1.0)  # an odd count puts the truth on the path
    assert near.values[20] == pytest.approx(near.truth_value, abs=1e-12)
    # the same function as on the whole path, where both have a point
    inside = (full.x > 1 / 3) & (full.x < 3)
    assert np.allclose(
        np.interp(full.x[inside], near.x, near.values),
        full.values[inside],
        rtol=0,
        atol=2e-3 * np.ptp(near.values),
    )
    # strictly proper: the minimum of the zoomed curve is the truth
    assert int(np.argmin(near.values)) == 20
    assert near.optimum_x == pytest.approx(1.0) and near.optimum_at_edge is None


def test_a_window_around_a_density_truth_marks_an_optimum_outside_it():
    # a verdict as check_density reports it for linear (improper: the scale runs to 0), built
    # by hand so that only the profile is computed
    verdict = DensityVerdict(
        objective="linear",
        setting="density",
        verdict="improper",
        claimed="improper",
        truth="normal:loc=2,scale=0.5",
        family="normal",
        truth_params={"loc": 2.0, "scale": 0.5},
        optimum={"loc": 2.0, "scale": 0.01},
        value=-20.0,
        at_truth=-1 / math.sqrt(math.pi),
        gap=1.0,
        distance=4.0,
        how="",
        reason="",
    )
    near = score_profile(verdict, 21, window=2.0)
    assert near.x[0] == pytest.approx(0.25) and near.x[-1] == pytest.approx(1.0)
    assert near.truth_x == pytest.approx(0.5)
    assert near.optimum_at_edge == "left" and near.optimum_x is None
    # E_P[-q(Y)] for normal P, Q: minus the N(0, s_P^2 + s_Q^2) density at mu_P - mu_Q
    exact = -1 / np.sqrt(2 * np.pi * (0.25 + near.x**2))
    assert np.allclose(near.values, exact, rtol=1e-6)


@pytest.mark.parametrize("window", [1.0, 0.5, -2.0, float("inf"), float("nan")])
def test_a_window_must_be_a_finite_factor_above_one(spherical_on_4, window):
    with pytest.raises(ParameterError, match="window must be a finite number > 1"):
        score_profile(spherical_on_4, window=window)
