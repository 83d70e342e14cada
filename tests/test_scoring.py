"""likelab.score: every objective on every family, against the objectives' own per-observation
losses, against ``scoringrules`` and against scipy's closed forms; shapes; errors.

The data are seeded draws at parameters other than those of the docstring examples.
"""

import math
import re

import numpy as np
import pytest
import scipy.stats as st
import scoringrules as sr
import torch

import likelab
from likelab import get_family, get_objective, list_families, list_objectives, score
from likelab.errors import (
    DataError,
    LikelabError,
    ParameterError,
    UnknownNameError,
    UnsupportedError,
)

RNG = np.random.default_rng(2024)

#: family -> (parameters, observations), observations drawn from a neighbouring distribution.
CASES = {
    "normal": ({"loc": -0.4, "scale": 1.7}, RNG.normal(0.0, 2.0, 25)),
    "student_t": ({"df": 3.5, "loc": 0.6, "scale": 0.8}, RNG.standard_t(3.0, 25)),
    "laplace": ({"loc": 0.2, "scale": 1.3}, RNG.laplace(0.0, 1.0, 25)),
    "logistic": ({"loc": 1.1, "scale": 0.7}, RNG.logistic(1.0, 1.0, 25)),
    "cauchy": ({"loc": -0.3, "scale": 2.2}, RNG.standard_cauchy(25)),
    "uniform": ({"low": -1.5, "high": 2.5}, RNG.uniform(-1.0, 2.0, 25)),
    "exponential": ({"rate": 0.6}, RNG.exponential(2.0, 25)),
    "gamma": ({"concentration": 2.7, "rate": 1.4}, RNG.gamma(2.0, 1.0, 25)),
    "poisson": ({"rate": 3.3}, RNG.poisson(3.0, 25).astype(float)),
    "bernoulli": ({"probs": 0.35}, RNG.integers(0, 2, 25).astype(float)),
    "categorical": (
        {"probs": np.array([0.15, 0.5, 0.1, 0.25])},
        RNG.integers(0, 4, 25).astype(float),
    ),
}

#: Every built-in objective, with its hyperparameters (the registry is checked against this).
SPECS = [
    "log",
    "linear",
    "lq:q=0.5",
    "gce:q=0.7",
    "mae",
    "focal:gamma=2",
    "quadratic",
    "spherical",
    "pseudospherical:gamma=3",
    "power:alpha=2.5",
    "dpd:beta=0.5",
    "gamma:gamma=0.5",
    "crps",
    "hyvarinen",
]


def test_every_builtin_objective_and_family_is_covered():
    names = {get_objective(s).name for s in SPECS} | {"product"}
    assert names == set(list_objectives(include_user=False))
    assert set(CASES) == set(list_families())


@pytest.mark.parametrize("family", list(CASES))
@pytest.mark.parametrize("spec", SPECS)
def test_score_is_the_objectives_own_per_observation_loss(spec, family):
    params, y = CASES[family]
    obj = get_objective(spec)
    dist = get_family(family).distribution(**params)
    try:
        want = obj.loss(dist, torch.as_tensor(y))
    except UnsupportedError as exc:  # the objective declares the family unsupported
        with pytest.raises(
            UnsupportedError, match=rf"^{re.escape(obj.spec)} cannot score "
        ) as info:
            score(spec, family, y, **params)
        assert str(exc) in str(info.value)  # with the objective's own reason
        return
    got = score(spec, family, y, **params)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == y.shape
    np.testing.assert_array_equal(got, want.detach().numpy())


def test_the_unsupported_pairs_are_the_ones_the_objectives_refuse():
    refused = set()
    for spec in SPECS:
        for family, (params, y) in CASES.items():
            try:
                score(spec, family, y, **params)
            except UnsupportedError:
                refused.add((get_objective(spec).name, family))
    # CRPS: no finite mean (Cauchy) or no order (categorical); Hyvärinen: no smooth density
    assert refused == {
        ("crps", "cauchy"),
        ("crps", "categorical"),
        ("hyvarinen", "laplace"),
        ("hyvarinen", "uniform"),
        ("hyvarinen", "poisson"),
        ("hyvarinen", "bernoulli"),
        ("hyvarinen", "categorical"),
    }


