"""evaluate(): risks against direct scipy/numpy computations, minima, flatness, errors, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats

from likelab.errors import (
    DataError,
    ParameterError,
    UnknownNameError,
    UnsupportedError,
    UserContractError,
)
from likelab.families import get_family
from likelab.landscape import Landscape, evaluate

# Tolerance for float64 risks against scipy: both sides evaluate the same closed-form log-density
# by different formulas; with n <= 40 terms, the accumulated relative rounding is < 40 * 2.2e-16
# and the log-density itself is computed to a few ulps, so rtol = 1e-12 leaves margin and would
# catch any algebraic error (which shows at 1e-3 or worse).
RTOL = 1e-12


@pytest.fixture(scope="module")
def normal_data() -> np.ndarray:
    return np.random.default_rng(11).normal(0.4, 1.3, size=25)


def test_normal_1d_log_linear_product_against_scipy(normal_data):
    y = normal_data
    locs = np.linspace(-1.0, 2.0, 31)
    land = evaluate(y, "normal:scale=1.3", ["log", "linear", "product"], {"loc": locs})
    assert isinstance(land, Landscape)
    assert land.params == ("loc",) and land.n == y.size and land.dtype == "float64"
    assert land.family == "normal:scale=1.3"
    assert list(land.results) == ["log", "linear", "product"]
    for j in (0, 7, 15, 30):
        logpdf = stats.norm.logpdf(y, loc=locs[j], scale=1.3)
        np.testing.assert_allclose(land.results["log"].values[j], -logpdf.mean(), rtol=RTOL)
        np.testing.assert_allclose(
            land.results["linear"].values[j], -np.exp(logpdf).mean(), rtol=RTOL
        )
        np.testing.assert_allclose(
            land.results["product"].values[j], -np.prod(np.exp(logpdf)), rtol=RTOL
        )


def test_alias_is_keyed_by_canonical_spec(normal_data):
    land = evaluate(normal_data, "normal:scale=1", ["sum"], {"loc": np.linspace(-1, 1, 5)})
    assert list(land.results) == ["linear"]


def test_hyperparameterised_objective_and_other_families():
    # lq:q=0.5 on a Poisson rate grid: (1 - f^(1-q)) / (1 - q) with f the scipy pmf
    y = np.array([0, 1, 1, 2, 3, 3, 4, 7], dtype=float)
    rates = np.linspace(0.5, 6.0, 12)
    land = evaluate(y, "poisson", ["lq:q=0.5", "log"], {"rate": rates})
    for j in (0, 5, 11):
        f = stats.poisson.pmf(y, rates[j])
        np.testing.assert_allclose(
            land.results["lq:q=0.5"].values[j], ((1 - f**0.5) / 0.5).mean(), rtol=RTOL
        )
        np.testing.assert_allclose(
            land.results["log"].values[j], -stats.poisson.logpmf(y, rates[j]).mean(), rtol=RTOL
        )


def test_gamma_2d_grid_against_scipy():
    y = np.random.default_rng(3).gamma(2.0, 1 / 1.5, size=30)
    conc = np.linspace(0.8, 4.0, 9)
    rate = np.linspace(0.5, 3.0, 7)
    land = evaluate(y, "gamma", ["log"], {"rate": rate, "concentration": conc})
    # axes follow the family's canonical parameter order, not the mapping's order
    assert land.params == ("concentration", "rate")
    assert land.results["log"].values.shape == (9, 7)
    for i, j in [(0, 0), (4, 3), (8, 6), (2, 5)]:
        expected = -stats.gamma.logpdf(y, a=conc[i], scale=1 / rate[j]).mean()
        np.testing.assert_allclose(land.results["log"].values[i, j], expected, rtol=RTOL)


def test_2d_normal_log_argmin_is_grid_point_nearest_mle():
    y = np.random.default_rng(5).normal(1.0, 2.0, size=40)
    mean, sd = y.mean(), y.std(ddof=0)
    # MLE placed 0.3 of a step from a grid point on each axis (0.7 from the other neighbour), so
    # "nearest grid point" is unambiguous despite the asymmetry of the risk in the scale.
    h_loc, h_scale = 0.05, 0.04
    locs = mean + h_loc * (np.arange(-30, 31) + 0.3)
    scales = sd + h_scale * (np.arange(-20, 21) + 0.3)
    land = evaluate(y, "normal", ["log"], {"loc": locs, "scale": scales})
    r = land.results["log"]
    assert r.local_minima == 1
    assert r.argmin["loc"] == locs[np.argmin(np.abs(locs - mean))]
    assert r.argmin["scale"] == scales[np.argmin(np.abs(scales - sd))]
    assert r.minima[0].on_boundary is False and r.minima[0].size == 1
    expected = -stats.norm.logpdf(y, r.argmin["loc"], r.argmin["scale"]).mean()
    np.testing.assert_allclose(r.min_value, expected, rtol=RTOL)


def test_linear_sum_is_multimodal_product_and_log_are_not():
    # two well separated clusters and a small scale: the sum of likelihoods has a minimum per
    # cluster; the product and the log-product have one (the normal density is log-concave).
    y = np.array([-2.0, -1.9, -2.1, 2.0, 2.1])
    locs = np.linspace(-4, 4, 801)
    land = evaluate(y, "normal:scale=0.2", ["linear", "product", "log"], {"loc": locs})
    assert land.results["linear"].local_minima == 2
    assert land.results["log"].local_minima == 1
    assert land.results["product"].local_minima == 1
    # the global minimum of the sum sits at the larger cluster; the log at the mean
    assert abs(land.results["linear"].argmin["loc"] - (-2.0)) < 0.02
    assert land.results["log"].argmin["loc"] == locs[np.argmin(np.abs(locs - y.mean()))]


def test_chunking_does_not_change_values(normal_data):
    grid = {"loc": np.linspace(-1, 1, 13)}
    full = evaluate(normal_data, "normal:scale=1", ["log", "product"], grid)
    tiny = evaluate(normal_data, "normal:scale=1", ["log", "product"], grid, max_elements=30)
    for spec in ("log", "product"):
        np.testing.assert_array_equal(full.results[spec].values, tiny.results[spec].values)


def test_float32_is_computed_in_float32(normal_data):
    grid = {"loc": np.linspace(-1, 1, 9)}
    land = evaluate(normal_data, "normal:scale=1", ["log"], grid, dtype=torch.float32)
    assert land.dtype == "float32"
    vals = land.results["log"].values
    # every value is a float32 number, and agrees with float64 to float32 precision
    np.testing.assert_array_equal(vals, vals.astype(np.float32).astype(np.float64))
    ref = evaluate(normal_data, "normal:scale=1", ["log"], grid).results["log"].values
    np.testing.assert_allclose(vals, ref, rtol=1e-6)


def test_float32_product_underflows_where_float64_does_not():
    # 200 observations: the product of densities ~0.3 each is ~1e-105: a float64 number,
    # zero in float32 (below the smallest subnormal 1.4e-45).
    y = np.random.default_rng(2).normal(size=200)
    grid = {"loc": np.linspace(-0.5, 0.5, 21)}
    p64 = evaluate(y, "normal:scale=1", ["product"], grid).results["product"]
    p32 = evaluate(y, "normal:scale=1", ["product"], grid, dtype=torch.float32)
    p32 = p32.results["product"]
    assert (p64.values < 0).all() and p64.flat_fraction == 0.0 and p64.local_minima == 1
    assert (p32.values == 0).all() and p32.flat_fraction == 1.0
    assert p32.local_minima == 1 and p32.minima[0].size == 21  # one flat "minimum": everything


def test_nonfinite_values_and_json():
    # uniform(0, high): observations above `high` have density 0, log loss +inf
    y = np.array([0.1, 0.5, 0.93])  # no grid value equals max(y): torch.Uniform is [low, high)
    highs = np.linspace(0.5, 2.0, 16)
    land = evaluate(y, "uniform:low=0", ["log", "linear", "product"], {"high": highs})
    log = land.results["log"]
    inf = highs < 0.93
    assert np.isposinf(log.values[inf]).all() and np.isfinite(log.values[~inf]).all()
    np.testing.assert_allclose(log.nonfinite_fraction, inf.mean(), rtol=0, atol=0)
    np.testing.assert_allclose(log.values[~inf], np.log(highs[~inf]), rtol=RTOL)
    assert log.argmin == {"high": highs[~inf][0]} and log.local_minima == 1
    d = land.to_dict()
    text = json.dumps(d, allow_nan=False)  # raises on NaN / inf
    assert list(d) == ["family", "n", "dtype", "params", "grid", "objectives", "failures"]
    assert d["failures"] == []
    obj = json.loads(text)["objectives"]["log"]
    assert obj["values"][0] is None and obj["values"][-1] == pytest.approx(np.log(2.0))
    for key in (
        "values",
        "local_minima",
        "argmin",
        "min_value",
        "minima",
        "flat_fraction",
        "nonfinite_fraction",
    ):
        assert key in obj
    assert obj["local_minima"] == 1 and obj["minima"][0]["on_boundary"] is False


def test_boundary_minimum_is_flagged(normal_data):
    land = evaluate(normal_data, "normal:scale=1", ["log"], {"loc": np.linspace(3, 4, 11)})
    m = land.results["log"].minima
    assert len(m) == 1 and m[0].on_boundary and m[0].index == (0,)


def test_flat_fraction_counts_exact_ties():
    # a product that underflows on part of the grid: far from the data it is 0 exactly, in
    # float64 as well.
    y = np.array([0.0, 0.05])
    locs = np.linspace(-60, 60, 121)
    land = evaluate(y, "normal:scale=0.1", ["product"], {"loc": locs})
    r = land.results["product"]
    # independent: the product is exactly 0 where a density underflows, i.e. where
    # log f(y) < log(smallest subnormal / 2) = -1075 log 2 for some y (margin of 1 in the log)
    logf = stats.norm.logpdf(y[None, :], locs[:, None], 0.1)
    zero = (logf < -1075 * np.log(2.0) - 1).any(axis=1)
    assert zero.mean() > 0.9
    assert (r.values[zero] == 0).all()
    flat = np.zeros(locs.size, dtype=bool)
    eq = r.values[1:] == r.values[:-1]
    flat[1:] |= eq
    flat[:-1] |= eq
    assert r.flat_fraction == flat.mean() and r.flat_fraction > 0.9


# ---------------------------------------------------------------------- errors
def test_missing_free_parameter(normal_data):
    with pytest.raises(ParameterError, match="parameter 'scale' is neither on the grid nor fixed"):
        evaluate(normal_data, "normal", ["log"], {"loc": [0.0, 1.0]})


def test_unknown_grid_name(normal_data):
    with pytest.raises(UnknownNameError, match="'rate'"):
        evaluate(normal_data, "normal:scale=1", ["log"], {"rate": [1.0, 2.0]})


def test_fixed_parameter_on_grid(normal_data):
    with pytest.raises(ParameterError, match="held fixed"):
        evaluate(normal_data, "normal:scale=1", ["log"], {"loc": [0.0], "scale": [1.0, 2.0]})


def test_out_of_domain_grid_values(normal_data):
    with pytest.raises(ParameterError, match="scale"):
        evaluate(normal_data, "normal:loc=0", ["log"], {"scale": [-1.0, 0.0, 1.0]})


@pytest.mark.parametrize(
    "grid",
    [
        {},
        {"loc": [0.0, 1.0], "scale": [1.0], "df": [3.0]},
        {"loc": [1.0, 0.0]},
        {"loc": [0.0, 0.0, 1.0]},
        {"loc": [[0.0, 1.0]]},
        {"loc": []},
        {"loc": [0.0, np.nan]},
    ],
)
def test_bad_grids(grid, normal_data):
    with pytest.raises(ParameterError):
        evaluate(normal_data, "student_t:scale=1", ["log"], grid)


def test_bad_data():
    grid = {"loc": [0.0, 1.0]}
    with pytest.raises(DataError):
        evaluate([0.0, np.nan], "normal:scale=1", ["log"], grid)
    with pytest.raises(DataError):
        evaluate([], "normal:scale=1", ["log"], grid)
    with pytest.raises(DataError):
        evaluate(np.zeros((2, 2)), "normal:scale=1", ["log"], grid)
    with pytest.raises(DataError):
        evaluate([1.5], "poisson", ["log"], {"rate": [1.0, 2.0]})


def test_bad_objectives_and_options(normal_data):
    grid = {"loc": [0.0, 1.0]}
    with pytest.raises(UnknownNameError):
        evaluate(normal_data, "normal:scale=1", ["no_such_objective"], grid)
    with pytest.raises(ParameterError, match="twice"):
        evaluate(normal_data, "normal:scale=1", ["log", "nll"], grid)
    with pytest.raises(ParameterError):
        evaluate(normal_data, "normal:scale=1", [], grid)
    with pytest.raises(ParameterError):
        evaluate(normal_data, "normal:scale=1", ["log"], grid, max_elements=0)
    with pytest.raises(ParameterError):
        evaluate(normal_data, "normal:scale=1", ["log"], grid, dtype=torch.int64)
    with pytest.raises(UnknownNameError):
        evaluate(normal_data, "no_such_family", ["log"], grid)


def test_simplex_parameter_cannot_be_an_axis():
    with pytest.raises(UnsupportedError):
        evaluate([0, 1], "categorical", ["log"], {"probs": [0.2, 0.8]})


def test_family_object_and_single_objective(normal_data):
    fam = get_family("normal", scale=1.0)
    land = evaluate(normal_data, fam, "log", {"loc": np.linspace(-1, 1, 5)})
    assert land.family == "normal:scale=1" and list(land.results) == ["log"]


def test_user_callable_objective(normal_data):
    def half_nll(dist, y):
        """-log f(y) / 2"""
        return -dist.log_prob(y) / 2

    grid = {"loc": np.linspace(-1, 1, 7)}
    land = evaluate(normal_data, "normal:scale=1", [half_nll, "log"], grid)
    (spec,) = [s for s in land.results if s != "log"]
    np.testing.assert_allclose(
        land.results[spec].values, land.results["log"].values / 2, rtol=1e-15
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(normal_data):
    grid = {"loc": np.linspace(-1, 1, 9), "scale": np.linspace(0.5, 2, 5)}
    specs = ["log", "linear", "product"]
    cpu = evaluate(normal_data, "normal", specs, grid)
    gpu = evaluate(normal_data, "normal", specs, grid, device="cuda")
    for s in specs:
        # same float64 formulas, different libm: a few ulps
        np.testing.assert_allclose(gpu.results[s].values, cpu.results[s].values, rtol=1e-13)
        assert gpu.results[s].argmin == cpu.results[s].argmin


def test_memory_is_estimated_before_allocating(normal_data, monkeypatch):
    from likelab.landscape import evaluation_cost

    monkeypatch.setenv("LIKELAB_MEMORY_LIMIT", "100MB")
    # 2000 x 2000 points x 2 objectives x (8 + 56) bytes + the mesh: 0.64 GB > 100 MB
    nbytes, seconds = evaluation_cost((2000, 2000), 40, 2)
    assert 5.1e8 < nbytes < 1e9 and seconds > 0
    grid = {"loc": np.linspace(-1, 1, 2000), "scale": np.linspace(0.5, 2, 2000)}
    with pytest.raises(ParameterError, match=r"2000 x 2000 grid needs about .* \(limit 100 MB"):
        evaluate(normal_data, "normal", ["log", "linear"], grid)
    # the estimate grows with the grid, the objectives and the item size
    assert evaluation_cost((10, 10), 5, 1)[0] < evaluation_cost((100, 10), 5, 1)[0]
    assert evaluation_cost((100,), 5, 1)[0] < evaluation_cost((100,), 5, 3)[0]
    f32 = evaluation_cost((100,), 5, 1, dtype=torch.float32)[0]
    assert f32 < evaluation_cost((100,), 5, 1)[0]


def test_progress_callback_counts_every_grid_point_once(normal_data):
    calls = []
    grid = {"loc": np.linspace(-1, 1, 50), "scale": np.linspace(0.5, 2, 40)}
    land = evaluate(
        normal_data,
        "normal",
        ["log"],
        grid,
        max_elements=len(normal_data) * 300,
        on_progress=lambda done, total: calls.append((done, total)),
    )
    assert [t for _, t in calls] == [2000] * len(calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == 2000 and len(done) == 7  # ceil(2000 / 300)
    assert land.results["log"].values.shape == (50, 40)


def test_negative_seed_is_a_parameter_error():
    from likelab.landscape import seed_example

    with pytest.raises(ParameterError, match="seed must be a non-negative integer"):
        seed_example(seed=-1, points=3)


def test_an_objective_that_fails_is_kept_with_its_reason_and_the_others_run():
    y = np.random.default_rng(3).poisson(4.0, 30)
    rates = np.linspace(1.0, 8.0, 15)

    def raises(dist, y):  # fine on likelab's small probe, raises on the data
        if y.numel() > 20:
            raise OverflowError("too big")
        return -dist.log_prob(y)

    def mean_only(dist, y):  # one number instead of one loss per observation, on the data
        losses = -dist.log_prob(y)
        return losses.mean() if y.numel() > 20 else losses

    seen = []
    land = evaluate(
        y, "poisson", ["hyvarinen", raises, "log", mean_only], {"rate": rates},
        max_elements=60, on_progress=lambda d, t: seen.append(d),
    )  # fmt: skip
    assert list(land.results) == ["log"] and len(land.failures) == 3
    assert (
        next(iter(land.failures)) == "hyvarinen" and "differentiable" in land.failures["hyvarinen"]
    )
    reasons = list(land.failures.values())
    assert "OverflowError" in reasons[1] and "too big" in reasons[1]
    assert "one loss per observation" in reasons[2] or "shape" in reasons[2]
    expected = -stats.poisson.logpmf(y[None, :], rates[:, None]).mean(-1)
    np.testing.assert_allclose(land.results["log"].values, expected, rtol=RTOL)
    assert seen[-1] == len(rates)  # every chunk still ran, for log
    d = json.loads(json.dumps(land.to_dict(), allow_nan=False))
    assert list(d["objectives"]) == ["log"]
    assert [f["objective"] for f in d["failures"]] == list(land.failures)
    assert all(set(f) == {"objective", "error"} for f in d["failures"])
    ok = evaluate(y, "poisson", ["log"], {"rate": rates})
    assert ok.failures == {} and ok.to_dict()["failures"] == []


def test_a_user_objective_broken_whatever_the_data_raises():
    def always(dist, y):
        raise OverflowError("too big")

    with pytest.raises(UserContractError, match="OverflowError"):
        evaluate([1, 2, 3], "poisson", ["log", always], {"rate": [1.0, 2.0]})


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_flat_minimum_computed_with_rounding_is_one_minimum(dtype):
    # The Laplace log risk, mean |y_i - mu| / b + log 2b, is exactly constant between the two
    # middle order statistics of an even sample; summed in floating point its values there
    # differ by rounding noise, which the exact plateau rule alone read as several minima
    # (6 for this sample in float64). Minima shallower than rounding error are merged.
    from likelab.landscape import find_local_minima

    y = get_family("laplace").sample(10, seed=10, loc=0.0, scale=1.0)
    land = evaluate(y, "laplace:scale=1", ["log"], {"loc": np.linspace(-5, 5, 1001)}, dtype=dtype)
    r = land.results["log"]
    assert r.local_minima == 1
    lo, hi = np.sort(y)[4:6]
    assert lo - 0.01 <= r.argmin["loc"] <= hi + 0.01  # a median
    if dtype == torch.float64:
        assert len(find_local_minima(r.values)) > 1  # the raw rule's reading
    # genuine minima are kept: linear on the seed's narrow scale
    lin = evaluate(y, "laplace:scale=0.1", ["linear"], {"loc": np.linspace(-5, 5, 1001)})
    kept = lin.results["linear"].local_minima
    assert kept > 1 and kept == len(find_local_minima(lin.results["linear"].values))
