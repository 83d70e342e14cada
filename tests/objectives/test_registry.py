"""The objective registry: spec strings, aliases, bad input, user objectives, data errors."""

from __future__ import annotations

import json
import math
import sys
import textwrap
import uuid

import pytest
import torch
from torch.distributions import Categorical

import likelab
from likelab.errors import (
    DataError,
    LikelabError,
    ParameterError,
    SpecError,
    UnknownNameError,
    UnsupportedError,
    UserCodeError,
)
from likelab.families import get_family
from likelab.objectives import Objective, Properties, get_objective, list_objectives

from .conftest import INTEGRAL_SPECS, LOCAL_SPECS

F64 = torch.float64
MINE = {
    "log",
    "linear",
    "lq",
    "gce",
    "mae",
    "focal",
    "quadratic",
    "spherical",
    "pseudospherical",
    "power",
    "dpd",
    "gamma",
    "product",
}


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# ----------------------------------------------------------------------------- spec strings
def test_every_objective_of_this_layer_is_registered():
    assert MINE <= set(list_objectives())


@pytest.mark.parametrize("spec", [*LOCAL_SPECS, *INTEGRAL_SPECS, "product"])
def test_spec_round_trips(spec):
    objective = get_objective(spec)
    again = get_objective(objective.spec)
    assert again.name == objective.name and dict(again.hyper) == dict(objective.hyper)
    assert again.spec == objective.spec
    assert repr(objective) == f"Objective({objective.spec!r})"


def test_spec_parsing_values_and_defaults():
    assert dict(get_objective("lq:q=0.5").hyper) == {"q": 0.5}
    assert dict(get_objective(" lq : q = 0.25 ").hyper) == {"q": 0.25}
    assert dict(get_objective("lq").hyper) == {"q": 0.5}  # the registered default
    assert dict(get_objective("lq", q=0.3).hyper) == {"q": 0.3}  # keyword override
    assert dict(get_objective("lq:q=0.5", q=0.7).hyper) == {"q": 0.7}
    assert get_objective("pseudospherical:gamma=3").spec == "pseudospherical:gamma=3"
    assert get_objective("power:alpha=2.5").spec == "power:alpha=2.5"
    assert get_objective("dpd:beta=1e-1").hyper == {"beta": 0.1}
    objective = get_objective("gce:q=0.7")
    assert get_objective(objective) is objective  # an Objective passes through
    assert dict(get_objective(objective, q=0.2).hyper) == {"q": 0.2}


@pytest.mark.parametrize(
    "alias,name",
    [
        ("sum", "linear"),
        ("brier", "quadratic"),
        ("l2e", "quadratic"),
        ("nll", "log"),
        ("joint", "product"),
    ],
)
def test_aliases_resolve_to_their_objective(alias, name):
    objective = get_objective(alias)
    assert objective.name == name
    assert objective.spec == name
    assert alias not in list_objectives()  # aliases are not listed as objectives


def test_aliases_give_the_same_losses():
    F = Categorical(probs=torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]], dtype=F64))
    y = torch.tensor([0, 1])
    torch.testing.assert_close(
        get_objective("sum")(F, y), get_objective("linear")(F, y), rtol=0, atol=0
    )
    for alias in ("brier", "l2e"):
        torch.testing.assert_close(
            get_objective(alias)(F, y), get_objective("quadratic")(F, y), rtol=0, atol=0
        )


def test_every_objective_describes_itself():
    for name in list_objectives(include_user=False):
        objective = get_objective(name)
        assert isinstance(objective, Objective)
        assert objective.formula.strip(), name
        assert objective.reference.strip(), name
        assert isinstance(objective.properties, Properties), name
        assert objective.summary.strip(), name
        described = objective.describe()
        json.dumps(described)  # JSON-ready
        assert described["spec"] == objective.spec
        assert set(described["properties"]) == {
            "proper",
            "strictly_proper",
            "local",
            "robust",
            "demonstration",
        }


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "spec,error,fragment",
    [
        ("pseudospherical:gamma=0.5", ParameterError, "gamma must satisfy gamma > 1"),
        ("pseudospherical:gamma=1", ParameterError, "gamma > 1"),
        ("lq:q=0", ParameterError, "q > 0"),
        ("dpd:beta=-1", ParameterError, "beta > 0"),
        ("gce:q=1.5", ParameterError, "0 < q <= 1"),
        ("gce:q=0", ParameterError, "0 < q <= 1"),
        ("power:alpha=1", ParameterError, "alpha > 1"),
        ("focal:gamma=-1", ParameterError, "gamma >= 0"),
        ("gamma:gamma=0", ParameterError, "gamma > 0"),
        ("log:q=1", UnknownNameError, "has no parameter 'q'"),
        ("lq:p=1", UnknownNameError, "its parameters: q"),
        ("lq:q", SpecError, "expected key=value"),
        ("lq:", SpecError, "no key=value"),
        ("lq:q=abc", ParameterError, "must be a number"),
        ("lq:q=nan", SpecError, "not a finite number"),
        ("lq:q=inf", SpecError, "not a finite number"),
        ("lq:q=0.5,q=0.6", SpecError, "given twice"),
        ("", SpecError, "empty objective spec"),
        ("   ", SpecError, "empty objective spec"),
        ("9lives", SpecError, "invalid objective name"),
    ],
)
def test_bad_specs(spec, error, fragment):
    with pytest.raises(error, match=fragment) as info:
        get_objective(spec)
    assert isinstance(info.value, LikelabError)


