"""Closed-form derivatives of non-local rules (likelab.estimate.structured) against autograd.

For every family with closed-form log-density derivatives and every integral rule, and for crps
and hyvarinen on the location-scale forecasts with a registered form: the risk, its gradient and
Hessian in the unconstrained coordinates, and the sandwich SEs, equal autograd's to 1e-12
relative; the fits through both paths agree; the power integral is evaluated per dataset, never
per observation.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from likelab.estimate import fit, structured
from likelab.estimate.newton import value_grad_hess
from likelab.families import get_family
from likelab.objectives import get_objective

fit_module = sys.modules["likelab.estimate.fit"]

FAMILIES = [  # (family, fixed, truth)
    ("normal", {}, {"loc": 1.0, "scale": 2.0}),
    ("normal", {"scale": 2.0}, {"loc": 1.0, "scale": 2.0}),
    ("student_t", {}, {"df": 4.0, "loc": 0.0, "scale": 1.0}),
    ("student_t", {"df": 4.0}, {"df": 4.0, "loc": 0.0, "scale": 1.0}),
    ("logistic", {}, {"loc": -1.0, "scale": 0.5}),
    ("laplace", {}, {"loc": 0.0, "scale": 1.5}),
    ("cauchy", {}, {"loc": 0.0, "scale": 1.0}),
    ("gamma", {}, {"concentration": 3.0, "rate": 2.0}),
    ("exponential", {}, {"rate": 0.5}),
    ("poisson", {}, {"rate": 4.0}),
]
INTEGRAL = [
    "quadratic",
    "spherical",
    "pseudospherical:gamma=3",
    "power:alpha=2.5",
    "dpd:beta=0.5",
    "gamma:gamma=0.5",
]
SCALED = {  # the (family, fixed) pairs with a closed form of crps / hyvarinen
    "crps": ["normal", "normal:scale=2", "student_t", "student_t:df=4", "logistic", "laplace"],
    "hyvarinen": ["normal", "normal:scale=2", "student_t", "student_t:df=4", "logistic", "cauchy"],
}


def _label(family, fixed):
    return family + "".join(f":{k}={v:g}" for k, v in fixed.items())


def _pairs():
    for family, fixed, truth in FAMILIES:
        for spec in INTEGRAL:
            yield family, fixed, truth, spec
        for spec, where in SCALED.items():
            if _label(family, fixed) in where:
                yield family, fixed, truth, spec


PAIRS = list(_pairs())
IDS = [f"{_label(f, x)}-{s}" for f, x, _, s in PAIRS]


def _data(family, truth, r=6, n=50):
    return torch.as_tensor(get_family(family).sample((r, n), seed=5, **truth))


def _rel(got, want):
    """Largest error relative to the largest entry, per dataset."""
    dims = tuple(range(1, want.dim()))
    err = (got - want).abs().amax(dim=dims) if dims else (got - want).abs()
    ref = want.abs().amax(dim=dims) if dims else want.abs()
    return float((err / ref).max())


def test_plans_exist_exactly_where_documented():
    for family, fixed, truth in FAMILIES:
        fam = get_family(family, **fixed)
        y = _data(family, truth)[:1, :4]
        for spec in INTEGRAL:
            assert structured.plan(fam, get_objective(spec), y) is not None, (family, spec)
        for spec, where in SCALED.items():
            got = structured.plan(fam, get_objective(spec), y) is not None
            assert got == (_label(family, fixed) in where), (family, fixed, spec)
    # local rules have their own closed form; user objectives and the product have none
    y = _data("normal", {"loc": 0.0, "scale": 1.0})[:1, :4]
    for spec in ("log", "lq", "focal", "product"):
        assert structured.plan(get_family("normal"), get_objective(spec), y) is None


CHAIN_RULE = [(f, x, t, s) for f, x, t, s in PAIRS if s in INTEGRAL and f != "poisson"]


@pytest.mark.parametrize(
    ("family", "fixed", "truth", "spec"),
    CHAIN_RULE,
    ids=[f"{_label(f, x)}-{s}" for f, x, _, s in CHAIN_RULE],
)
def test_coefficient_derivatives_by_the_chain_rule_equal_autograd(
    family, fixed, truth, spec, monkeypatch
):
    """Every integral rule's coefficients on every family with closed-form derivatives of
    log ∫f^k take the chain rule (no autograd through the special functions), and equal the
    autograd path's to 1e-12 of the largest entry; their values are the same bits."""
    from likelab.objectives.affine import affine_form

    fam, form = get_family(family, **fixed), affine_form(get_objective(spec))
    y = _data(family, truth)
    gen = torch.Generator().manual_seed(7)
    u = fam.to_unconstrained(fam.start(y))
    natural = fam.to_natural(u + 0.2 * torch.randn(u.shape, generator=gen, dtype=u.dtype))
    got = structured._coefficients_by_chain_rule(fam, form, natural)
    assert got is not None
    monkeypatch.setattr(structured, "_coefficients_by_chain_rule", lambda *a: None)
    want = structured._coefficient_derivatives(fam, form, natural)
    for (gv, gg, gh), (wv, wg, wh) in zip(got, want, strict=True):
        assert torch.equal(gv, wv)
        if wg is None:  # identically zero by autograd: zero (or left out) by the chain rule
            assert gg is None or bool((gg == 0).all())
            assert gh is None or bool((gh == 0).all())
            continue
        assert _rel(gg, wg) <= 1e-12
        # The Hessian's terms g''∇L∇Lᵀ and g'∇²L are of order |∇A|²/|A|; where they cancel
        # exactly (A linear in a parameter: an exponential's ∫f² = λ/2), to rounding of that
        # order, not of the largest entry (zero)
        terms = wg.abs().amax(-1) ** 2 / wv.abs()
        ref = torch.maximum(wh.abs().amax((-1, -2)), terms)
        assert bool(((gh - wh).abs().amax((-1, -2)) <= 1e-12 * ref).all())


