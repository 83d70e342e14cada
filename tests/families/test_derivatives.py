"""Closed-form derivatives of log f against autograd of ``log_prob`` (the independent oracle)."""

import pytest
import torch

from likelab.families import get_family
from likelab.families.derivatives import log_prob_derivatives

CASES = {
    "normal": {"loc": 0.3, "scale": 1.7},
    "student_t": {"df": 3.5, "loc": -0.2, "scale": 0.8},
    "laplace": {"loc": 0.1, "scale": 2.0},
    "logistic": {"loc": 0.5, "scale": 1.3},
    "cauchy": {"loc": 0.0, "scale": 0.7},
    "exponential": {"rate": 1.5},
    "poisson": {"rate": 3.2},
    "gamma": {"concentration": 2.5, "rate": 0.7},
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seed", [1, 2])
def test_value_gradient_and_hessian_match_autograd(name, seed):
    fam = get_family(name)
    params = CASES[name]
    y = torch.as_tensor(fam.sample(40, seed=seed, **params))
    names = fam.param_names
    theta = torch.tensor([params[n] for n in names], dtype=torch.float64)

    def ell(t):
        return fam.distribution_unchecked({n: t[i] for i, n in enumerate(names)}).log_prob(y)

    value, grad, hess = log_prob_derivatives(fam.distribution(**params), y)
    jac = torch.autograd.functional.jacobian(ell, theta)
    hes = torch.stack(
        [torch.autograd.functional.hessian(lambda t, i=i: ell(t)[i], theta) for i in range(len(y))]
    )
    # Both are exact formulas evaluated in float64: agreement to a few ulps of the magnitudes.
    torch.testing.assert_close(value, ell(theta), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(grad, jac, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hess, hes, rtol=1e-12, atol=1e-12)


def test_batched_shapes_follow_broadcasting():
    fam = get_family("student_t")
    dist = fam.distribution(
        df=torch.full((5, 1), 4.0), loc=torch.zeros(5, 1), scale=torch.ones(5, 1)
    )
    value, grad, hess = log_prob_derivatives(dist, torch.randn(5, 7, dtype=torch.float64))
    assert value.shape == (5, 7) and grad.shape == (5, 7, 3) and hess.shape == (5, 7, 3, 3)


def test_unregistered_type_returns_none():
    dist = get_family("uniform").distribution(low=0.0, high=1.0)
    assert log_prob_derivatives(dist, torch.tensor([0.5])) is None
