"""``likelab.estimate.fit`` against closed forms, scipy.stats' own fits and independent optimisers.

Oracles: the closed-form normal and Poisson MLEs; ``scipy.stats.<dist>.fit`` (its own optimiser)
with the mean NLL recomputed from ``scipy.stats.<dist>.logpdf``; a numpy density power divergence
criterion minimised by ``scipy.optimize.minimize``; a dense grid from
``likelab.landscape.evaluate`` (itself tested against scipy.stats.norm.pdf). Every dataset is
seeded; many datasets are fitted in one batched call.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from likelab.estimate import FitResult, fit
from likelab.estimate.newton import CONVERGED as NEWTON_CONVERGED
from likelab.families import get_family, parse_dgp
from likelab.landscape import evaluate

# Converged reasons of the API; anything else means "not converged".
CONVERGED = set(NEWTON_CONVERGED)


# --------------------------------------------------------------------------- normal: closed form
def test_normal_log_fit_is_the_closed_form_mle_for_many_datasets():
    y = np.random.default_rng(0).normal(3.0, 2.0, size=(100, 50))
    res = fit(y, "normal")
    assert isinstance(res, FitResult)
    assert (res.family, res.objective, res.free, res.n) == ("normal", "log", ("loc", "scale"), 50)
    assert res.converged.shape == (100,) and res.converged.all()
    assert set(res.reason) <= CONVERGED
    mean, sd = y.mean(axis=1), y.std(axis=1, ddof=0)  # the normal MLE
    # Newton converges quadratically: the last accepted step leaves errors ~ (previous error)^2,
    # far below 1e-10; loc ~ 3 and sd ~ 2 here, so relative tolerances are meaningful.
    np.testing.assert_allclose(res.params["loc"], mean, rtol=1e-10, atol=0)
    np.testing.assert_allclose(res.params["scale"], sd, rtol=1e-10, atol=0)
    # value = mean NLL at the MLE = log(2 pi sd^2)/2 + 1/2 (float64 rounding only)
    np.testing.assert_allclose(res.value, 0.5 * np.log(2 * np.pi * sd**2) + 0.5, rtol=1e-12)


def test_normal_log_fit_of_one_dataset_gives_plain_python_scalars():
    y = np.random.default_rng(1).normal(-1.5, 0.5, size=40)
    res = fit(y, "normal")
    np.testing.assert_allclose(res.params["loc"], y.mean(), rtol=1e-10, atol=0)
    np.testing.assert_allclose(res.params["scale"], y.std(ddof=0), rtol=1e-10, atol=0)
    assert res.n == 40
    # The contract, as scipy.optimize's: plain Python scalars for one 1-D dataset.
    types = {
        **{f"params[{k}]": type(v) for k, v in res.params.items()},
        **{f"se[{k}]": type(v) for k, v in res.se.items()},
        "value": type(res.value),
        "converged": type(res.converged),
        "n_iter": type(res.n_iter),
        "reason": type(res.reason),
        "se_reason": type(res.se_reason),
    }
    assert types == {
        "params[loc]": float,
        "params[scale]": float,
        "se[loc]": float,
        "se[scale]": float,
        "value": float,
        "converged": bool,
        "n_iter": int,
        "reason": str,
        "se_reason": str,
    }
    assert res.converged is True and res.reason in CONVERGED and res.se_reason == ""
    assert res.R == 1 and res.to_dict()["params"]["loc"] == res.params["loc"]


@pytest.mark.parametrize(
    ("family", "draw"),
    [
        ("gamma", lambda rng: rng.gamma(2.0, 1.5, size=60)),
        ("poisson", lambda rng: rng.poisson(3.0, size=60)),
        ("uniform", lambda rng: rng.uniform(-1.0, 2.0, size=60)),  # the exact solver's path
        ("laplace", lambda rng: rng.laplace(0.5, 1.0, size=61)),  # the kinked sandwich's path
    ],
)
def test_every_path_gives_scalars_for_one_dataset_and_arrays_for_a_batch(family, draw):
    y = draw(np.random.default_rng(11))
    one, batch = fit(y, family), fit(np.stack([y, y[::-1]]), family)
    for name in one.free:
        assert type(one.params[name]) is float and type(one.se[name]) is float
        assert isinstance(batch.params[name], np.ndarray) and batch.params[name].shape == (2,)
        assert isinstance(batch.se[name], np.ndarray) and batch.se[name].shape == (2,)
        assert one.params[name] == pytest.approx(float(batch.params[name][0]), rel=1e-9)
    assert type(one.value) is float and type(one.converged) is bool
    assert type(one.n_iter) is int and type(one.reason) is str and type(one.se_reason) is str
    for field in ("value", "converged", "n_iter", "reason", "se_reason"):
        assert isinstance(getattr(batch, field), np.ndarray), field
        assert getattr(batch, field).shape == (2,), field
    assert batch.reason.dtype == object and batch.converged.dtype == bool


def test_one_dataset_equals_the_same_dataset_as_a_batch_of_one():
    y = np.random.default_rng(2).normal(size=30)
    a, b = fit(y, "normal"), fit(y[None, :], "normal")
    for k in a.free:
        assert b.params[k].shape == (1,)
        assert float(a.params[k]) == float(b.params[k][0])
        assert float(a.se[k]) == float(b.se[k][0])
    assert float(a.value) == float(b.value[0])


# --------------------------------------------------------------------------- scipy.stats' fits
def _scipy_case(name: str):
    """(data sampler, scipy fit -> natural params, mean NLL from scipy logpdf/logpmf)."""
    if name == "student_t":
        return (
            lambda rng, size: 1.0 + 2.0 * rng.standard_t(4.0, size),
            lambda y: dict(zip(("df", "loc", "scale"), stats.t.fit(y), strict=True)),
            lambda y, p: -stats.t.logpdf(y, p["df"], p["loc"], p["scale"]).mean(-1),
        )
    if name == "gamma":

        def gamma_fit(y):
            a, loc, scale = stats.gamma.fit(y, floc=0)
            assert loc == 0
            return {"concentration": a, "rate": 1.0 / scale}

        return (
            lambda rng, size: rng.gamma(2.5, 1.0 / 1.5, size),
            gamma_fit,
            lambda y, p: -stats.gamma.logpdf(y, p["concentration"], scale=1 / p["rate"]).mean(-1),
        )
    if name in ("logistic", "laplace", "cauchy"):
        dist = getattr(stats, name)
        draw = {
            "logistic": lambda rng, size: rng.logistic(1.0, 2.0, size),
            "laplace": lambda rng, size: rng.laplace(-1.0, 0.5, size),
            "cauchy": lambda rng, size: 0.5 + 3.0 * rng.standard_cauchy(size),
        }[name]
        return (
            draw,
            lambda y: dict(zip(("loc", "scale"), dist.fit(y), strict=True)),
            lambda y, p: -dist.logpdf(y, p["loc"], p["scale"]).mean(-1),
        )
    if name == "poisson":
        # The Poisson MLE is the sample mean exactly. scipy has no Poisson .fit; the generic
        # scipy.stats.fit runs differential_evolution, a stochastic global search whose optimum
        # is only approximate, so the closed form is the sharper oracle.
        return (
            lambda rng, size: rng.poisson(3.5, size).astype(np.float64),
            lambda y: {"rate": y.mean()},
            lambda y, p: -stats.poisson.logpmf(y, p["rate"]).mean(-1),
        )
    raise AssertionError(name)


# (family, n, R): n = 101 for laplace makes the median (its loc MLE) unique.
SCIPY_CASES = [
    ("student_t", 200, 30),
    ("gamma", 80, 30),
    ("logistic", 100, 30),
    ("laplace", 101, 30),
    ("cauchy", 150, 30),
    ("poisson", 60, 30),
]


@pytest.mark.parametrize(("name", "n", "r"), SCIPY_CASES)
def test_log_fit_is_no_worse_than_scipy_fit(name, n, r):
    draw, scipy_fit, mean_nll = _scipy_case(name)
    rng = np.random.default_rng(1)
    y = draw(rng, (r, n))
    res = fit(y, name)
    assert res.free == get_family(name).free
    assert res.converged.all(), list(res.reason)
    # result.value is the mean NLL at the returned params: recomputed with scipy's logpdf it
    # agrees to float64 rounding of a mean of n terms (observed max 6e-16 relative).
    ours = mean_nll(y, {k: v[:, None] for k, v in res.params.items()})
    np.testing.assert_allclose(res.value, ours, rtol=1e-12, atol=0)
    # scipy's fits, dataset by dataset (scipy has no batched fit).
    theirs_params = [scipy_fit(row) for row in y]
    theirs = np.array([mean_nll(row, p) for row, p in zip(y, theirs_params, strict=True)])
    # No worse than scipy up to 1e-8 relative (a mean NLL is O(1) here; the bound is written
    # with |.| because a mean NLL may be negative). Observed with seed 1, likelab strictly better
    # (by more than 1e-12 relative): student_t 24/30 (by up to 3e-11), cauchy 30/30 (up to
    # 3e-11): scipy's Nelder-Mead stops early; gamma, logistic, laplace, poisson 0/30: scipy
    # solves the score equations (gamma with floc=0, logistic) or uses the closed form (laplace:
    # median and mean absolute deviation; poisson: mean), and both agree to rounding.
    assert np.all(res.value <= theirs + 1e-8 * np.abs(theirs)), np.max(res.value - theirs)
    if name in ("gamma", "logistic", "laplace", "poisson"):
        # Exact-equation oracles: the parameters agree too. likelab stops at a gradient
        # <= 1e-9 (1 + |value|) in unconstrained coordinates, which leaves parameter errors up to
        # ~1e-8 relative where the Hessian is ill-conditioned (gamma: smallest eigenvalue ~0.3
        # in (log a, log b)); scipy's root finders are tighter. Hence 1e-7 relative.
        for k in res.free:
            expected = np.array([p[k] for p in theirs_params])
            np.testing.assert_allclose(res.params[k], expected, rtol=1e-7, atol=0)


def _crude_start(name: str, y: np.ndarray) -> dict[str, np.ndarray]:
    """A start that is NOT the family's own start: moment-type values, off from the MLE."""
    if name == "student_t":
        return {"df": np.full(len(y), 20.0), "loc": y.mean(1), "scale": y.std(1)}
    if name == "gamma":
        return {"concentration": np.ones(len(y)), "rate": 1.0 / y.mean(1)}
    if name == "poisson":
        return {"rate": np.ones(len(y))}
    med = np.median(y, axis=1)
    return {"loc": med + 0.5 * np.std(y, axis=1).clip(max=5), "scale": np.full(len(y), 1.0)}


