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

Every error names the field and what was expected (:class:`~likelab.errors.SpecError`). The file
must be UTF-8 (at most 1 MiB); YAML is read with the YAML 1.2 core schema's numbers (``1e-3`` is
a number, ``010`` is ten; ``0x10``, ``1_000`` and ``1:30`` are not numbers) and a key given twice
in a mapping is an error (TOML refuses both already). pydantic then checks the shape: unknown
keys, strict types (``true`` is not a count, ``1.5`` is not a number of replicates, ``"2"`` is
not a number), finite numbers, non-empty lists. :func:`study_size` then estimates the memory of
a cell, the number of DGP points and cells and the CPU time from the file alone, before
anything is built, and refuses what cannot fit with the estimate in the message. Last,
:func:`validate_semantics` checks the meaning (families, parameter values, objectives, estimand,
true values, and that no objective, sample size or parameter is given twice, under an alias
either).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tomllib
import yaml
from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, ValidationError

from likelab._budget import format_bytes, format_seconds, memory_limit
from likelab.errors import LikelabError, SpecError

__all__ = [
    "Contamination",
    "DGPSpec",
    "FitOptions",
    "ModelSpec",
    "StudySize",
    "StudySpec",
    "load_study",
    "parse_study",
    "study_size",
]

#: A finite number (an integer is a number; a bool, a string or NaN is not).
Number = Annotated[float, Strict(), AllowInfNan(False)]
Values = Number | list[Number]
#: A count: an integer, strictly (``true``, ``5.0`` and ``"5"`` are not counts).
Count = Annotated[int, Strict()]
#: The store keeps ``n`` and the replicate number as 32-bit integers.
INT32_MAX = 2**31 - 1


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
    estimand: Annotated[list[str], Field(min_length=1)] | None = None
    truth: dict[str, Number] = Field(default_factory=dict)


class FitOptions(_Strict):
    multistart: Annotated[Count, Field(ge=1)] = 1
    max_iter: Annotated[Count, Field(ge=1)] = 100


class StudySpec(_Strict):
    """A whole study; see the module docstring for the file format."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    seed: Annotated[Count, Field(ge=0)]
    dgps: Annotated[list[DGPSpec], Field(min_length=1)]
    sample_sizes: Annotated[list[Annotated[Count, Field(ge=1, le=INT32_MAX)]], Field(min_length=1)]
    replicates: Annotated[Count, Field(ge=1, le=INT32_MAX)]
    model: ModelSpec
    objectives: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    block: Annotated[Count, Field(ge=1, description="replicates per cell")] = 100
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
#: A study file describes a study; it is never this large (the grids are lists in the file).
MAX_FILE_BYTES = 1 << 20

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


class _StudyLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's numbers and no duplicate keys.

    YAML 1.1 (PyYAML's default) reads ``1e-3`` as a string, ``010`` as eight, ``0x10`` as
    sixteen, ``1_000`` as a thousand and ``1:30`` as ninety; a key given twice silently keeps
    the last value. Here numbers are decimal (``[-+]?[0-9]+``, and floats with an optional
    exponent), anything else is a string, and a repeated key is an error.
    """

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable: the base class says so
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"the key {key!r} appears twice in one mapping (first at line "
                        f"{first.line + 1}): give it once",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    try:
        return int(str(text), 10)
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not a decimal integer", node.start_mark
        ) from None


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = str(loader.construct_scalar(node))
    special = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
    if text.lower() in special:
        return special[text.lower()]
    try:
        return float(text)
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not a number", node.start_mark
        ) from None


_StudyLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StudyLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_StudyLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_StudyLoader.add_constructor(_INT, _construct_int)
_StudyLoader.add_constructor(_FLOAT, _construct_float)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study file (``.yaml``/``.yml`` or ``.toml``, UTF-8)."""
    p = Path(path)
    if p.is_dir():
        raise SpecError(f"study file {str(path)!r} is a directory, not a file")
    if not p.is_file():
        raise SpecError(f"study file {str(path)!r} does not exist")
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise SpecError(f"{p.name}: a study file must end in .yaml, .yml or .toml")
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(
                f"{p.name}: {size:,} bytes; a study file is at most {MAX_FILE_BYTES:,} bytes "
                "(grids are lists of values, not data)"
            )
        data = p.read_bytes()
    except OSError as exc:
        raise SpecError(f"{p.name}: cannot read the study file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError(
            f"{p.name}: not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            f"(line {line}); save the study file as UTF-8"
        ) from None
    try:
        if suffix == ".toml":
            raw = tomllib.loads(text)
        else:
            raw = yaml.load(text, Loader=_StudyLoader)  # a SafeLoader subclass
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{p.name}: TOML syntax error: {_one_line(str(exc))}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{p.name}: YAML syntax error{where}: {_one_line(problem)}") from None
    except RecursionError:
        raise SpecError(f"{p.name}: the file nests lists or mappings too deeply") from None
    if raw is None:
        raise SpecError(f"{p.name}: the study file is empty")
    return parse_study(raw, source=p.name)


def parse_study(raw: Any, *, source: str = "study") -> StudySpec:
    """Validate a study given as a mapping (the parsed file): its shape (pydantic), its size
    (:func:`study_size`, before anything is built) and its meaning (:func:`validate_semantics`).
    """
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a study must be a mapping of fields, got {type(raw).__name__}")
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as exc:
        err = max(exc.errors(), key=lambda e: len(e["loc"]))  # the most specific
        raise SpecError(f"{source}: {_where(err['loc'])}: {_what(err)}") from None
    except RecursionError:
        raise SpecError(f"{source}: the study nests lists or mappings too deeply") from None
    study_size(spec, source=source, check=True)
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
    if kind == "too_short" and isinstance(got, list | dict) and not got:
        return "an empty list; give at least one value (or leave the field out where optional)"
    shown = _one_line(repr(got), 80) if not isinstance(got, dict | list) else type(got).__name__
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
            if key in fam.fixed:
                fail(
                    f"dgps[{i}].params.{key}",
                    f"{key!r} is already set in the family {d.family!r}: give it once",
                )
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
            if isinstance(eps, list) and not eps:
                fail(f"dgps[{i}].contamination.eps", "an empty list of values")
            for e in eps if isinstance(eps, list) else [eps]:
                if not 0.0 <= e < 1.0:
                    fail(f"dgps[{i}].contamination.eps", f"must lie in [0, 1), got {e:g}")
    numeric = {k: v for k, v in spec.model.fixed.items() if v != "truth"}
    try:
        spelled = get_family(spec.model.family).fixed
    except LikelabError as exc:
        fail("model.family", str(exc))
    for key in spec.model.fixed:
        if key in spelled:
            fail(
                f"model.fixed.{key}",
                f"{key!r} is already set in the family {spec.model.family!r}: give it once",
            )
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
    canonical: dict[str, int] = {}
    for j, name in enumerate(spec.objectives):
        try:
            obj = get_objective(name)
        except LikelabError as exc:
            fail(f"objectives[{j}]", str(exc))
        if obj.batch_level:
            fail(f"objectives[{j}]", f"{name!r} is batch-level and cannot be fitted; use log")
        first = canonical.setdefault(obj.spec, j)
        if first != j:
            prev = spec.objectives[first]
            same = "repeated" if prev == name else f"{name!r} and {prev!r} are both {obj.spec!r}"
            fail(
                f"objectives[{j}]",
                f"the objective of objectives[{first}] again ({same}): give each objective once",
            )
    estimand = spec.model.estimand or []
    for name in estimand:
        if estimand.count(name) > 1:
            fail("model.estimand", f"{name!r} is listed twice")
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
    for n in spec.sample_sizes:
        if n < len(free):
            fail("sample_sizes", f"n = {n} cannot identify {len(free)} free parameters")
    try:
        dgp_points(spec)
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from None


# ---------------------------------------------------------------------- size
#: Memory of a cell's fit per simulated value: the data (8-byte doubles) and the batched fit's
#: working set, measured at up to 13.5x the data (dpd:beta=0.5, normal, 100 x 20,000; log:
#: 6.7x), rounded up to 16x.
CELL_BYTES_PER_VALUE = 8 * 16
#: CPU seconds of one fit (one start, up to 100 iterations), a lower bound from measurements:
#: 2.9 ms (log, normal, n = 20) to 50 ms (log, student_t, n = 20,000) per fit.
FIT_SECONDS_BASE = 1e-3
FIT_SECONDS_PER_OBS = 3e-7
#: DGP points: each is built and checked when the study is loaded (about 0.1 ms each) and
#: makes its own rows in every table of the summary and the report.
MAX_POINTS = 10_000
#: Cells: each is a task, a transaction and a row of bookkeeping; the runner lists the
#: unfinished ones (about 300 bytes each).
MAX_CELLS = 1_000_000
#: A study estimated at more than a CPU-year is refused: a mistyped replicates, sample size or
#: grid is far likelier than an intended run that long.
MAX_CPU_SECONDS = 365.25 * 24 * 3600


@dataclass(frozen=True)
class StudySize:
    """What a study costs, computed from the file alone (nothing is built)."""

    points: int  # DGP points (grids and contamination shares expanded)
    cells: int  # points x sample sizes x blocks
    fits: int  # points x sample sizes x replicates x objectives
    cell_bytes: int  # memory of the largest cell's fit
    cpu_seconds: float  # a lower bound on the CPU time of every fit


def study_size(spec: StudySpec, *, source: str = "study", check: bool = False) -> StudySize:
    """The number of DGP points, cells and fits of ``spec``, the memory of its largest cell and a
    lower bound on its CPU time, by arithmetic on the file's lists (no grid is expanded).

    With ``check``, raise a :class:`SpecError` naming the field and giving the estimate when the
    study cannot fit: a cell larger than :func:`likelab._budget.memory_limit`, more than
    :data:`MAX_POINTS` DGP points or :data:`MAX_CELLS` cells, or more than
    :data:`MAX_CPU_SECONDS` of CPU time.
    """
    per_dgp = []
    for d in spec.dgps:
        k = math.prod(len(v) if isinstance(v, list) else 1 for v in d.params.values())
        if d.contamination is not None and isinstance(d.contamination.eps, list):
            k *= len(d.contamination.eps)
        per_dgp.append(k)
    points = sum(per_dgp)
    sizes = spec.sample_sizes
    blocks = -(-spec.replicates // spec.block)
    cells = points * len(sizes) * blocks
    fits = points * len(sizes) * spec.replicates * len(spec.objectives)
    n_max = max(sizes)
    block = min(spec.block, spec.replicates)
    cell_bytes = block * n_max * CELL_BYTES_PER_VALUE
    starts = spec.fit.multistart * max(1.0, spec.fit.max_iter / 100)
    cpu = (
        points
        * spec.replicates
        * len(spec.objectives)
        * starts
        * sum(FIT_SECONDS_BASE + FIT_SECONDS_PER_OBS * n for n in sizes)
    )
    size = StudySize(points, cells, fits, cell_bytes, cpu)
    if not check:
        return size

    def fail(field: str, message: str) -> None:
        raise SpecError(f"{source}: {field}: {message}")

    memory = memory_limit()  # the limit of every size check (LIKELAB_MEMORY_LIMIT)
    if cell_bytes > memory:
        one = n_max * CELL_BYTES_PER_VALUE
        fix = "use a smaller block" if one <= memory else "use a smaller n"
        fail(
            "sample_sizes" if one > memory else "block",
            f"a cell of {block:,} replicates of n = {n_max:,} needs about "
            f"{format_bytes(cell_bytes)} "
            f"of memory (the data and the fit's working set, ~{CELL_BYTES_PER_VALUE} bytes "
            f"per value), over the limit of {format_bytes(memory)} (half the machine's memory, or "
            f"LIKELAB_MEMORY_LIMIT): {fix}",
        )
    if points > MAX_POINTS:
        big = max(range(len(per_dgp)), key=per_dgp.__getitem__)
        fail(
            "dgps",
            f"the parameter grids make {points:,} DGP points (dgps[{big}] alone "
            f"{per_dgp[big]:,}); at most {MAX_POINTS:,}: use fewer values per parameter",
        )
    factors = {"dgps": points, "sample_sizes": len(sizes), "replicates": blocks}
    largest = max(factors, key=factors.__getitem__)
    if cells > MAX_CELLS:
        fail(
            largest,
            f"{points:,} DGP points x {len(sizes)} sample sizes x {blocks:,} blocks of "
            f"{spec.block:,} replicates make {cells:,} cells; at most {MAX_CELLS:,}: use fewer "
            "replicates or a larger block",
        )
    if cpu > MAX_CPU_SECONDS:
        factors["replicates"] = spec.replicates
        fail(
            max(factors, key=factors.__getitem__),
            f"{fits:,} fits ({points:,} DGP points x {len(sizes)} sample sizes x "
            f"{spec.replicates:,} replicates x {len(spec.objectives)} objectives)"
            + (
                f" of {spec.fit.multistart:,} start(s) of up to {spec.fit.max_iter:,} "
                "iterations each"
                if starts != 1
                else ""
            )
            + f" take at least {format_seconds(cpu)} of CPU time; at most a CPU-year: use fewer "
            "replicates, sample sizes or grid values",
        )
    return size


def grid(params: dict[str, Values]) -> list[dict[str, float]]:
    """The cartesian product of list-valued parameters, in file order."""
    keys = list(params)
    lists = [v if isinstance(v, list) else [v] for v in params.values()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*lists)]