# ------------------------------------------------------------------ against scoringrules
# Both sides are float64 closed forms of the same formulas (likelab's special functions,
# scipy's in scoringrules); tests/objectives/test_crps.py measured the largest gap, ~4e-13
# relative, at a Student-t with large df. Here df is small: rtol 1e-11 (atol for values near 0).
SCORINGRULES = {
    ("crps", "normal"): lambda y, p: sr.crps_normal(y, p["loc"], p["scale"]),
    ("crps", "student_t"): lambda y, p: sr.crps_t(y, p["df"], p["loc"], p["scale"]),
    ("crps", "laplace"): lambda y, p: sr.crps_laplace(y, p["loc"], p["scale"]),
    ("crps", "logistic"): lambda y, p: sr.crps_logistic(y, p["loc"], p["scale"]),
    ("crps", "uniform"): lambda y, p: sr.crps_uniform(y, p["low"], p["high"]),
    ("crps", "exponential"): lambda y, p: sr.crps_exponential(y, p["rate"]),
    ("crps", "gamma"): lambda y, p: sr.crps_gamma(y, p["concentration"], p["rate"]),
    ("crps", "poisson"): lambda y, p: sr.crps_poisson(y, p["rate"]),
    ("log", "normal"): lambda y, p: sr.logs_normal(y, p["loc"], p["scale"]),
    ("log", "student_t"): lambda y, p: sr.logs_t(y, p["df"], p["loc"], p["scale"]),
    ("log", "laplace"): lambda y, p: sr.logs_laplace(y, p["loc"], p["scale"]),
    ("log", "logistic"): lambda y, p: sr.logs_logistic(y, p["loc"], p["scale"]),
    ("log", "uniform"): lambda y, p: sr.logs_uniform(y, p["low"], p["high"]),
    ("log", "exponential"): lambda y, p: sr.logs_exponential(y, p["rate"]),
    ("log", "gamma"): lambda y, p: sr.logs_gamma(y, p["concentration"], p["rate"]),
    ("log", "poisson"): lambda y, p: sr.logs_poisson(y, p["rate"]),
    # scoringrules' binary Brier score is (p - y)²; likelab's brier is Σ_j p_j² - 2 p_y, the
    # two-class Brier score Σ_j (p_j - 1{j=y})² = 2 (p - y)² less 1
    ("brier", "bernoulli"): lambda y, p: 2 * sr.brier_score(y, p["probs"]) - 1,
}


@pytest.mark.parametrize(("spec", "family"), list(SCORINGRULES))
def test_score_matches_scoringrules(spec, family):
    params, y = CASES[family]
    want = np.asarray(SCORINGRULES[spec, family](y, params), dtype=np.float64)
    np.testing.assert_allclose(score(spec, family, y, **params), want, rtol=1e-11, atol=1e-13)


# ------------------------------------------------------------------ against scipy
SCIPY = {
    "normal": lambda p: st.norm(p["loc"], p["scale"]),
    "student_t": lambda p: st.t(p["df"], p["loc"], p["scale"]),
    "laplace": lambda p: st.laplace(p["loc"], p["scale"]),
    "logistic": lambda p: st.logistic(p["loc"], p["scale"]),
    "cauchy": lambda p: st.cauchy(p["loc"], p["scale"]),
    "uniform": lambda p: st.uniform(p["low"], p["high"] - p["low"]),
    "exponential": lambda p: st.expon(scale=1 / p["rate"]),
    "gamma": lambda p: st.gamma(p["concentration"], scale=1 / p["rate"]),
    "poisson": lambda p: st.poisson(p["rate"]),
    "bernoulli": lambda p: st.bernoulli(p["probs"]),
}


def _density(frozen, y):
    return frozen.pmf(y) if hasattr(frozen, "pmf") else frozen.pdf(y)