@pytest.mark.parametrize(("family", "fixed", "truth", "spec"), PAIRS, ids=IDS)
def test_value_gradient_hessian_equal_autograd(family, fixed, truth, spec):
    fam, obj = get_family(family, **fixed), get_objective(spec)
    y = _data(family, truth)
    plan = structured.plan(fam, obj, y[:1, :4])
    gen = torch.Generator().manual_seed(3)
    u = fam.to_unconstrained(fam.start(y))
    u = u + 0.2 * torch.randn(u.shape, generator=gen, dtype=u.dtype)  # not at a stationary point
    idx = torch.arange(y.shape[0])

    def risk(uu, ii):
        return obj.risk(fit_module._dist(fam, fam.to_natural(uu), 1), y[ii], validate=False)

    want = value_grad_hess(risk, u, idx)
    got = plan.derivatives(u, y)
    if spec == "crps" and "df" in fam.free:
        # Autograd's h_νν goes through torch's polygamma(1) (3.1e-10 relative) inside the t CDF's
        # continued fraction, off by up to 5e-9 against mpmath (measured); the plan's, by
        # student_t_cdf_df_derivatives, is within 1e-12 (tests/objectives/test_scaled.py). The
        # df-df entry (a mean of terms that cancel: the risk is flat in df) is held to 1e-8 of
        # the largest entry (measured 5.1e-10); every other entry, the value and the gradient
        # to 1e-12.
        j = fam.free.index("df")
        g_h, w_h = got[2].clone(), want[2].clone()
        largest = w_h.abs().amax((-1, -2))
        assert bool(((g_h[:, j, j] - w_h[:, j, j]).abs() <= 1e-8 * largest).all())
        g_h[:, j, j] = w_h[:, j, j]
        got, want = (got[0], got[1], g_h), (want[0], want[1], w_h)
    for g, w in zip(got, want, strict=True):
        assert _rel(g, w) <= 1e-12
    if plan.has_value:
        assert _rel(plan.value(u, y), want[0]) <= 1e-12


