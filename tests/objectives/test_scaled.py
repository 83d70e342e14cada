"""Every registered scaled form (likelab.objectives.scaled): σ^a h(z) equals the objective's loss,
h' and h'' equal autograd's derivatives of h in z, and the scale term equals a h - z h'."""

from __future__ import annotations

import pytest
import torch
from torch import distributions as D

from likelab.families import Logistic
from likelab.families.distributions import StudentT
from likelab.objectives import get_objective
from likelab.objectives.scaled import _FORMS, has_scaled_form, scaled_form

T = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
LOC, SCALE = T(0.5), T(2.0)
CASES = [
    ("crps", D.Normal(LOC, SCALE)),
    ("crps", Logistic(LOC, SCALE)),
    ("crps", D.Laplace(LOC, SCALE)),
    ("crps", StudentT(T(4.0), LOC, SCALE)),
    ("crps", StudentT(T(2.7), LOC, SCALE)),
    ("crps", D.StudentT(T(1.5), LOC, SCALE)),
    ("hyvarinen", D.Normal(LOC, SCALE)),
    ("hyvarinen", Logistic(LOC, SCALE)),
    ("hyvarinen", StudentT(T(4.0), LOC, SCALE)),
    ("hyvarinen", D.StudentT(T(0.7), LOC, SCALE)),
    ("hyvarinen", D.Cauchy(LOC, SCALE)),
]
Z = torch.cat([torch.linspace(-40, -3, 40), torch.linspace(-3, 3, 121), torch.linspace(3, 40, 40)])


def test_every_registered_form_is_exercised():
    assert {(name, type(d)) for name, d in CASES} == set(_FORMS)
    assert not has_scaled_form(get_objective("crps"), D.Cauchy)  # no finite mean: no CRPS
    assert not has_scaled_form(get_objective("hyvarinen"), D.Laplace)  # refused: a kink


@pytest.mark.parametrize(("name", "dist"), CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_form_equals_loss_and_its_derivatives(name, dist):
    obj = get_objective(name)
    form = scaled_form(obj, dist)
    z = Z.double().requires_grad_(True)
    y = (LOC + SCALE * z).detach()
    h0, h1, h2, hs = form.h(z)
    want = obj.loss(dist, y, validate=False)
    got = form.scale**form.power * h0
    tol = lambda t: 1e-13 * (1.0 + t.abs())  # noqa: E731
    assert torch.all((got - want).abs() <= tol(want))
    (d1,) = torch.autograd.grad(h0.sum(), z, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), z)
    assert torch.all((h1 - d1).abs() <= tol(d1))
    assert torch.all((h2 - d2).abs() <= tol(d2))
    if hs is not None:
        direct = form.power * h0 - z * h1
        assert torch.all((hs - direct).abs() <= 1e-12 * (1.0 + z.abs()))


@pytest.mark.parametrize("df", [0.7, 4.0, 30.0])
def test_shape_derivatives_equal_autograd(df):
    # hyvarinen on a Student-t with df free: h_ν, h_νν and h_νz against autograd of h in ν, z
    nu = T(df).requires_grad_(True)
    form = scaled_form(get_objective("hyvarinen"), StudentT(nu, LOC, SCALE))
    assert form.shape == "df"
    z = Z.double().requires_grad_(True)
    h0 = form.h(z)[0]
    hn, hnn, hnz = form.h_shape(z)
    tol = lambda t: 1e-12 * (1.0 + t.abs())  # noqa: E731
    for row in range(0, Z.numel(), 7):  # each h(z_i, ν) by autograd in ν, then in ν and z
        (gn,) = torch.autograd.grad(h0[row], nu, retain_graph=True, create_graph=True)
        gnn, gnz = torch.autograd.grad(gn, (nu, z), retain_graph=True)
        assert (hn[row] - gn).abs() <= tol(gn)
        assert (hnn[row] - gnn).abs() <= tol(gnn)
        assert (hnz[row] - gnz[row]).abs() <= tol(gnz[row])
