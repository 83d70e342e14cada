"""Fitting with a user's own objective: a registered function and a plain callable."""

import numpy as np
import torch

from likelab import fit, get_family, objective


@objective("test_fit_huberised_nll", formula="-log f(y), clipped at 10", replace=True)
def huberised_nll(dist, y):
    """Negative log-likelihood capped at 10: a user's robust variant."""
    return torch.clamp(-dist.log_prob(y), max=10.0)


def test_registered_user_objective_fits_like_its_formula():
    y = get_family("normal").sample((5, 200), seed=4, loc=1.0, scale=2.0)
    res = fit(y, "normal", "test_fit_huberised_nll")
    assert res.converged.all() and res.objective == "test_fit_huberised_nll"
    # no observation is 10 nats away from these fits, so the cap is inactive: the normal MLE
    np.testing.assert_allclose(res.params["loc"], y.mean(1), rtol=1e-9)
    np.testing.assert_allclose(res.params["scale"], y.std(1), rtol=1e-9)
    assert np.all(np.isfinite(res.se["loc"]))


def test_plain_callable_objective():
    y = get_family("laplace").sample((3, 150), seed=5, loc=0.5, scale=1.0)

    def half_nll(dist, y):
        return -0.5 * dist.log_prob(y)

    res = fit(y, "normal", half_nll)  # same minimiser as "log"
    ref = fit(y, "normal", "log")
    np.testing.assert_allclose(res.params["loc"], ref.params["loc"], rtol=1e-9)
    np.testing.assert_allclose(res.value, ref.value / 2, rtol=1e-12)
    # the sandwich is invariant to scaling the loss: same SEs as the log fit
    np.testing.assert_allclose(res.se["scale"], ref.se["scale"], rtol=1e-7)


def test_a_mean_loss_is_refused_before_fitting():
    """PyTorch losses reduce to the mean by default; fitting one used to crash inside torch."""
    import pytest

    from likelab.errors import UserCodeError

    y = get_family("poisson").sample(60, seed=6, rate=3.0)

    def mean_nll(dist, y):
        rate, counts = torch.broadcast_tensors(dist.rate, y)
        return torch.nn.functional.poisson_nll_loss(rate, counts, log_input=False)

    with pytest.raises(UserCodeError, match=r"returned one number .* reduction='none'"):
        fit(y, "poisson", mean_nll)

    def per_observation_nll(dist, y):  # the same loss, as the contract asks
        rate, counts = torch.broadcast_tensors(dist.rate, y)
        return torch.nn.functional.poisson_nll_loss(rate, counts, log_input=False, reduction="none")

    # -log f(y) up to log y! (and torch's eps = 1e-8 inside the log): the Poisson MLE, the mean
    res = fit(y, "poisson", per_observation_nll)
    np.testing.assert_allclose(res.params["rate"], y.mean(), rtol=1e-7)


def test_a_function_of_the_likelihood_fits_like_its_local_rule():
    y = get_family("gamma").sample((2, 120), seed=7, concentration=3.0, rate=2.0)

    def of_p(p):
        return -torch.log(p)

    res, ref = fit(y, "gamma", of_p), fit(y, "gamma", "log")
    assert res.converged.all()
    for name in ("concentration", "rate"):
        np.testing.assert_allclose(res.params[name], ref.params[name], rtol=1e-8)
        np.testing.assert_allclose(res.se[name], ref.se[name], rtol=1e-6)
