"""Expected scores E_P S(Q, Y) by quadrature, against independent oracles.

Oracles: closed forms (entropy + KL for the log score, the Gaussian convolution for the linear
score, Φ for a uniform forecast, log 4π for Cauchy-Cauchy); scipy.integrate.quad (adaptive
Gauss-Kronrod, a different method) of p(y) S(Q, y) with the kinks and jumps given as break points;
plain sums of scipy.stats pmfs for discrete truths; gradcheck for the derivatives.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch import distributions as D

from likelab.errors import ParameterError, UnknownNameError, UnsupportedError
from likelab.families import get_family
from likelab.families.dgp import parse_dgp
from likelab.objectives import get_objective, list_objectives
from likelab.properness import expected_score, expected_score_details

F64 = torch.float64
SCORING_RULES = [o for o in list_objectives(include_user=False) if o != "product"]


def t64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=F64)


def quad_oracle(obj_spec, truth_pdf, forecast, points, lo=-np.inf, hi=np.inf):
    """∫ p(y) S(Q, y) dy by scipy.integrate.quad, pieces split at ``points``."""
    obj = get_objective(obj_spec)

    def h(y):
        s = obj.loss(forecast, t64([y]), validate=False).item()
        p = truth_pdf(y)
        return 0.0 if p == 0.0 else p * s

    edges = [lo, *sorted(points), hi]
    total = 0.0
    for a, b in itertools.pairwise(edges):
        if a == b:
            continue
        val, _ = integrate.quad(h, a, b, epsabs=1e-14, epsrel=1e-13, limit=500)
        total += val
    return total


CASES = {
    # name: (truth spec, scipy pdf, forecast family, forecast params, break points)
    "normal-normal": (
        "normal:loc=0,scale=1",
        stats.norm(0, 1).pdf,
        "normal",
        {"loc": 0.4, "scale": 1.7},
        [0.0, 0.4],
    ),
    "laplace-laplace": (
        "laplace:loc=0,scale=1",
        stats.laplace(0, 1).pdf,
        "laplace",
        {"loc": 0.3, "scale": 0.6},
        [0.0, 0.3],
    ),
    "t-normal": (
        "student_t:loc=0,scale=1,df=5",
        stats.t(5).pdf,
        "normal",
        {"loc": -0.2, "scale": 1.2},
        [0.0, -0.2],
    ),
    "t-t": (
        "student_t:loc=1,scale=2,df=4",
        stats.t(4, 1, 2).pdf,
        "student_t",
        {"loc": 0.5, "scale": 1.5, "df": 7.0},
        [1.0, 0.5],
    ),
    "mixture-normal": (
        "0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1",
        lambda y: 0.9 * stats.norm.pdf(y) + 0.1 * stats.norm.pdf(y, 8, 1),
        "normal",
        {"loc": 0.8, "scale": 2.5},
        [0.0, 0.8, 8.0],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", SCORING_RULES)
def test_expected_score_matches_adaptive_quadrature(name, case):
    truth, pdf, fam_name, params, points = CASES[case]
    fam = get_family(fam_name)
    q = fam.distribution(**params)
    try:
        got = expected_score_details(name, parse_dgp(truth), q)
    except UnsupportedError:
        assert (name, fam_name) == ("hyvarinen", "laplace")  # refused by name: a kink
        return
    want = quad_oracle(name, pdf, q, points)
    # the rule refines to 1e-10 of E|S|; quad is asked for 1e-13; 1e-9 leaves room for both
    assert abs(got.value.item() - want) <= 1e-9 * (1 + got.scale.item()), (got, want)
    assert got.error.item() <= 1e-10 * got.scale.item() + 1e-15


def test_log_and_linear_scores_of_normals_match_closed_forms():
    truth = D.Normal(t64(0.3), t64(1.3))
    loc = t64([0.3, -1.0, 2.0, 0.0])
    scale = t64([1.3, 0.5, 3.0, 1e-3])
    q = D.Normal(loc, scale)
    # E[-log q(Y)] = log σ + log(2π)/2 + (s² + (μ - m)²) / (2σ²)
    want = (
        torch.log(scale)
        + 0.5 * math.log(2 * math.pi)
        + (1.3**2 + (loc - 0.3) ** 2) / (2 * scale**2)
    )
    np.testing.assert_allclose(expected_score("log", truth, q), want, rtol=1e-13)
    # E[-q(Y)] = -N(μ; m, sqrt(s² + σ²))
    want = -torch.exp(D.Normal(t64(0.3), torch.sqrt(1.3**2 + scale**2)).log_prob(loc))
    np.testing.assert_allclose(expected_score("linear", truth, q), want, rtol=1e-13)


@pytest.mark.parametrize("sigma", [1e-6, 1e-9, 1e-12])
def test_a_forecast_far_narrower_than_the_truth_is_resolved(sigma):
    # the forecast's peak gets cuts at loc ± k σ; centred at 0 the nodes keep full precision
    truth = D.Normal(t64(0.0), t64(1.0))
    got = expected_score("linear", truth, D.Normal(t64([0.0]), t64([sigma])))
    want = -1 / math.sqrt(2 * math.pi * (1 + sigma**2))
    assert abs(got.item() - want) <= 1e-13 * abs(want)


def test_the_error_estimate_covers_rounded_nodes_far_from_zero():
    # at loc = 2 the nodes of a piece of width 2σ round to the grid at 2 (4.4e-16): a relative
    # error ~ eps |loc| / σ that refinement cannot see; the error estimate must cover it
    truth = D.Normal(t64(2.0), t64(0.5))
    sigma = t64([1e-6, 1e-9, 1e-11])
    got = expected_score_details("linear", truth, D.Normal(torch.full_like(sigma, 2.0), sigma))
    want = -torch.exp(D.Normal(t64(2.0), torch.sqrt(0.25 + sigma**2)).log_prob(t64(2.0)))
    actual = (got.value - want).abs()
    assert bool((actual <= 2 * got.error + 1e-15).all()), (actual, got.error)
    assert bool((got.error <= 1e-3 * want.abs()).all())


def test_gneiting_raftery_uniform_forecast_beats_the_truth_under_the_linear_score():
    # Gneiting & Raftery (2007, sec. 4.1): under N(0, 1), the linear score of U(-θ, θ) is
    # -(2Φ(θ) - 1)/(2θ); the truth's own is -∫φ² = -1/(2√π). The uniform wins for every θ below
    # sqrt(log 2) and, exactly, below the root θ* = 1.5634 of (2Φ(θ) - 1)/(2θ) = 1/(2√π).
    truth = parse_dgp("normal:loc=0,scale=1")
    at_truth = expected_score("linear", truth, D.Normal(t64([0.0]), t64([1.0]))).item()
    assert abs(at_truth + 1 / (2 * math.sqrt(math.pi))) < 1e-15
    theta = np.concatenate([np.linspace(0.02, math.sqrt(math.log(2)), 40), [1.5, 1.56, 1.57, 2.0]])
    unif = D.Uniform(t64(-theta), t64(theta), validate_args=False)
    got = expected_score("linear", truth, unif).numpy()
    want = -(2 * stats.norm.cdf(theta) - 1) / (2 * theta)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    below = theta <= math.sqrt(math.log(2))
    assert np.all(got[below] < at_truth)
    root = 1.5634  # brentq on the closed form, to 4 decimals: 1.56341...
    assert np.all(got[theta < root] < at_truth) and np.all(got[theta > root] > at_truth)
    from scipy.optimize import brentq

    exact = brentq(
        lambda t: (2 * stats.norm.cdf(t) - 1) / (2 * t) - 1 / (2 * math.sqrt(math.pi)), 1, 2
    )
    assert abs(exact - root) < 1e-4


def test_derivatives_follow_moving_jumps_and_kinks():
    # d/dh of -(Φ(h) - Φ(l))/(h - l): the jump at h moves with h (Leibniz's boundary term)
    truth = D.Normal(t64(0.0), t64(1.0))
    lo = t64([-0.5]).requires_grad_(True)
    hi = t64([0.7]).requires_grad_(True)
    expected_score("linear", truth, D.Uniform(lo, hi, validate_args=False)).sum().backward()
    width, mass = 1.2, stats.norm.cdf(0.7) - stats.norm.cdf(-0.5)
    assert abs(hi.grad.item() + stats.norm.pdf(0.7) / width - mass / width**2) < 1e-13
    assert abs(lo.grad.item() - (stats.norm.pdf(-0.5) / width - mass / width**2)) < 1e-13
    # the Laplace log score's kink at its location, which coincides with the truth's centre
    # (a zero-width piece between a fixed and a moving cut): E|Y - m| / b has derivative
    # (2F(m) - 1)/b in m, 0 at the median
    loc = t64([0.0, 0.4]).requires_grad_(True)
    scale = t64([1.0, 1.0])
    expected_score("log", D.Laplace(t64(0.0), t64(1.0)), D.Laplace(loc, scale)).sum().backward()
    want = 2 * stats.laplace.cdf([0.0, 0.4]) - 1
    np.testing.assert_allclose(loc.grad.numpy(), want, atol=1e-13)


def test_gradcheck_in_forecast_parameters():
    truth = parse_dgp("0.8 normal:loc=0,scale=1 + 0.2 laplace:loc=3,scale=0.5")
    for name in ("log", "crps", "dpd:beta=0.5", "hyvarinen"):
        # (loc + scale = 3 would put a moving cut exactly on the Laplace kink, where second
        # derivatives are one-sided: see the module docstring)
        loc = t64([0.2, 1.1]).requires_grad_(True)
        scale = t64([0.9, 2.0]).requires_grad_(True)

        def f(loc, scale, name=name):
            return expected_score(name, truth, D.Normal(loc, scale), panels=2)

        assert torch.autograd.gradcheck(f, (loc, scale), eps=1e-6, atol=1e-7, rtol=1e-6)
        assert torch.autograd.gradgradcheck(f, (loc, scale), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_discrete_truths_are_summed():
    truth = parse_dgp("poisson:rate=3.5")
    rate = t64([3.5, 2.0, 7.0])
    q = get_family("poisson").distribution(rate=rate)
    ys = np.arange(0, 200)
    pmf = stats.poisson.pmf(ys, 3.5)
    for name in ("log", "linear", "quadratic", "crps"):
        got = expected_score(name, truth, q).numpy()
        losses = get_objective(name).loss(q, t64(ys).unsqueeze(-1)).numpy()
        np.testing.assert_allclose(got, (pmf[:, None] * losses).sum(0), rtol=1e-13)
    got = expected_score("log", parse_dgp("bernoulli:probs=0.3"), D.Bernoulli(t64([0.3, 0.5])))
    want = [-(0.3 * math.log(p) + 0.7 * math.log(1 - p)) for p in (0.3, 0.5)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-14)


def test_divergent_and_heavy_tailed_expectations():
    cauchy = D.Cauchy(t64(0.0), t64(1.0))
    # E_Cauchy[Y²] = ∞, so the log score of any normal forecast is +∞
    assert expected_score("log", cauchy, D.Normal(t64([0.0]), t64([1.0]))).item() == math.inf
    # the Cauchy's own entropy: log 4π
    got = expected_score("log", cauchy, D.Cauchy(t64([0.0]), t64([1.0]))).item()
    assert abs(got - math.log(4 * math.pi)) < 1e-12
    # a forecast whose support misses part of the truth's: the log score is +∞
    unif = D.Uniform(t64([-1.0]), t64([1.0]), validate_args=False)
    assert expected_score("log", D.Normal(t64(0.0), t64(1.0)), unif).item() == math.inf


def test_bad_inputs():
    normal = D.Normal(t64(0.0), t64(1.0))
    with pytest.raises(UnsupportedError, match="batch-level"):
        expected_score("product", normal, normal)
    with pytest.raises(UnknownNameError):
        expected_score("nope", normal, normal)
    with pytest.raises(ParameterError, match="single distribution"):
        expected_score("log", D.Normal(t64([0.0, 1.0]), t64([1.0, 1.0])), normal)
    with pytest.raises(ParameterError, match="torch Distribution"):
        expected_score("log", normal, "normal")
    with pytest.raises(UnsupportedError, match="univariate"):
        expected_score(
            "log", normal, D.MultivariateNormal(t64([0.0, 0.0]), torch.eye(2, dtype=F64))
        )
    with pytest.raises(UnsupportedError, match="Cauchy"):
        expected_score("crps", normal, D.Cauchy(t64([0.0]), t64([1.0])))


# ---------------------------------------------------------------------- atoms (point masses)
@pytest.mark.parametrize("eps", [0.05, 0.3, 0.7])
def test_an_atom_is_summed_exactly_with_its_derivatives(eps):
    """E_{(1-ε)N(0,1) + εδ_x0} S(N(m, s²), Y) = (1-ε) E_N S + ε S(x0), log and linear in closed
    form: the log score (1-ε)[log(s√2π) + (1+m²)/(2s²)] + ε[log(s√2π) + (x0-m)²/(2s²)], the
    linear score -(1-ε) φ(m; 0, 1+s²) - ε φ(x0; m, s²); gradients against the closed form's."""
    x0 = 8.0
    truth = parse_dgp(f"{1 - eps} normal:loc=0,scale=1 + {eps} point:at={x0}")
    m = t64([0.0, 0.7, 3.0, 8.0]).requires_grad_(True)
    s = t64([1.0, 0.5, 2.0, 0.01]).requires_grad_(True)
    got = expected_score("log", truth, D.Normal(m, s))
    c = torch.log(s * math.sqrt(2 * math.pi))
    want = (1 - eps) * (c + (1 + m**2) / (2 * s**2)) + eps * (c + (x0 - m) ** 2 / (2 * s**2))
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-11)
    g = torch.autograd.grad(got.sum(), (m, s))
    w = torch.autograd.grad(want.sum(), (m, s))
    for a, b in zip(g, w, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-9)
    lin = expected_score("linear", truth, D.Normal(m, s)).detach().numpy()
    mv, sv = m.detach().numpy(), s.detach().numpy()
    want_lin = -(1 - eps) * stats.norm.pdf(mv, 0.0, np.sqrt(1 + sv**2)) - eps * stats.norm.pdf(
        x0, mv, sv
    )
    np.testing.assert_allclose(lin, want_lin, rtol=1e-10, atol=1e-14)


