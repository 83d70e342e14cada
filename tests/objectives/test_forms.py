"""Every registered φ form (likelab.objectives.forms) equals its objective's φ."""

from __future__ import annotations

import pytest
import torch

from likelab.objectives import get_objective
from likelab.objectives.forms import _FORMS, ExpLinear, Focal, phi_form

SPECS = ["log", "linear", "lq:q=0.3", "lq:q=0.9", "lq:q=1", "gce:q=0.2", "gce:q=1", "mae"]
FOCAL = ["focal:gamma=0", "focal:gamma=0.5", "focal:gamma=1", "focal:gamma=2", "focal:gamma=3"]


def test_every_registered_form_is_exercised():
    get_objective("log")  # the built-in rules (and their forms) are registered on first use
    assert {s.split(":")[0] for s in SPECS + FOCAL} == set(_FORMS)


@pytest.mark.parametrize("spec", SPECS + FOCAL)
def test_form_equals_phi(spec):
    # ℓ from underflow (e^-700) to densities above 1: φ, φ', φ'' to a few ulp of φ's scale
    ell = torch.cat([torch.linspace(-700, -1, 300), torch.linspace(-1, 4, 300)]).double()
    obj = get_objective(spec)
    form = phi_form(obj)
    assert isinstance(form, Focal if spec in FOCAL[1:] else ExpLinear)
    for want, got in zip(obj.phi(ell), form(ell), strict=True):
        scale = want.abs().clamp(min=1e-300)
        assert torch.all((want - got).abs() <= 4e-16 * scale + 1e-300), spec


def test_no_form_for_rules_outside_it():
    assert phi_form(get_objective("crps")) is None
