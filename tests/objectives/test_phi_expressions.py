"""Functions of the likelihood as objectives: the ``phi:EXPR`` grammar (every construct it
accepts, against numpy; everything else refused, naming it, nothing executed),
:func:`likelab.local_objective`, and a one-argument function named by import path."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import likelab
from likelab.errors import SpecError, UserCodeError
from likelab.families import get_family
from likelab.objectives import get_objective, local_objective

ELL = np.linspace(-12.0, 0.0, 25)  # log-likelihoods: p from 6e-6 to 1
P = np.exp(ELL)


class _LogF:
    """A stand-in forecast whose log_prob is the given tensor (a local rule sees only that)."""

    def __init__(self, ell):
        self.ell = ell

    def log_prob(self, y):
        return self.ell


def _values(spec: str) -> np.ndarray:
    obj = get_objective(spec)
    return obj.fn(_LogF(torch.as_tensor(ELL)), None).numpy()


# numpy writes each expression independently of the parser
GRAMMAR = [
    ("-p", -P),
    ("-l", -ELL),
    ("2.5 - 3*l", 2.5 - 3 * ELL),
    ("-(p + 1)/(1 - -p)", -(P + 1) / (1 + P)),
    ("-p**0.3", -(P**0.3)),
    ("(1 - p^0.7) / 0.7", (1 - P**0.7) / 0.7),
    ("1e-3 * l ** 2", 1e-3 * ELL**2),
    ("-log(p)", -np.log(P)),
    ("exp(-p)", np.exp(-P)),
    ("-sqrt(p)", -np.sqrt(P)),
    ("-log1p(p)", -np.log1p(P)),
    ("-expm1(l / 2)", -np.expm1(ELL / 2)),
    ("abs(l + 3)", np.abs(ELL + 3)),
    ("-tanh(p)", -np.tanh(P)),
    ("minimum(-l, 5)", np.minimum(-ELL, 5)),
    ("maximum(-p, -0.25)", np.maximum(-P, -0.25)),
    ("maximum(minimum(-l, 4), 1 - p)", np.maximum(np.minimum(-ELL, 4), 1 - P)),
    ("+(-p)", -P),
]


@pytest.mark.parametrize(("expr", "want"), GRAMMAR)
def test_every_construct_of_the_grammar_computes_what_it_says(expr, want):
    np.testing.assert_allclose(_values(f"phi:{expr}"), want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    "expr", ["-p**0.3", "maximum(-p, -0.25)", "-tanh(2*p) + 0.1*l**2", "minimum(-l, 3)"]
)
def test_the_local_rule_derivatives_are_those_of_the_loss(expr):
    obj = get_objective(f"phi:{expr}")
    ell = torch.linspace(-8, 0, 17, dtype=torch.float64, requires_grad=True)
    phi, d1, d2 = obj.phi(ell)
    loss = obj.fn.fn(ell)  # the expression itself, in log f
    (g,) = torch.autograd.grad(loss.sum(), ell, create_graph=True)
    h = torch.autograd.grad(g.sum(), ell)[0] if g.requires_grad else torch.zeros_like(g)
    torch.testing.assert_close(phi, loss, rtol=0, atol=0)
    torch.testing.assert_close(d1, g, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(d2, h, rtol=1e-13, atol=1e-15)
    assert phi.requires_grad  # φ keeps the graph to log f (training differentiates it)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("__import__('os')", "'__import__' is not allowed (an unknown function)"),
        ("p.__class__", "'p.__class__' is not allowed (attribute access)"),
        ("p**", "it ends early, after 'p**'"),
        ("", "give an expression after 'phi:'"),
        ("q+1", "'q' is not allowed (an unknown name: the variables are p and l)"),
        ("(lambda p: p)(p)", "is not allowed"),
        ("lambda: p", "'lambda: p' is not allowed (a lambda)"),
        ("p[0]", "'p[0]' is not allowed (a subscript)"),
        ("[l for l in p]", "is not allowed (a comprehension)"),
        ("sum(x for x in [p])", "'sum' is not allowed (an unknown function)"),
        ("log(p, base=2)", "is not allowed (keyword arguments)"),
        ("'p' * 2", "\"'p'\" is not allowed (a str constant)"),
        ("f'{p}'", "is not allowed (a string)"),
        ("p < 1", "is not allowed (a comparison)"),
        ("p // 2", "is not allowed (an operator outside + - * / **)"),
        ("p if l else 1", "is not allowed (a conditional)"),
        ("minimum(p)", "is not allowed (minimum takes 2 arguments)"),
        ("log(*[p])", "is not allowed (log takes 1 argument)"),
        ("(p := 2)", "is not allowed (an assignment)"),
        ("1e999 * p", "'1e999' is not allowed (not a finite number)"),
        ("True * p", "is not allowed (a bool constant)"),
        ("p; l", "invalid syntax at column 2"),
        ("3 * pi", "does not use p or l"),
        ("-" * 1001 + "p", "at most 1000 are accepted"),
        ("log(p - 0.5)", "is NaN at p from 1e-300 to 0.499"),
        ("sqrt(p - 0.5)", "is NaN at p from"),
        ("(p - 0.5) ** 0.5", "is NaN at p from"),
        ("0 * log(-p)", "is NaN at p from 1e-300 to 1 (1597 of the 1597"),
    ],
)
def test_everything_else_is_refused_naming_it(expr, fragment):
    with pytest.raises(SpecError) as info:
        get_objective(f"phi:{expr}")
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_nothing_is_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for expr in (
        "__import__('os').system('touch pwned')",
        "open('pwned', 'w').write('x') * p",
        "p.__class__.__init__.__globals__",
        'exec(\'open("pwned", "w")\')',
    ):
        with pytest.raises(SpecError, match="is not allowed"):
            get_objective(f"phi:{expr}")
    assert list(tmp_path.iterdir()) == []


def test_nan_only_above_one_is_a_recorded_failure_of_the_fit():
    # defined for every p in (0, 1], NaN where a density exceeds 1: the fit records it
    y = get_family("normal").sample((2, 30), seed=7, loc=0.0, scale=0.05)
    res = likelab.fit(y, "normal", "phi:-sqrt(1 - p)")
    assert not res.converged.any() and set(res.reason) == {"nonfinite"}


def test_the_spec_drops_whitespace_and_is_one_objective():
    a, b = get_objective("phi:-p**0.3"), get_objective(" phi: - p ** 0.3 ")
    assert a.spec == b.spec == "phi:-p**0.3" and a is b
    assert a.name == a.spec and a.describe()["spec"] == "phi:-p**0.3"
    assert a.kind == "local" and a.properties.local is True and a.user is True


# ----------------------------------------------------------------------------- local_objective
@pytest.fixture(autouse=True)
def _unregister():
    """The names these tests register (phi_test_*) do not outlive them."""
    yield
    from likelab.objectives import base

    for name in [n for n in base._REGISTRY if n.startswith("phi_test_")]:
        del base._REGISTRY[name]


def test_local_objective_from_an_expression():
    obj = local_objective("-p**0.3")
    assert obj is get_objective("phi:-p**0.3") and local_objective("phi:-p**0.3") is obj
    described = local_objective("-p**0.3", reference="Tsallis (1988)")
    assert described.spec == obj.spec and described.reference == "Tsallis (1988)"
    assert obj.reference == ""  # the shared objective is untouched
    named = local_objective("(1 - p**0.7) / 0.7", name="phi_test_tsallis", replace=True)
    assert named.spec == "phi_test_tsallis" == get_objective("phi_test_tsallis").spec
    assert named.phi_fn is not None and named.properties.local is True
    y = get_family("normal").sample((2, 40), seed=1, loc=0.0, scale=1.0)
    fitted = likelab.fit(y, "normal", "phi_test_tsallis")
    ref = likelab.fit(y, "normal", "gce:q=0.7")  # the same rule, written by hand
    assert fitted.objective == "phi_test_tsallis"
    for key in ("loc", "scale"):  # (1 - p^0.7)/0.7 and gce's -expm1(0.7 l)/0.7: 1e-16 apart
        np.testing.assert_allclose(fitted.params[key], ref.params[key], rtol=1e-12, atol=1e-14)


def test_local_objective_from_a_function_of_p_or_of_l():
    def neg_root(p):
        return -p.sqrt()

    obj = local_objective(neg_root)
    assert obj.spec.endswith("neg_root") and obj.properties.local is True
    of_l = local_objective(lambda log_f: -2 * log_f + 3, name="phi_test_affine", replace=True)
    F = torch.distributions.Categorical(probs=torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64))
    labels = torch.tensor([0, 1, 2])
    want = -2 * torch.log(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)) + 3
    torch.testing.assert_close(of_l(F, labels), want, rtol=1e-15, atol=0)
    torch.testing.assert_close(obj(F, labels), -want.new_tensor([0.5, 0.3, 0.2]).sqrt())
    assert likelab.check_properness("phi_test_affine", classes=3).verdict == "strictly proper"
    assert likelab.check_properness(obj, classes=3).verdict == "improper"


@pytest.mark.parametrize("name", ["", "my rule", "1st", "a:b", "phi:x", "a.b", "rule!", 3])
def test_local_objective_names_are_checked(name):
    with pytest.raises(SpecError, match="name must be a letter or _"):
        local_objective("-p", name=name)


def test_local_objective_refusals():
    with pytest.raises(SpecError, match="'phi' names the expressions"):
        local_objective("-p", name="phi")
    with pytest.raises(likelab.LikelabError, match="already registered"):
        local_objective("-p", name="log")  # a built-in is not overridden by accident
    with pytest.raises(UserCodeError, match="function of the likelihood alone"):
        local_objective(lambda dist, y: -dist.log_prob(y))
    with pytest.raises(SpecError, match="'x' is not allowed"):
        local_objective("x + p", name="phi_test_bad")
    assert get_objective("log").formula == "S(F, y) = -log f(y)"  # untouched


# ----------------------------------------------------------------------------- import path
MODULE = '''
import torch

def root(p):
    """-p^0.3, a power of the likelihood"""
    return -p ** 0.3

def affine(l):
    return -2 * l + 3
'''


@pytest.fixture
def phi_module(tmp_path, monkeypatch):
    (tmp_path / "phi_test_mod.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "phi_test_mod"
    sys.modules.pop("phi_test_mod", None)


def test_a_one_argument_function_by_import_path_is_a_local_rule(phi_module, capsys):
    from tests.cli_support import run_json

    root = get_objective(f"{phi_module}:root")
    assert root.spec == f"{phi_module}:root" and root.properties.local is True
    F = get_family("laplace").distribution(
        loc=torch.tensor([[0.0], [0.7]], dtype=torch.float64), scale=0.6
    )
    y = torch.tensor([-1.0, 0.2, 2.5], dtype=torch.float64)
    # the expression takes p**0.3 as exp(0.3 l) (finite derivatives where p underflows): the
    # same numbers as the function's pow(p, 0.3) to a unit of rounding
    torch.testing.assert_close(
        root(F, y), get_objective("phi:-p**0.3")(F, y), rtol=4 * 2.0**-52, atol=0
    )
    affine = get_objective(f"{phi_module}:affine")  # named l: receives log f(y)
    torch.testing.assert_close(affine(F, y), get_objective("phi:-2*l+3")(F, y), rtol=0, atol=0)
    props = run_json(capsys, "properness", "--objectives", f"{phi_module}:affine,{phi_module}:root")
    verdicts = {r["objective"]: r["verdict"] for r in props["results"]}
    assert verdicts == {f"{phi_module}:affine": "strictly proper", f"{phi_module}:root": "improper"}


@pytest.mark.parametrize(
    ("expr", "through_l"),
    [("-p**0.3", "-exp(0.3*l)"), ("-sqrt(p)", "-exp(0.5*l)"), ("2*p**1.5", "2*exp(1.5*l)")],
)
def test_powers_of_p_are_taken_through_l_so_underflow_keeps_derivatives_finite(expr, through_l):
    # p = f(y) underflows to 0 far in a tail (l = -800): d(p**c)/dl computed as
    # c p**(c-1) * p would be inf * 0 = NaN; through exp(c l) it is finite and the same number
    from likelab.objectives.user import phi_expression

    ell = torch.tensor([-800.0, -30.0, -1.0, 0.0], dtype=torch.float64, requires_grad=True)
    a, b = phi_expression(expr)(ell), phi_expression(through_l)(ell)
    assert torch.equal(a, b)
    (da,) = torch.autograd.grad(a.sum(), ell, create_graph=True)
    (db,) = torch.autograd.grad(b.sum(), ell, create_graph=True)
    assert torch.isfinite(da).all() and torch.equal(da, db)
    (dda,) = torch.autograd.grad(da.sum(), ell)
    (ddb,) = torch.autograd.grad(db.sum(), ell)
    assert torch.isfinite(dda).all() and torch.equal(dda, ddb)


def test_log_of_p_is_l_and_p_to_the_zero_is_one():
    from likelab.objectives.user import phi_expression

    ell = torch.tensor([-800.0, -1.0, 0.0], dtype=torch.float64)
    assert torch.equal(phi_expression("log(p)")(ell), ell)
    assert torch.equal(phi_expression("p**0")(ell), torch.ones_like(ell))


def test_a_power_of_p_has_asymptotics_where_the_quadrature_reaches_underflow():
    # the scorecard found "no θ*: nonfinite" for every power of p before powers went through l
    from likelab import asymptotics

    r = asymptotics("phi:-p**0.3", "normal:scale=1", "normal:loc=0,scale=1")
    ref = asymptotics("phi:-exp(0.3*l)", "normal:scale=1", "normal:loc=0,scale=1")
    assert r.reason == "" and abs(r.are_vs_log["loc"] - ref.are_vs_log["loc"]) < 1e-12
