"""Frozen scipy.stats distributions as forecasts: each mapped one has scipy's own density (the
oracle for the parametrisation), objectives take them, and the others are refused with a torch
equivalent that is itself checked against scipy."""

import math

import numpy as np
import pytest
import scipy.stats as st
import torch
from torch import distributions as D

from likelab import get_family, get_objective, score
from likelab.errors import LikelabError, ParameterError, UnsupportedError
from likelab.families.scipy_bridge import (
    SCIPY_FAMILIES,
    TORCH_EQUIVALENTS,
    from_scipy,
    is_scipy_frozen,
    to_distribution,
)

RNG = np.random.default_rng(11)

#: Every mapped scipy distribution with parameters away from the defaults (loc ≠ 0, scale ≠ 1),
#: by position and by keyword, and observations inside its support.
FROZEN = [
    (st.norm(-0.7, 2.3), RNG.normal(0, 3, 20)),
    (st.norm(loc=1.5, scale=0.4), RNG.normal(1, 1, 20)),
    (st.t(2.5, 0.3, 1.7), RNG.standard_t(2, 20)),
    (st.t(df=7.0, loc=-2.0), RNG.normal(-2, 1, 20)),
    (st.laplace(0.9, 0.6), RNG.laplace(0, 1, 20)),
    (st.logistic(-1.2, 1.9), RNG.logistic(0, 2, 20)),
    (st.cauchy(0.4, 0.3), RNG.standard_cauchy(20)),
    (st.uniform(-2.0, 5.0), RNG.uniform(-2, 3, 20)),
    (st.expon(scale=2.5), RNG.exponential(1, 20)),
    (st.gamma(3.2, scale=0.7), RNG.gamma(2, 1, 20)),
    (st.gamma(a=0.8, scale=4.0), RNG.gamma(1, 2, 20)),
    (st.poisson(4.4), RNG.poisson(4, 20).astype(float)),
    (st.bernoulli(0.27), RNG.integers(0, 2, 20).astype(float)),
]


def _logf(frozen, y):
    return frozen.logpmf(y) if hasattr(frozen, "logpmf") else frozen.logpdf(y)


def test_every_mapped_scipy_distribution_is_tested():
    assert {f.dist.name for f, _ in FROZEN} == set(SCIPY_FAMILIES)


