"""Local scoring rules: log, linear (sum), lq, gce, mae, focal.

Oracles: numpy formulas on Categorical forecasts; scipy.stats densities for every parametric
family; the scoringrules package for the log score; identities between the rules;
torch.autograd.gradcheck; and the improperness of the linear score on the simplex.
"""

from __future__ import annotations

import numpy as np
import pytest
import scoringrules as sr
import torch
from torch.distributions import Categorical

from likelab.families import get_family
from likelab.objectives import get_objective

from .conftest import (
    CASE_BY_ID,
    LOCAL_SPECS,
    assert_gradcheck,
    assert_gradcheck_categorical_logits,
    categorical_oracle,
    gradcheck_observations,
    numpy_loss,
    random_categorical,
)

F64 = torch.float64


# ----------------------------------------------------------------------------- Categorical
@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_categorical_matches_numpy_formula(local_spec, k):
    probs, labels = random_categorical(seed=k, batch=50, k=k)
    F = Categorical(probs=torch.tensor(probs, dtype=F64))
    got = get_objective(local_spec)(F, torch.tensor(labels)).numpy()
    want = categorical_oracle(local_spec, probs, labels)
    # f(y) = exp(log p_y) round-trips with ~1e-16·|log p| relative error; the absolute floor
    # covers losses near zero (e.g. 1 - p_y^q for p_y close to 1).
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("k", [2, 3, 6])
def test_mae_is_l1_distance_to_one_hot(k):
    # Ghosh et al. (2017): MAE = ||e_y - p||_1, written here as the sum over classes.
    probs, labels = random_categorical(seed=20 + k, batch=50, k=k)
    l1 = np.abs(np.eye(k)[labels] - probs).sum(-1)
    F = Categorical(probs=torch.tensor(probs, dtype=F64))
    got = get_objective("mae")(F, torch.tensor(labels)).numpy()
    np.testing.assert_allclose(got, l1, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- parametric
def test_density_matches_scipy(case):
    got = case.dist().log_prob(case.y_tensor()).exp().numpy()
    want = case.pdf(case.y)
    # torch's log_prob and scipy's pdf are independent float64 implementations: agreement to a
    # few ulp of the log, i.e. ~1e-15·|log f| relative.
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0.0)


def test_objective_matches_scipy_formula(case, local_spec):
    got = get_objective(local_spec)(case.dist(), case.y_tensor()).numpy()
    want = numpy_loss(local_spec, case.pdf(case.y), lambda k: np.nan)
    # Densities agree to ~1e-15 relative (test above); the transforms (powers ≤ 2.5, log, 1 - x)
    # amplify that by at most |log f|·|exponent| / |1 - f^a| ≈ 1e2 at these observations.
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)


def _scoringrules_log(case) -> np.ndarray:
    p, y = case.params, np.asarray(case.y, dtype=np.float64)
    table = {
        "normal": lambda: sr.logs_normal(y, p.get("loc"), p.get("scale")),
        "student_t": lambda: sr.logs_t(y, p.get("df"), p.get("loc"), p.get("scale")),
        "laplace": lambda: sr.logs_laplace(y, p.get("loc"), p.get("scale")),
        "logistic": lambda: sr.logs_logistic(y, p.get("loc"), p.get("scale")),
        "cauchy": lambda: sr.logs_t(y, 1.0, p.get("loc"), p.get("scale")),  # Cauchy = t(1)
        "uniform": lambda: sr.logs_uniform(y, p.get("low"), p.get("high")),
        "exponential": lambda: sr.logs_exponential(y, p.get("rate")),
        "gamma": lambda: sr.logs_gamma(y, p.get("concentration"), p.get("rate")),
        "poisson": lambda: sr.logs_poisson(y, p.get("rate")),
        "bernoulli": lambda: sr.logs_binomial(y, 1, p.get("probs")),  # Bernoulli = Bin(1, p)
    }
    with np.errstate(divide="ignore"):
        return np.asarray(table[case.family](), dtype=np.float64)


def test_log_matches_scoringrules(case):
    got = get_objective("log")(case.dist(), case.y_tensor()).numpy()
    want = _scoringrules_log(case)
    # Independent float64 implementations of -log f: a few ulp of |log f| (+inf outside the
    # uniform's support on both sides).
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- identities
def _forecasts():
    probs, labels = random_categorical(seed=5, batch=40, k=5)
    yield Categorical(probs=torch.tensor(probs, dtype=F64)), torch.tensor(labels)
    for which in ("normal", "normal-narrow", "student_t-df1.5", "gamma-a0.8", "poisson"):
        yield CASE_BY_ID[which].dist(), CASE_BY_ID[which].y_tensor()


def test_gce_q1_is_half_mae():
    for F, y in _forecasts():
        torch.testing.assert_close(
            get_objective("gce:q=1")(F, y), get_objective("mae")(F, y) / 2, rtol=1e-13, atol=1e-15
        )


