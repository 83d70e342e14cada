"""Fitting a categorical forecast: proper scores recover the class frequencies, improper ones don't.

The oracle is the empirical frequency vector, which uniquely minimises the empirical risk of every
strictly proper score on the simplex (Gneiting & Raftery 2007, sec. 2-3); the MAE/linear score is
minimised by the point mass on the most frequent class instead.
"""

import numpy as np
import pytest

from likelab import fit, get_family

PROBS = [0.2, 0.5, 0.3]


@pytest.fixture(scope="module")
def labels():
    return get_family("categorical").sample((4, 60), seed=3, probs=PROBS)


@pytest.mark.parametrize(
    "spec",
    [
        "log",
        "quadratic",
        "spherical",
        "pseudospherical:gamma=3",
        "power:alpha=1.5",
        "dpd:beta=0.5",
        "gamma:gamma=0.5",
    ],
)
def test_strictly_proper_scores_recover_the_frequencies(labels, spec):
    res = fit(labels, "categorical", spec)
    freq = np.stack([np.bincount(row.astype(int), minlength=3) / row.size for row in labels])
    assert res.converged.all(), res.reason
    # Newton's gtol (1e-9 on the gradient in logits) bounds the error at ~1e-9 / curvature.
    np.testing.assert_allclose(res.params["probs"], freq, atol=1e-7)
    assert np.all(np.isfinite(res.se["probs"]))


def test_mae_collapses_onto_the_mode(labels):
    res = fit(labels, "categorical", "mae")
    mode = np.array([np.bincount(row.astype(int), minlength=3).argmax() for row in labels])
    np.testing.assert_allclose(res.params["probs"].argmax(-1), mode)
    assert np.all(res.params["probs"].max(-1) > 0.999)
