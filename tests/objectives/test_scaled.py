"""Every registered scaled form (likelab.objectives.scaled): σ^a h(z) equals the objective's loss,
h' and h'' equal autograd's derivatives of h in z, and the scale term equals a h - z h'."""

from __future__ import annotations

import math

import mpmath
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


def _crps_t_mp(z, nu):
    """The Student-t CRPS's c(z) (Jordan, Krüger & Lerch 2019) in mpmath at 40 digits."""
    half = mpmath.mpf(1) / 2
    cdf_tail = mpmath.betainc(nu / 2, half, 0, nu / (nu + z * z), regularized=True) / 2
    cdf = 1 - cdf_tail if z > 0 else cdf_tail
    b = mpmath.beta(half, nu / 2)
    k = 2 * mpmath.sqrt(nu) / ((nu - 1) * b)
    const = 2 * mpmath.sqrt(nu) * mpmath.beta(half, nu - half) / ((nu - 1) * b * b)
    return z * (2 * cdf - 1) + k * (1 + z * z / nu) ** (-(nu - 1) / 2) - const


@pytest.mark.parametrize("df", [1.05, 1.5, 2.5, 4.0, 7.3, 30.0, 300.0])
def test_crps_shape_derivatives_equal_mpmath(df, monkeypatch):
    # crps on a Student-t with df free: h_ν, h_νν, h_νz (through the t CDF's df-derivatives,
    # integrated by student_t_cdf_df_derivatives) against mpmath.diff of the whole score at 40
    # digits. Autograd is no oracle for h_νν here: torch's polygamma(1), the second derivative of
    # its lgamma, is off by up to 3e-10 relative (7e-10 of h_νν at df = 1.05, measured).
    monkeypatch.setattr(mpmath.mp, "dps", 40)  # restored after the test
    form = scaled_form(get_objective("crps"), StudentT(T(df), LOC, SCALE))
    rows = [*range(0, Z.numel(), 9), 100]  # 100: z = 0
    z = Z.double()[rows]
    hn, hnn, hnz = form.h_shape(z)
    nu = mpmath.mpf(df)
    for i, zi in enumerate(z.tolist()):
        zm = mpmath.mpf(zi)
        want = (
            mpmath.diff(lambda v, zm=zm: _crps_t_mp(zm, v), nu),
            mpmath.diff(lambda v, zm=zm: _crps_t_mp(zm, v), nu, 2),
            mpmath.diff(lambda v, zm=zm: _crps_t_mp(zm, v), (nu, zm), (1, 1)),
        )
        # Near df = 1, c_ν and its j-th df-derivative are of order (df - 1)^-(1+j) and cancel
        # against the spread term: 1e-14 of that size (50 eps) is added to the 1e-12 relative
        # (measured at df = 1.05: 1.0e-11 absolute on h_νν, 8000 being the term's size).
        for j, (got, w) in enumerate(zip((hn[i], hnn[i], hnz[i]), want, strict=True)):
            cancel = 1e-14 * (df - 1.0) ** -(2 + j) if j < 2 else 0.0
            tol = 1e-12 * (1 + abs(float(w))) + cancel
            assert abs(float(got) - float(w)) <= tol, (j, zi, got, w)


@pytest.mark.parametrize("df", [1.5, 2.7, 7.3, 40.5])
def test_crps_student_t_form_without_a_gradient_equals_the_loss(df, monkeypatch):
    # a fit's z carries no gradient: the form's CDF then comes from the quadrature rules that also
    # give its df-derivatives (computed once per z for h and h_shape), not from student_t_cdf
    from likelab.objectives import scaled

    calls = []
    rules = scaled._student_t_cdf_and_df_derivatives
    monkeypatch.setattr(
        scaled, "_student_t_cdf_and_df_derivatives", lambda *a: calls.append(1) or rules(*a)
    )
    dist = StudentT(T(df), LOC, SCALE)
    obj = get_objective("crps")
    form = scaled_form(obj, dist)
    z = Z.double()
    want = obj.loss(dist, LOC + SCALE * z, validate=False)
    got = form.scale**form.power * form.h(z)[0]
    assert torch.all((got - want).abs() <= 1e-13 * (1.0 + want.abs()))
    form.h_shape(z)
    assert len(calls) == 1  # h and h_shape on the same z: the rules ran once
    form.h(z + 0.0)
    assert len(calls) == 2
    # a small integer df (a fixed one): student_t_cdf's finite forms, no derivatives unasked
    fixed = scaled_form(obj, StudentT(T(4.0), LOC, SCALE))
    want = obj.loss(StudentT(T(4.0), LOC, SCALE), LOC + SCALE * z, validate=False)
    assert torch.all((fixed.scale * fixed.h(z)[0] - want).abs() <= 1e-13 * (1.0 + want.abs()))
    assert len(calls) == 2


def test_crps_shape_derivatives_are_zero_where_the_score_is_infinite():
    # df <= 1: the CRPS is inf (no mean); its derivatives are 0, as autograd gives through where
    form = scaled_form(get_objective("crps"), StudentT(T(0.8, 1.0, 3.0), LOC, SCALE))
    hn, hnn, hnz = form.h_shape(T(-2.0, 0.5, 7.0))
    assert torch.equal(hn[:2], torch.zeros(2, dtype=torch.float64))
    assert torch.equal(hnn[:2], torch.zeros(2, dtype=torch.float64))
    assert torch.equal(hnz[:2], torch.zeros(2, dtype=torch.float64))
    assert torch.isfinite(hn[2]) and hn[2] != 0
    # z = ±inf (a scale of 0): the limits, not inf · 0
    form = scaled_form(get_objective("crps"), StudentT(T(3.5), LOC, SCALE))
    hn, hnn, hnz = form.h_shape(T(math.inf, -math.inf, 1e300))
    assert torch.isfinite(hn).all() and torch.isfinite(hnn).all() and torch.equal(hnz[:2], T(0, 0))
    assert torch.allclose(hn[:2], hn[2:].expand(2), rtol=1e-12)
    assert torch.isinf(form.h(T(math.inf, -math.inf))[0]).all()
