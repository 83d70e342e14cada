"""Spec strings: ``name`` or ``name:key=value,...``."""

import pytest

from likelab._spec import Spec, format_spec, parse_spec
from likelab.errors import LikelabError, SpecError


def test_parse_plain_and_with_parameters():
    assert parse_spec("log") == Spec("log", {})
    assert parse_spec(" lq:q=0.5 ") == Spec("lq", {"q": 0.5})
    assert parse_spec("normal:loc=0,scale=1e-1") == Spec("normal", {"loc": 0.0, "scale": 0.1})
    assert parse_spec("x:mode=fast") == Spec("x", {"mode": "fast"})


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("log", {}),
        ("lq", {"q": 0.5}),
        ("pseudospherical", {"gamma": 3.0}),
        ("normal", {"loc": -1.25, "scale": 0.1}),
    ],
)
def test_format_round_trips(name, kwargs):
    assert parse_spec(format_spec(name, kwargs)) == Spec(name, kwargs)


def test_integers_print_without_decimal_point():
    assert format_spec("pseudospherical", {"gamma": 3.0}) == "pseudospherical:gamma=3"


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("lq:", "no key=value"),
        ("lq:q", "expected key=value"),
        ("lq:=1", "expected key=value"),
        ("lq:q=", "expected key=value"),
        ("lq:q=1,q=2", "given twice"),
        ("lq:q=nan", "not a finite number"),
        ("lq:q=inf", "not a finite number"),
        ("1abc", "invalid"),
        ("a b", "invalid"),
    ],
)
def test_malformed_specs_raise_spec_error(text, fragment):
    with pytest.raises(SpecError, match=fragment) as info:
        parse_spec(text, kind="objective")
    assert isinstance(info.value, LikelabError)


def test_non_string_spec():
    with pytest.raises(SpecError, match="must be a string"):
        parse_spec(3)  # type: ignore[arg-type]
