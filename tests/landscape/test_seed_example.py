"""The seed's figure: sum of likelihoods vs product vs log-product for N(mu, 0.1²), n = 10."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from likelab.errors import ParameterError
from likelab.families import get_family
from likelab.landscape import seed_example

GRID = np.linspace(-3.0, 3.0, 10_000)
STEP = GRID[1] - GRID[0]


@pytest.fixture(scope="module")
def land64():
    return seed_example(0)


@pytest.fixture(scope="module")
def land32():
    return seed_example(0, dtype=torch.float32)


def _strict_minima_count(v: np.ndarray) -> int:
    """Independent count for arrays without ties: interior points below both neighbours, plus
    end points below their one neighbour."""
    interior = (v[1:-1] < v[:-2]) & (v[1:-1] < v[2:])
    return int(interior.sum()) + int(v[0] < v[1]) + int(v[-1] < v[-2])


def test_setup_matches_the_seed(land64):
    assert land64.family == "normal:scale=0.1" and land64.n == 10
    np.testing.assert_array_equal(land64.axes["loc"], GRID)
    assert list(land64.results) == ["linear", "product", "log"]


def test_sum_of_likelihoods_is_multimodal(land64):
    y = get_family("normal").sample(10, seed=0, loc=0.0, scale=1.0)
    lin = land64.results["linear"]
    # oracle: minus the mean of scipy's normal densities, same grid (no ties in float64 here)
    ref = -stats.norm.pdf(y[None, :], GRID[:, None], 0.1).mean(axis=1)
    np.testing.assert_allclose(lin.values, ref, rtol=1e-12, atol=1e-300)
    assert lin.flat_fraction == 0.0
    # seed 0: 6 local minima (one per cluster of the 10 draws)
    assert lin.local_minima == _strict_minima_count(ref) == 6


def test_sum_has_at_least_four_minima_for_seeds_0_to_19():
    # Computed honestly over seeds 0..19 (counts 6 4 6 8 5 8 7 5 7 6 6 5 6 7 8 7 6 7 7 4):
    # the bound "5" would be false for seeds 1 and 19; 4 holds for all twenty.
    counts = [
        seed_example(s, objectives=("linear",)).results["linear"].local_minima for s in range(20)
    ]
    assert min(counts) == 4 and all(c >= 4 for c in counts)


def test_product_and_log_have_one_minimum_at_the_same_place(land64):
    prod, log = land64.results["product"], land64.results["log"]
    assert prod.local_minima == 1 and log.local_minima == 1
    assert abs(prod.argmin["loc"] - log.argmin["loc"]) <= STEP
    # the log-product's minimiser is the sample mean (to within half a grid step)
    y = get_family("normal").sample(10, seed=0, loc=0.0, scale=1.0)
    assert abs(log.argmin["loc"] - y.mean()) <= STEP / 2


def test_float64_product_is_exactly_zero_far_from_the_data(land64):
    y = get_family("normal").sample(10, seed=0, loc=0.0, scale=1.0)
    prod = land64.results["product"]
    log_prod = stats.norm.logpdf(y[None, :], GRID[:, None], 0.1).sum(axis=1)
    # below half the smallest subnormal (-1075 ln 2, margin 1) the product is 0 exactly ...
    underflow = log_prod < -1075 * np.log(2.0) - 1
    assert (prod.values[underflow] == 0).all()
    # ... and where it is a normal float64 (margin 1) it is not
    assert (prod.values[log_prod > np.log(np.finfo(np.float64).tiny) + 1] < 0).all()
    # seed 0: 67.2% of the grid is an exactly flat plateau (zero gradient)
    assert 0.6 < prod.flat_fraction < 0.75
    assert prod.flat_fraction >= underflow.mean()


def test_float32_product_is_zero_everywhere(land64, land32):
    # In float32 the seed's product never leaves 0: its largest value is ~5e-114, far below the
    # smallest float32 subnormal (1.4e-45). The whole grid is ONE flat "minimum" with zero
    # gradient: there is nothing to optimise. The log-product is unaffected.
    prod = land32.results["product"]
    assert land32.dtype == "float32"
    assert (prod.values == 0).all()
    assert prod.flat_fraction == 1.0
    assert prod.local_minima == 1 and prod.minima[0].size == GRID.size
    assert land64.results["product"].min_value > -1e-100  # the true value: ~ -5.03e-114
    log32, log64 = land32.results["log"], land64.results["log"]
    assert log32.local_minima == 1
    assert abs(log32.argmin["loc"] - log64.argmin["loc"]) <= STEP
    # the sum keeps its 6 minima in float32; its tails underflow to exact zeros (flat)
    assert land32.results["linear"].local_minima == 6
    assert land32.results["linear"].flat_fraction > 0.0


def test_some_seeds_underflow_even_in_float64():
    # For 4 of the seeds 0..19 (3, 13, 14, 18) the draws are spread so widely that even the
    # float64 product is 0 at every grid point: the seed's unimodal picture depends on the draw.
    prod = seed_example(3, objectives=("product", "log")).results
    assert (prod["product"].values == 0).all() and prod["product"].flat_fraction == 1.0
    assert prod["log"].local_minima == 1


def test_points_validated():
    with pytest.raises(ParameterError):
        seed_example(0, points=2)
    small = seed_example(1, points=101)
    assert small.results["linear"].values.shape == (101,)
