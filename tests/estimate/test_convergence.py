"""Non-convergence is a flag with a reason, never an exception, and it is per dataset."""

from __future__ import annotations

import numpy as np
from scipy import stats

from likelab.estimate import fit
from likelab.estimate.newton import CONVERGED as NEWTON_CONVERGED
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