_LAPLACE_FROM_CRUDE_START = pytest.param(
    "laplace",
    101,
    30,
    marks=pytest.mark.xfail(
        strict=True,
        reason="known limitation (issue 3 note): the Laplace location is a kinked, piecewise "
        "linear objective; the shared Newton step length is then set by the kinks and the scale "
        "stalls. The default start (median, mean absolute deviation) is the exact MLE.",
    ),
)
CRUDE_START_CASES = [c if c[0] != "laplace" else _LAPLACE_FROM_CRUDE_START for c in SCIPY_CASES]


@pytest.mark.parametrize(("name", "n", "r"), CRUDE_START_CASES)
def test_log_fit_from_a_crude_start_reaches_the_same_optimum(name, n, r):
    # The default start of laplace and poisson is already their exact MLE, so the test above
    # does not exercise the optimiser for them: start elsewhere.
    draw, _, _ = _scipy_case(name)
    y = draw(np.random.default_rng(1), (r, n))
    best = fit(y, name)
    res = fit(y, name, start=_crude_start(name, y))
    assert res.converged.all(), list(res.reason)
    np.testing.assert_allclose(res.value, best.value, rtol=1e-9, atol=0)


def test_laplace_location_alone_converges_at_its_kink():
    # With the scale fixed the Laplace NLL is piecewise linear in loc, minimised at the median
    # (n odd: unique). Hessian 0 away from the data; the minimum is a kink.
    y = np.random.default_rng(4).laplace(-1.0, 0.5, size=(20, 101))
    med = np.median(y, axis=1)
    res = fit(y, "laplace", fixed={"scale": 0.5}, start={"loc": y.mean(1)})
    expected = -stats.laplace.logpdf(y, med[:, None], 0.5).mean(1)
    np.testing.assert_allclose(res.value, expected, rtol=1e-10, atol=0)
    np.testing.assert_allclose(res.params["loc"], med, rtol=0, atol=1e-8)
    assert res.converged.all(), list(res.reason)