@pytest.mark.parametrize("family", list(SCIPY))
def test_local_scores_are_scipys_density(family):
    params, y = CASES[family]
    f = _density(SCIPY[family](params), y)
    # the same float64 density by two implementations: agreement to a few ulps of log f, well
    # inside rtol 1e-12 (the log-gamma terms of student_t and gamma are the largest)
    np.testing.assert_allclose(score("log", family, y, **params), -np.log(f), rtol=1e-12)
    np.testing.assert_allclose(score("linear", family, y, **params), -f, rtol=1e-12)
    # Lq (Ferrari & Yang 2010): (1 - f^(1-q)) / (1 - q)
    want = (1 - f**0.5) / 0.5
    np.testing.assert_allclose(score("lq:q=0.5", family, y, **params), want, rtol=1e-11)


def test_categorical_scores_are_the_textbook_formulas():
    params, y = CASES["categorical"]
    p, k = params["probs"], y.astype(int)
    onehot = np.eye(4)[k]
    brier = ((p - onehot) ** 2).sum(1)  # Brier (1950)
    np.testing.assert_allclose(score("brier", "categorical", y, **params), brier - 1, rtol=1e-14)
    np.testing.assert_allclose(score("log", "categorical", y, **params), -np.log(p[k]), rtol=1e-14)
    spherical = -p[k] / np.sqrt((p**2).sum())  # Good (1971)
    np.testing.assert_allclose(score("spherical", "categorical", y, **params), spherical, 1e-14)


def test_integral_scores_of_the_normal_are_the_closed_forms():
    params, y = CASES["normal"]
    s, f = params["scale"], st.norm(params["loc"], params["scale"]).pdf(y)
    int_f2 = 1 / (2 * s * math.sqrt(math.pi))  # ∫ φ_σ² = 1/(2σ√π)
    np.testing.assert_allclose(score("quadratic", "normal", y, **params), int_f2 - 2 * f, 1e-12)
    np.testing.assert_allclose(
        score("spherical", "normal", y, **params), -f / math.sqrt(int_f2), rtol=1e-12
    )
    # DPD (Basu et al. 1998): ∫ f^(1+β) - (1 + 1/β) f(y)^β, ∫ φ_σ^(1+β) = (2πσ²)^(-β/2) / √(1+β)
    b = 0.5
    integral = (2 * math.pi * s**2) ** (-b / 2) / math.sqrt(1 + b)
    want = integral - (1 + 1 / b) * f**b
    np.testing.assert_allclose(score("dpd:beta=0.5", "normal", y, **params), want, rtol=1e-12)


def test_hyvarinen_of_the_normal_is_its_closed_form():
    params, y = CASES["normal"]
    m, s = params["loc"], params["scale"]
    # ∂ log f = -(y - μ)/σ², ∂² log f = -1/σ²: S = -2/σ² + (y - μ)²/σ⁴ (Hyvärinen 2005)
    want = -2 / s**2 + (y - m) ** 2 / s**4
    np.testing.assert_allclose(score("hyvarinen", "normal", y, **params), want, rtol=1e-12)


# ------------------------------------------------------------------ shapes and forms
def test_parameters_broadcast_with_the_observations():
    y = np.array([-1.0, 0.5, 2.0])
    loc = np.array([[0.0], [1.0]])
    got = score("crps", "normal", y, loc=loc, scale=2.0)
    assert got.shape == (2, 3)
    for i in range(2):
        np.testing.assert_array_equal(got[i], score("crps", "normal", y, loc=loc[i, 0], scale=2.0))
    per_obs = score("log", "normal", y, loc=np.array([0.0, 1.0, 2.0]), scale=[1.0, 2.0, 3.0])
    np.testing.assert_allclose(per_obs, -st.norm([0, 1, 2], [1, 2, 3]).logpdf(y), rtol=1e-13)
    probs = np.array([[0.2, 0.8], [0.6, 0.4]])  # one forecast per observation, classes last
    np.testing.assert_allclose(
        score("log", "categorical", [1, 0], probs=probs), -np.log([0.8, 0.6])
    )
    scalar = score("crps", "normal", 0.0, loc=0.0, scale=1.0)
    assert scalar.shape == () and float(scalar) == pytest.approx(
        (math.sqrt(2) - 1) / math.sqrt(math.pi)
    )


