"""The study file: a YAML or TOML description of a simulation study, validated by pydantic.

Vocabulary after SimDesign and Morris, White & Crowther (2019, Stat. Med. 38:2074-2102):
data-generating processes (``dgps``, each a family with parameters, a list of values making a
grid, and optional contamination), sample sizes, the fitted ``model`` with its ``estimand``
(which parameters, and their true values, derived from the DGP where it can be), the
``objectives`` (the methods), the number of ``replicates`` and fitting options.

.. code-block:: yaml

    name: efficiency
    seed: 2026
    dgps:
      - family: normal
        params: {loc: 0, scale: [0.5, 1, 2]}      # a list makes a grid
      - family: normal
        params: {loc: 0, scale: 1}
        contamination: {eps: [0.05, 0.1], dgp: "normal:loc=8,scale=1"}
    sample_sizes: [20, 100, 1000]
    replicates: 500
    model: {family: normal, estimand: [loc, scale]}
    objectives: [log, linear, "dpd:beta=0.5"]
    fit: {multistart: 1, max_iter: 100}

Every error names the field and what was expected (:class:`~likelab.errors.SpecError`): pydantic
checks the shape (unknown keys, types, ranges), then :func:`validate_semantics` checks the
meaning (families, parameter values, objectives, estimand, true values).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import tomllib
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from likelab.errors import LikelabError, SpecError

__all__ = [
    "Contamination",
    "DGPSpec",
    "FitOptions",
    "ModelSpec",
    "StudySpec",
    "load_study",
    "parse_study",
]

Number = float
Values = Number | list[Number]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class Contamination(_Strict):
    """Huber's model ``(1 - eps) F + eps G``: ``eps`` (a number or a list) and G's spec."""

    eps: Annotated[Values, Field(description="contamination share(s), each in [0, 1)")]
    dgp: Annotated[str, Field(min_length=1, description="the contaminating distribution")]


class DGPSpec(_Strict):
    """A family with parameter values (a list of values makes a grid), optionally contaminated."""

    family: Annotated[str, Field(min_length=1)]
    params: dict[str, Values] = Field(default_factory=dict)
    contamination: Contamination | None = None


class ModelSpec(_Strict):
    """The fitted model: family, fixed parameters (a number, or ``truth``: held at each DGP's
    own value, e.g. a known scale), the estimand and (optionally) true values."""

    family: Annotated[str, Field(min_length=1)]
    fixed: dict[str, Number | Literal["truth"]] = Field(default_factory=dict)
    estimand: list[str] | None = None
    truth: dict[str, Number] = Field(default_factory=dict)


class FitOptions(_Strict):
    multistart: Annotated[int, Field(ge=1)] = 1
    max_iter: Annotated[int, Field(ge=1)] = 100


class StudySpec(_Strict):
    """A whole study; see the module docstring for the file format."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    seed: Annotated[int, Field(ge=0)]
    dgps: Annotated[list[DGPSpec], Field(min_length=1)]
    sample_sizes: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]
    replicates: Annotated[int, Field(ge=1)]
    model: ModelSpec
    objectives: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    block: Annotated[int, Field(ge=1, description="replicates per cell")] = 100
    fit: FitOptions = Field(default_factory=FitOptions)

    @property
    def canonical(self) -> str:
        """The spec as canonical JSON (sorted keys, defaults filled in)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def hash(self) -> str:
        """SHA-256 of :attr:`canonical`: two files describing the same study share it."""
        return hashlib.sha256(self.canonical.encode()).hexdigest()


# ---------------------------------------------------------------------- loading
def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study file (``.yaml``/``.yml`` or ``.toml``)."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"study file {str(path)!r} does not exist")
    text = p.read_text(encoding="utf-8")
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            raw = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            raw = yaml.safe_load(text)
        else:
            raise SpecError(f"{p.name}: a study file must end in .yaml, .yml or .toml")
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{p.name}: TOML syntax error: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{p.name}: YAML syntax error{where}: {problem}") from None
    return parse_study(raw, source=p.name)


def parse_study(raw: Any, *, source: str = "study") -> StudySpec:
    """Validate a study given as a mapping (the parsed file)."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a study must be a mapping of fields, got {type(raw).__name__}")
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SpecError(f"{source}: {_where(err['loc'])}: {_what(err)}") from None
    validate_semantics(spec, source=source)
    return spec