def test_unknown_name_lists_known_objectives():
    with pytest.raises(UnknownNameError) as info:
        get_objective("nosuch")
    message = str(info.value)
    assert "unknown objective 'nosuch'" in message
    for name in ("log", "linear", "quadratic", "pseudospherical", "gamma", "product"):
        assert name in message
    assert "sum" in message and "brier" in message  # aliases are listed too
    assert isinstance(info.value, LikelabError) and isinstance(info.value, KeyError)


def test_non_string_spec():
    with pytest.raises(SpecError, match="must be a string"):
        get_objective(3.5)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- user objectives
def test_user_objective_by_decorator():
    name = _unique("half_log")

    @likelab.objective(
        name, formula="-log f(y) / 2", reference="this test", proper=True, local=True
    )
    def half_log(dist, y):
        return -dist.log_prob(y) / 2

    objective = get_objective(name)
    assert objective.user and objective.kind == "user"
    assert objective.properties.proper is True and objective.properties.local is True
    assert name in list_objectives() and name not in list_objectives(include_user=False)
    F = get_family("normal").distribution(loc=0.0, scale=1.0)
    y = torch.tensor([0.0, 1.0], dtype=F64)
    torch.testing.assert_close(objective(F, y), get_objective("log")(F, y) / 2, rtol=1e-15, atol=0)
    # The risk is the mean loss; the callable itself resolves to the registered objective.
    torch.testing.assert_close(objective.risk(F, y), (get_objective("log")(F, y) / 2).mean())
    assert get_objective(half_log).name == name


def test_user_objective_name_clash_needs_replace():
    name = _unique("clash")
    likelab.objective(name)(lambda dist, y: -dist.log_prob(y))
    with pytest.raises(LikelabError, match="already registered"):
        likelab.objective(name)(lambda dist, y: -dist.log_prob(y))
    likelab.objective(name, replace=True, formula="-2 log f")(lambda dist, y: -2 * dist.log_prob(y))
    assert get_objective(name).formula == "-2 log f"
    with pytest.raises(LikelabError, match="already registered"):
        likelab.objective("log")(lambda dist, y: -dist.log_prob(y))


def test_user_objective_with_hyperparameter():
    from likelab.objectives import Hyper

    name = _unique("scaled_log")

    @likelab.objective(name, hypers=(Hyper("c", 1.0, lambda v: v > 0, "c > 0"),))
    def scaled(dist, y, *, c):
        return -c * dist.log_prob(y)

    assert get_objective(f"{name}:c=3").spec == f"{name}:c=3"
    with pytest.raises(ParameterError, match="c > 0"):
        get_objective(f"{name}:c=-1")


def test_plain_callable_is_a_user_objective():
    def my_loss(dist, y):
        """minus twice the log density"""
        return -2 * dist.log_prob(y)

    objective = get_objective(my_loss)
    assert objective.user and objective.name == "my_loss"
    assert objective.formula == "minus twice the log density"
    F = get_family("normal").distribution(loc=0.0, scale=1.0)
    assert float(objective(F, 0.0)) == pytest.approx(math.log(2 * math.pi), rel=1e-14)


def test_user_objective_by_import_path(tmp_path, monkeypatch):
    module = _unique("likelab_user_objectives")
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent('''
        def half_nll(dist, y):
            """-log f(y) / 2"""
            return -dist.log_prob(y) / 2

        not_callable = 3
    ''')
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    objective = get_objective(f"{module}:half_nll")
    assert objective.user and objective.kind == "user"
    F = get_family("normal").distribution(loc=0.0, scale=1.0)
    assert float(objective(F, 0.0)) == pytest.approx(0.25 * math.log(2 * math.pi), rel=1e-14)
    # A registered objective named by its import path is that objective.
    assert get_objective("likelab.objectives.local:log_loss").name == "log"
    with pytest.raises(UnknownNameError, match="has no attribute"):
        get_objective(f"{module}:missing")
    with pytest.raises(UnknownNameError, match="cannot import module"):
        get_objective(f"{_unique('no_such_module')}:f")
    with pytest.raises(UserCodeError, match="is an int, not a function; the contract"):
        get_objective(f"{module}:not_callable")


