"""``Mixture`` against numpy/scipy mixtures: densities, cdf, moments, sampling, support, errors,
and its power integral (through ``power_integral``'s numerical fallback) against scipy quadrature.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats
from torch import distributions as D

from likelab.errors import LikelabError, ParameterError
from likelab.families import Mixture, power_integral
from likelab.families.quadrature import numerical_power_integral

F64 = torch.float64


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values[0] if len(values) == 1 else values, dtype=F64)


class ScipyMixture:
    """The oracle: Σ w_j pdf_j / cdf_j with scipy.stats frozen distributions."""

    def __init__(self, weights, frozen):
        self.w = np.asarray(weights, dtype=np.float64)
        self.frozen = frozen

    def pdf(self, y):
        return sum(w * f.pdf(y) for w, f in zip(self.w, self.frozen, strict=True))

    def logpdf(self, y):
        return special.logsumexp(
            [np.log(w) + f.logpdf(y) for w, f in zip(self.w, self.frozen, strict=True)], axis=0
        )

    def cdf(self, y):
        return sum(w * f.cdf(y) for w, f in zip(self.w, self.frozen, strict=True))

    def moment(self, order):
        return sum(w * f.moment(order) for w, f in zip(self.w, self.frozen, strict=True))


def _cases():
    return {
        "two-normals": (
            Mixture([0.9, 0.1], [D.Normal(t(0.0), t(1.0)), D.Normal(t(8.0), t(1.0))]),
            ScipyMixture([0.9, 0.1], [stats.norm(0, 1), stats.norm(8, 1)]),
            [0.0, 8.0],
        ),
        "normal+uniform": (
            Mixture([0.95, 0.05], [D.Normal(t(0.0), t(1.0)), D.Uniform(t(-2.0), t(2.0))]),
            ScipyMixture([0.95, 0.05], [stats.norm(0, 1), stats.uniform(-2, 4)]),
            [-2.0, 0.0, 2.0],
        ),
        "laplace+cauchy": (
            Mixture([0.7, 0.3], [D.Laplace(t(0.0), t(1.0)), D.Cauchy(t(3.0), t(0.5))]),
            ScipyMixture([0.7, 0.3], [stats.laplace(0, 1), stats.cauchy(3, 0.5)]),
            [0.0, 3.0],
        ),
        "gamma+exponential": (
            Mixture([0.6, 0.4], [D.Gamma(t(0.7), t(1.0)), D.Exponential(t(3.0))]),
            ScipyMixture([0.6, 0.4], [stats.gamma(0.7), stats.expon(scale=1 / 3)]),
            [0.0, 0.7],
        ),
        "normal+exponential+t": (
            Mixture(
                [0.5, 0.3, 0.2],
                [
                    D.Normal(t(-1.0), t(0.5)),
                    D.Exponential(t(1.5)),
                    D.StudentT(t(5.0), t(2.0), t(1.0)),
                ],
            ),
            ScipyMixture(
                [0.5, 0.3, 0.2], [stats.norm(-1, 0.5), stats.expon(scale=1 / 1.5), stats.t(5, 2, 1)]
            ),
            [-1.0, 0.0, 2.0],
        ),
    }


CASES = _cases()
# includes points outside some components' supports (y < 0 for gamma/exponential, |y| > 2 for
# the uniform) and the gamma's singular point y = 0; no point on a uniform's edge, where torch
# (half-open [low, high)) and scipy (closed) differ on a null set
Y = np.array([-30.0, -3.0, -1.5, -0.2, 0.0, 1e-3, 0.4, 1.0, 2.2, 2.5, 3.0, 7.9, 8.0, 25.0])


@pytest.mark.parametrize("name", list(CASES))
def test_log_prob_and_cdf_match_scipy_mixture(name):
    mix, ref, _ = CASES[name]
    mix = Mixture(mix.weights, mix.components, validate_args=False)  # evaluate off-support too
    y = torch.as_tensor(Y, dtype=F64)
    lp = mix.log_prob(y)
    assert lp.dtype == F64 and lp.shape == y.shape
    # same densities summed in log space; float64 rounding of a few ops: 1e-12 relative
    # (infinite values, e.g. the gamma's pole at 0, must agree exactly)
    np.testing.assert_allclose(lp.numpy(), ref.logpdf(Y), rtol=1e-12, atol=1e-13)
    if any(isinstance(c, D.StudentT) for c in mix.components):
        with pytest.raises(NotImplementedError):  # torch's StudentT has no cdf
            mix.cdf(y)
    else:
        np.testing.assert_allclose(mix.cdf(y).numpy(), ref.cdf(Y), rtol=1e-12, atol=1e-15)


def test_log_prob_validates_like_torch_by_default():
    mix = Mixture([0.5, 0.5], [D.Gamma(t(2.0), t(1.0)), D.Exponential(t(1.0))])
    with pytest.raises(ValueError, match="support"):
        mix.log_prob(t(-1.0))


def test_component_outside_its_support_contributes_nothing():
    # Exponential.log_prob(-1) is finite garbage in torch (validate_args=False): masked here
    mix = Mixture(
        [0.5, 0.5], [D.Normal(t(0.0), t(1.0)), D.Exponential(t(2.0), validate_args=False)]
    )
    y = t(-1.0, -0.001)
    want = np.log(0.5 * stats.norm.pdf(y.numpy()))
    np.testing.assert_allclose(mix.log_prob(y).numpy(), want, rtol=1e-13)
    np.testing.assert_allclose(mix.cdf(y).numpy(), 0.5 * stats.norm.cdf(y.numpy()), rtol=1e-13)


@pytest.mark.parametrize(
    "name", ["two-normals", "normal+uniform", "gamma+exponential", "normal+exponential+t"]
)
def test_mean_and_variance_match_scipy(name):
    mix, ref, _ = CASES[name]
    mean = ref.moment(1)
    var = ref.moment(2) - mean**2
    assert mix.mean.item() == pytest.approx(mean, rel=1e-12, abs=1e-14)
    assert mix.variance.item() == pytest.approx(var, rel=1e-12)
    assert mix.stddev.item() == pytest.approx(math.sqrt(var), rel=1e-12)


def test_mean_is_nan_with_a_cauchy_component_and_ignores_zero_weights():
    mix, _, _ = CASES["laplace+cauchy"]
    assert math.isnan(mix.mean.item())
    zero = Mixture([1.0, 0.0], [D.Normal(t(2.0), t(1.0)), D.Cauchy(t(0.0), t(1.0))])
    assert zero.mean.item() == 2.0
    assert zero.variance.item() == 1.0


@pytest.mark.parametrize(
    "name", ["two-normals", "normal+uniform", "gamma+exponential", "laplace+cauchy"]
)
def test_sampling_is_reproducible_and_follows_the_mixture(name):
    mix, ref, _ = CASES[name]
    torch.manual_seed(1234)
    a = mix.sample((4000,))
    torch.manual_seed(1234)
    b = mix.sample((4000,))
    assert a.dtype == F64 and a.shape == (4000,)
    assert torch.equal(a, b)
    torch.manual_seed(99)
    assert not torch.equal(a, mix.sample((4000,)))
    # Kolmogorov-Smirnov against the scipy mixture cdf; fixed seed, so deterministic; a correct
    # sampler falls below p = 1e-3 for 0.1% of seeds
    assert stats.kstest(a.numpy(), ref.cdf).pvalue > 1e-3


def test_sample_shape_with_batched_components():
    mix = Mixture(
        torch.tensor([0.5, 0.5], dtype=F64),
        [D.Normal(t(0.0, 10.0, 20.0), t(1.0)), D.Normal(t(5.0), t(1.0))],
    )
    assert mix.batch_shape == (3,)
    torch.manual_seed(0)
    s = mix.sample((2000,))
    assert s.shape == (2000, 3)
    # component means 0/5, 10/5, 20/5 with equal weights: sample means within 6 SE; SE =
    # sqrt(var / n), var = 1 + (Δ/2)²
    for i, (m, delta) in enumerate([(2.5, 5.0), (7.5, 5.0), (12.5, 15.0)]):
        se = math.sqrt((1 + (delta / 2) ** 2) / 2000)
        assert abs(s[:, i].mean().item() - m) < 6 * se


def test_batched_weights_broadcast_against_components():
    w = torch.tensor([[0.2, 0.8], [0.6, 0.4]], dtype=F64).unsqueeze(1)  # (2, 1, 2)
    mix = Mixture(w, [D.Normal(t(0.0, 1.0, 2.0), t(1.0)), D.Laplace(t(0.0), t(2.0))])
    assert mix.batch_shape == (2, 3)
    y = t(0.5)
    lp = mix.log_prob(y)
    assert lp.shape == (2, 3)
    for i, (w0, w1) in enumerate([(0.2, 0.8), (0.6, 0.4)]):
        for j, loc in enumerate([0.0, 1.0, 2.0]):
            want = math.log(w0 * stats.norm.pdf(0.5, loc) + w1 * stats.laplace.pdf(0.5, 0, 2))
            assert lp[i, j].item() == pytest.approx(want, rel=1e-13)
    expanded = mix.expand((4, 2, 3))
    assert expanded.batch_shape == (4, 2, 3)
    torch.testing.assert_close(expanded.log_prob(y), lp.expand(4, 2, 3))


def test_support():
    c = D.constraints
    real = Mixture([0.5, 0.5], [D.Exponential(t(1.0)), D.Normal(t(0.0), t(1.0))]).support
    assert isinstance(real, c._Real)
    pos = Mixture([0.5, 0.5], [D.Exponential(t(1.0)), D.Gamma(t(2.0), t(1.0))]).support
    assert isinstance(pos, c._GreaterThanEq) and pos.lower_bound == 0.0
    box = Mixture([0.5, 0.5], [D.Uniform(t(0.0), t(1.0)), D.Uniform(t(2.0), t(3.0))]).support
    assert isinstance(box, c._Interval) and (box.lower_bound, box.upper_bound) == (0.0, 3.0)
    counts = Mixture([0.5, 0.5], [D.Poisson(t(1.0)), D.Poisson(t(9.0))]).support
    assert counts.is_discrete and bool(counts.check(t(3.0))) and not bool(counts.check(t(-1.0)))
    labels = Mixture(
        [0.5, 0.5], [D.Bernoulli(t(0.3)), D.Categorical(probs=t(0.2, 0.3, 0.5))]
    ).support
    assert isinstance(labels, c._IntegerInterval) and labels.upper_bound == 2.0


@pytest.mark.parametrize(
    "weights, components, match",
    [
        ([0.5, 0.6], [D.Normal(t(0.0), t(1.0)), D.Normal(t(1.0), t(1.0))], "sum to 1"),
        ([-0.5, 1.5], [D.Normal(t(0.0), t(1.0)), D.Normal(t(1.0), t(1.0))], "non-negative"),
        ([float("nan"), 1.0], [D.Normal(t(0.0), t(1.0)), D.Normal(t(1.0), t(1.0))], "finite"),
        ([1.0], [D.Normal(t(0.0), t(1.0)), D.Normal(t(1.0), t(1.0))], "one per component"),
        ([0.5, 0.5], [D.Normal(t(0.0), t(1.0)), D.Poisson(t(1.0))], "discrete and continuous"),
        (
            [0.5, 0.5],
            [
                D.Normal(t(0.0), t(1.0)),
                D.MultivariateNormal(torch.zeros(2, dtype=F64), torch.eye(2, dtype=F64)),
            ],
            "univariate",
        ),
        ([0.5, 0.5], [D.Normal(t(0.0), t(1.0)), "normal"], "torch Distribution"),
        ([1.0], [], "at least one"),
        (["a", "b"], [D.Normal(t(0.0), t(1.0)), D.Normal(t(1.0), t(1.0))], "must be numbers"),
        (
            [0.5, 0.5],
            [
                D.Normal(torch.zeros(2, dtype=F64), t(1.0)),
                D.Normal(torch.zeros(3, dtype=F64), t(1.0)),
            ],
            "do not broadcast",
        ),
    ],
)
def test_bad_mixtures_raise_parameter_errors(weights, components, match):
    with pytest.raises(ParameterError, match=match) as err:
        Mixture(weights, components)
    assert isinstance(err.value, LikelabError)


def test_float32_components_give_float32_mixture():
    mix = Mixture(
        [0.3, 0.7],
        [
            D.Normal(torch.tensor(0.0), torch.tensor(1.0)),
            D.Laplace(torch.tensor(1.0), torch.tensor(1.0)),
        ],
    )
    assert mix.weights.dtype == torch.float32
    assert mix.log_prob(torch.tensor(0.5)).dtype == torch.float32
    got = power_integral(mix, 2.0)
    assert got.dtype == torch.float32
    ref = integrate.quad(
        lambda y: (0.3 * stats.norm.pdf(y) + 0.7 * stats.laplace.pdf(y, 1)) ** 2,
        -np.inf,
        np.inf,
        points=None,
        epsrel=1e-12,
    )[0]
    # float32 arithmetic: ~1e-6 relative
    assert got.item() == pytest.approx(ref, rel=2e-6)


def _quad_mixture_power(ref: ScipyMixture, k: float, breaks: list[float], lo: float = -np.inf):
    """∫ (Σ w f)^k by scipy quad, split at the components' centres/edges and on a fine grid in
    between (the troughs of f^k between separated components are narrow)."""
    pts = sorted({*breaks, *np.linspace(min(breaks) - 20, max(breaks) + 20, 41).tolist()})
    pts = [p for p in pts if p > lo]
    edges = [lo, *pts, np.inf]
    total, err = 0.0, 0.0
    for a, b in itertools.pairwise(edges):
        val, e = integrate.quad(
            lambda y: ref.pdf(y) ** k, a, b, epsabs=1e-15, epsrel=1e-12, limit=200
        )
        total += val
        err += e
    return total, err


@pytest.mark.parametrize("k", [0.5, 0.6, 1.0, 1.2, 2.0, 3.0])
@pytest.mark.parametrize("name", list(CASES))
def test_power_integral_of_mixture_matches_quadrature(name, k):
    mix, ref, breaks = CASES[name]
    got = power_integral(mix, k)  # no closed form: the numerical fallback, by itself
    assert got.shape == () and got.dtype == F64
    assert torch.equal(got, numerical_power_integral(mix, k))
    if name == "laplace+cauchy" and k <= 0.5:
        # a Cauchy component makes f^k ~ y^{-2k}: divergent for k <= 1/2
        assert math.isinf(got.item())
        return
    lo = 0.0 if name == "gamma+exponential" else -np.inf
    if name == "gamma+exponential" and k > 1:
        # f^k ~ y^{-0.3k} at 0 (integrable): QAWS weight on [0, 1e-3], quad beyond
        alpha = -0.3 * k
        head, e0 = integrate.quad(
            lambda y: ref.pdf(max(y, 1e-300)) ** k / max(y, 1e-300) ** alpha,
            0.0,
            1e-3,
            weight="alg",
            wvar=(alpha, 0.0),
            epsabs=1e-15,
            epsrel=1e-12,
            limit=200,
        )
        rest, e1 = _quad_mixture_power(ref, k, [1e-3, 0.7], lo=1e-3)
        want, err = head + rest, e0 + e1
    else:
        want, err = _quad_mixture_power(ref, k, breaks, lo=lo)
    # the adaptive rule's levels agree to 1e-10; quad's own error estimate for its part
    assert got.item() == pytest.approx(want, rel=1e-9, abs=10 * err)


@pytest.mark.parametrize("k", [0.2, 0.5])
def test_power_integral_of_well_separated_narrow_mixture(k):
    # the hard case: f^k with k < 1 has a narrow trough between N(0, 1) and N(6, 0.1²); the
    # first level (256 nodes) is off by ~1e-5, the adaptive rule must refine
    mix = Mixture([0.5, 0.5], [D.Normal(t(0.0), t(1.0)), D.Normal(t(6.0), t(0.1))])
    ref = ScipyMixture([0.5, 0.5], [stats.norm(0, 1), stats.norm(6, 0.1)])
    # quad split finely around the trough (y ~ 5.3-5.9) and the narrow component
    pts = sorted({*np.linspace(-40, 46, 44).tolist(), *np.linspace(4.0, 7.0, 61).tolist()})
    want = sum(
        integrate.quad(lambda y: ref.pdf(y) ** k, a, b, epsabs=1e-15, epsrel=1e-12, limit=200)[0]
        for a, b in itertools.pairwise(pts)
    )
    coarse = numerical_power_integral(mix, k, n=256).item()
    assert abs(coarse / want - 1) > 1e-7  # the fixed coarse rule really is too coarse here
    # tails beyond [-40, 46] are below 1e-300; adaptive rule agreed to 1e-10 between levels
    assert power_integral(mix, k).item() == pytest.approx(want, rel=1e-9)


def test_power_integral_gradient_wrt_weights_matches_quadrature():
    # d/dw ∫ (w f1 + (1-w) f2)^k = ∫ k f^{k-1} (f1 - f2)
    k = 1.5
    w = torch.tensor(0.3, dtype=F64, requires_grad=True)
    mix = Mixture(torch.stack([w, 1 - w]), [D.Normal(t(0.0), t(1.0)), D.Laplace(t(2.0), t(0.5))])
    (grad,) = torch.autograd.grad(power_integral(mix, k), w)

    def f(y):
        return 0.3 * stats.norm.pdf(y) + 0.7 * stats.laplace.pdf(y, 2, 0.5)

    want = sum(
        integrate.quad(
            lambda y: k * f(y) ** (k - 1) * (stats.norm.pdf(y) - stats.laplace.pdf(y, 2, 0.5)),
            a,
            b,
            epsabs=1e-15,
            epsrel=1e-12,
            limit=200,
        )[0]
        for a, b in [(-np.inf, 0.0), (0.0, 2.0), (2.0, np.inf)]
    )
    assert grad.item() == pytest.approx(want, rel=1e-8)


def test_zero_weight_component_drops_out_with_finite_gradient():
    loc = torch.tensor(0.4, dtype=F64, requires_grad=True)
    mix = Mixture([1.0, 0.0], [D.Normal(loc, t(1.5)), D.Cauchy(t(0.0), t(1.0))])
    val = power_integral(mix, 0.4)  # the Cauchy part alone would diverge at k = 0.4
    closed = power_integral(D.Normal(t(0.4), t(1.5)), 0.4)
    torch.testing.assert_close(val, closed, rtol=1e-10, atol=0)
    (g,) = torch.autograd.grad(val, loc)
    assert torch.isfinite(g) and abs(g.item()) < 1e-8  # ∫ f^k does not depend on the location


def test_poisson_mixture_sum_matches_numpy():
    mix = Mixture([0.7, 0.3], [D.Poisson(t(2.0)), D.Poisson(t(30.0))])
    y = np.arange(0, 500)
    p = 0.7 * stats.poisson.pmf(y, 2.0) + 0.3 * stats.poisson.pmf(y, 30.0)
    for k in (0.5, 2.0):
        assert power_integral(mix, k).item() == pytest.approx(np.sum(p**k), rel=1e-12)
    lp = mix.log_prob(t(0.0, 3.0, 31.0))
    np.testing.assert_allclose(lp.numpy(), np.log(p[[0, 3, 31]]), rtol=1e-13)


def test_categorical_and_bernoulli_mixture_sum():
    mix = Mixture(
        [0.4, 0.6],
        [D.Bernoulli(t(0.3)), D.Categorical(probs=t(0.2, 0.3, 0.5))],
        validate_args=False,
    )
    p = np.array([0.4 * 0.7 + 0.6 * 0.2, 0.4 * 0.3 + 0.6 * 0.3, 0.6 * 0.5])
    assert power_integral(mix, 2.0).item() == pytest.approx(np.sum(p**2), rel=1e-13)
    np.testing.assert_allclose(
        mix.log_prob(t(0.0, 1.0, 2.0, 3.0)).numpy(), [*np.log(p), -np.inf], rtol=1e-13
    )