def test_an_atom_with_a_quad_oracle_and_in_a_discrete_truth():
    # crps of a Laplace forecast under 0.8 gamma(2, 1) + 0.2 δ_5: quad for the gamma part
    from likelab.properness.expected import truth_mass

    truth = parse_dgp("0.8 gamma:concentration=2,rate=1 + 0.2 point:at=5")
    assert abs(truth_mass(truth) - 1.0) < 1e-12
    q = D.Laplace(t64([1.0]), t64([0.5]))
    got = expected_score("crps", truth, q).item()
    part = quad_oracle("crps", stats.gamma(2).pdf, q, [1.0], lo=0.0)
    atom = get_objective("crps").loss(q, t64([5.0])).item()
    assert abs(got - (0.8 * part + 0.2 * atom)) < 1e-10 * (1 + abs(got))
    # a discrete truth: the atom's pmf is summed with the Poisson's
    truth = parse_dgp("0.8 poisson:rate=3 + 0.2 point:at=20")
    rate = t64([3.0, 6.4])
    qp = get_family("poisson").distribution(rate=rate)
    ys = np.arange(0, 200)
    losses = get_objective("log").loss(qp, t64(ys).unsqueeze(-1)).numpy()
    want = 0.8 * (stats.poisson.pmf(ys, 3)[:, None] * losses).sum(0) + 0.2 * losses[20]
    np.testing.assert_allclose(expected_score("log", truth, qp).numpy(), want, rtol=1e-13)
    # a forecast that cannot reach the atom scores +inf: no silent finite number
    unif = D.Uniform(t64([-1.0]), t64([6.0]), validate_args=False)
    far = parse_dgp("0.9 uniform:low=0,high=1 + 0.1 point:at=7")
    assert expected_score("log", far, unif).item() == math.inf


