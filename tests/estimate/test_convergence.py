"""Non-convergence is a flag with a reason, never an exception, and it is per dataset."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from likelab.estimate import fit
from likelab.estimate.newton import CONVERGED as NEWTON_CONVERGED
from likelab.estimate.newton import saddle_free_direction
from likelab.families import get_family

CONVERGED = set(NEWTON_CONVERGED)


def _flagged(res, i=None) -> bool:
    """Dataset i (or the only one) reported as not converged, with a non-converged reason."""
    conv = res.converged if i is None else res.converged[i]
    reason = res.reason if i is None else res.reason[i]
    return (not bool(conv)) and str(reason) not in CONVERGED and str(reason) != ""


def test_max_iter_one_is_a_flag_not_an_exception():
    y = 1.0 + 2.0 * np.random.default_rng(30).standard_t(4.0, size=(6, 150))
    full = fit(y, "student_t")
    assert full.converged.all() and (full.n_iter > 1).all()  # these data need > 1 iteration
    res = fit(y, "student_t", max_iter=1)
    assert res.converged.dtype == bool and not res.converged.any()
    assert list(res.reason) == ["max_iter"] * 6
    np.testing.assert_array_equal(res.n_iter, 1)
    # the returned point is the one after one step, finite, with its value reported honestly
    assert all(np.isfinite(res.params[k]).all() for k in res.free)
    nll = -stats.t.logpdf(
        y, res.params["df"][:, None], res.params["loc"][:, None], res.params["scale"][:, None]
    ).mean(1)
    np.testing.assert_allclose(res.value, nll, rtol=1e-12)
    assert np.all(res.value >= full.value)


def test_a_dataset_without_an_mle_is_flagged_and_the_others_still_converge():
    # Exponential data that are all 0: the likelihood rate^n grows without bound, the MLE
    # (rate = infinity) does not exist. The other datasets have rate MLE 1 / mean.
    y = np.random.default_rng(31).exponential(2.0, size=(4, 30))
    y[1] = 0.0
    res = fit(y, "exponential")
    assert _flagged(res, 1), (res.converged[1], res.reason[1])
    ok = [0, 2, 3]
    assert res.converged[ok].all()
    # Newton on log(rate): curvature rate * mean = 1 at the optimum, stop at |g| <= 1e-9 (1+|f|)
    np.testing.assert_allclose(res.params["rate"][ok], 1 / y[ok].mean(1), rtol=1e-8)


def test_gamma_on_equal_observations_is_flagged():
    # All observations equal: the likelihood grows without bound as the shape -> infinity at
    # mean fixed (the gamma collapses onto the common value); no MLE.
    res = fit(np.full(25, 2.0), "gamma")
    assert _flagged(res), (res.converged, res.reason)


def test_a_scale_running_to_zero_at_an_observation_is_flagged_before_the_iteration_limit():
    """gce is bounded above but not below: a normal whose location sits on one observation and
    whose scale runs to 0 drives the risk to -inf. Newton used to floor that direction's
    negative curvature (-86) by a threshold that the location's (4e14) set, creep with steps of
    1e-2 and stop at the iteration limit; it now reaches e^-25 and says "boundary"."""
    y = get_family("normal").sample((15, 100), seed=20240603, loc=0.0, scale=1.0)
    res = fit(y[14], "normal", "gce")
    assert res.reason == "boundary" and not res.converged, res.reason
    assert res.n_iter < 100 and res.params["scale"] < math.exp(-25)
    assert math.isnan(res.se["scale"])


def test_a_small_negative_curvature_beside_a_large_one_keeps_its_newton_step():
    """The saddle-free direction takes |λ| for a negative eigenvalue however small beside the
    largest (here -86 beside 4e14: 2e-13 of it), not the floor δ·max|λ| = 400."""
    g = torch.tensor([[0.0, 123.27]], dtype=torch.float64)
    h = torch.tensor([[[3.8e14, 0.0], [0.0, -86.29]]], dtype=torch.float64)
    d = saddle_free_direction(g, h, 1e-12)
    assert abs(d[0, 1].item() - (-123.27 / 86.29)) <= 1e-12 and d[0, 0].item() == 0.0
    # a non-negative curvature that small is still numerically zero: floored
    d = saddle_free_direction(g, h.abs(), 1e-12)
    assert abs(d[0, 1].item() - (-123.27 / (1e-12 * 3.8e14))) <= 1e-9


def test_normal_on_equal_observations_is_flagged():
    # scale -> 0: the NLL decreases without bound.
    y = np.random.default_rng(32).normal(size=(3, 20))
    y[2] = 1.25
    res = fit(y, "normal")
    assert res.converged[:2].all()
    assert _flagged(res, 2), (res.converged[2], res.reason[2])
    assert res.params["loc"][2] == 1.25


def test_start_on_an_underflowed_plateau_is_not_reported_as_converged():
    # The seed's sum of likelihoods, started at mu = 100: every phi_0.1(y_i - 100) is exactly 0
    # in float64, so the risk (-mean likelihood) is exactly 0, its largest possible value, and
    # its gradient and Hessian are exactly 0. This is the flat plateau likelab exists to show,
    # not a minimum; calling it converged ("gtol") would hide exactly that failure.
    y = get_family("normal").sample(10, seed=0, loc=0.0, scale=1.0)
    res = fit(y, "normal:scale=0.1", "linear", start={"loc": 100.0})
    assert float(res.value) == 0.0 and float(res.params["loc"]) == 100.0
    assert _flagged(res), (res.converged, res.reason)