@pytest.mark.parametrize("a", [0.1, 0.3, 0.5, 0.9])
def test_lq_is_gce_at_one_minus_q(a):
    # Ferrari & Yang's (1 - f^{1-q})/(1-q) at q = a is Zhang & Sabuncu's (1 - f^q)/q at q = 1 - a.
    for F, y in _forecasts():
        torch.testing.assert_close(
            get_objective("lq", q=a)(F, y),
            get_objective("gce", q=1.0 - a)(F, y),
            rtol=1e-13,
            atol=1e-15,
        )


@pytest.mark.parametrize("spec", ["lq:q=1", "focal:gamma=0"])
def test_special_cases_equal_log(spec):
    for F, y in _forecasts():
        torch.testing.assert_close(
            get_objective(spec)(F, y), get_objective("log")(F, y), rtol=0.0, atol=0.0
        )


def test_lq_tends_to_log():
    # (1 - f^{1-q})/(1-q) = -log f - (1-q)(log f)²/2 + O((1-q)²): the gap is of first order.
    probs, labels = random_categorical(seed=9, batch=30, k=4)
    F, y = Categorical(probs=torch.tensor(probs, dtype=F64)), torch.tensor(labels)
    logf = np.log(probs[np.arange(30), labels])
    eps = 1e-6
    gap = (get_objective("lq", q=1 - eps)(F, y) - get_objective("log")(F, y)).numpy() / eps
    # Second-order term relative size ~eps·|log f|/3 ≤ 1e-5; rounding ~1e-16/eps = 1e-10.
    np.testing.assert_allclose(gap, -(logf**2) / 2, rtol=1e-4, atol=1e-8)


def test_focal_weight_vanishes_where_density_exceeds_one():
    # A density above 1 makes (1 - f)_+ = 0: the focal loss treats such points as certain.
    F = get_family("normal").distribution(loc=0.0, scale=0.05)  # f(0) ≈ 7.98
    out = get_objective("focal:gamma=2")(F, torch.tensor([0.0, 0.01], dtype=F64))
    assert torch.all(out == 0)


# ----------------------------------------------------------------------------- gradients
GRAD_CASES = [
    "normal",
    "student_t-df5",
    "laplace",
    "logistic",
    "cauchy",
    "gamma-a3",
    "exponential",
    "poisson",
    "bernoulli",
]


@pytest.mark.parametrize("which", GRAD_CASES)
def test_gradcheck_parameters_and_y(local_spec, which):
    case = CASE_BY_ID[which]
    y = gradcheck_observations(case)
    # focal's weight (1 - f)_+ has a kink at f = 1: keep observations where f < 0.99.
    y = y[get_family(case.family).distribution(**case.params).log_prob(y).exp() < 0.99]
    assert y.numel() >= 2
    assert_gradcheck(get_objective(local_spec), case, y)


def test_gradcheck_categorical_logits(local_spec):
    assert_gradcheck_categorical_logits(get_objective(local_spec), seed=1)


# ----------------------------------------------------------------------------- properness
@pytest.mark.parametrize("spec", ["linear", "sum", "mae"])
def test_linear_score_is_improper(spec):
    # Gneiting & Raftery (2007) sec. 4.1: the linear score encourages over-prediction at the
    # modes. Under p, E S_lin(q, Y) = -Σ p_y q_y is minimised by the point mass on the mode,
    # which scores -p_max < -Σ p_y² (the truth's score). mae = 2(1 + S_lin) behaves the same.
    p = np.array([0.5, 0.25, 0.15, 0.1])
    point_mass = np.array([1.0, 0.0, 0.0, 0.0])
    rng = np.random.default_rng(1)
    qs = np.concatenate([p[None], point_mass[None], rng.dirichlet(np.ones(4), size=200)])
    F = Categorical(probs=torch.tensor(qs, dtype=F64).unsqueeze(1))
    expected = get_objective(spec)(F, torch.arange(4)).numpy() @ p
    assert expected[1] < expected[0]  # the point mass beats the truth
    assert expected[1] <= expected.min()  # ... and every random forecast
    lin_truth, lin_mode = -(p**2).sum(), -p.max()
    want = [2 * (1 + lin_truth), 2 * (1 + lin_mode)] if spec == "mae" else [lin_truth, lin_mode]
    np.testing.assert_allclose(expected[:2], want, rtol=1e-12)


def test_log_is_proper_on_the_simplex():
    rng = np.random.default_rng(3)
    p = np.array([0.5, 0.25, 0.15, 0.1])
    qs = np.concatenate([p[None], rng.dirichlet(np.ones(4), size=200)])
    F = Categorical(probs=torch.tensor(qs, dtype=F64).unsqueeze(1))
    expected = get_objective("log")(F, torch.arange(4)).numpy() @ p
    assert np.all(expected[1:] > expected[0])


def test_local_properties():
    assert get_objective("log").properties.strictly_proper is True
    assert get_objective("linear").properties.proper is False
    assert get_objective("lq:q=1").properties.proper is True
    assert get_objective("lq:q=0.5").properties.proper is False
    assert get_objective("focal:gamma=0").properties.strictly_proper is True
    assert get_objective("focal:gamma=2").properties.proper is False
    for spec in LOCAL_SPECS:
        assert get_objective(spec).properties.local is True