def test_a_truth_changed_in_place_is_integrated_as_it_is_now():
    # the truth's support, centre and scale are computed once per truth object; a parameter
    # changed in place must not reuse the old ones: the result equals that of a fresh truth
    # (E_P log-score of N(0, 1) under P = N(m, 2): 0.5 log 2π + (4 + m²)/2, closed form)
    truth = D.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64))
    forecast = D.Normal(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
    for m in (0.0, 30.0):
        truth.loc.fill_(m)
        got = float(expected_score("log", truth, forecast)[0])
        fresh = D.Normal(
            torch.tensor(m, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64)
        )
        assert got == float(expected_score("log", fresh, forecast)[0])
        assert abs(got - (0.5 * math.log(2 * math.pi) + (4 + m**2) / 2)) < 1e-9 * (1 + m**2)


def test_a_reused_rule_gives_the_same_numbers_as_a_fresh_one():
    # the nodes and weights of a truth and forecast batch are kept for reuse (every objective
    # scored on them integrates on the same rule): a second call, with the cache warm, and a
    # call with the cache cleared agree bit for bit, for a plain truth and a mixture
    from likelab.properness import expected as ex

    forecast = D.StudentT(t64([3.0, 8.0]), t64([0.5, -1.0]), t64([1.0, 3.0]))
    for spec in ("normal:loc=0,scale=1", "0.8 normal:loc=0,scale=1 + 0.2 laplace:loc=4,scale=2"):
        truth = parse_dgp(spec)
        for name in ("log", "crps", "dpd:beta=0.5"):
            warm = expected_score_details(name, truth, forecast)
            again = expected_score_details(name, truth, forecast)
            ex._PIECES.clear()
            cold = expected_score_details(name, truth, forecast)
            for a, b, c in zip(warm, again, cold, strict=True):
                assert torch.equal(a, b) and torch.equal(a, c)


def test_a_score_that_writes_into_its_nodes_does_not_corrupt_the_next_integral():
    # a (user) score may modify its y in place; the reused rule is then built again, so the
    # next objective is integrated on the true nodes (E log-score of N(0, 1) under N(0, 1):
    # 0.5 log 2πe)
    from likelab.properness import expected as ex

    def vandal(dist, y):
        out = -dist.log_prob(y)
        y.mul_(3.0)
        return out

    truth = D.Normal(t64(0.0), t64(1.0))
    forecast = D.Normal(t64([0.0]), t64([1.0]))
    ex._PIECES.clear()
    for _ in range(2):
        expected_score_details(vandal, truth, forecast, panels=2)
        got = expected_score_details("log", truth, forecast, panels=2).value
        assert abs(float(got[0]) - 0.5 * math.log(2 * math.pi * math.e)) < 1e-12


def test_a_truth_whose_parameters_require_grad_is_differentiated_not_reused():
    # d/dm E_{N(m,1)} log-score of N(0, 1) = m (closed form 0.5 log 2π + (1 + m²)/2)
    m = torch.tensor(0.7, dtype=F64, requires_grad=True)
    forecast = D.Normal(t64([0.0]), t64([1.0]))
    for _ in range(2):  # the second time a rule for these values could be in the cache
        value = expected_score("log", D.Normal(m, t64(1.0)), forecast)[0]
        (grad,) = torch.autograd.grad(value, m)
        assert abs(float(grad) - 0.7) < 1e-9


def test_a_truth_of_atoms_only_is_summed_by_every_rule():
    # no continuous component: the adaptive rule's first two levels are both the exact sum
    truth = parse_dgp("0.5 point:at=1 + 0.5 point:at=3")
    forecast = D.Normal(t64([2.0]), t64([1.0]))
    got = expected_score_details("log", truth, forecast)
    want = 0.5 * math.log(2 * math.pi) + 0.5
    assert abs(float(got.value[0]) - want) < 1e-14 and float(got.error[0]) == 0.0


def test_the_kept_rules_stay_within_their_memory_cap(monkeypatch):
    # many distinct forecast batches: the cache keeps at most _PIECES_SIZE rules and about
    # _PIECES_MAX_TOTAL nodes (here shrunk so that the node cap is the binding one)
    from likelab.properness import expected as ex

    monkeypatch.setattr(ex, "_PIECES_MAX_TOTAL", 40_000)
    ex._PIECES.clear()
    truth = D.Normal(t64(0.0), t64(1.0))
    for k in range(30):
        forecast = D.Normal(t64([0.01 * k, 1.0]), t64([1.0, 2.0]))
        expected_score_details("log", truth, forecast)
        total = sum(p.y.numel() for p, _ in ex._PIECES.values())
        assert len(ex._PIECES) <= ex._PIECES_SIZE
        assert total <= 40_000 or len(ex._PIECES) == 1
    assert len(ex._PIECES) >= 1