@pytest.mark.parametrize(("family", "fixed", "truth", "spec"), PAIRS, ids=IDS)
def test_standard_errors_equal_autograd_at_the_fit(family, fixed, truth, spec):
    # The autograd reference: fit's own sandwich from per-observation gradients and Hessians of
    # the loss (likelab.estimate.sandwich), at the fitted parameters.
    fam, obj = get_family(family, **fixed), get_objective(spec)
    # n = 300: enough to identify a Student-t's df (with n = 60 its Hessian can be singular
    # to 1e-10, and any two roundings of it differ after amplification by its condition number)
    y = _data(family, truth, r=5, n=300)
    res = fit(y.numpy(), family, spec, fixed=fixed, se=False)
    ok = torch.as_tensor(res.converged)
    assert ok.sum() >= 3
    y = y[ok]
    natural = {k: torch.as_tensor(v)[ok] for k, v in res.params.items()}
    u = fam.to_unconstrained(natural)
    plan = structured.plan(fam, obj, y[:1, :4])
    got = structured.standard_errors(plan, u, y, chunk=2)
    # fit uses the plan's SEs only where the density has no kink; the reference without the
    # kink's term in the bread is the same sandwich
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fit_module, "_kink_bread", lambda *a: None)
        want = fit_module._standard_errors(fam, obj, u, y, natural, 2**18)
    # With a Student-t's df free, both Hessians carry ψ'((ν+1)/2) - ψ'(ν/2) in their df entry
    # (closed form in families.derivatives, autograd of lgamma in torch's log_prob), each
    # rounded to about ε ν and then amplified by the condition number of H (~1e2): there the
    # two sandwiches agree to 1e-11 (measured up to 1.6e-12), elsewhere to 1e-12.
    rtol = 1e-11 if "df" in fam.free else 1e-12
    if spec == "crps" and "df" in fam.free:
        # the reference's df-df Hessian entry is autograd's, off by up to 5e-9 (see
        # test_value_gradient_hessian_equal_autograd), amplified by H's condition number (~1e2)
        rtol = 2e-7  # measured 6.3e-8
    for name in fam.free:
        np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), rtol=rtol)


@pytest.mark.parametrize(
    ("family", "fixed", "truth", "spec"),
    [
        ("normal", {}, {"loc": 1.0, "scale": 2.0}, "dpd:beta=0.5"),
        ("student_t", {}, {"df": 4.0, "loc": 0.0, "scale": 1.0}, "gamma:gamma=0.5"),
        ("gamma", {}, {"concentration": 3.0, "rate": 2.0}, "spherical"),
        ("poisson", {}, {"rate": 4.0}, "dpd:beta=0.3"),
        ("student_t", {"df": 4.0}, {"df": 4.0, "loc": 0.0, "scale": 1.0}, "crps"),
        ("student_t", {}, {"df": 4.0, "loc": 0.0, "scale": 1.0}, "crps"),
        ("logistic", {}, {"loc": -1.0, "scale": 0.5}, "hyvarinen"),
    ],
)
def test_fit_through_the_plan_equals_the_autograd_fit(family, fixed, truth, spec, monkeypatch):
    y = get_family(family).sample((20, 80), seed=11, **truth)
    fast = fit(y, family, spec, fixed=fixed)
    monkeypatch.setattr(structured, "plan", lambda *a, **k: None)
    slow = fit(y, family, spec, fixed=fixed)
    assert fast.converged.all() and slow.converged.all()
    # A Student-t sample that looks normal has its infimum at df = infinity: both paths stop
    # somewhere on the flat ridge (huge df, or a df whose SE exceeds it: not identified), where
    # the risk falls like 1/df; only the values compare there, to the ridge's flatness.
    df, se_df = fast.params.get("df", np.zeros(20)), slow.se.get("df", np.zeros(20))
    ridge = (df > 1e5) | (se_df > df)
    np.testing.assert_allclose(fast.value[ridge], slow.value[ridge], rtol=1e-6)
    ok = ~ridge
    np.testing.assert_allclose(fast.value[ok], slow.value[ok], rtol=1e-12)
    for name in fast.params:  # the same minimum to the optimiser's tolerance: 1e-6 relative,
        # or a millionth of the SE along a direction where the risk is nearly flat (a large df)
        a, b, se = fast.params[name][ok], slow.params[name][ok], slow.se[name][ok]
        assert np.all(np.abs(a - b) <= 1e-6 * np.abs(b) + 1e-8 + 1e-6 * se), name
        np.testing.assert_allclose(fast.se[name][ok], slow.se[name][ok], rtol=1e-5)


def test_power_integral_is_evaluated_per_dataset_never_per_observation(monkeypatch):
    # The cause of the slow, memory-hungry Poisson dpd fit: the sandwich evaluated the rule at a
    # copy of the parameters per observation, so the power integral (a window sum over the
    # support for a Poisson) was built R·n times, with its autograd graph. Through the plan it
    # is built once per dataset, for the fit and for its SEs.
    integral_module = sys.modules["likelab.objectives.integral"]
    sizes = []
    real = integral_module.power_integral

    def spy(dist, k):
        sizes.append(dist.batch_shape.numel())
        return real(dist, k)

    monkeypatch.setattr(integral_module, "power_integral", spy)
    r, n = 30, 200
    y = get_family("poisson").sample((r, n), seed=2, rate=6.0)
    res = fit(y, "poisson", "dpd:beta=0.3")
    assert res.converged.all() and np.isfinite(res.se["rate"]).all()
    assert sizes and max(sizes) <= r
