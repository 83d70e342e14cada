"""The closed-form Newton path of ``fit`` against the autograd path (the same fit, two ways)."""

import sys

import numpy as np
import pytest

from likelab.estimate import fit
from likelab.families import get_family

fit_module = sys.modules["likelab.estimate.fit"]

CASES = [
    ("normal", {"loc": 1.0, "scale": 2.0}, "log", {}),
    ("student_t", {"df": 4.0, "loc": 0.0, "scale": 1.0}, "log", {}),
    ("student_t", {"df": 4.0, "loc": 0.0, "scale": 1.0}, "log", {"df": 4.0}),
    ("logistic", {"loc": -1.0, "scale": 0.5}, "lq:q=0.8", {}),
    ("cauchy", {"loc": 0.0, "scale": 1.0}, "log", {}),
    ("gamma", {"concentration": 3.0, "rate": 2.0}, "log", {}),
    ("exponential", {"rate": 0.5}, "gce:q=0.5", {}),
    ("poisson", {"rate": 4.0}, "log", {}),
    ("normal", {"loc": 0.0, "scale": 1.0}, "linear", {"scale": 1.0}),
]


@pytest.mark.parametrize(("family", "truth", "objective", "fixed"), CASES)
def test_closed_form_and_autograd_paths_agree(family, truth, objective, fixed, monkeypatch):
    y = get_family(family).sample((30, 80), seed=11, **truth)
    assert fit_module._closed_form(
        get_family(family, **fixed),
        fit_module.get_objective(objective),
        fit_module.torch.as_tensor(y[:1, :4]),
    )
    fast = fit(y, family, objective, fixed=fixed)
    monkeypatch.setattr(fit_module, "_closed_form", lambda *a, **k: False)
    slow = fit(y, family, objective, fixed=fixed)
    assert fast.converged.all() and slow.converged.all()
    # Where the likelihood is maximised at df = infinity (no finite MLE: the sample looks
    # normal), both paths stop on the flat ridge at some huge df; there only the values compare,
    # to the flatness of the ridge (1e-8 relative; the ridge falls like 1/df).
    ridge = fast.params.get("df", np.zeros(30)) > 1e5
    np.testing.assert_allclose(fast.value[ridge], slow.value[ridge], rtol=1e-8)
    # Elsewhere both minimise the same function to the optimiser's tolerances: the values agree
    # to rounding, the parameters to about its square root (the minimum is flat to first order).
    ok = ~ridge
    np.testing.assert_allclose(fast.value[ok], slow.value[ok], rtol=1e-12)
    for name in fast.params:
        np.testing.assert_allclose(
            fast.params[name][ok], slow.params[name][ok], rtol=1e-6, atol=1e-8
        )
        np.testing.assert_allclose(fast.se[name][ok], slow.se[name][ok], rtol=1e-5)
