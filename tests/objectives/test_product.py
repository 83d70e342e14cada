"""The batch-level ``product`` objective: -∏ f(y_i), computed naively on purpose.

Oracles: numpy products of the class probabilities, -exp(-n · log risk), scipy densities, exact
powers of 0.2 for the underflow demonstration, and torch.autograd.gradcheck.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Categorical

from likelab.errors import UnsupportedError
from likelab.families import get_family
from likelab.objectives import get_objective

from .conftest import CASES, random_categorical

F64 = torch.float64
CASE_BY_ID = {c.id: c for c in CASES}


@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_categorical_risk_matches_numpy_product(k):
    # Batch (R, n) = (5, 50): one product of 50 class probabilities per row.
    probs, labels = random_categorical(seed=30 + k, batch=250, k=k)
    probs, labels = probs.reshape(5, 50, k), labels.reshape(5, 50)
    want = -np.prod(np.take_along_axis(probs, labels[..., None], -1)[..., 0], axis=-1)
    F = Categorical(probs=torch.tensor(probs, dtype=F64))
    got = get_objective("product").risk(F, torch.tensor(labels)).numpy()
    assert got.shape == (5,)
    # 50 multiplications each rounding by ≤ 2^-53, plus the exp(log p) round trip: ≤ ~1e-13.
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0.0)


def test_risk_along_another_dim():
    probs, labels = random_categorical(seed=1, batch=12, k=3)
    probs, labels = probs.reshape(4, 3, 3), labels.reshape(4, 3)
    F = Categorical(probs=torch.tensor(probs, dtype=F64))
    got = get_objective("product").risk(F, torch.tensor(labels), dim=0).numpy()
    want = -np.prod(np.take_along_axis(probs, labels[..., None], -1)[..., 0], axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-13)


@pytest.mark.parametrize(
    "which",
    ["normal", "student_t-df1.5", "laplace", "gamma-a0.8", "poisson", "bernoulli", "uniform"],
)
def test_parametric_risk_matches_scipy_product(which):
    case = CASE_BY_ID[which]
    got = float(get_objective("product").risk(case.dist(), case.y_tensor()))
    want = -float(np.prod(case.pdf(case.y)))
    # A product of 4 densities, each agreeing with scipy to ~1e-15 relative.
    assert got == pytest.approx(want, rel=1e-12, abs=0.0)


@pytest.mark.parametrize(
    "which", ["normal", "student_t-df5", "gamma-a3", "poisson", "bernoulli", "categorical"]
)
def test_product_is_exp_of_minus_n_log_risk(which):
    # -∏ f = -exp(Σ log f) = -exp(-n · mean(-log f)) where nothing underflows (n = 4..40 here).
    if which == "categorical":
        probs, labels = random_categorical(seed=2, batch=40, k=5)
        F, y = Categorical(probs=torch.tensor(probs, dtype=F64)), torch.tensor(labels)
    else:
        F, y = CASE_BY_ID[which].dist(), CASE_BY_ID[which].y_tensor()
    n = y.shape[-1]
    product = get_objective("product").risk(F, y)
    log_risk = get_objective("log").risk(F, y)
    assert float(product) < 0.0  # no underflow at these sizes
    # exp amplifies the absolute error of n·log_risk (~n·1e-16·|log f|) into a relative error.
    torch.testing.assert_close(product, -torch.exp(-n * log_risk), rtol=1e-12, atol=0.0)


def test_product_underflows_in_float32_but_not_float64():
    # 200 likelihoods of 0.2: 0.2^200 ≈ 1.6e-140, below float32's smallest subnormal (1.4e-45)
    # but far above float64's (4.9e-324).
    n = 200
    y = torch.zeros(n, dtype=torch.long)
    product = get_objective("product")
    for dtype, underflows in ((torch.float32, True), (torch.float64, False)):
        F = Categorical(probs=torch.tensor([0.2, 0.8], dtype=dtype))
        risk = product.risk(F, y)
        assert risk.dtype == dtype
        if underflows:
            assert float(risk) == 0.0
        else:
            assert float(risk) == pytest.approx(-(0.2**n), rel=1e-12)
            assert float(risk) == pytest.approx(-math.exp(n * math.log(0.2)), rel=1e-12)
    # The log risk is fine in both precisions: -log 0.2 = 1.609...
    for dtype in (torch.float32, torch.float64):
        F = Categorical(probs=torch.tensor([0.2, 0.8], dtype=dtype))
        assert float(get_objective("log").risk(F, y)) == pytest.approx(-math.log(0.2), rel=1e-6)


def test_product_gradient_vanishes_with_the_underflow():
    # d/dz of -∏ f vanishes with the product in float32; the log risk's gradient does not.
    n = 200
    y = torch.zeros(n, dtype=torch.long)
    for dtype, vanishes in ((torch.float32, True), (torch.float64, False)):
        logits = torch.tensor([math.log(0.2), math.log(0.8)], dtype=dtype, requires_grad=True)
        get_objective("product").risk(Categorical(logits=logits), y).backward()
        assert bool((logits.grad == 0).all()) is vanishes
        logits.grad = None
        get_objective("log").risk(Categorical(logits=logits), y).backward()
        # d/dz_0 of -log softmax(z)_0 = -(1 - p_0) = -0.8 per observation; the mean keeps it.
        assert float(logits.grad[0]) == pytest.approx(-0.8, rel=1e-6)


def test_loss_is_refused_risk_works():
    objective = get_objective("product")
    F = get_family("normal").distribution(loc=0.0, scale=1.0)
    y = torch.tensor([0.0, 1.0], dtype=F64)
    assert objective.batch_level
    with pytest.raises(UnsupportedError, match="whole batch"):
        objective.loss(F, y)
    with pytest.raises(UnsupportedError):
        objective(F, y)
    want = -math.exp(-0.5) / (2 * math.pi)  # -φ(0)φ(1) = -(2π)^{-1/2} · (2π)^{-1/2} e^{-1/2}
    assert float(objective.risk(F, y)) == pytest.approx(want, rel=1e-14)


def test_properties_mark_a_demonstration():
    objective = get_objective("product")
    assert objective.properties.demonstration is True
    assert objective.kind == "batch"
    assert get_objective("joint").name == "product"


@pytest.mark.parametrize("which", ["normal", "student_t-df5", "gamma-a3", "laplace"])
def test_gradcheck_parameters_and_y(which):
    case = CASE_BY_ID[which]
    names = list(case.params)
    params = [torch.tensor(case.params[n], dtype=F64, requires_grad=True) for n in names]
    y = case.y_tensor()
    if case.family == "laplace":
        y = y[y != case.params["loc"]]
    y = y.clone().requires_grad_(True)
    fam = get_family(case.family)
    risk = get_objective("product").risk

    def fn(*args):
        return risk(fam.distribution(**dict(zip(names, args[:-1], strict=True))), args[-1])

    assert torch.autograd.gradcheck(fn, (*params, y), eps=1e-6, atol=1e-8, rtol=1e-5)


def test_gradcheck_categorical_logits():
    torch.manual_seed(2)
    logits = torch.randn(3, 5, 4, dtype=F64, requires_grad=True)
    y = torch.randint(0, 4, (3, 5))
    risk = get_objective("product").risk
    assert torch.autograd.gradcheck(
        lambda z: risk(Categorical(logits=z), y), (logits,), eps=1e-6, atol=1e-8, rtol=1e-5
    )
