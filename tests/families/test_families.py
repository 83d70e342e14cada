"""Every family: densities against scipy.stats, the unconstrained map, sampling, starting values,
bad input, dtype.

Parametrisation conventions checked against scipy: exponential ``rate`` = 1/scale, gamma
``(concentration, rate)`` = ``scipy.stats.gamma(a, scale=1/rate)``, student_t ``(df, loc, scale)``
= ``scipy.stats.t(df, loc, scale)``, uniform ``(low, high)`` = ``scipy.stats.uniform(low,
high - low)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from likelab.errors import DataError, LikelabError, ParameterError, UnknownNameError
from likelab.families import get_family, list_families

F64 = torch.float64
P4 = [0.1, 0.2, 0.3, 0.4]

# name -> (parameters, scipy frozen distribution)
CASES = {
    "normal": ({"loc": 0.3, "scale": 1.7}, stats.norm(0.3, 1.7)),
    "student_t": ({"df": 4.5, "loc": -1.0, "scale": 0.5}, stats.t(4.5, -1.0, 0.5)),
    "laplace": ({"loc": 1.0, "scale": 2.0}, stats.laplace(1.0, 2.0)),
    "logistic": ({"loc": 1.0, "scale": 2.0}, stats.logistic(1.0, 2.0)),
    "cauchy": ({"loc": 1.0, "scale": 2.0}, stats.cauchy(1.0, 2.0)),
    "uniform": ({"low": -1.0, "high": 3.0}, stats.uniform(-1.0, 4.0)),
    "exponential": ({"rate": 2.5}, stats.expon(scale=0.4)),
    "gamma": ({"concentration": 0.7, "rate": 2.0}, stats.gamma(0.7, scale=0.5)),
    "poisson": ({"rate": 3.2}, stats.poisson(3.2)),
    "bernoulli": ({"probs": 0.3}, stats.bernoulli(0.3)),
    "categorical": ({"probs": P4}, stats.rv_discrete(values=(np.arange(4), P4))),
}
CONTINUOUS = [n for n in CASES if not get_family(n).discrete]
DISCRETE = [n for n in CASES if get_family(n).discrete]


def test_every_registered_family_is_tested():
    assert set(CASES) == set(list_families())


# ---------------------------------------------------------------------- densities
@pytest.mark.parametrize("name", CONTINUOUS)
def test_density_matches_scipy_pdf(name):
    params, frozen = CASES[name]
    y = frozen.ppf([1e-3, 0.05, 0.3, 0.5, 0.7, 0.95, 0.999])
    dist = get_family(name).distribution(**params)
    lp = dist.log_prob(torch.as_tensor(y, dtype=F64))
    # same closed-form log density in float64 (lgamma, log1p...): agreement to ~1e-14; 1e-12
    # leaves room for lgamma implementations without hiding any parametrisation error
    np.testing.assert_allclose(lp.exp().numpy(), frozen.pdf(y), rtol=1e-12)
    np.testing.assert_allclose(lp.numpy(), frozen.logpdf(y), rtol=1e-12, atol=1e-12)


def test_uniform_density_is_zero_outside():
    dist = get_family("uniform").distribution(low=-1.0, high=3.0)
    assert dist.log_prob(torch.tensor([-1.5, 3.5], dtype=F64)).exp().tolist() == [0.0, 0.0]


@pytest.mark.parametrize("name", DISCRETE)
def test_probability_matches_scipy_pmf(name):
    params, frozen = CASES[name]
    y = np.arange(0, 16 if name == "poisson" else (2 if name == "bernoulli" else 4))
    dist = get_family(name).distribution(**params)
    p = dist.log_prob(torch.as_tensor(y, dtype=F64)).exp()
    np.testing.assert_allclose(p.numpy(), frozen.pmf(y), rtol=1e-12)


# ---------------------------------------------------------------------- unconstrained map
BATCHED = {
    "normal": {"loc": [-1.0, 0.0, 2.5], "scale": [0.1, 1.0, 7.0]},
    "student_t": {"df": [0.7, 3.0, 40.0], "loc": [-1.0, 0.0, 2.5], "scale": [0.1, 1.0, 7.0]},
    "laplace": {"loc": [-1.0, 0.0, 2.5], "scale": [0.1, 1.0, 7.0]},
    "logistic": {"loc": [-1.0, 0.0, 2.5], "scale": [0.1, 1.0, 7.0]},
    "cauchy": {"loc": [-1.0, 0.0, 2.5], "scale": [0.1, 1.0, 7.0]},
    "uniform": {"low": [-1.0, 0.0, 2.5], "high": [0.0, 1e-3, 9.0]},
    "exponential": {"rate": [0.01, 1.0, 50.0]},
    "gamma": {"concentration": [0.2, 1.0, 30.0], "rate": [0.1, 1.0, 7.0]},
    "poisson": {"rate": [0.01, 1.0, 50.0]},
    "bernoulli": {"probs": [0.01, 0.5, 0.97]},
    "categorical": {"probs": [P4, [0.25] * 4, [0.97, 0.01, 0.01, 0.01]]},
}
FIXED = [
    ("normal:scale=0.1", {"loc": [-1.0, 0.0, 2.5]}),
    ("student_t:df=3", {"loc": [-1.0, 0.0, 2.5], "scale": [0.1, 1.0, 7.0]}),
    ("student_t:df=3,scale=2", {"loc": [-1.0, 0.0, 2.5]}),
    ("gamma:rate=2", {"concentration": [0.2, 1.0, 30.0]}),
    ("uniform:low=0", {"high": [1e-3, 1.0, 9.0]}),
    ("uniform:high=1", {"low": [-5.0, 0.0, 0.999]}),
    ("categorical:num_classes=4", {"probs": [P4, [0.25] * 4, [0.97, 0.01, 0.01, 0.01]]}),
]
ROUND_TRIPS = [(n, p) for n, p in BATCHED.items()] + FIXED


@pytest.mark.parametrize("spec, params", ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS])
def test_unconstrained_round_trip(spec, params):
    fam = get_family(spec)
    values = {k: torch.tensor(v, dtype=F64) for k, v in params.items()}
    u = fam.to_unconstrained(values)
    # plain "categorical" learns K from the probabilities: K - 1 = 3 logits
    n_free = 3 if spec == "categorical" else fam.n_free
    assert u.shape == (3, n_free) and u.dtype == F64
    assert torch.isfinite(u).all()
    back = fam.to_natural(u)
    assert set(back) == set(fam.free)
    for k, v in values.items():
        # exp/log, sigmoid/logit, softmax/log in float64: ~1e-15 relative
        torch.testing.assert_close(back[k], v, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(fam.to_unconstrained(back), u, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec", [*BATCHED, *[f[0] for f in FIXED]])
def test_any_unconstrained_vector_gives_valid_parameters(spec):
    fam = get_family(spec)
    n_free = fam.n_free if fam.name != "categorical" else 3
    u = torch.randn(5, n_free, dtype=F64, generator=torch.Generator().manual_seed(0)) * 3
    natural = fam.to_natural(u)
    dist = fam.distribution(**natural)  # validates every parameter and joint constraints
    assert dist.batch_shape == (5,)


def test_single_parameter_round_trip_is_scalar_per_batch_element():
    fam = get_family("exponential")
    u = fam.to_unconstrained({"rate": 2.0})
    assert u.shape == (1,) and u.item() == pytest.approx(math.log(2.0), rel=1e-15)
    assert fam.to_natural(u)["rate"].item() == pytest.approx(2.0, rel=1e-15)


# ---------------------------------------------------------------------- sampling
@pytest.mark.parametrize("name", list(CASES))
def test_sampling_is_reproducible_bit_for_bit(name):
    params, _ = CASES[name]
    fam = get_family(name)
    a = fam.sample(500, seed=7, **params)
    b = fam.sample(500, seed=7, **params)
    assert a.dtype == np.float64 and a.shape == (500,)
    assert a.tobytes() == b.tobytes()
    c = fam.sample(500, seed=np.random.default_rng(7), **params)
    assert c.tobytes() == a.tobytes()  # an int seed is default_rng(seed)
    assert not np.array_equal(a, fam.sample(500, seed=8, **params))
    assert fam.sample((2, 3), seed=1, **params).shape == (2, 3)


N_MOMENTS = 20_000


@pytest.mark.parametrize("name", [n for n in CASES if n != "cauchy"])
def test_sample_moments_match_the_distribution(name):
    params, frozen = CASES[name]
    x = get_family(name).sample(N_MOMENTS, seed=11, **params)
    mean, var, _, kurt = (float(v) for v in frozen.stats(moments="mvsk"))
    # the sample mean is within 6 standard errors sqrt(var / n) (CLT; a correct sampler fails
    # with probability 2e-9, and the seed is fixed)
    assert abs(x.mean() - mean) < 6 * math.sqrt(var / N_MOMENTS)
    # the sample variance: standard error sqrt((mu4 - sigma^4) / n), mu4 = (kurt + 3) sigma^4
    se_var = math.sqrt((kurt + 2) * var**2 / N_MOMENTS)
    assert abs(x.var() - var) < 6 * se_var


def test_cauchy_sample_median_and_quartiles():
    params, frozen = CASES["cauchy"]
    x = get_family("cauchy").sample(N_MOMENTS, seed=11, **params)
    for q in (0.25, 0.5, 0.75):
        # SE of a sample quantile: sqrt(q (1 - q) / n) / f(x_q)
        x_q = frozen.ppf(q)
        se = math.sqrt(q * (1 - q) / N_MOMENTS) / frozen.pdf(x_q)
        assert abs(np.quantile(x, q) - x_q) < 6 * se


@pytest.mark.parametrize("name", CONTINUOUS)
def test_kolmogorov_smirnov(name):
    params, frozen = CASES[name]
    x = get_family(name).sample(5000, seed=3, **params)
    # deterministic (fixed seed); a correct sampler gives p < 1e-3 for 0.1% of seeds
    assert stats.kstest(x, frozen.cdf).pvalue > 1e-3


@pytest.mark.parametrize("name", DISCRETE)
def test_discrete_frequencies_chi_square(name):
    params, frozen = CASES[name]
    x = get_family(name).sample(5000, seed=3, **params)
    assert np.all(x == np.round(x)) and np.all(x >= 0)
    top = 9 if name == "poisson" else int(x.max())
    observed = np.array([np.sum(x == v) for v in range(top)] + [np.sum(x >= top)])
    probs = np.array([frozen.pmf(v) for v in range(top)] + [frozen.sf(top - 1)])
    assert np.all(probs * 5000 >= 5)  # the chi-square approximation's usual condition
    assert stats.chisquare(observed, probs * 5000).pvalue > 1e-3


# ---------------------------------------------------------------------- starting values
# Consistent moment/quantile estimators at n = 20000. Scale-type parameters: the largest relative
# standard error among these cases is ~2.1% (the categorical's smallest class; gamma's moment
# estimates ~1.7%), so 6 standard errors is 0.13. Locations (possibly near 0) get an absolute
# tolerance of 6 standard errors of their estimator: the mean (normal, sd/sqrt(n)) or the median
# (1 / (2 f(median) sqrt(n)): laplace b, logistic 2s, cauchy pi*gamma/2, all over sqrt(n)).
START_RTOL = 0.13
LOC_SE = {"normal": 1.7, "laplace": 2.0, "logistic": 2 * 2.0, "cauchy": math.pi * 2.0 / 2}


@pytest.mark.parametrize("name", [n for n in CASES if n != "student_t"])
def test_start_is_finite_valid_and_consistent(name):
    params, _ = CASES[name]
    fam = get_family(name)
    y = fam.sample(N_MOMENTS, seed=5, **params)
    est = fam.start(y)
    assert set(est) == set(fam.free)
    for value in est.values():
        assert torch.isfinite(value).all()
    fam.distribution(**est)  # inside the domain (raises otherwise)
    for k, v in est.items():
        truth = torch.as_tensor(params[k], dtype=F64)
        if name == "uniform":  # min/max padded by one spacing: error ~2 spacings (width / n)
            torch.testing.assert_close(v, truth, rtol=0, atol=10 * 4.0 / N_MOMENTS)
        elif k == "loc":
            se = LOC_SE[name] / math.sqrt(N_MOMENTS)
            torch.testing.assert_close(v, truth, rtol=0, atol=6 * se)
        else:
            torch.testing.assert_close(v, truth, rtol=START_RTOL, atol=0)


# The Student-t start inverts the tail ratio (q.975 - q.025) / IQR of t(df) for df. Its relative
# standard error at n = 20,000, over 200 samples: 1.5% at df = 1, 4.9% at df = 4.5 (scale ~1.2%,
# median ~0.004 at scale 0.5): tolerances of 6 standard errors.
@pytest.mark.parametrize(("df", "df_rtol"), [(1.0, 0.09), (4.5, 0.30)])
def test_student_t_start_is_consistent(df, df_rtol):
    fam = get_family("student_t")
    est = fam.start(fam.sample(N_MOMENTS, seed=5, df=df, loc=-1.0, scale=0.5))
    assert abs(est["df"].item() / df - 1) < df_rtol
    assert abs(est["loc"].item() + 1.0) < 6 * 0.0045
    assert abs(est["scale"].item() / 0.5 - 1) < 6 * 0.012
    fam.distribution(**est)


def test_student_t_start_below_40_observations_and_for_ties_keeps_df_5():
    """With fewer than one observation beyond each tail quantile the tail ratio is noise, and
    with an IQR of 0 it is undefined: df = 5 there, and a valid scale."""
    fam = get_family("student_t")
    small = fam.start(fam.sample((3, 39), seed=1, df=1.0, loc=0.0, scale=1.0))
    assert torch.equal(small["df"], torch.full((3,), 5.0, dtype=F64))
    ties = fam.start([0.0] * 30 + [1.0, -2.0] * 10)  # 50 observations, IQR 0
    assert ties["df"].item() == 5.0 and ties["scale"].item() > 0
    fam.distribution(**ties)


def test_quantiles_from_one_sort_are_torchs():
    from likelab.families.continuous import _quantiles

    rng = np.random.default_rng(4)
    for shape in [(1,), (2,), (3, 7), (5, 100), (2, 3, 41)]:
        y = torch.as_tensor(rng.standard_t(2.0, shape))
        probs = (0.025, 0.25, 0.5, 0.75, 0.975)
        want = torch.quantile(y, torch.tensor(probs, dtype=F64), dim=-1)
        for got, q in zip(_quantiles(y, probs), want, strict=True):
            assert torch.equal(got, q)


@pytest.mark.parametrize("name", list(CASES))
def test_start_is_batched_over_leading_axes(name):
    params, _ = CASES[name]
    fam = get_family(name)
    y = np.stack([fam.sample(300, seed=s, **params) for s in (1, 2)])
    est = fam.start(y)
    for k, v in est.items():
        assert v.shape[0] == 2, k
    fam.distribution(**est)


def test_start_handles_degenerate_samples():
    assert 0 < get_family("bernoulli").start([0.0, 0.0, 0.0])["probs"].item() < 1
    assert get_family("poisson").start([0.0, 0.0])["rate"].item() > 0
    assert get_family("normal").start([1.0, 1.0, 1.0])["scale"].item() > 0
    probs = get_family("categorical:num_classes=3").start([0.0, 0.0])["probs"]
    assert (probs > 0).all() and probs.shape == (3,)


# ---------------------------------------------------------------------- bad input
BAD_DATA = [
    ("normal", [0.0, 1.0, float("nan")], r"observation 2 is nan"),
    ("normal", [0.0, float("inf")], r"observation 1 is inf"),
    ("normal", [], r"empty"),
    ("exponential", [1.0, -0.5], r"observation 1 = -0.5 .*outside the support .*y >= 0"),
    ("gamma", [1.0, 0.0], r"observation 1 = 0 .*outside the support"),
    ("poisson", [1.0, 1.5], r"observation 1 = 1.5 .*outside the support"),
    ("bernoulli", [0.0, 2.0], r"observation 1 = 2 .*outside the support"),
    ("categorical:num_classes=3", [0.0, 3.0], r"observation 1 = 3 .*outside the support"),
    ("categorical:num_classes=3", [-1.0], r"observation 0 = -1 .*outside the support"),
]


@pytest.mark.parametrize("spec, data, match", BAD_DATA)
def test_bad_data_raises_data_error(spec, data, match):
    fam = get_family(spec)
    with pytest.raises(DataError, match=match):
        fam.check_data(data)
    with pytest.raises(DataError):
        fam.start(data)


def test_nan_in_a_batch_names_the_index():
    y = np.zeros((2, 3))
    y[1, 2] = np.nan
    with pytest.raises(DataError, match=r"observation \(1, 2\)"):
        get_family("normal").check_data(y)


BAD_SPECS = [
    (
        lambda: get_family("gaussian"),
        UnknownNameError,
        r"unknown family 'gaussian'; known families: normal, student_t, .*categorical",
    ),
    (
        lambda: get_family("normal:shape=1"),
        UnknownNameError,
        r"no parameter 'shape'; its parameters are: loc, scale",
    ),
    (lambda: get_family("normal:scale=-1"), ParameterError, r"'scale' must be > 0, got -1"),
    (lambda: get_family("normal:loc=abc"), ParameterError, r"'loc' must be a number"),
    (lambda: get_family("bernoulli:probs=2"), ParameterError, r"'probs' must lie in \[0, 1\]"),
    (lambda: get_family("uniform:low=2,high=1"), ParameterError, r"low < high"),
    (lambda: get_family("categorical", probs=[0.5, 0.6]), ParameterError, r"sum to 1"),
    (lambda: get_family("categorical", probs=[0.5, -0.5, 1.0]), ParameterError, r"non-negative"),
    (lambda: get_family("categorical:num_classes=1"), ParameterError, r"integer >= 2"),
    (
        lambda: get_family("normal:scale=1").distribution(loc=0.0, scale=2.0),
        ParameterError,
        r"'scale' of 'normal' is held fixed at 1.*do not pass it again",
    ),
    (
        lambda: get_family("normal").distribution(loc=0.0),
        ParameterError,
        r"needs values for its free parameters: scale",
    ),
    (
        lambda: get_family("normal").distribution(loc=0.0, scale=1.0, shape=2.0),
        UnknownNameError,
        r"no parameter 'shape'",
    ),
    (
        lambda: get_family("gamma").distribution(concentration=1.0, rate=0.0),
        ParameterError,
        r"'rate' must be > 0",
    ),
    (
        lambda: get_family("normal").distribution(loc=float("nan"), scale=1.0),
        ParameterError,
        r"must be finite",
    ),
    (
        lambda: get_family("uniform:low=0").to_unconstrained({"high": -1.0}),
        ParameterError,
        r"low < high",
    ),
    (
        lambda: get_family("normal").to_unconstrained({"loc": 0.0}),
        ParameterError,
        r"missing free parameter 'scale'",
    ),
    (
        lambda: get_family("normal").sample(3, seed=0, loc=0.0),
        ParameterError,
        r"needs values for: scale",
    ),
    (
        lambda: get_family("normal").sample(-1, seed=0, loc=0.0, scale=1.0),
        ParameterError,
        r"non-negative",
    ),
]


@pytest.mark.parametrize("call, error, match", BAD_SPECS)
def test_bad_specs_and_parameters_raise_informative_likelab_errors(call, error, match):
    with pytest.raises(error, match=match) as info:
        call()
    assert isinstance(info.value, LikelabError)


# ---------------------------------------------------------------------- dtype and specs
def test_dtype_follows_the_input():
    fam = get_family("normal:scale=0.1")
    dist = fam.distribution(loc=torch.tensor([0.0, 1.0], dtype=torch.float32))
    assert dist.loc.dtype == torch.float32 and dist.scale.dtype == torch.float32
    assert dist.log_prob(torch.tensor(0.5)).dtype == torch.float32
    d64 = fam.distribution(loc=0.0)
    assert d64.loc.dtype == F64 and d64.scale.dtype == F64
    g = get_family("gamma").distribution(concentration=torch.tensor(2.0), rate=torch.tensor(1.0))
    assert g.concentration.dtype == torch.float32
    u = get_family("normal").to_unconstrained(
        {"loc": torch.tensor(0.0), "scale": torch.tensor(2.0)}
    )
    assert u.dtype == torch.float32


@pytest.mark.parametrize(
    "spec",
    [
        "normal",
        "normal:scale=0.1",
        "student_t:df=3",
        "uniform:low=0,high=2",
        "categorical:num_classes=3",
    ],
)
def test_spec_round_trip(spec):
    fam = get_family(spec)
    assert fam.spec == spec
    assert get_family(fam.spec).free == fam.free


def test_check_data_accepts_finite_data_whose_sum_overflows_and_names_the_first_bad_one():
    fam = get_family("normal")
    assert fam.check_data([1e308, 1e308, -1e308]).shape == (3,)
    with pytest.raises(DataError, match="observation 3 is nan"):
        fam.check_data([1e308, 1e308, 0.0, float("nan"), float("inf")])
    with pytest.raises(DataError, match="observation 1 is -inf"):
        get_family("gamma").check_data([1.0, -float("inf"), 2.0])


def test_the_student_t_quantile_table_is_scipys():
    from likelab.families.continuous import _DF_START, _T75_DEFAULT, _T_QUANTILES

    nu, t75, t975 = np.asarray(_T_QUANTILES).T
    np.testing.assert_allclose(t75, stats.t.ppf(0.75, nu), rtol=1e-10)
    np.testing.assert_allclose(t975, stats.t.ppf(0.975, nu), rtol=1e-10)
    assert nu[0] == _DF_START[0] and nu[-1] == _DF_START[1] and np.all(np.diff(nu) > 0)
    assert abs(_T75_DEFAULT / stats.t.ppf(0.75, _DF_START[2]) - 1) < 1e-10