def _where(loc: tuple[Any, ...]) -> str:
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("float", "list[float]", "int", "str"):  # union branch names
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _what(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field missing"
    got = err.get("input")
    shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
    return f"{err['msg'].lower()}, got {shown}"


# ---------------------------------------------------------------------- meaning
def validate_semantics(spec: StudySpec, *, source: str = "study") -> None:
    """Check families, parameter values, objectives, estimand and true values; raise a
    :class:`SpecError` naming the field."""
    from likelab.families import get_family
    from likelab.objectives import get_objective
    from likelab.study.design import dgp_points

    def fail(field: str, message: str) -> None:
        raise SpecError(f"{source}: {field}: {message}")

    for i, d in enumerate(spec.dgps):
        try:
            fam = get_family(d.family)
        except LikelabError as exc:
            fail(f"dgps[{i}].family", str(exc))
        for key, value in d.params.items():
            if key not in fam.param_names:
                fail(
                    f"dgps[{i}].params.{key}",
                    f"family {fam.name!r} has no parameter {key!r}; its parameters are "
                    f"{', '.join(fam.param_names)}",
                )
            if isinstance(value, list) and not value:
                fail(f"dgps[{i}].params.{key}", "an empty list of values")
        if d.contamination is not None:
            eps = d.contamination.eps
            for e in eps if isinstance(eps, list) else [eps]:
                if not 0.0 <= e < 1.0:
                    fail(f"dgps[{i}].contamination.eps", f"must lie in [0, 1), got {e:g}")
    numeric = {k: v for k, v in spec.model.fixed.items() if v != "truth"}
    try:
        model = get_family(spec.model.family, **numeric)
        for key in spec.model.fixed:
            model.param(key)
    except LikelabError as exc:
        field = "model.fixed" if spec.model.fixed else "model.family"
        fail(field, str(exc))
    free = [name for name in model.free if name not in spec.model.fixed]
    if not free:
        fail("model.fixed", f"every parameter of {model.name!r} is fixed: nothing to estimate")
    for key, value in spec.model.fixed.items():
        if value == "truth":
            for i, d in enumerate(spec.dgps):
                if d.family.split(":")[0] != model.name:
                    fail(
                        f"model.fixed.{key}",
                        f"'truth' holds {key!r} at each DGP's value, but dgps[{i}] is a "
                        f"{d.family!r}, not a {model.name!r}",
                    )
    for j, name in enumerate(spec.objectives):
        try:
            obj = get_objective(name)
        except LikelabError as exc:
            fail(f"objectives[{j}]", str(exc))
        if obj.batch_level:
            fail(f"objectives[{j}]", f"{name!r} is batch-level and cannot be fitted; use log")
    for name in spec.model.estimand or []:
        if name not in free:
            fail(
                "model.estimand",
                f"{name!r} is not a free parameter of the model {model.name!r} (free: "
                f"{', '.join(free)})",
            )
    for key in spec.model.truth:
        if key not in free:
            fail(f"model.truth.{key}", f"{key!r} is not a free parameter of {model.name!r}")
    if len(set(spec.sample_sizes)) != len(spec.sample_sizes):
        fail("sample_sizes", "repeated sample size")
    if len(set(spec.objectives)) != len(spec.objectives):
        fail("objectives", "repeated objective")
    for n in spec.sample_sizes:
        if n < len(free):
            fail("sample_sizes", f"n = {n} cannot identify {len(free)} free parameters")
    try:
        dgp_points(spec)
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None


def grid(params: dict[str, Values]) -> list[dict[str, float]]:
    """The cartesian product of list-valued parameters, in file order."""
    keys = list(params)
    lists = [v if isinstance(v, list) else [v] for v in params.values()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*lists)]
