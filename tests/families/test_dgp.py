"""Data-generating processes: reproducible sampling with a documented stream, the true
distribution, spec strings, and the errors of ``parse_dgp`` / ``split_sample_size``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from likelab.errors import LikelabError, ParameterError, SpecError, UnknownNameError
from likelab.families import (
    Contaminated,
    FamilyDGP,
    Mixture,
    MixtureDGP,
    contaminated,
    get_family,
    parse_dgp,
    split_sample_size,
)

F64 = torch.float64
MIX = "0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1"


def test_family_dgp_from_spec_and_from_params():
    a = parse_dgp("normal:loc=0,scale=2")
    b = FamilyDGP("normal", {"loc": 0.0, "scale": 2.0})
    c = FamilyDGP(get_family("normal:loc=0"), {"scale": 2.0})
    assert isinstance(a, FamilyDGP)
    assert a.spec == b.spec == c.spec == "normal:loc=0,scale=2"
    assert a.sample(50, seed=3).tobytes() == b.sample(50, seed=3).tobytes()
    assert parse_dgp("1 normal:loc=0,scale=2").spec == a.spec  # weight 1 is allowed
    assert repr(a) == "FamilyDGP('normal:loc=0,scale=2')"


def test_family_dgp_sample_is_the_family_sampler_bit_for_bit():
    dgp = parse_dgp("gamma:concentration=0.7,rate=2")
    x = dgp.sample(1000, seed=42)
    assert x.dtype == np.float64 and x.shape == (1000,)
    assert x.tobytes() == dgp.sample(1000, seed=42).tobytes()
    assert x.tobytes() == np.random.default_rng(42).gamma(0.7, 0.5, 1000).tobytes()
    assert not np.array_equal(x, dgp.sample(1000, seed=43))
    assert dgp.sample((3, 4), seed=0).shape == (3, 4)


def test_family_dgp_distribution_is_float64_truth():
    dist = parse_dgp("student_t:df=3,loc=1,scale=2").distribution()
    assert isinstance(dist, torch.distributions.StudentT)
    assert dist.batch_shape == ()
    y = torch.tensor([-1.0, 0.5, 4.0], dtype=F64)
    lp = dist.log_prob(y)
    assert lp.dtype == F64
    np.testing.assert_allclose(lp.numpy(), stats.t(3, 1, 2).logpdf(y.numpy()), rtol=1e-13)
    pois = parse_dgp("poisson:rate=3").distribution()
    assert parse_dgp("poisson:rate=3").discrete
    np.testing.assert_allclose(
        pois.log_prob(torch.tensor([0.0, 4.0], dtype=F64)).numpy(),
        stats.poisson(3).logpmf([0, 4]),
        rtol=1e-13,
    )


def test_categorical_dgp_built_in_python():
    dgp = FamilyDGP(get_family("categorical", probs=[0.2, 0.3, 0.5]))
    x = dgp.sample(6000, seed=0)
    assert set(np.unique(x)) == {0.0, 1.0, 2.0}
    # class frequencies within 6 binomial standard errors
    for c, p in enumerate([0.2, 0.3, 0.5]):
        assert abs(np.mean(x == c) - p) < 6 * math.sqrt(p * (1 - p) / 6000)


def test_mixture_stream_consumption_is_as_documented():
    dgp = parse_dgp(
        "0.2 normal:loc=0,scale=1 + 0.5 laplace:loc=3,scale=1 + 0.3 cauchy:loc=-5,scale=0.5"
    )
    assert isinstance(dgp, MixtureDGP)
    x = dgp.sample(2000, seed=17)
    # documented order: u = rng.random(size); then each component sampled in full, in order
    rng = np.random.default_rng(17)
    u = rng.random(2000)
    draws = [
        get_family("normal").sample(2000, seed=rng, loc=0.0, scale=1.0),
        get_family("laplace").sample(2000, seed=rng, loc=3.0, scale=1.0),
        get_family("cauchy").sample(2000, seed=rng, loc=-5.0, scale=0.5),
    ]
    index = np.where(u < 0.2, 0, np.where(u < 0.7, 1, 2))
    want = np.choose(index, draws)
    assert x.tobytes() == want.tobytes()


def test_contamination_is_coupled_across_eps():
    base, out = "normal:loc=0,scale=1", "normal:loc=8,scale=1"
    xs = {eps: contaminated(base, out, eps).sample(3000, seed=5) for eps in (0.0, 0.05, 0.2, 1.0)}
    clean = parse_dgp(base)
    is_out = {eps: np.abs(x - xs[0.0]) > 0 for eps, x in xs.items()}
    assert not is_out[0.0].any() and is_out[1.0].all()
    # nested outlier sets and identical remaining values
    assert np.all(is_out[0.05] <= is_out[0.2])
    for eps in (0.05, 0.2):
        np.testing.assert_array_equal(xs[eps][~is_out[eps]], xs[0.0][~is_out[eps]])
        # outlier fraction within 6 binomial standard errors of eps
        assert abs(is_out[eps].mean() - eps) < 6 * math.sqrt(eps * (1 - eps) / 3000)
    # eps = 0: the base values are the base process's second draw from the stream
    rng = np.random.default_rng(5)
    rng.random(3000)
    assert xs[0.0].tobytes() == clean.sample(3000, seed=rng).tobytes()


def test_contaminated_distribution_and_spec():
    c = Contaminated("normal:loc=0,scale=1", "cauchy:loc=0,scale=10", 0.05)
    assert c.eps == 0.05
    assert c.spec == "0.95 normal:loc=0,scale=1 + 0.05 cauchy:loc=0,scale=10"
    dist = c.distribution()
    assert isinstance(dist, Mixture)
    y = np.array([-40.0, -1.0, 0.0, 2.5, 30.0])
    want = np.log(0.95 * stats.norm.pdf(y) + 0.05 * stats.cauchy.pdf(y, 0, 10))
    np.testing.assert_allclose(
        dist.log_prob(torch.as_tensor(y, dtype=F64)).numpy(), want, rtol=1e-13
    )
    again = parse_dgp(c.spec)
    assert again.spec == c.spec
    assert again.sample(100, seed=1).tobytes() == c.sample(100, seed=1).tobytes()


@pytest.mark.parametrize("eps", [-0.1, 1.5, float("nan"), "abc"])
def test_contaminated_validates_eps(eps):
    with pytest.raises(ParameterError, match="eps"):
        contaminated("normal:loc=0,scale=1", "normal:loc=8,scale=1", eps)


def test_mixture_sample_follows_the_mixture_distribution():
    dgp = parse_dgp(MIX)
    x = dgp.sample(5000, seed=8)
    dist = dgp.distribution()

    def cdf(v):
        return 0.9 * stats.norm.cdf(v) + 0.1 * stats.norm.cdf(v, 8, 1)

    # deterministic seed; p < 1e-3 for 0.1% of seeds under a correct sampler
    assert stats.kstest(x, cdf).pvalue > 1e-3
    np.testing.assert_allclose(dist.cdf(torch.as_tensor(x[:50])).numpy(), cdf(x[:50]), rtol=1e-12)
    assert dist.mean.item() == pytest.approx(0.8, rel=1e-14)


def test_discrete_mixture_dgp():
    dgp = parse_dgp("0.5 poisson:rate=1 + 0.5 poisson:rate=20")
    assert dgp.discrete
    x = dgp.sample(4000, seed=2)
    assert np.all(x == np.round(x))
    # mean 10.5, variance 0.5 (1 + 20) + 0.25 * 19^2 = 100.75; 6 standard errors
    assert abs(x.mean() - 10.5) < 6 * math.sqrt(100.75 / 4000)
    with pytest.raises(ParameterError, match="discrete and continuous"):
        parse_dgp("0.5 poisson:rate=1 + 0.5 normal:loc=0,scale=1")


def test_nested_mixtures_are_flattened():
    inner = parse_dgp("0.5 normal:loc=0,scale=1 + 0.5 normal:loc=4,scale=1")
    outer = Contaminated(inner, "normal:loc=20,scale=1", 0.1)
    np.testing.assert_allclose(outer.weights, [0.45, 0.45, 0.1], rtol=1e-15)
    assert outer.spec == (
        "0.45 normal:loc=0,scale=1 + 0.45 normal:loc=4,scale=1 + 0.1 normal:loc=20,scale=1"
    )


def test_weights_must_sum_to_one_within_1e_9():
    ok = parse_dgp("0.3 normal:loc=0,scale=1 + 0.7000000001 normal:loc=1,scale=1")
    assert isinstance(ok, MixtureDGP)
    with pytest.raises(ParameterError, match="sum to 1"):
        parse_dgp("0.3 normal:loc=0,scale=1 + 0.70001 normal:loc=1,scale=1")


BAD = [
    ("normal:loc=0,scale=1,n=10", UnknownNameError, r"no parameter 'n'.*sample size"),
    ("normal:loc=0,scale=1,shape=2", UnknownNameError, r"no parameter 'shape'"),
    ("normal:loc=0", ParameterError, r"missing: scale"),
    ("gaussian:loc=0,scale=1", UnknownNameError, r"unknown family 'gaussian'"),
    ("normal:loc=0,scale=-1", ParameterError, r"'scale' must be > 0"),
    ("normal:loc=x,scale=1", ParameterError, r"'loc' must be a number"),
    ("0.5 normal:loc=0,scale=1 + 0.4 normal:loc=1,scale=1", ParameterError, r"sum to 1"),
    ("0 normal:loc=0,scale=1 + 1 normal:loc=1,scale=1", ParameterError, r"positive"),
    ("-0.5 normal:loc=0,scale=1 + 1.5 normal:loc=1,scale=1", ParameterError, r"positive"),
    ("normal:loc=0,scale=1 + 0.5 normal:loc=1,scale=1", SpecError, r"component 1 .*weight"),
    ("0.5 normal:loc=0,scale=1", ParameterError, r"weight 1"),
    ("0.5 + 0.5 normal:loc=0,scale=1", SpecError, r"weight with no family"),
    ("", SpecError, r"empty"),
    ("   ", SpecError, r"empty"),
    ("normal:loc", SpecError, r"key=value"),
]


@pytest.mark.parametrize("text, error, match", BAD)
def test_parse_dgp_errors(text, error, match):
    with pytest.raises(error, match=match) as info:
        parse_dgp(text)
    assert isinstance(info.value, LikelabError)


def test_parse_dgp_rejects_non_strings():
    with pytest.raises(SpecError, match="string"):
        parse_dgp(3)  # type: ignore[arg-type]


def test_split_sample_size():
    assert split_sample_size("normal:loc=0,scale=1,n=10") == ("normal:loc=0,scale=1", 10)
    assert split_sample_size(" normal:n=5,loc=0,scale=1 ") == ("normal:loc=0,scale=1", 5)
    assert split_sample_size(MIX + ",n=50") == (MIX, 50)
    text, n = split_sample_size("normal:loc=0,scale=1,n=10")
    assert parse_dgp(text).sample(n, seed=0).shape == (10,)


@pytest.mark.parametrize(
    "text, error, match",
    [
        ("normal:loc=0,scale=1", SpecError, r"no sample size"),
        ("normal:loc=0,scale=1,n=0", ParameterError, r"positive integer"),
        ("normal:loc=0,scale=1,n=2.5", ParameterError, r"positive integer"),
        ("normal:loc=0,scale=1,n=ten", ParameterError, r"positive integer"),
        (
            "0.5 normal:loc=0,scale=1,n=3 + 0.5 normal:loc=1,scale=1,n=3",
            SpecError,
            r"more than once",
        ),
    ],
)
def test_split_sample_size_errors(text, error, match):
    with pytest.raises(error, match=match):
        split_sample_size(text)


def test_dgp_rejects_batched_parameters():
    with pytest.raises(ParameterError, match="single number"):
        FamilyDGP("normal", {"loc": [0.0, 1.0], "scale": 1.0})


# ---------------------------------------------------------------------- point masses
def test_point_mass_dgp_spec_sample_and_distribution():
    from likelab.families import PointMass, PointMassDGP

    d = parse_dgp("point:at=-2.5")
    assert isinstance(d, PointMassDGP) and d.spec == "point:at=-2.5"
    assert parse_dgp(d.spec).spec == d.spec and PointMassDGP(3).spec == "point:at=3"
    x = d.sample((2, 3), seed=7)
    assert x.dtype == np.float64 and x.shape == (2, 3) and (x == -2.5).all()
    p = d.distribution()
    assert isinstance(p, PointMass) and p.loc.dtype == F64
    assert float(p.mean) == -2.5 and float(p.variance) == 0.0
    assert p.cdf(torch.tensor([-3.0, -2.5, 0.0], dtype=F64)).tolist() == [0.0, 1.0, 1.0]
    # continuous kind: no Lebesgue density anywhere; discrete kind (at an integer): the pmf
    assert torch.isneginf(p.log_prob(torch.tensor([-2.5, 0.0], dtype=F64))).all()
    q = PointMass(torch.tensor(3.0, dtype=F64), discrete=True)
    assert q.log_prob(torch.tensor([3.0, 2.0], dtype=F64)).tolist() == [0.0, -math.inf]
    assert q.support.is_discrete and not p.support.is_discrete


def test_point_mass_in_a_mixture_samples_its_share_at_the_point_and_draws_nothing():
    dgp = parse_dgp("0.7 normal:loc=0,scale=1 + 0.3 point:at=8")
    assert dgp.spec == "0.7 normal:loc=0,scale=1 + 0.3 point:at=8" and dgp.discrete is False
    x = dgp.sample(20000, seed=11)
    share = float((x == 8.0).mean())
    assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 20000)
    # the stream is u, then the normal's draws: the atom consumes no random numbers
    rng = np.random.default_rng(11)
    u = rng.random(20000)
    z = rng.normal(0.0, 1.0, 20000)
    np.testing.assert_array_equal(x, np.where(u >= 0.7, 8.0, z))
    p = dgp.distribution()
    assert abs(float(p.mean) - 2.4) < 1e-12  # 0.3 * 8
    assert abs(float(p.variance) - (0.7 * 1 + 0.7 * 0.3 * 64)) < 1e-12  # total variance
    # the log-density is that of the continuous part: the atom has none
    y = torch.tensor([0.5, 8.0], dtype=F64)
    want = math.log(0.7) + stats.norm.logpdf([0.5, 8.0])
    np.testing.assert_allclose(p.log_prob(y).numpy(), want, rtol=1e-13)


def test_point_mass_takes_the_kind_of_its_mixture():
    d = parse_dgp("0.8 poisson:rate=3 + 0.2 point:at=20")
    assert d.discrete is True and d.distribution().support.is_discrete
    pmf = d.distribution().log_prob(torch.tensor([20.0, 2.0], dtype=F64)).exp()
    want = [0.8 * stats.poisson.pmf(20, 3) + 0.2, 0.8 * stats.poisson.pmf(2, 3)]
    np.testing.assert_allclose(pmf.numpy(), want, rtol=1e-12)
    with pytest.raises(ParameterError, match="must sit at an integer"):
        parse_dgp("0.8 poisson:rate=3 + 0.2 point:at=2.5")
    # atoms only: continuous kind, a two-point distribution
    two = parse_dgp("0.5 point:at=0 + 0.5 point:at=1")
    assert two.discrete is False and float(two.distribution().variance) == 0.25


@pytest.mark.parametrize(
    "text, error, match",
    [
        ("point", ParameterError, "needs its location"),
        ("point:at=inf", SpecError, "not a finite number"),
        ("point:at=nan", SpecError, "not a finite number"),
        ("point:at=x", ParameterError, "needs a number"),
        ("point:at=8,scale=1", UnknownNameError, "'scale'"),
        ("point:loc=8", UnknownNameError, "'loc'"),
        ("0.9 normal:loc=0,scale=1 + 0.1 point", ParameterError, "needs its location"),
        ("dirac:at=8", UnknownNameError, "point:at=X"),
    ],
)
def test_bad_point_mass_specs(text, error, match):
    with pytest.raises(error, match=match):
        parse_dgp(text)


def test_point_mass_sample_size_is_split_off():
    spec, n = split_sample_size("0.9 normal:loc=0,scale=1 + 0.1 point:at=8,n=40")
    assert (spec, n) == ("0.9 normal:loc=0,scale=1 + 0.1 point:at=8", 40)
    with pytest.raises(UnknownNameError, match="sample size"):
        parse_dgp("point:at=8,n=40")
    assert contaminated("normal:loc=0,scale=1", "point:at=8", 0.25).spec == (
        "0.75 normal:loc=0,scale=1 + 0.25 point:at=8"
    )