# ----------------------------------------------------------------------------- data errors
OBJECTIVES_FOR_DATA = ["log", "lq:q=0.5", "quadratic", "gamma:gamma=0.5"]


@pytest.mark.parametrize("spec", OBJECTIVES_FOR_DATA)
def test_nan_observation_is_named(spec):
    F = get_family("normal").distribution(loc=0.0, scale=1.0)
    with pytest.raises(DataError, match=r"observation 2 is nan"):
        get_objective(spec)(F, [0.1, 0.2, math.nan, 0.3])
    with pytest.raises(DataError, match=r"observation \(1, 0\) is inf"):
        get_objective(spec)(F, torch.tensor([[0.0], [math.inf]], dtype=F64))


@pytest.mark.parametrize("spec", OBJECTIVES_FOR_DATA)
def test_shape_mismatch(spec):
    F = get_family("normal").distribution(loc=torch.zeros(3, dtype=F64), scale=1.0)
    with pytest.raises(DataError, match=r"shape \(4,\) do not broadcast .* batch shape \(3,\)"):
        get_objective(spec)(F, torch.zeros(4, dtype=F64))


@pytest.mark.parametrize("spec", OBJECTIVES_FOR_DATA)
def test_empty_observations(spec):
    F = get_family("normal").distribution(loc=0.0, scale=1.0)
    with pytest.raises(DataError, match="no observations"):
        get_objective(spec)(F, [])


@pytest.mark.parametrize("spec", OBJECTIVES_FOR_DATA)
def test_observations_outside_the_support(spec):
    objective = get_objective(spec)
    expo = get_family("exponential").distribution(rate=1.0)
    with pytest.raises(DataError, match=r"observation 1 = -0.5 lies outside the support"):
        objective(expo, [1.0, -0.5])
    pois = get_family("poisson").distribution(rate=2.0)
    with pytest.raises(DataError, match=r"observation 0 = 1.5 lies outside the support"):
        objective(pois, [1.5, 2.0])
    cat = Categorical(probs=torch.tensor([0.2, 0.3, 0.5], dtype=F64))
    with pytest.raises(DataError, match=r"label 1 = 5 is not a class in 0..2"):
        objective(cat, [0, 5])
    with pytest.raises(DataError, match=r"is not a class in 0..2"):
        objective(cat, [0.5])
    with pytest.raises(DataError, match=r"is not a class in 0..2"):
        objective(cat, [-1])


def test_non_numeric_observations():
    F = get_family("normal").distribution(loc=0.0, scale=1.0)
    with pytest.raises(DataError, match="must be numeric"):
        get_objective("log")(F, ["a", "b"])


@pytest.mark.parametrize("spec", [*OBJECTIVES_FOR_DATA, "product"])
def test_non_distribution_forecast(spec):
    objective = get_objective(spec)
    with pytest.raises(LikelabError, match=r"must be a torch\.distributions\.Distribution"):
        objective.risk("normal", [0.0])  # type: ignore[arg-type]
    with pytest.raises(LikelabError):
        objective.risk(torch.tensor([0.5]), [0.0])  # type: ignore[arg-type]


def test_product_data_errors_go_through_risk():
    F = get_family("normal").distribution(loc=0.0, scale=1.0)
    with pytest.raises(DataError, match="observation 0 is nan"):
        get_objective("product").risk(F, [math.nan])
    with pytest.raises(UnsupportedError):
        get_objective("product").loss(F, [0.0])


def test_validate_false_skips_the_checks():
    # The hot-loop path: no validation, so a NaN flows through as NaN (no error, no clamping).
    F = get_family("normal").distribution(loc=0.0, scale=1.0)
    out = get_objective("log").loss(F, torch.tensor([math.nan, 0.0], dtype=F64), validate=False)
    assert math.isnan(float(out[0])) and math.isfinite(float(out[1]))


def test_list_input_follows_forecast_dtype():
    F32 = get_family("normal").distribution(
        loc=torch.tensor(0.0, dtype=torch.float32), scale=torch.tensor(1.0, dtype=torch.float32)
    )
    assert get_objective("log")(F32, [0.0, 1.0]).dtype == torch.float32
    F = get_family("normal").distribution(loc=0.0, scale=1.0)
    assert get_objective("log")(F, [0, 1]).dtype == torch.float64  # integers become floats