@pytest.mark.parametrize(
    ("frozen", "y"), FROZEN, ids=lambda v: getattr(v, "dist", None) and v.dist.name
)
def test_the_mapped_distribution_has_scipys_density(frozen, y):
    dist = to_distribution(frozen)
    assert dist.mean.dtype == torch.float64
    # the same float64 log-density written two ways: a few ulps of log f (log-gamma terms for t
    # and gamma are the largest), inside rtol 1e-12
    got = dist.log_prob(torch.as_tensor(y)).numpy()
    np.testing.assert_allclose(got, _logf(frozen, y), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(("frozen", "y"), FROZEN[:1] + FROZEN[8:10] + FROZEN[11:12])
def test_objectives_take_the_frozen_distribution(frozen, y):
    fam = from_scipy(frozen)
    for spec in ("log", "crps", "dpd:beta=0.4"):
        obj = get_objective(spec)
        want = obj(fam.distribution(), torch.as_tensor(y))
        np.testing.assert_array_equal(obj(frozen, y).numpy(), want.numpy())
        np.testing.assert_array_equal(obj.loss(frozen, y).numpy(), want.numpy())
        assert float(obj.risk(frozen, y)) == pytest.approx(float(want.mean()), rel=1e-14)
        np.testing.assert_array_equal(score(spec, frozen, y), want.numpy())
    np.testing.assert_allclose(score("log", frozen, y), -_logf(frozen, y), rtol=1e-12)


def test_scale_becomes_a_rate_where_likelab_uses_rates():
    assert from_scipy(st.expon(scale=4.0)).spec == "exponential:rate=0.25"
    assert from_scipy(st.gamma(2.0, scale=0.5)).spec == "gamma:concentration=2,rate=2"
    assert from_scipy(st.uniform(1.0, 2.0)).spec == "uniform:low=1,high=3"
    assert from_scipy(st.poisson(3.0)).spec == "poisson:rate=3"
    # the CRPS with the converted rate is scoringrules' gamma CRPS at scale 0.5
    import scoringrules as sr

    y = np.array([0.2, 1.0, 2.5])
    np.testing.assert_allclose(
        score("crps", st.gamma(2.0, scale=0.5), y), sr.crps_gamma(y, 2.0, scale=0.5), rtol=1e-11
    )


def test_positional_and_keyword_parameters_agree_and_arrays_broadcast():
    y = np.array([-1.0, 0.0, 2.0])
    a = score("crps", st.t(3.0, 1.0, 2.0), y)
    np.testing.assert_array_equal(score("crps", st.t(df=3.0, loc=1.0, scale=2.0), y), a)
    np.testing.assert_array_equal(score("crps", st.t(3.0, scale=2.0, loc=1.0), y), a)
    frozen = st.norm(loc=np.array([0.0, 1.0, 2.0]), scale=2.0)
    np.testing.assert_allclose(score("log", frozen, y), -frozen.logpdf(y), rtol=1e-13)
    grid = score("log", st.norm(loc=np.array([[0.0], [1.0]]), scale=1.0), y)
    assert grid.shape == (2, 3)


# Each torch equivalent named in an error message, built as the message says, has scipy's
# density: the messages are checked, not only their presence.
EQUIVALENTS = {
    "lognorm": (st.lognorm(0.7, scale=2.0), lambda: D.LogNormal(math.log(2.0), 0.7), [0.5, 3.0]),
    "beta": (st.beta(2.0, 3.0), lambda: D.Beta(2.0, 3.0), [0.2, 0.7]),
    "chi2": (st.chi2(4.0), lambda: D.Chi2(4.0), [0.5, 6.0]),
    "gumbel_r": (st.gumbel_r(1.0, 2.0), lambda: D.Gumbel(1.0, 2.0), [-1.0, 4.0]),
    "halfnorm": (st.halfnorm(scale=2.0), lambda: D.HalfNormal(2.0), [0.3, 3.0]),
    "halfcauchy": (st.halfcauchy(scale=2.0), lambda: D.HalfCauchy(2.0), [0.3, 3.0]),
    "pareto": (st.pareto(3.0, scale=2.0), lambda: D.Pareto(2.0, 3.0), [2.5, 6.0]),
    "weibull_min": (st.weibull_min(1.5, scale=2.0), lambda: D.Weibull(2.0, 1.5), [0.5, 3.0]),
    "invgamma": (st.invgamma(3.0, scale=2.0), lambda: D.InverseGamma(3.0, 2.0), [0.5, 3.0]),
    "f": (st.f(5.0, 7.0), lambda: D.FisherSnedecor(5.0, 7.0), [0.5, 2.0]),
    "vonmises": (st.vonmises(2.0, loc=0.5), lambda: D.VonMises(0.5, 2.0), [0.0, 1.5]),
    "genpareto": (
        st.genpareto(0.3, loc=1.0, scale=2.0),
        lambda: D.GeneralizedPareto(1.0, 2.0, 0.3),
        [1.5, 4.0],
    ),
    "binom": (st.binom(10, 0.3), lambda: D.Binomial(10, probs=torch.tensor(0.3)), [2.0, 5.0]),
    "nbinom": (
        st.nbinom(5, 0.3),
        lambda: D.NegativeBinomial(5, probs=torch.tensor(0.7)),
        [4.0, 12.0],
    ),
}


@pytest.mark.parametrize("name", list(EQUIVALENTS))
def test_an_unmapped_distribution_names_a_torch_equivalent_that_is_right(name):
    frozen, build, ys = EQUIVALENTS[name]
    torch_name = TORCH_EQUIVALENTS[name].split("(")[0]
    with pytest.raises(
        UnsupportedError, match=rf"has no likelab family; its torch equivalent is {torch_name}"
    ):
        score("log", frozen, ys)
    with pytest.raises(UnsupportedError, match=torch_name):
        get_objective("log")(frozen, ys)
    dist = build()
    got = dist.log_prob(torch.as_tensor(ys, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(got, _logf(frozen, np.asarray(ys)), rtol=1e-5)  # float32 torch


def test_geometric_equivalent_is_shifted_by_one():
    assert "y - 1" in TORCH_EQUIVALENTS["geom"]
    ys = np.array([1.0, 2.0, 5.0])
    got = D.Geometric(probs=torch.tensor(0.3, dtype=torch.float64)).log_prob(
        torch.as_tensor(ys - 1)
    )
    np.testing.assert_allclose(got.numpy(), st.geom(0.3).logpmf(ys), rtol=1e-12)


def test_every_named_equivalent_is_checked():
    assert set(EQUIVALENTS) | {"geom"} == set(TORCH_EQUIVALENTS)


def test_no_torch_equivalent_is_said_too():
    with pytest.raises(UnsupportedError, match=r"rayleigh\(\) has no likelab family, and torch"):
        score("log", st.rayleigh(), [1.0])
    with pytest.raises(UnsupportedError, match="scipy distributions likelab maps: norm, t"):
        from_scipy(st.rayleigh(scale=2.0))


@pytest.mark.parametrize(
    ("frozen", "error", "match"),
    [
        (st.expon(loc=1.0, scale=2.0), UnsupportedError, "shifted by loc"),
        (st.gamma(2.0, loc=-1.0), UnsupportedError, "shifted by loc"),
        (st.poisson(2.0, loc=3), UnsupportedError, "shifted by loc"),
        (st.norm(0.0, -1.0), ParameterError, r"norm\(0, -1\): scale must be > 0"),
        (st.norm(np.nan, 1.0), ParameterError, "'loc' must be finite"),
        (st.t(-2.0), ParameterError, "as likelab student_t: .*'df' must be > 0"),
        (st.bernoulli(1.5), ParameterError, "'probs' must lie in \\[0, 1\\]"),
        (st.norm([0.0, 1.0], [1.0, 2.0, 3.0]), ParameterError, "do not broadcast"),
    ],
)
def test_invalid_or_shifted_distributions_are_refused(frozen, error, match):
    with pytest.raises(error, match=match):
        from_scipy(frozen)
    with pytest.raises(error, match=match):
        get_objective("log")(frozen, [1.0])


def test_what_is_and_is_not_a_frozen_scipy_distribution():
    assert is_scipy_frozen(st.norm(0, 1)) and is_scipy_frozen(st.poisson(1.0))
    assert not is_scipy_frozen(st.norm)  # the unfrozen distribution
    assert not is_scipy_frozen(st.multivariate_normal([0.0, 0.0]))
    assert not is_scipy_frozen(get_family("normal").distribution(loc=0.0, scale=1.0))
    with pytest.raises(LikelabError, match=r"frozen scipy\.stats distribution"):
        from_scipy(st.norm)
    with pytest.raises(LikelabError, match=r"must be a torch\.distributions\.Distribution"):
        get_objective("log")(st.multivariate_normal([0.0, 0.0]), [[0.0, 0.0]])
