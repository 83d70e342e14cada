"""Asymptotic bias under contamination and the numerical breakdown point."""

from __future__ import annotations

import math

import pytest

from likelab.asymptotics import contamination_bias
from likelab.errors import ParameterError

CLEAN, OUT = "normal:loc=0,scale=1", "normal:loc=8,scale=1"


def test_log_bias_is_eps_times_outlier_and_breaks_at_half():
    # the KL projection onto N(μ, 1) is the mean: θ*(ε) = 8ε exactly; it crosses the default
    # bound (half the distance 8 between the centres) at ε = 1/2
    r = contamination_bias("log", "normal:scale=1", CLEAN, OUT, [0.0, 0.05, 0.1, 0.3, 0.6])
    assert r.bound == 4.0
    for e, b in zip(r.eps, r.bias["loc"], strict=True):
        assert abs(b - 8 * e) < 1e-8
    lo, hi = r.breakdown_evidence["bracket"]
    assert lo <= 0.5 <= hi and hi - lo <= 0.3 / 1024 + 1e-12
    assert abs(r.breakdown - 0.5) <= 0.3 / 1024


@pytest.mark.parametrize("spec", ["dpd:beta=0.5", "gamma:gamma=0.5", "quadratic"])
def test_robust_objectives_stay_put_under_ten_percent_at_eight(spec):
    # each weighs an observation by a power of its density: at y = 8 that is ~e^{-32 β}, so the
    # pull of the outliers on θ* is below 1e-3 (measured 2e-5 for β = 0.5, 1e-7 for quadratic)
    r = contamination_bias(spec, "normal:scale=1", CLEAN, OUT, [0.0, 0.1])
    assert abs(r.bias["loc"][1]) < 1e-3
    assert r.breakdown is None and "no ε" in r.breakdown_evidence["note"]


def test_bad_eps_and_bound_are_errors():
    for eps in ([1.0], [-0.1], [math.nan], ["x"], []):
        with pytest.raises(ParameterError):
            contamination_bias("log", "normal:scale=1", CLEAN, OUT, eps)
    with pytest.raises(ParameterError):
        contamination_bias("log", "normal:scale=1", CLEAN, OUT, [0.1], bound=-1)
    with pytest.raises(ParameterError):  # no θ* at ε = 0: linear with a free scale
        contamination_bias("linear", "normal", CLEAN, OUT, [0.1])
