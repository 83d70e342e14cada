"""Parsing of spec strings: ``name`` or ``name:key=value,key=value``.

Objectives (``pseudospherical:gamma=3``), families (``normal:scale=0.1``) and data-generating
processes (``normal:loc=0,scale=1,n=10``) are all named this way, in Python, on the command line
and in study files.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from likelab.errors import SpecError

__all__ = ["Spec", "format_spec", "parse_number", "parse_spec"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class Spec:
    """A parsed spec string: a name and its keyword arguments (numbers where they parse)."""

    name: str
    kwargs: dict[str, float | str] = field(default_factory=dict)


def parse_number(text: str, *, what: str) -> float:
    """Parse ``text`` as a finite float, or raise :class:`SpecError` naming ``what``."""
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise SpecError(f"{what}: {text!r} is not a finite number")
    return value


def parse_spec(text: str, *, kind: str = "spec") -> Spec:
    """Split ``"name:k=v,k2=v2"`` into a :class:`Spec`.

    Values that parse as numbers become floats; others stay strings. ``kind`` names what is being
    parsed ("objective", "family") in error messages.

    >>> parse_spec("lq:q=0.5")
    Spec(name='lq', kwargs={'q': 0.5})
    """
    if not isinstance(text, str):
        raise SpecError(f"{kind} spec must be a string, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise SpecError(f"empty {kind} spec")
    name, sep, rest = text.partition(":")
    name = name.strip()
    if not _NAME.match(name):
        raise SpecError(f"invalid {kind} name {name!r} in {text!r}")
    kwargs: dict[str, float | str] = {}
    if sep and not rest.strip():
        raise SpecError(f"{kind} spec {text!r} has ':' but no key=value parameters after it")
    if rest.strip():
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or not key or not value:
                raise SpecError(f"{kind} spec {text!r}: expected key=value, got {item.strip()!r}")
            if key in kwargs:
                raise SpecError(f"{kind} spec {text!r}: {key!r} given twice")
            kwargs[key] = _number_or_text(value, what=f"{kind} {name!r} parameter {key!r}")
    return Spec(name=name, kwargs=kwargs)


def _number_or_text(value: str, *, what: str) -> float | str:
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):
        raise SpecError(f"{what}: {value!r} is not a finite number")
    return number


def format_spec(name: str, kwargs: dict[str, object]) -> str:
    """The inverse of :func:`parse_spec`: ``format_spec("lq", {"q": 0.5}) == "lq:q=0.5"``."""
    if not kwargs:
        return name
    return name + ":" + ",".join(f"{k}={_fmt(v)}" for k, v in kwargs.items())


def _fmt(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)