# --------------------------------------------------------------------------- fixed parameters
def _central_gradient(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences: error O(h^2 f''') ~ 1e-10 plus rounding eps |f| / h ~ 1e-11."""
    g = np.empty_like(x)
    for j in range(len(x)):
        e = np.zeros_like(x)
        e[j] = h
        g[j] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def test_student_t_with_df_fixed_fits_loc_and_scale_like_scipy_f0():
    y = 1.0 + 2.0 * np.random.default_rng(5).standard_t(3.0, size=(20, 100))
    res = fit(y, "student_t", fixed={"df": 3})
    assert res.free == ("loc", "scale")
    assert res.family == "student_t:df=3"
    assert set(res.params) >= {"loc", "scale"} and "df" not in res.free
    assert res.converged.all()
    same = fit(y, "student_t:df=3")
    for k in res.free:
        np.testing.assert_array_equal(same.params[k], res.params[k])
    for i, row in enumerate(y):
        df, loc, scale = stats.t.fit(row, f0=3)
        assert df == 3

        def nll(theta, row=row):
            return -stats.t.logpdf(row, 3.0, theta[0], theta[1]).mean()

        ours = np.array([res.params["loc"][i], res.params["scale"][i]])
        # result.value is the mean NLL at the returned params, scipy's logpdf, rounding only
        assert res.value[i] == pytest.approx(nll(ours), rel=1e-12, abs=0)
        # no worse than scipy (relative 1e-8, as above) ...
        assert nll(ours) <= nll(np.array([loc, scale])) * (1 + 1e-8)
        # ... and a stationary point of scipy's NLL (finite-difference error ~1e-10) ...
        assert np.abs(_central_gradient(nll, ours)).max() < 1e-7
        # ... close to scipy's own answer (Nelder-Mead's xtol is 1e-4)
        np.testing.assert_allclose(ours, [loc, scale], rtol=1e-3)


def test_normal_with_scale_fixed_fits_the_mean_like_scipy_fscale():
    y = np.random.default_rng(6).normal(1.0, 2.0, size=(25, 40))
    res = fit(y, "normal:scale=2")
    assert res.free == ("loc",) and res.family == "normal:scale=2"
    assert res.converged.all()
    scipy_loc = np.array([stats.norm.fit(row, fscale=2)[0] for row in y])
    np.testing.assert_allclose(res.params["loc"], scipy_loc, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.params["loc"], y.mean(1), rtol=1e-10, atol=1e-12)
    expected = -stats.norm.logpdf(y, y.mean(1)[:, None], 2.0).mean(1)
    np.testing.assert_allclose(res.value, expected, rtol=1e-12)
    if "scale" in res.params:  # a fixed parameter may be reported, at its fixed value
        np.testing.assert_array_equal(res.params["scale"], 2.0)


# --------------------------------------------------------------------------- dpd: robustness
BETA = 0.5


def _dpd_numpy(theta: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """DPD criterion of N(mu, sigma^2), theta = (mu, log sigma), with its analytic gradient.

    mean_i [ ∫φ^(1+β) - (1 + 1/β) φ(y_i)^β ],  ∫φ^(1+β) = (2πσ²)^(-β/2) / √(1+β)
    (Basu, Harris, Hjort & Jones 1998), written directly in numpy.
    """
    mu, sigma = theta[0], np.exp(theta[1])
    z = (y - mu) / sigma
    fb = (np.exp(-0.5 * z**2) / (sigma * np.sqrt(2 * np.pi))) ** BETA
    integral = (2 * np.pi * sigma**2) ** (-BETA / 2) / np.sqrt(1 + BETA)
    value = integral - (1 + 1 / BETA) * fb.mean()
    grad = np.array(
        [
            -(1 + BETA) * np.mean(fb * z) / sigma,
            -BETA * integral - (1 + BETA) * np.mean(fb * (z**2 - 1)),
        ]
    )
    return value, grad


def _dpd_oracle(y: np.ndarray) -> optimize.OptimizeResult:
    """Best BFGS minimum over three starts (median/MAD, mean/sd, the outliers' centre)."""
    starts = [
        (np.median(y), np.log(stats.median_abs_deviation(y, scale="normal"))),
        (y.mean(), np.log(y.std())),
        (8.0, 0.0),
    ]
    runs = [
        optimize.minimize(
            _dpd_numpy, x0, args=(y,), jac=True, method="BFGS", options={"gtol": 1e-10}
        )
        for x0 in starts
    ]
    return min(runs, key=lambda o: o.fun)


def test_dpd_fit_matches_a_numpy_minimisation_and_resists_contamination():
    dgp = parse_dgp("0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1")
    y = dgp.sample((8, 1000), seed=11)
    res = fit(y, "normal", f"dpd:beta={BETA}")
    assert res.objective == "dpd:beta=0.5"
    assert res.converged.all(), list(res.reason)
    for i, row in enumerate(y):
        oracle = _dpd_oracle(row)
        theta = np.array([res.params["loc"][i], np.log(res.params["scale"][i])])
        value, grad = _dpd_numpy(theta, row)
        # the same criterion at the same point: float64 rounding of a mean of 1000 terms
        assert res.value[i] == pytest.approx(value, rel=1e-12, abs=1e-15)
        # a stationary point of the numpy criterion: likelab stops once its gradient in the
        # same coordinates (mu, log sigma) is <= 1e-9 (1 + |value|) < 2e-9 (observed 1.7e-9)...
        assert np.abs(grad).max() < 1e-8
        # ... the same one as the oracle's (BFGS at gtol 1e-10: parameters to ~1e-9)
        np.testing.assert_allclose(
            [res.params["loc"][i], res.params["scale"][i]],
            [oracle.x[0], np.exp(oracle.x[1])],
            rtol=0,
            atol=1e-6,
        )
        assert value <= oracle.fun + 1e-12
    # Robustness: the 10% at 8 barely move the dpd location (observed |loc| <= 0.06) while the
    # log fit is the sample mean, pulled towards 0.1 * 8 = 0.8 (observed 0.70 .. 0.82; the mean
    # has sd 2.6 / sqrt(1000) = 0.08).
    log = fit(y, "normal")
    np.testing.assert_allclose(log.params["loc"], y.mean(1), rtol=1e-10)
    assert np.all(np.abs(res.params["loc"]) < 0.15)
    assert np.all((log.params["loc"] > 0.5) & (log.params["loc"] < 1.1))
    assert np.all(np.abs(log.params["loc"]) > np.abs(res.params["loc"]) + 0.4)


# --------------------------------------------------------------------------- multistart
GRID = np.linspace(-3.0, 3.0, 20_001)
STEP = GRID[1] - GRID[0]
SEEDS = range(20)


@pytest.fixture(scope="module")
def seed_problems():
    """The seed's sum of likelihoods: n = 10 draws from N(0, 1), model N(mu, 0.1^2)."""
    y = np.stack([get_family("normal").sample(10, seed=s, loc=0.0, scale=1.0) for s in SEEDS])
    grid_min = [
        evaluate(row, "normal:scale=0.1", ["linear"], {"loc": GRID}).results["linear"] for row in y
    ]
    return y, grid_min


def test_multistart_finds_the_global_minimum_of_the_sum_of_likelihoods(seed_problems):
    y, grid = seed_problems
    one = fit(y, "normal:scale=0.1", "linear")
    many = fit(y, "normal:scale=0.1", "linear", multistart=20, seed=0)
    assert one.converged.all() and many.converged.all()
    g_loc = np.array([g.argmin["loc"] for g in grid])
    g_val = np.array([g.min_value for g in grid])
    # The grid minimiser lies within one step of the true one; the true minimum is below the
    # grid's (minus a float64 rounding margin).
    hit_many = np.abs(many.params["loc"] - g_loc) <= STEP
    assert np.all(many.value[hit_many] <= g_val[hit_many] + 1e-12)
    # Observed: multistart=20 (seed=0, the 20 problems in one call) finds the global minimum
    # for 19 of the 20 (all but the problem of seed 10, whose 20 starts all miss it; with
    # seed=2 or 3, 20 of 20).
    assert hit_many.sum() >= 18, np.flatnonzero(~hit_many)
    # The first start is the default one, so the best of 20 is never worse than it.
    assert np.all(many.value <= one.value + 1e-15)

    # multistart=1 from the default start (the sample mean) ends in a local, non-global minimum
    # for 17 of the 20 seeds (all but 0, 1 and 19): the objective is multimodal, not the
    # optimiser broken. Each such end point is a genuine local minimum of -mean φ_0.1(y - mu):
    hit_one = np.abs(one.params["loc"] - g_loc) <= STEP
    assert (~hit_one).sum() >= 10
    for i in np.flatnonzero(~hit_one):
        mu = float(one.params["loc"][i])

        def risk(m, row=y[i]):
            return -stats.norm.pdf(row, m, 0.1).mean()

        h = 1e-5
        slope = (risk(mu + h) - risk(mu - h)) / (2 * h)
        curve = (risk(mu + h) - 2 * risk(mu) + risk(mu - h)) / h**2
        assert abs(slope) < 1e-7 and curve > 0
        assert one.value[i] > g_val[i] + 1e-3  # clearly worse than the global minimum


def test_multistart_is_reproducible_bit_for_bit():
    y = 1.0 + 2.0 * np.random.default_rng(7).standard_t(4.0, size=(25, 80))
    a = fit(y, "student_t", multistart=4, seed=3)
    b = fit(y, "student_t", multistart=4, seed=3)
    for k in a.free:
        np.testing.assert_array_equal(a.params[k], b.params[k])
        np.testing.assert_array_equal(a.se[k], b.se[k])
    np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(a.n_iter, b.n_iter)
    np.testing.assert_array_equal(a.reason, b.reason)
    assert a.to_dict() == b.to_dict()


def test_multistart_seed_changes_the_extra_starts():
    # Sum of likelihoods: different random starts end in different local minima somewhere.
    y = np.stack([get_family("normal").sample(10, seed=s, loc=0.0, scale=1.0) for s in SEEDS])
    a = fit(y, "normal:scale=0.1", "linear", multistart=2, seed=0)
    b = fit(y, "normal:scale=0.1", "linear", multistart=2, seed=1)
    assert not np.array_equal(a.params["loc"], b.params["loc"])


# --------------------------------------------------------------------------- batching
@pytest.mark.parametrize(
    ("family", "objective"),
    [("student_t", "log"), ("gamma", "log"), ("normal", "dpd:beta=0.5")],
)
def test_datasets_fitted_together_equal_each_fitted_alone(family, objective):
    rng = np.random.default_rng(8)
    if family == "gamma":
        y = rng.gamma(2.0, 1.0, size=(12, 60))
    else:
        y = 1.0 + 2.0 * rng.standard_t(4.0, size=(12, 60))
    together = fit(y, family, objective)
    alone = [fit(row, family, objective) for row in y]
    for k in together.free:
        np.testing.assert_allclose(
            together.params[k], [float(a.params[k]) for a in alone], rtol=1e-12, atol=0
        )
        np.testing.assert_allclose(
            together.se[k], [float(a.se[k]) for a in alone], rtol=1e-12, atol=0
        )
    np.testing.assert_allclose(together.value, [float(a.value) for a in alone], rtol=1e-12)
    np.testing.assert_array_equal(together.n_iter, [int(a.n_iter) for a in alone])
    np.testing.assert_array_equal(together.reason, [str(a.reason) for a in alone])


def test_torch_and_list_inputs_give_the_same_fit():
    y = np.random.default_rng(9).normal(size=(3, 30))
    ref = fit(y, "normal")
    for data in (torch.as_tensor(y), y.tolist(), torch.as_tensor(y, dtype=torch.float32)):
        res = fit(data, "normal")
        # float32 input is converted to float64 after rounding to float32: ~1e-7 relative
        tol = 1e-6 if isinstance(data, torch.Tensor) and data.dtype == torch.float32 else 0
        for k in ref.free:
            np.testing.assert_allclose(res.params[k], ref.params[k], rtol=tol, atol=0)


# --------------------------------------------------------------------------- to_dict
def test_to_dict_is_json_ready():
    y = np.random.default_rng(10).normal(size=(4, 20))
    y[2] = 0.0  # scale -> 0: no MLE, non-finite or huge entries must still serialise
    res = fit(y, "normal", max_iter=30)
    d = res.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert {
        "family",
        "objective",
        "n",
        "R",
        "free",
        "params",
        "se",
        "value",
        "converged",
        "n_iter",
        "reason",
    } <= set(back)
    assert back["R"] == 4 and back["n"] == 20 and back["free"] == ["loc", "scale"]
    assert back["params"]["loc"] == pytest.approx(res.params["loc"].tolist(), rel=1e-15)
    assert back["converged"] == res.converged.tolist()
    assert back["reason"] == list(res.reason)


def test_to_dict_of_one_dataset_is_json_ready():
    y = np.random.default_rng(10).normal(size=20)
    one = fit(y, "normal").to_dict()
    json.dumps(one, allow_nan=False)
    assert one["R"] == 1 and isinstance(one["params"]["loc"], float)
