"""Integral scoring rules: quadratic/brier/l2e, spherical, pseudospherical, power, dpd, gamma.

Oracles: exact numpy class sums for Categorical forecasts; scipy.stats densities and
scipy.integrate.quad of pdf**k (direct sums for discrete families) for parametric forecasts;
the algebraic identities between the rules; torch.autograd.gradcheck for derivatives; and a
numerical properness check on the simplex.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Categorical

from likelab.errors import ParameterError
from likelab.families import get_family, power_integral
from likelab.objectives import get_objective

from .conftest import (
    CASE_BY_ID,
    INTEGRAL_SPECS,
    assert_gradcheck,
    assert_gradcheck_categorical_logits,
    categorical_oracle,
    gradcheck_observations,
    needed_powers,
    numpy_loss,
    random_categorical,
)

F64 = torch.float64


# ----------------------------------------------------------------------------- Categorical
@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_categorical_matches_numpy_formula(integral_spec, k):
    probs, labels = random_categorical(seed=100 + k, batch=50, k=k)
    F = Categorical(probs=torch.tensor(probs, dtype=F64))
    got = get_objective(integral_spec)(F, torch.tensor(labels)).numpy()
    want = categorical_oracle(integral_spec, probs, labels)
    # float64 sums of at most 6 terms and a few exp/log round trips: ~1e-15 relative error;
    # the absolute floor 1e-13 covers losses that cancel to near zero (e.g. gamma's 1 - ratio).
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_brier_is_quadratic_plus_one(k):
    probs, labels = random_categorical(seed=7 + k, batch=50, k=k)
    onehot = np.eye(k)[labels]
    brier = ((probs - onehot) ** 2).sum(-1)  # Brier (1950), written independently
    F = Categorical(probs=torch.tensor(probs, dtype=F64))
    y = torch.tensor(labels)
    for spec in ("quadratic", "brier", "l2e"):
        got = get_objective(spec)(F, y).numpy()
        # Σ(p - e_y)² - 1 = Σp² - 2p_y exactly; rounding of K-term sums only.
        np.testing.assert_allclose(got, brier - 1.0, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- parametric
@pytest.mark.parametrize("k", [1.5, 2.0, 3.0])
def test_power_integral_matches_quadrature(case, k):
    want, err = case.integral(k)
    got = float(power_integral(case.dist(), k))
    # quad's own error estimate (asked for 1e-13 relative) bounds its error; 1e-12 relative covers
    # the rounding of the closed forms (lgamma/exp in float64) and of the discrete sums.
    assert err <= 1e-10 * want, f"quadrature did not converge: {want} ± {err}"
    assert abs(got - want) <= 10 * err + 1e-12 * want, (got, want, err)


def _tolerance(spec, fy, integrals, errors, expected):
    """Absolute tolerance: quad's error propagated through the formula, plus rounding.

    The loss is monotone in each ∫f^k, so evaluating the formula at ∫f^k ± err bounds the effect
    of quadrature error. Float64 rounding of terms of size M = 1 + |S| + Σ∫f^k + f(y)^2 adds
    ~1e-15 M; 1e-11 M leaves room for the ~1e-13 agreement of torch and scipy densities.
    """
    spread = np.zeros_like(expected)
    for sign in (-1.0, 1.0):
        shifted = numpy_loss(spec, fy, lambda k, s=sign: integrals[k] + s * errors[k])
        spread = np.maximum(spread, np.abs(shifted - expected))
    size = 1.0 + np.abs(expected) + sum(integrals.values()) + fy**2
    return spread + 1e-11 * size


def test_objective_matches_scipy_formula(case, integral_spec):
    ks = needed_powers(integral_spec)
    quad = {k: case.integral(k) for k in ks}
    integrals = {k: v for k, (v, _) in quad.items()}
    errors = {k: e for k, (_, e) in quad.items()}
    fy = case.pdf(case.y)
    expected = numpy_loss(integral_spec, fy, lambda k: integrals[k])
    got = get_objective(integral_spec)(case.dist(), case.y_tensor()).numpy()
    assert got.shape == expected.shape
    tol = _tolerance(integral_spec, fy, integrals, errors, expected)
    assert np.all(np.isfinite(got))
    assert np.all(np.abs(got - expected) <= tol), (got, expected, tol)


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("quadratic", math.inf),
        ("power:alpha=2", math.inf),
        ("dpd:beta=1", math.inf),
        ("spherical", math.nan),
        ("pseudospherical:gamma=2", math.nan),
        ("gamma:gamma=1", math.nan),
    ],
)
def test_infinite_integral_is_reported_not_clamped(spec, expected):
    # Gamma(0.3, 1): f(y) ~ y^{-0.7} at 0, so ∫f² ~ ∫ y^{-1.4} dy diverges (2(α-1) + 1 < 0).
    F = get_family("gamma").distribution(concentration=0.3, rate=1.0)
    assert math.isinf(float(power_integral(F, 2.0)))
    got = get_objective(spec)(F, torch.tensor([0.5, 2.0], dtype=F64))
    if math.isnan(expected):
        assert torch.isnan(got).all()
    else:
        assert torch.isinf(got).all() and (got > 0).all()


def test_infinite_integral_only_where_it_diverges():
    # A batch mixing a finite and an infinite ∫f²: only the divergent forecast is nan.
    F = get_family("gamma").distribution(
        concentration=torch.tensor([0.3, 2.0], dtype=F64), rate=1.0
    )
    got = get_objective("spherical")(F, torch.tensor([1.0, 1.0], dtype=F64))
    assert torch.isnan(got[0]) and torch.isfinite(got[1])


# ----------------------------------------------------------------------------- identities
IDENTITY_FORECASTS = [
    "normal-narrow",
    "student_t-df1.5",
    "gamma-a0.8",
    "cauchy",
    "bernoulli",
    "poisson",
    "categorical",
]


def _forecast(which: str):
    if which == "categorical":
        probs, labels = random_categorical(seed=3, batch=40, k=5)
        return Categorical(probs=torch.tensor(probs, dtype=F64)), torch.tensor(labels), None
    case = CASE_BY_ID[which]
    return case.dist(), case.y_tensor(), case


def _loss(spec, F, y, **hyper):
    return get_objective(spec, **hyper)(F, y)


@pytest.mark.parametrize("which", IDENTITY_FORECASTS)
def test_power_alpha_2_is_quadratic(which):
    F, y, _ = _forecast(which)
    # (2-1)∫f² - 2 f(y) and ∫f² - 2 f(y) are the same float operations up to one rounding.
    torch.testing.assert_close(
        _loss("power:alpha=2", F, y), _loss("quadratic", F, y), rtol=1e-13, atol=1e-13
    )


@pytest.mark.parametrize("which", IDENTITY_FORECASTS)
def test_pseudospherical_gamma_2_is_spherical(which):
    F, y, _ = _forecast(which)
    torch.testing.assert_close(
        _loss("pseudospherical:gamma=2", F, y), _loss("spherical", F, y), rtol=1e-13, atol=0.0
    )


@pytest.mark.parametrize("which", IDENTITY_FORECASTS)
@pytest.mark.parametrize("b", [0.1, 0.5, 1.0, 2.5])
def test_power_is_b_times_dpd(which, b):
    # power:alpha=1+b = b ∫f^{1+b} - (1+b) f^b = b [∫f^{1+b} - (1 + 1/b) f^b] = b * dpd:beta=b.
    F, y, _ = _forecast(which)
    power = _loss("power", F, y, alpha=1.0 + b)
    dpd = _loss("dpd", F, y, beta=b)
    # The two sides cancel terms of size ≤ M = b∫f^{1+b} + (1+b) f^b: rounding ~1e-16 M.
    size = b * power_integral(F, 1.0 + b) + (1.0 + b) * F.log_prob(y).exp() ** b
    assert torch.all((power - b * dpd).abs() <= 1e-13 * size)


@pytest.mark.parametrize("which", IDENTITY_FORECASTS)
@pytest.mark.parametrize("g", [0.1, 0.5, 2.0])
def test_gamma_is_affine_in_pseudospherical(which, g):
    # S_gamma = (1/g)(1 - f^g / (∫f^{1+g})^{g/(1+g)}) and S_ps(1+g) = -f^g / (∫f^{1+g})^{g/(1+g)},
    # so S_gamma = a + b S_ps with a = b = 1/g > 0: the ∫f^{1+g} of the forecast enters both
    # scores through the same normaliser, so the constants do not depend on the forecast.
    F, y, _ = _forecast(which)
    ps = _loss("pseudospherical", F, y, gamma=1.0 + g)
    gam = _loss("gamma", F, y, gamma=g)
    a = b = 1.0 / g
    # Cancellation in 1 + S_ps (|S_ps| ≤ a few): rounding ~1e-16 / g in absolute terms.
    torch.testing.assert_close(gam, a + b * ps, rtol=1e-12, atol=1e-13 / g)


def test_gamma_is_pseudospherical_by_formula_on_a_grid_of_forecasts():
    # The affine map holds forecast by forecast (normal scales over four decades).
    scale = torch.logspace(-2, 2, 9, dtype=F64).unsqueeze(-1)
    F = get_family("normal").distribution(loc=0.0, scale=scale)
    y = torch.linspace(-3, 3, 7, dtype=F64)
    g = 0.7
    ps = _loss("pseudospherical", F, y, gamma=1.0 + g)
    torch.testing.assert_close(
        _loss("gamma", F, y, gamma=g), (1.0 + ps) / g, rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize(
    "which", ["normal", "student_t-df5", "laplace", "gamma-a3", "bernoulli", "categorical"]
)
def test_gamma_tends_to_log_as_gamma_vanishes(which):
    # Expansion: log ∫f^{1+γ} = -γ H(F) + O(γ²) with H the (differential) entropy, so
    # S_γ = -log f(y) - γ (H(F) + (log f(y))²/2) + O(γ²).
    # At γ = 1e-6 the O(γ²) remainder is ~1e-12 · polynomial(log f, moments of log f), i.e. a
    # relative error ~1e-6 on the first-order term; rtol 1e-4 on (S_γ - S_log)/γ allows for that
    # and for the ~1e-16/γ = 1e-10 rounding of the difference. The entropy comes from scipy.
    if which == "categorical":
        probs, labels = random_categorical(seed=11, batch=30, k=4)
        F, y = Categorical(probs=torch.tensor(probs, dtype=F64)), torch.tensor(labels)
        entropy = -(probs * np.log(probs)).sum(-1)
        logf = np.log(probs[np.arange(30), labels])
    else:
        case = CASE_BY_ID[which]
        F, y = case.dist(), case.y_tensor()
        entropy = float(case.scipy.entropy())
        logf = np.log(case.pdf(case.y))
    g = 1e-6
    s_gamma = get_objective("gamma", gamma=g)(F, y).numpy()
    s_log = get_objective("log")(F, y).numpy()
    assert np.all(np.abs(s_gamma - s_log) <= 2 * g * (np.abs(entropy) + logf**2 / 2) + 1e-12)
    np.testing.assert_allclose(
        (s_gamma - s_log) / g, -(entropy + logf**2 / 2), rtol=1e-4, atol=1e-6
    )


# ----------------------------------------------------------------------------- gradients
GRAD_CASES = [
    "normal",
    "student_t-df5",
    "laplace",
    "logistic",
    "gamma-a3",
    "exponential",
    "bernoulli",
]


@pytest.mark.parametrize("which", GRAD_CASES)
def test_gradcheck_parameters_and_y(integral_spec, which):
    case = CASE_BY_ID[which]
    assert_gradcheck(get_objective(integral_spec), case, gradcheck_observations(case))


def test_gradcheck_categorical_logits(integral_spec):
    assert_gradcheck_categorical_logits(get_objective(integral_spec), seed=0)


# ----------------------------------------------------------------------------- properness
PROPER_SPECS = ["log", *INTEGRAL_SPECS, "brier", "l2e"]


@pytest.mark.parametrize("spec", PROPER_SPECS)
def test_truth_minimises_expected_score_on_the_simplex(spec):
    # Gneiting & Raftery (2007): for a strictly proper rule, E_{Y~p} S(q, Y) is minimised
    # uniquely at q = p. Check p against 200 random q's (Dirichlet(1)) and near-p perturbations.
    rng = np.random.default_rng(2024)
    p = np.array([0.5, 0.25, 0.15, 0.1])
    qs = np.concatenate(
        [
            rng.dirichlet(np.ones(4), size=200),
            p + 0.01 * (rng.dirichlet(np.ones(4), size=20) - 0.25),
        ]
    )
    qs = np.concatenate([p[None], qs])
    F = Categorical(probs=torch.tensor(qs, dtype=F64).unsqueeze(1))  # batch (Q, 1)
    losses = get_objective(spec)(F, torch.arange(4)).numpy()  # (Q, 4): S(q, y) for each y
    expected = losses @ p
    assert np.all(expected[1:] > expected[0]), spec


def test_default_hyperparameters_and_properties():
    assert get_objective("pseudospherical").hyper == {"gamma": 3.0}
    assert get_objective("power").hyper == {"alpha": 2.0}
    assert get_objective("dpd").hyper == {"beta": 0.5}
    assert get_objective("gamma").hyper == {"gamma": 0.5}
    for spec in INTEGRAL_SPECS:
        props = get_objective(spec).properties
        assert (props.proper, props.strictly_proper, props.local, props.robust) == (
            True,
            True,
            False,
            True,
        )
        assert get_objective(spec).kind == "integral"


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("pseudospherical:gamma=1", "gamma > 1"),
        ("pseudospherical:gamma=0.5", "gamma > 1"),
        ("power:alpha=0.5", "alpha > 1"),
        ("dpd:beta=0", "beta > 0"),
        ("gamma:gamma=0", "gamma > 0"),
        ("gamma:gamma=-2", "gamma > 0"),
    ],
)
def test_bad_hyperparameters(spec, fragment):
    with pytest.raises(ParameterError, match=fragment):
        get_objective(spec)


def test_dtype_follows_the_forecast():
    normal = get_family("normal")
    f32 = normal.distribution(
        loc=torch.tensor(0.0, dtype=torch.float32), scale=torch.tensor(1.0, dtype=torch.float32)
    )
    f64 = normal.distribution(loc=0.0, scale=1.0)
    for spec in INTEGRAL_SPECS:
        out = get_objective(spec)(f32, [0.0, 1.0])
        assert out.dtype == torch.float32
        ref = get_objective(spec)(f64, [0.0, 1.0])
        assert ref.dtype == torch.float64
        # float32 rounding: ~1e-7 relative per operation, a handful of operations.
        np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_follows_the_forecast():
    cuda = torch.device("cuda")
    F = get_family("normal").distribution(
        loc=torch.tensor(0.0, dtype=F64, device=cuda),
        scale=torch.tensor(1.0, dtype=F64, device=cuda),
    )
    probs, labels = random_categorical(seed=4, batch=8, k=3)
    C = Categorical(probs=torch.tensor(probs, dtype=F64, device=cuda))
    for spec in INTEGRAL_SPECS:
        out = get_objective(spec)(F, [0.0, 1.0])
        assert out.device.type == "cuda"
        cpu = get_objective(spec)(get_family("normal").distribution(loc=0.0, scale=1.0), [0.0, 1.0])
        torch.testing.assert_close(out.cpu(), cpu, rtol=1e-12, atol=1e-14)
        out = get_objective(spec)(C, torch.tensor(labels, device=cuda))
        np.testing.assert_allclose(
            out.cpu().numpy(), categorical_oracle(spec, probs, labels), rtol=1e-12, atol=1e-13
        )