def test_specs_families_objects_and_torch_forecasts():
    y = np.array([0.3, 1.2])
    base = score("dpd:beta=0.3", "student_t", y, df=4.0, loc=0.0, scale=1.0)
    np.testing.assert_array_equal(
        score("dpd:beta=0.3", "student_t:df=4", y, loc=0.0, scale=1.0), base
    )
    np.testing.assert_array_equal(
        score(
            get_objective("dpd", beta=0.3), get_family("student_t"), y, df=4.0, loc=0.0, scale=1.0
        ),
        base,
    )
    dist = torch.distributions.StudentT(torch.tensor(4.0, dtype=torch.float64), 0.0, 1.0)
    np.testing.assert_allclose(score("dpd:beta=0.3", dist, y), base, rtol=1e-12)
    # a user objective and a phi-expression
    np.testing.assert_allclose(
        score("phi:-log(p)", "student_t", y, df=4.0, loc=0.0, scale=1.0),
        score("log", "student_t", y, df=4.0, loc=0.0, scale=1.0),
        rtol=1e-14,
    )
    np.testing.assert_allclose(
        score(lambda dist, y: -dist.log_prob(y), "normal", y, loc=0.0, scale=1.0),
        -st.norm.logpdf(y),
        rtol=1e-14,
    )


def test_exported_from_the_package():
    assert likelab.score is score and "score" in likelab.__all__


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: score("nope", "normal", [0.0], loc=0, scale=1), UnknownNameError, "'nope'"),
        (lambda: score("log", "gauss", [0.0], loc=0, scale=1), UnknownNameError, "'gauss'"),
        (lambda: score("log", "normal", [0.0], loc=0), ParameterError, "free parameters: scale"),
        (lambda: score("log", "normal", [0.0], loc=0, scale=1, df=2), ParameterError, "'df'"),
        (
            lambda: score("dpd", "normal", [0.0], loc=0, scale=1, beta=0.2),
            ParameterError,
            "beta is a parameter of the objective.*dpd:beta=0.2",
        ),
        (
            lambda: score("log", "normal", [0.0], loc=0, scale=-1),
            ParameterError,
            "'scale' must be > 0",
        ),
        (lambda: score("dpd:beta=-1", "normal", [0.0], loc=0, scale=1), ParameterError, "beta"),
        (
            lambda: score("log", "normal", [0.0, np.nan], loc=0, scale=1),
            DataError,
            "observation 1 is nan",
        ),
        (
            lambda: score("log", "normal", [np.inf], loc=0, scale=1),
            DataError,
            "observation 0 is inf",
        ),
        (lambda: score("log", "poisson", [1.5], rate=1.0), DataError, "outside the support"),
        (
            lambda: score("log", "categorical", [2], probs=[0.5, 0.5]),
            DataError,
            "not a class in 0..1",
        ),
        (lambda: score("log", "normal", ["a"], loc=0, scale=1), DataError, "numeric"),
        (lambda: score("log", "normal", [], loc=0, scale=1), DataError, "empty"),
        (
            lambda: score("log", "normal", [0.0, 1.0, 2.0], loc=[0.0, 1.0], scale=1),
            DataError,
            r"shape \(3,\) do not broadcast.*\(2,\)",
        ),
        (
            lambda: score("log", "normal", [0.0], loc=[0.0, 1.0], scale=[1.0, 2.0, 3.0]),
            ParameterError,
            r"loc \(2,\), scale \(3,\)",
        ),
        (
            lambda: score("product", "normal", [0.0], loc=0, scale=1),
            UnsupportedError,
            "whole batch",
        ),
        (
            lambda: score("crps", "cauchy", [0.0], loc=0, scale=1),
            UnsupportedError,
            "crps cannot score cauchy",
        ),
        (
            lambda: score("log", st.norm(0, 1), [0.0], loc=0),
            ParameterError,
            "already holds its parameters",
        ),
        (lambda: score("log", 3.0, [0.0]), LikelabError, "family must be a family spec"),
        (
            lambda: score("log", "normal:scale=1", [0.0], loc=0, scale=1),
            ParameterError,
            "held fixed",
        ),
    ],
)
def test_bad_inputs_raise_likelab_errors_naming_what_is_wrong(call, error, match):
    with pytest.raises(error, match=match):
        call()
