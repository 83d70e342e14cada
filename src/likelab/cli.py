"""The ``likelab`` command: parse, call the library, print.

Every subcommand that reports numbers takes ``--json`` (machine-readable, stable keys) and writes a
figure only when asked (``--plot FILE``). Every one that prints a table takes ``--format
table|markdown|csv|json`` (``--json`` is ``--format json``): the same rows and columns in each,
never cut (:mod:`likelab._tables`); csv and markdown hold the cells as the table shows them, json
the numbers to full precision. An objective is shown as the user spelled it, the canonical spec
in brackets where it differs (``brier (quadratic)``); the JSON has it as ``objective_given``.

Bad input prints one line, ``error: ...``, on stderr and exits with status 2; never a traceback.
A command that printed its results but of which something failed (``fit``, ``landscape``,
``properness``: an objective that could not be computed, a fit that did not converge) says so
in its table and in one line on stderr, and exits with status 1.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console

from likelab._budget import check_memory, format_seconds
from likelab._paths import FIGURE_SUFFIXES, atomic_write, check_output_dir, check_output_file
from likelab._spec import parse_number
from likelab._tables import TableData
from likelab.errors import LikelabError, OutputError, ParameterError, SpecError

try:  # typer >= 0.2x vendors click; its usage errors derive from TyperException
    from typer import TyperException as _UsageError
except ImportError:  # pragma: no cover - older typer on top of click
    from click import ClickException as _UsageError

app = typer.Typer(
    name="likelab",
    help="A laboratory for likelihood-based objectives: why the product of likelihoods "
    "(the NLL), and what goes wrong with the sum or anything else.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from likelab import __version__

        typer.echo(f"likelab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print likelab's version and exit."
        ),
    ] = False,
) -> None:
    """A laboratory for likelihood-based objectives: why the product of likelihoods (the NLL),
    and what goes wrong with the sum or anything else."""


_out = Console(soft_wrap=True, markup=False, highlight=False)
_err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)

WorkersOpt = Annotated[
    int | None, typer.Option("--workers", help="Worker processes (default: all cores).")
]
SchedulerOpt = Annotated[
    str | None, typer.Option("--scheduler", help="A running Dask scheduler, tcp://host:port.")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON (the same as --format json).")
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        metavar="table|markdown|csv|json",
        help="How to print: table (default; off a terminal at its full width, never cut), "
        "markdown (a GitHub pipe table), csv (RFC 4180, one header row) or json.",
    ),
]
# Output paths are taken as text, not Path: Path("") is ".", and an empty path must be refused.
PlotOpt = Annotated[
    str | None,
    typer.Option(
        "--plot",
        metavar="FILE",
        help="Write a figure to FILE; the format follows its extension: .png, .pdf or .svg.",
    ),
]
TheoryOpt = Annotated[
    bool | None,
    typer.Option(
        "--theory/--no-theory",
        help="Beside the simulation, what M-estimator theory predicts per cell (likelab "
        "asymptotics: the asymptotic SD beside the empirical SE × √n, the ARE beside the "
        "relative efficiency), once per (DGP point, objective), seconds each. Default: "
        "computed when the study has at most 16 such pairs, within 60 s in all.",
    ),
]
FiguresOpt = Annotated[
    str,
    typer.Option(
        "--figures",
        metavar="png|svg",
        help="Format of the page's figures, embedded in the page either way: png (default) or "
        "svg (vector graphics, sharp at any zoom and in print).",
    ),
]


# ---------------------------------------------------------------------- helpers
_table_format = "table"  # --format of the running command: table, markdown or csv
#: Notes for stderr (e.g. rows dropped by --missing drop), printed by :func:`main` once the
#: command has succeeded: a failing command prints its one error line and nothing else.
_notes: list[str] = []


def _output_format(fmt: str, as_json: bool) -> bool:
    """Check ``--format`` and remember it for :func:`_show`; returns whether JSON is asked
    (``--json`` is ``--format json``)."""
    global _table_format
    from likelab._tables import FORMATS

    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise SpecError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if as_json and fmt not in ("table", "json"):
        raise SpecError(f"--json is --format json; drop one of --json and --format {fmt}")
    _table_format = "table" if fmt == "json" else fmt
    return as_json or fmt == "json"


def _show(*tables) -> None:
    """Print :class:`likelab._tables.TableData` tables in the command's ``--format``."""
    from likelab._tables import render

    render(tables, _table_format, _out)


_given: dict[str, str] = {}  # canonical spec -> the objective as the user spelled it


def _spelled(specs: list[str]) -> list[str]:
    """Remember how the user spelled each objective (``brier``, ``nll``), so that tables and
    JSON show it beside the canonical spec the library reports (``quadratic``, ``log``);
    ``specs`` is returned unchanged."""
    from likelab.objectives import get_objective

    for text in specs:
        try:
            _given[get_objective(text).spec] = text
        except LikelabError:  # refused later, where the objective is used
            pass
    return specs


def _label(spec: str) -> str:
    """An objective as the user spelled it, its canonical spec in brackets where they differ:
    ``brier (quadratic)``; the canonical spec alone where the user named no spelling."""
    given = _given.get(spec)
    if given is None:
        from likelab.objectives import get_objective

        try:  # the spec may be a spelling itself (a study store keeps the study file's)
            canonical = get_objective(spec).spec
        except Exception:
            return spec
        return spec if canonical == spec else f"{spec} ({canonical})"
    return given if given == spec else f"{given} ({spec})"


def _with_given(obj: Any) -> Any:
    """``obj`` (JSON-ready) with ``objective_given``, the objective as the user spelled it, beside
    every ``objective`` key and in every entry of an ``objectives`` mapping keyed by spec."""
    if isinstance(obj, list):
        return [_with_given(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: _with_given(v) for k, v in obj.items()}
    spec = out.get("objective")
    if isinstance(spec, str) and spec in _given and "objective_given" not in out:
        out["objective_given"] = _given[spec]
    objectives = out.get("objectives")
    if isinstance(objectives, dict):
        for key, entry in objectives.items():
            if key in _given and isinstance(entry, dict):
                entry.setdefault("objective_given", _given[key])
    return out


def _wants_json(args: list[str]) -> bool:
    """Whether the command line asks for JSON: ``--json``, ``--format json``, ``--format=json``."""
    for i, a in enumerate(args):
        if a == "--json" or a.replace(" ", "").lower() == "--format=json":
            return True
        if a == "--format" and i + 1 < len(args) and args[i + 1].strip().lower() == "json":
            return True
    return False


_json_pending: list[str] | None = None  # JSON held back while a --json command runs


def _emit_json(obj: Any) -> None:
    text = json.dumps(_with_given(_jsonable(obj)), indent=2, allow_nan=False)
    if _json_pending is not None:
        _json_pending.append(text)
    else:
        typer.echo(text)


@contextlib.contextmanager
def _stdout_for_json(args: list[str]):
    """With ``--json``, stdout carries the JSON alone: whatever else is written to it while the
    command runs (a user objective's ``print()``, here or in a worker process) goes to stderr,
    and the JSON is printed once the command has succeeded."""
    global _json_pending
    if not _wants_json(args) or "--help" in args:
        yield
        return
    _json_pending = pending = []
    try:  # the file descriptor too, for worker processes and C code (none when captured)
        out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        out_fd = err_fd = None
    saved = None
    if out_fd is not None and out_fd != err_fd:
        sys.stdout.flush()
        saved = os.dup(out_fd)
        os.dup2(err_fd, out_fd)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _json_pending = None
        if saved is not None:
            sys.stdout.flush()
            os.dup2(saved, out_fd)
            os.close(saved)
    for text in pending:
        typer.echo(text)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _plot_target(plot: str | None) -> Path | None:
    """``--plot FILE`` checked before anything is computed (see :func:`check_output_file`)."""
    if plot is None:
        return None
    return check_output_file(plot, suffixes=FIGURE_SUFFIXES, what="--plot")


def _write_figure(fig, path: Path) -> None:
    """Save a matplotlib figure to ``path``, whole or not at all (one implementation for every
    command: :func:`likelab.report.figures.save_figure`)."""
    from likelab.report.figures import save_figure

    save_figure(fig, path)


def _finish(result: Any, *, plot: Path | None, as_json: bool, figure: str, show) -> None:
    """Draw ``result`` with ``likelab.report.figures.<figure>`` if asked, then print it: JSON
    (``result.to_dict()``) or the human table (``show``). ``plot`` was checked by
    :func:`_plot_target` before the computation."""
    if plot is not None:
        from likelab.report import figures

        _write_figure(getattr(figures, figure)(result), plot)
    if as_json:
        _emit_json(result.to_dict())
        return
    show(result)
    if plot is not None:
        _err.print(f"figure written to {plot}")


def split_specs(text: str) -> list[str]:
    """Split a comma-separated list of specs, keeping ``key=value`` continuations together.

    >>> split_specs("log,dpd:beta=0.5,power:alpha=2")
    ['log', 'dpd:beta=0.5', 'power:alpha=2']
    >>> split_specs("mine:a=1,b=2,log")
    ['mine:a=1,b=2', 'log']
    >>> split_specs("phi:maximum(-p, -0.5),log")  # a comma inside parentheses stays
    ['phi:maximum(-p, -0.5)', 'log']
    """
    specs: list[str] = []
    for raw in text.split(","):
        piece = raw.strip()
        if specs and specs[-1].count("(") > specs[-1].count(")"):
            specs[-1] = (specs[-1] + "," + raw).strip()  # inside a phi:EXPR's function call
            continue
        if not piece:
            continue
        if specs and ":" not in piece and "=" in piece and ":" in specs[-1]:
            specs[-1] += "," + piece
        else:
            specs.append(piece)
    if not specs:
        raise SpecError("no objectives given")
    return specs


def _distinct_objectives(specs: list[str]) -> list[str]:
    """``specs`` unchanged, or :class:`SpecError` if two of them name the same objective (``log``
    twice, or ``log`` and its alias ``nll``): the comparison would show one rule twice."""
    from likelab.estimate.tuning import auto_objective
    from likelab.objectives import get_objective

    seen: dict[str, str] = {}
    for text in specs:
        tun = auto_objective(text)  # dpd:beta=auto: fit's own spelling
        canonical = tun.spec if tun is not None else get_objective(text).spec
        if canonical in seen:
            first = seen[canonical]
            what = "given twice" if first == text else f"the same objective as {first!r}"
            raise SpecError(f"objective {text!r} is {what}; give each objective once")
        seen[canonical] = text
    return specs


def _parse_assignment(text: str, *, option: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name.strip() or not value.strip():
        raise SpecError(f"{option} expects NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def _parse_fix(items: list[str]) -> dict[str, float]:
    fixed: dict[str, float] = {}
    for item in items:
        name, value = _parse_assignment(item, option="--fix")
        if name in fixed:
            raise SpecError(f"--fix {name} given twice; give each parameter once")
        try:
            fixed[name] = float(value)
        except ValueError:
            raise SpecError(f"--fix {name}: {value!r} is not a number") from None
        if not math.isfinite(fixed[name]):
            raise SpecError(f"--fix {name}: {value!r} is not finite")
    return fixed


def _parse_param(items: list[str]) -> dict[str, tuple[float, float, int]]:
    """``--param NAME=LO:HI:N`` items as ``{name: (lo, hi, n)}``; nothing is allocated yet, so
    that the grid's size can be checked first (:func:`_build_grid`)."""
    grid: dict[str, tuple[float, float, int]] = {}
    for item in items:
        name, rng = _parse_assignment(item, option="--param")
        parts = rng.split(":")
        if len(parts) != 3:
            raise SpecError(f"--param {name}: expected LO:HI:N, got {rng!r}")
        try:
            lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise SpecError(f"--param {name}: expected numbers LO:HI:N, got {rng!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
            raise ParameterError(f"--param {name}: need finite LO < HI, got {lo:g}:{hi:g}")
        if n < 2:
            raise ParameterError(f"--param {name}: need N >= 2 grid points, got {n}")
        if name in grid:
            raise SpecError(f"--param {name} given twice")
        grid[name] = (lo, hi, n)
    return grid


def _build_grid(axes: dict[str, tuple[float, float, int]]) -> dict[str, np.ndarray]:
    return {name: np.linspace(lo, hi, n) for name, (lo, hi, n) in axes.items()}


def _progress_bar(label: str, total: int):
    """A transient rich progress bar on stderr and its ``advance(done, total)`` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress(
        "{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_err,
        transient=True,
    )
    task = progress.add_task(label, total=total)

    def advance(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return progress, advance


def _fmt(x: float | None, digits: int = 6) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}"


# ---------------------------------------------------------------------- objectives
@app.command("objectives")
def objectives_cmd(as_json: JsonOpt = False, fmt: FormatOpt = "table") -> None:
    """List every objective with its formula, reference and claimed properties.

    Your own objective is a Python function fn(dist, y), named by import path wherever an
    objective is asked for (mypackage.losses:my_loss) or registered with
    @likelab.objective("name"). dist is a batched torch Distribution (the forecasts), y the
    observations; fn returns one loss per observation, lower is better: a floating-point torch
    tensor of shape broadcast(dist.batch_shape, y.shape), not reduced (no mean or sum; PyTorch
    losses need reduction="none"), computed with torch operations so that it is differentiable
    in the forecast's parameters. A function of one argument is a function of the likelihood
    alone: fn(p) with p = f(y), or fn(l) with l = log f(y); or, without Python, the spec
    phi:EXPR, an expression in p and l (phi:-log(p) is log, phi:-p is linear) with numbers,
    + - * / ** (or ^), parentheses, log, exp, sqrt, log1p, expm1, abs, tanh, sigmoid, minimum
    and maximum, parsed and never run as Python. likelab checks a user objective on a small
    probe before use and names it in any error it raises.

    \b
    Example, in mylosses.py:
        import torch
        def capped_nll(dist, y):
            return torch.clamp(-dist.log_prob(y), max=10.0)  # one loss per observation
    then: likelab fit data.txt --objective mylosses:capped_nll
    """
    as_json = _output_format(fmt, as_json)
    from likelab.objectives import get_objective, list_objectives
    from likelab.objectives.base import aliases_of

    rows = []
    for name in list_objectives():
        desc = get_objective(name).describe()
        desc["aliases"] = list(aliases_of(name))
        rows.append(desc)
    if as_json:
        _emit_json({"objectives": rows})
        return
    table = TableData(
        "likelab objectives (loss orientation: lower is better)",
        ["spec", "formula", "proper", "strict", "local", "robust"],
    )
    for r in rows:
        p = r["properties"]
        spec = r["spec"] + (f" ({', '.join(r['aliases'])})" if r["aliases"] else "")
        if p["demonstration"]:
            spec += " [demo]"
        table.add_row(
            spec,
            r["formula"],
            *(_yn(p[k]) for k in ("proper", "strictly_proper", "local", "robust")),
        )
    _show(table)


def _yn(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


# ---------------------------------------------------------------------- families
@app.command("families")
def families_cmd(as_json: JsonOpt = False, fmt: FormatOpt = "table") -> None:
    """List the parametric families, their parameters and supports."""
    as_json = _output_format(fmt, as_json)
    from likelab.families import FAMILIES

    rows = [
        {
            "name": name,
            "params": [
                {"name": p.name, "domain": p.domain, "description": p.description}
                for p in cls.params
            ],
            "support": cls.support,
            "discrete": cls.discrete,
            "torch": cls.torch_name,
        }
        for name, cls in FAMILIES.items()
    ]
    if as_json:
        _emit_json({"families": rows})
        return
    table = TableData("likelab families", ["name", "parameters", "support", "torch"])
    for r in rows:
        params = ", ".join(f"{p['name']} ({p['domain']})" for p in r["params"])
        table.add_row(r["name"], params, r["support"], r["torch"])
    _show(table)


# ---------------------------------------------------------------------- data options
# Every command that reads a data file takes it as FILE or --data FILE, with --column and
# --missing (see likelab.io.read_data), and reads it with _load_data.
_DATA_HELP = "Observations: one number per line, or a CSV (see --column and --missing)."
DataArg = Annotated[Path | None, typer.Argument(metavar="FILE", help=_DATA_HELP)]
DataOpt = Annotated[
    Path | None, typer.Option("--data", metavar="FILE", help=_DATA_HELP + " Same as FILE.")
]
ColumnOpt = Annotated[
    str | None,
    typer.Option("--column", help="CSV column to read: a header name or a 0-based index."),
]
MissingOpt = Annotated[
    str | None,
    typer.Option(
        "--missing",
        metavar="error|drop",
        help="A row with no value in the column ('', NA, N/A, nan, null, None, #N/A): "
        "error (default; lists the rows) or drop (leave it out; the count goes to stderr and "
        "to --json as dropped_missing).",
    ),
]


# ---------------------------------------------------------------------- objectives option
# Every command that compares objectives takes --objectives A,B (repeatable; --objective is the
# same option) and reads it with _objective_specs.
_OBJECTIVES_HELP = (
    "Objective specs, comma-separated (user objectives by import path, module:function, or "
    "a function of the likelihood, phi:EXPR, e.g. phi:-p**0.3); repeat the option to add "
    "more. --objective is the same option."
)


def _objectives_option(default: str) -> Any:
    """The ``--objectives A,B`` option (``--objective`` the same, repeatable) of every command
    that compares objectives, with its default named in the help."""
    return Annotated[
        list[str] | None,
        typer.Option(
            "--objectives",
            "--objective",
            metavar="A,B",
            help=_OBJECTIVES_HELP + f" Default: {default}.",
        ),
    ]


#: ``--objectives`` with the default of each command (an alias each: a type checker reads no
#: call in an annotation).
ObjectivesLogOpt = _objectives_option("log")
ObjectivesLandscapeOpt = _objectives_option("linear,product,log")
ObjectivesTrainOpt = _objectives_option("log,linear,brier")

#: ``--fix NAME=VALUE``, repeatable: a parameter of the model family held fixed.
FixOpt = Annotated[
    list[str] | None,
    typer.Option("--fix", metavar="NAME=VALUE", help="Hold a parameter fixed: NAME=VALUE."),
]

#: The exit status of a command that printed its results but of which something failed: an
#: objective that could not be fitted, evaluated or judged, or a fit that did not converge.
#: (2 stays for bad input: one line on stderr, nothing on stdout.)
SOMETHING_FAILED = 1
#: Work estimated to take longer than this (seconds) shows a progress bar on stderr (a terminal).
_PROGRESS_AFTER_S = 2.0


def _objective_specs(values: list[str] | None, default: str) -> list[str]:
    """The specs of every ``--objectives`` given (each a comma list), or of ``default``."""
    return [spec for text in (values or [default]) for spec in split_specs(text)]


def _exit_failed(command: str, problems: list[str]) -> None:
    """After the results are printed: one line on stderr naming what failed, and exit status
    :data:`SOMETHING_FAILED` (nothing when ``problems`` is empty)."""
    if not problems:
        return
    _err.print(
        f"{command}: {'; '.join(problems)} (see the table); exit status {SOMETHING_FAILED}",
        markup=False,
    )
    raise typer.Exit(SOMETHING_FAILED)


class _Notes:
    """Numbered notes for a table: ``mark(reason)`` gives ``[k]`` (one number per distinct
    reason), :meth:`table` the notes as a table of their own, so that csv and markdown carry
    them too."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def mark(self, reason: str) -> str:
        number = self._numbers.setdefault(reason, len(self._numbers) + 1)
        return f"[{number}]"

    def table(self) -> TableData | None:
        if not self._numbers:
            return None
        notes = TableData("notes", ["note", "reason"])
        for reason, number in self._numbers.items():
            notes.add_row(f"[{number}]", reason)
        return notes


def _show_with_notes(table: TableData, notes: _Notes) -> None:
    extra = notes.table()
    _show(table, *([extra] if extra is not None else []))


# ---------------------------------------------------------------------- landscape
@app.command("landscape")
def landscape_cmd(
    file: DataArg = None,
    data: DataOpt = None,
    column: ColumnOpt = None,
    missing: MissingOpt = None,
    simulate: Annotated[
        str | None,
        typer.Option("--simulate", help="Simulate data, e.g. normal:loc=0,scale=1,n=10."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed for --simulate.")] = 0,
    family: Annotated[str, typer.Option("--family", help="Model family, e.g. normal.")] = "normal",
    fix: FixOpt = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Grid axis NAME=LO:HI:N (once for 1-D, twice for 2-D)."),
    ] = None,
    objectives: ObjectivesLandscapeOpt = None,
    dtype: Annotated[
        str, typer.Option("--dtype", help="float64 (default) or float32.")
    ] = "float64",
    seed_example: Annotated[
        bool,
        typer.Option(
            "--seed-example",
            help="The seed's figure: n=10 from N(0,1), scale=0.1, "
            "loc over [-3, 3] on 10,000 points.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    fmt: FormatOpt = "table",
    plot: PlotOpt = None,
) -> None:
    """Evaluate objectives over a 1-D or 2-D parameter grid and find every local minimum.

    An objective that cannot be evaluated on this family and data (hyvarinen on a Laplace model,
    a user objective that raises on these data) is a row with its reason; the others are
    evaluated. A user objective that breaks its contract whatever the data is bad input.

    Exit status: 0 when every objective was evaluated; 1 when one or more could not be (the
    results are still printed); 2 for bad input (nothing is printed on stdout).
    """
    as_json = _output_format(fmt, as_json)
    import torch

    from likelab.landscape import evaluate
    from likelab.landscape import seed_example as seed_example_fn

    torch_dtype = {"float64": torch.float64, "float32": torch.float32}.get(dtype)
    if torch_dtype is None:
        raise SpecError(f"--dtype must be float64 or float32, got {dtype!r}")
    specs = _spelled(_distinct_objectives(_objective_specs(objectives, "linear,product,log")))
    plot = _plot_target(plot)
    if seed_example:
        if any(v is not None for v in (file, data, simulate, column, missing)) or param or fix:
            raise SpecError("--seed-example sets data, family and grid itself; drop the others")
        result = seed_example_fn(seed=seed, objectives=tuple(specs), dtype=torch_dtype)
    else:
        fixed = _parse_fix(fix or [])
        axes = _parse_param(param or [])
        if not axes:
            raise SpecError("give the grid with --param NAME=LO:HI:N (or use --seed-example)")
        if len(axes) > 2:
            raise SpecError("--param may be given once (1-D) or twice (2-D)")
        from likelab.families import get_family
        from likelab.landscape import evaluation_cost

        fam = get_family(family, **fixed)
        shape = tuple(n for _, _, n in axes.values())
        # the grid alone (before the data are read or drawn), then with the data's size
        nbytes, _ = evaluation_cost(shape, 1, len(specs), dtype=torch_dtype)
        check_memory(nbytes, what=f"the {' x '.join(map(str, shape))} grid")
        y, dropped = _load_data(_data_file(file, data), simulate, seed, column, missing)
        nbytes, seconds = evaluation_cost(shape, int(np.size(y)), len(specs), dtype=torch_dtype)
        check_memory(
            nbytes,
            what=f"the {' x '.join(map(str, shape))} grid on n = {np.size(y)}",
            seconds=seconds,
        )
        grid = _build_grid(axes)
        if seconds > _PROGRESS_AFTER_S and _err.is_terminal and not as_json:
            progress, advance = _progress_bar(
                f"landscape (about {format_seconds(seconds)})", math.prod(shape)
            )
            with progress:
                result = evaluate(y, fam, specs, grid, dtype=torch_dtype, on_progress=advance)
        else:
            result = evaluate(y, fam, specs, grid, dtype=torch_dtype)
        if dropped is not None:
            result = _WithDataFields(result, dropped_missing=dropped)
    if plot is not None and not result.results:
        _err.print(f"no figure: no objective could be evaluated, {plot} is not written")
        plot = None
    _finish(result, plot=plot, as_json=as_json, figure="plot_landscape", show=_print_landscape)
    _exit_failed(
        "landscape",
        [f"{_label(spec)} could not be evaluated" for spec in result.failures],
    )


def _data_file(file: Path | None, data: Path | None) -> Path | None:
    """The data file, given as FILE or as --data FILE (not both)."""
    if file is not None and data is not None:
        raise SpecError(f"give the data file once, as FILE or --data FILE (got {file} and {data})")
    return file if file is not None else data


def _load_data(
    data: Path | None,
    simulate: str | None,
    seed: int,
    column: str | None = None,
    missing: str | None = None,
) -> tuple[np.ndarray, int | None]:
    """The observations, from a data file or drawn by --simulate, and how many rows of the file
    --missing drop left out (None for --simulate). With --missing drop the count is said on
    stderr, whatever it is."""
    if (data is None) == (simulate is None):
        raise SpecError("give exactly one of a data file (FILE or --data FILE) and --simulate SPEC")
    if missing not in (None, "error", "drop"):
        raise SpecError(f"--missing must be error or drop, got {missing!r}")
    if data is not None:
        from likelab.io import read_data

        d = read_data(data, column, missing=missing or "error")
        if missing == "drop":
            lines = ", ".join(map(str, d.missing_lines[:5].tolist()))
            more = d.dropped_missing - min(d.dropped_missing, 5)
            where = f" (line{'s' if d.dropped_missing > 1 else ''} {lines}" + (
                f" and {more:,} more)" if more else ")"
            )
            _notes.append(
                f"--missing drop: dropped {d.dropped_missing:,} of {d.rows:,} rows of "
                f"{data.name} with a missing value in {d.column}"
                + (where if d.dropped_missing else "")
            )
        return d.values, d.dropped_missing
    if column is not None or missing is not None:
        raise SpecError("--column and --missing apply to a data file, not to --simulate")
    from likelab.families.dgp import parse_dgp, split_sample_size

    dgp_text, n = split_sample_size(simulate)
    dgp = parse_dgp(dgp_text)
    # the draws, their float64 copy and the data checks: ~4 doubles per observation
    check_memory(32.0 * n, what=f"--simulate: a sample of n = {n}")
    return dgp.sample(n, seed=seed), None


class _WithDataFields:
    """A command's result with fields about its data file added to its JSON (``to_dict``);
    everything else is the result's own."""

    def __init__(self, result: Any, **fields: Any) -> None:
        self._result = result
        self._fields = fields

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    def to_dict(self) -> dict[str, Any]:
        return {**self._result.to_dict(), **self._fields}


def _print_landscape(result) -> None:
    grid = ", ".join(
        f"{name} in [{_fmt(float(ax[0]))}, {_fmt(float(ax[-1]))}] ({len(ax)} points)"
        for name, ax in result.axes.items()
    )
    table = TableData(
        f"{result.family}, n = {result.n}, {grid}, {result.dtype}",
        ["objective", "local minima", "global argmin", "min risk", "flat grid"],
    )
    notes = _Notes()
    for spec, r in result.results.items():
        argmin = ", ".join(f"{k} = {_fmt(v, 5)}" for k, v in r.argmin.items())
        if r.minima and r.minima[0].on_boundary:  # the lowest minimum: the global one
            argmin += " " + notes.mark(
                "the global minimum on the grid lies on its edge: the risk may keep falling "
                "beyond it (widen the grid, or fit to find where it goes)"
            )
        table.add_row(
            _label(spec),
            str(r.local_minima),
            argmin or "-",
            _fmt(r.min_value),
            f"{100 * r.flat_fraction:.1f}%",
        )
    for spec, reason in result.failures.items():
        table.add_row(_label(spec), f"failed {notes.mark(reason)}", "-", "-", "-")
    _show_with_notes(table, notes)


# ---------------------------------------------------------------------- fit
@app.command("fit")
def fit_cmd(
    file: DataArg = None,
    data: DataOpt = None,
    family: Annotated[
        str, typer.Option("--family", help="Model family, e.g. normal or student_t:df=3.")
    ] = "normal",
    objective: ObjectivesLogOpt = None,
    fix: FixOpt = None,
    column: ColumnOpt = None,
    missing: MissingOpt = None,
    multistart: Annotated[
        int,
        typer.Option("--multistart", min=1, help="Starting points per fit; the best is kept."),
    ] = 1,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed of the extra starting points.")
    ] = 0,
    pilot: Annotated[
        str | None,
        typer.Option(
            "--pilot",
            metavar="SPEC|NAME=VALUE,..",
            help="Pilot of dpd:beta=auto, gamma:gamma=auto, lq:q=auto: an objective spec "
            "(default dpd:beta=1, gamma:gamma=1 for gamma) or every free parameter's value, "
            "e.g. loc=0,scale=1.",
        ),
    ] = None,
    tune_grid: Annotated[
        str | None,
        typer.Option(
            "--tune-grid",
            metavar="B1,B2,..",
            help="Grid of the auto parameter (default 0,0.05,..,1 for beta and gamma, where 0 "
            "is log; 0.5,0.55,..,1 for q).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    fmt: FormatOpt = "table",
) -> None:
    """Fit a family to one column of data by minimising each objective; estimates ± sandwich SE.

    dpd:beta=auto, gamma:gamma=auto and lq:q=auto choose the parameter on a grid (--tune-grid)
    by the iterated Warwick-Jones estimate of the MSE against a pilot (--pilot); a table under
    the fit shows the MSE curve and the estimates along the grid.

    An objective that cannot be fitted (hyvarinen on a Laplace model, the naive product, a user
    objective that raises on these data) is a column that says why; the others are still
    fitted. A user objective that breaks its contract whatever the data is bad input. Every SE
    shown as n/a and every fit that did not converge has a numbered note saying why, listed
    under the table (in --json: "se_reason", "reason", and {"objective", "error"} entries).

    Exit status: 0 when every objective was fitted and converged; 1 when one or more could not
    be fitted or did not converge (everything is still printed); 2 for bad input (nothing is
    printed on stdout).
    """
    as_json = _output_format(fmt, as_json)
    from likelab.estimate import fit_objectives

    path = _data_file(file, data)
    if path is None:
        raise SpecError("Missing argument 'FILE': the data file (likelab fit FILE, or --data FILE)")
    specs = _spelled(_distinct_objectives(_objective_specs(objective, "log")))
    fixed = _parse_fix(fix or [])
    pilot_ = _parse_pilot(pilot)
    grid = None if tune_grid is None else _parse_numbers(tune_grid, option="--tune-grid")
    from likelab.families import get_family

    get_family(family, **fixed)  # an unknown family or parameter fails before the file is read
    y, dropped = _load_data(path, None, seed, column, missing)
    # every start is a row of the batched fit: measured ~15 bytes and ~7.5 us per (start,
    # observation) for a normal fit (200 starts x 20,000 observations: +60 MB, 31 s); 32 bytes
    # leaves room for families with more parameters
    n_obs = max(int(np.size(y)), 1)
    from likelab.estimate.tuning import auto_objective

    # an =auto objective is one fit per grid value and one for its pilot
    fits = sum(len(grid or t.grid) + 1 if (t := auto_objective(x)) else 1 for x in specs)
    seconds = 7.5e-6 * multistart * n_obs * fits
    check_memory(
        32.0 * multistart * n_obs,
        what=f"--multistart {multistart} on n = {np.size(y)} observations",
        seconds=seconds,
    )

    def run(on_progress=None):
        return fit_objectives(
            y, family, specs, fixed=fixed or None, multistart=multistart, seed=seed,
            on_progress=on_progress, pilot=pilot_, tune_grid=grid,
        )  # fmt: skip

    if seconds > _PROGRESS_AFTER_S and _err.is_terminal and not as_json:
        progress, advance = _progress_bar(f"fit (about {format_seconds(seconds)})", len(specs))
        with progress:
            result = run(advance)
    else:
        result = run()
    if as_json:
        _emit_json({**result.to_dict(), "ok": result.ok, "dropped_missing": dropped})
    else:
        _print_fits(result, source=path.name)
    _exit_failed(
        "fit",
        [f"{_label(f.objective)} could not be fitted" for f in result.failures]
        + [f"{_label(f.objective)} did not converge" for f in result.unconverged],
    )


def _parse_pilot(text: str | None) -> str | dict[str, float] | None:
    """``--pilot``: an objective spec, or ``NAME=VALUE,...`` (a ``=`` and no ``:``) for values."""
    if text is None or "=" not in text or ":" in text:
        return text
    values: dict[str, float] = {}
    for item in text.split(","):
        name, value = _parse_assignment(item, option="--pilot")
        if name in values:
            raise SpecError(f"--pilot {name} given twice; give each parameter once")
        values[name] = parse_number(value, what=f"--pilot {name}")
    return values


def _parse_numbers(text: str, *, option: str) -> list[float]:
    """A comma-separated list of finite numbers."""
    items = [t.strip() for t in text.split(",")]
    if not any(items) or not all(items):
        raise SpecError(f"{option} expects numbers separated by commas, got {text!r}")
    return [parse_number(t, what=option) for t in items]


def _fit_label(f) -> str:
    """A fit's column label; a tuned fit names its chosen value: ``dpd:beta=auto (beta = 0.3)``."""
    t = getattr(f, "tuning", None)
    if t is None:
        return _label(f.objective)
    chosen = float(np.asarray(t.chosen).item())
    return f"{f.objective} ({t.parameter} = {_fmt(chosen) if math.isfinite(chosen) else '?'})"


def _tuning_table(f, notes: _Notes) -> TableData:
    """The grid of a tuned fit: the estimates along it (the monitoring path), tr(V)/n, the MSE
    minimised, and which value was chosen or why one was excluded."""
    t = f.tuning
    chosen = float(np.asarray(t.chosen).item())
    why = str(np.asarray(t.reason).item())
    passes = int(np.asarray(t.iterations).item())
    if not math.isfinite(chosen):
        head = f"{t.parameter} undetermined {notes.mark(why)}"
    else:
        state = (
            "settled" if bool(np.asarray(t.settled).item()) else f"not settled {notes.mark(why)}"
        )
        head = f"{t.parameter} = {_fmt(chosen)} chosen ({passes} passes, {state})"
    comps = [
        (name, j, name if np.ndim(t.path[name]) == 1 else f"{name}[{j}]")
        for name in f.free
        for j in range(int(np.size(t.path[name]) // len(t.grid)))
    ]
    table = TableData(
        f"{f.objective}: {head} by MSE = |estimate - pilot|² + tr(V)/n, first pilot {t.pilot}",
        [t.parameter, *(c[2] for c in comps), "tr(V)/n", "MSE", ""],
        justify={c: "right" for c in [t.parameter, *(c[2] for c in comps), "tr(V)/n", "MSE"]},
    )
    for i, b in enumerate(t.grid):
        ests = [_fmt(_component(np.asarray(t.path[name])[i], j)) for name, j, _ in comps]
        excluded = str(np.asarray(t.excluded)[i])
        mark = f"excluded {notes.mark(excluded)}" if excluded else ""
        if not excluded and b == chosen:
            mark = "<- chosen"
        label = _fmt(b) + (" (log)" if b == 0 and t.parameter in ("beta", "gamma") else "")
        table.add_row(label, *ests, _fmt(float(t.variance[i]), 4), _fmt(float(t.mse[i]), 4), mark)
    return table


def _print_fits(result, *, source: str) -> None:
    from likelab.estimate import FitResult
    from likelab.estimate.newton import STOP_REASONS

    fits = result.fits
    done = [f for f in fits if isinstance(f, FitResult)]
    columns = [
        "",
        *(_fit_label(f) if isinstance(f, FitResult) else _label(f.objective) for f in fits),
    ]
    table = TableData(
        f"{result.family} fitted to {source}, n = {result.n} (estimate ± sandwich SE)",
        columns,
        justify={c: "right" for c in columns[1:]},
    )
    notes = _Notes()

    def cells(show) -> list[str]:  # one cell per objective; "-" for one that failed
        return [show(f) if isinstance(f, FitResult) else "-" for f in fits]

    def estimate(f, name: str, j: int) -> str:
        est, se = _component(f.params[name], j), _component(f.se[name], j)
        if math.isfinite(se):
            return f"{_fmt(est)} ± {_fmt_se(se)}"
        why = str(np.asarray(f.se_reason).item()) if f.se_reason is not None else ""
        return f"{_fmt(est)} ± n/a {notes.mark(why or 'the SE is not finite')}"

    def converged(f) -> str:
        reason = str(np.asarray(f.reason).item())
        if bool(np.asarray(f.converged).item()):
            return f"yes ({reason})"
        why = STOP_REASONS.get(reason, reason)
        if f.tuning is not None and reason == "undetermined":  # no grid value to choose
            why = str(np.asarray(f.tuning.reason).item())
        return f"no ({reason}) {notes.mark(why)}"

    first = done[0] if done else None
    for name in first.free if first is not None else ():
        # a vector parameter (categorical ``probs``) gets one row per component
        size = int(np.size(first.params[name]))
        for j in range(size):
            label = name if size == 1 and np.ndim(first.params[name]) == 0 else f"{name}[{j}]"
            table.add_row(label, *cells(lambda f, name=name, j=j: estimate(f, name, j)))
    table.add_row("risk (mean loss)", *cells(lambda f: _fmt(float(f.value))))
    table.add_row(
        "converged",
        *(
            converged(f) if isinstance(f, FitResult) else f"failed {notes.mark(f.reason)}"
            for f in fits
        ),
    )
    table.add_row("iterations", *cells(lambda f: str(int(np.asarray(f.n_iter).item()))))
    tuned = [_tuning_table(f, notes) for f in done if f.tuning is not None]
    extra = notes.table()
    _show(table, *tuned, *([extra] if extra is not None else []))


def _component(value, j: int) -> float:
    """Component ``j`` of a scalar or vector estimate, as a float."""
    return float(np.asarray(value, dtype=np.float64).reshape(-1)[j])


def _fmt_se(se: float) -> str:
    """A standard error to 3 digits; ``n/a`` where it is not finite (singular Hessian)."""
    return _fmt(se, 3) if math.isfinite(se) else "n/a"


# ---------------------------------------------------------------------- properness
@app.command("properness")
def properness_cmd(
    objectives: Annotated[
        list[str] | None,
        typer.Option(
            "--objectives",
            "--objective",
            metavar="all|A,B",
            help="'all' (default: every built-in scoring rule; those not defined in a setting "
            "are rows marked n/a) or " + _OBJECTIVES_HELP[0].lower() + _OBJECTIVES_HELP[1:],
        ),
    ] = None,
    classes: Annotated[
        int | None, typer.Option("--classes", metavar="K", help="Judge on K classes.")
    ] = None,
    truth: Annotated[
        str | None,
        typer.Option(
            "--truth",
            metavar="SPEC",
            help="True distribution, e.g. normal:loc=0,scale=1 or a mixture "
            "'0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1'.",
        ),
    ] = None,
    family: Annotated[
        str | None,
        typer.Option(
            "--family", help="Forecast family fitted to the truth (default: the truth's own)."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed of the random truths/starts.")
    ] = 0,
    as_json: JsonOpt = False,
    fmt: FormatOpt = "table",
    plot: PlotOpt = None,
) -> None:
    """Is each objective minimised by the truth? Verdicts with their evidence (default: on 3
    classes and against N(0, 1) with a normal family).

    An objective named in --objectives that cannot be judged in a setting (crps on classes,
    hyvarinen against a Laplace family, a user objective that raises there) is a row with
    verdict 'failed' and its reason; the others are still judged. A user objective that breaks
    its contract whatever the input is bad input.

    Exit status: 0 when every objective asked for was judged; 1 when one or more could not be
    (the results are still printed); 2 for bad input (nothing is printed on stdout).
    """
    as_json = _output_format(fmt, as_json)
    from likelab.properness import survey

    plot = _plot_target(plot)
    specs = _objective_specs(objectives, "all")
    if "all" in specs and len(specs) > 1:
        raise SpecError("--objectives all means every built-in rule: give it alone")
    chosen: str | list[str] = "all" if specs == ["all"] else _spelled(_distinct_objectives(specs))
    kwargs = {"classes": classes, "truth": truth, "family": family, "seed": seed}
    if _err.is_terminal and not as_json:
        rows = _properness_rows(chosen, classes, truth)
        progress, advance = _progress_bar("properness", rows)
        with progress:
            result = survey(chosen, **kwargs, on_progress=advance)
    else:
        result = survey(chosen, **kwargs)
    if plot is not None and result.failures:  # the figure draws the rows that have a verdict
        from likelab.properness import Failed, PropernessSurvey
        from likelab.report.figures import plot_properness

        judged = [r for r in result.results if not isinstance(r, Failed)]
        if any(r.verdict is not None for r in judged):
            _write_figure(plot_properness(PropernessSurvey(judged, result.given)), plot)
            _err.print(f"figure written to {plot} (without the objectives that failed)")
        else:
            _err.print(f"no figure: no objective could be judged, {plot} is not written")
        plot = None
    _finish(result, plot=plot, as_json=as_json, figure="plot_properness", show=_print_properness)
    _exit_failed(
        "properness",
        [f"{_label(r.objective)} could not be judged ({r.setting})" for r in result.failures],
    )


def _properness_rows(chosen: str | list[str], classes: int | None, truth: str | None) -> int:
    """The number of rows :func:`likelab.properness.survey` will compute (objectives x
    settings), the total of its progress."""
    if chosen == "all":
        from likelab.objectives import get_objective, list_objectives

        n = sum(not get_objective(name).batch_level for name in list_objectives(include_user=False))
    else:
        n = len(chosen)
    settings = (
        2 if classes is None and truth is None else (classes is not None) + (truth is not None)
    )
    return n * settings


def _print_properness(result) -> None:
    from likelab.properness import DensityVerdict

    rows = result.results
    density = next((r for r in rows if isinstance(r, DensityVerdict)), None)
    title = "properness: is the expected score minimised by the truth?"
    if density is not None:
        title += f" (density: truth {density.truth}, family {density.family})"
    table = TableData(
        title,
        ["objective", "setting", "verdict", "claim", "evidence"],
        caption="claim: = agrees with the registry, ≠ disagrees",
    )
    for r in rows:
        d = r.to_dict()
        if d["verdict"] is None and "not_applicable" in d:
            table.add_row(_label(d["objective"]), d["setting"], "n/a", "", d["not_applicable"])
            continue
        if d["verdict"] is None and "error" in d:
            table.add_row(_label(d["objective"]), d["setting"], "failed", "", d["error"])
            continue
        agrees = d.get("agrees_with_claim")
        mark = "" if agrees is None else ("= " if agrees else "≠ ")
        claim = mark + (d.get("claimed") or "-")
        table.add_row(
            _label(d["objective"]), d["setting"], d["verdict"] or "no verdict", claim, d["how"]
        )
    _show(table)


# ---------------------------------------------------------------------- asymptotics
@app.command("asymptotics")
def asymptotics_cmd(
    family: Annotated[
        str, typer.Option("--family", help="Model family fitted, e.g. normal or student_t:df=3.")
    ],
    truth: Annotated[
        str,
        typer.Option(
            "--truth",
            metavar="SPEC",
            help="True distribution of the data: a family member, another family or a mixture "
            "'0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1' (a component may be a point "
            "mass, point:at=8).",
        ),
    ],
    objectives: ObjectivesLogOpt = None,
    fix: FixOpt = None,
    influence_at: Annotated[
        str | None,
        typer.Option(
            "--influence-at",
            metavar="X1,X2,...",
            help="Also evaluate each influence function at these points (in --json).",
        ),
    ] = None,
    contamination: Annotated[
        str | None,
        typer.Option(
            "--contamination",
            metavar="EPS1,EPS2,...",
            help="With --at: the asymptotic bias theta*(eps) - theta*(0) of each parameter "
            "under (1-eps)*truth + eps*AT at these fractions, each in [0, 1), and the "
            "breakdown point.",
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="DGP",
            help="With --contamination: the contaminating distribution, a data-generating "
            "spec such as normal:loc=8,scale=1, or a point mass: a bare number 8 means "
            "point:at=8, every outlier exactly at 8 (its expected score is summed exactly, "
            "not integrated).",
        ),
    ] = None,
    bound: Annotated[
        float | None,
        typer.Option(
            "--bound",
            metavar="B",
            help="With --contamination: the estimate has broken down once some parameter has "
            "moved by more than B (default: half the distance between the centres of the "
            "truth and of --at).",
        ),
    ] = None,
    plot: PlotOpt = None,
    as_json: JsonOpt = False,
    fmt: FormatOpt = "table",
) -> None:
    """Asymptotic theory of each objective's estimator, by quadrature, without simulation.

    Per free parameter: theta*, the minimiser of the expected score under the truth (where the
    estimates converge); the asymptotic SD sqrt(V_jj) of V = A^-1 B A^-1 (the standard error at
    n is SD/sqrt(n)); the asymptotic relative efficiency against log, V_log/V; the gross-error
    sensitivity sup |IF(x)| of the influence function (inf where it grows without limit).
    --json adds V, A, B and the influence function on a grid.

    --contamination EPS,... --at DGP adds a second table: the asymptotic bias theta*(eps) -
    theta*(0) of each parameter under the mixture (1-eps)*truth + eps*DGP (--at 8: a point mass
    at 8, point:at=8, Huber's gross errors all at one value), and the breakdown
    point, the smallest eps at which some parameter moves by more than --bound or theta* leaves
    the parameter space (located on the eps given, then by bisection); --json adds to each
    result "bias" ({"eps": [...], NAME: [...]}), "breakdown" and "contamination" (theta*(eps),
    the bound, the bracket of the breakdown point). --plot FILE draws the influence functions
    and the bias curves.

    An objective whose asymptotics do not exist here (no minimiser, an integral that diverges)
    or that cannot be used with this family is a row with its reason; the others are still
    computed. Exit status: 0 when every objective's asymptotics were computed; 1 when some could
    not be (the results are still printed); 2 for bad input (nothing on stdout).
    """
    as_json = _output_format(fmt, as_json)
    from likelab.asymptotics import asymptotics, contamination_bias
    from likelab.errors import UnsupportedError, UserCodeError, UserContractError
    from likelab.families import get_family
    from likelab.objectives import get_objective
    from likelab.properness.density import density_setting

    specs = _spelled(_distinct_objectives(_objective_specs(objectives, "log")))
    for spec in specs:  # every name is checked before any work
        get_objective(spec)
    fixed = _parse_fix(fix or [])
    model = get_family(family)
    if fixed:
        model = model.fix(**fixed)
    density_setting(truth, model)  # what the setting itself gets wrong is bad input
    points = None if influence_at is None else _parse_points(influence_at)
    at = _at_spec(at)
    eps = _parse_contamination(contamination, at, bound, model)
    if eps is not None:
        _check_centres(truth, at, bound)
    plot = _plot_target(plot)
    results, failures, biases = [], [], {}
    for spec in specs:
        try:
            r = asymptotics(spec, model, truth)
            extra = {"influence": r.influence_grid()}
            if points is not None:
                extra["influence_at"] = r.influence(points)
            if eps is not None:
                b = _bias_of(r, contamination_bias, model, truth, at, eps, bound)
                extra.update(_bias_json(r, b, eps))
                if b is not None:
                    biases[r.objective] = b
        except (UnsupportedError, UserCodeError) as exc:
            if isinstance(exc, UserContractError):
                raise
            failures.append({"objective": get_objective(spec).spec, "error": str(exc)})
            continue
        results.append((r, extra))
    if plot is not None and not results:
        _err.print(f"no figure: no objective could be used, {plot} is not written")
        plot = None
    if plot is not None:
        from likelab.report.asymptotics_figures import plot_asymptotics

        figure = plot_asymptotics(
            [r for r, _ in results],
            bias=biases if eps is not None else None,
            labels={r.objective: _label(r.objective) for r, _ in results},
            failures={f["objective"]: f["error"] for f in failures},
        )
        _write_figure(figure, plot)
    if as_json:
        _emit_json(
            {
                "results": [{**r.to_dict(), **extra} for r, extra in results],
                "failures": failures,
            }
        )
    else:
        _print_asymptotics(
            results, failures, truth=truth, family=model.spec, biases=biases, eps=eps, at=at
        )
        if plot is not None:
            _err.print(f"figure written to {plot}")
    problems = [f"{_label(f['objective'])} could not be used" for f in failures]
    problems += [f"{_label(r.objective)} has no asymptotics here" for r, _ in results if r.reason]
    _exit_failed("asymptotics", problems)


def _parse_contamination(
    text: str | None, at: str | None, bound: float | None, model
) -> list[float] | None:
    """The eps of ``--contamination`` (each in [0, 1)), with ``--at`` and ``--bound`` checked
    against them and the model before any work; None without ``--contamination``."""
    if text is None:
        if at is not None:
            raise ParameterError("--at names the contaminating distribution of --contamination")
        if bound is not None:
            raise ParameterError("--bound is the breakdown bound of --contamination")
        return None
    if at is None:
        raise ParameterError(
            "--contamination needs --at DGP, the distribution mixed in, e.g. "
            "--at normal:loc=8,scale=1"
        )
    pieces = [p.strip() for p in text.split(",") if p.strip()]
    eps = []
    for piece in pieces:
        try:
            value = float(piece)
        except ValueError:
            raise ParameterError(
                f"--contamination takes fractions EPS1,EPS2,... in [0, 1), got {piece!r}"
            ) from None
        if not 0.0 <= value < 1.0:  # NaN fails this too
            raise ParameterError(f"--contamination: each eps must lie in [0, 1), got {piece}")
        eps.append(value)
    if not eps:
        raise ParameterError(f"--contamination takes fractions EPS1,EPS2,..., got {text!r}")
    if bound is not None and not (math.isfinite(bound) and bound > 0):
        raise ParameterError(f"--bound must be a positive number, got {bound:g}")
    _check_at(at, model)
    return sorted(set(eps))


def _at_spec(at: str | None) -> str | None:
    """``--at X`` with X a bare number is the point mass ``point:at=X``; a spec is kept."""
    if at is None:
        return None
    try:
        x = float(at)
    except ValueError:
        return at
    if not math.isfinite(x):
        raise ParameterError(f"--at {at}: a point mass needs a finite location, e.g. --at 8")
    from likelab.families.dgp import PointMassDGP

    return PointMassDGP(x).spec


def _check_at(at: str, model) -> None:
    """``--at`` is a data-generating spec inside the model's support, or a one-line error
    naming the option."""
    from likelab.properness.density import density_setting

    try:
        density_setting(at, model)
    except LikelabError as exc:
        raise type(exc)(f"--at {at!r}: {exc}") from None


def _check_centres(truth: str, at: str, bound: float | None) -> None:
    """Without ``--bound`` the breakdown bound is half the distance between the centres of the
    truth and of ``--at`` (:func:`likelab.asymptotics.contamination_bias`): refuse, before any
    work, a contamination centred where the truth is."""
    from likelab.asymptotics.bias import _centre
    from likelab.families.dgp import parse_dgp

    if bound is None and not abs(_centre(parse_dgp(at)) - _centre(parse_dgp(truth))) > 0:
        raise ParameterError(
            f"--at {at!r} has the same centre as the truth, so the default breakdown bound (half "
            "the distance between the centres) is 0: give --bound B"
        )


def _bias_of(r, contamination_bias, model, truth: str, at: str, eps, bound):
    """:func:`likelab.asymptotics.contamination_bias` of the objective of ``r``, or None where
    ``r`` has no theta* (no bias can be measured from it: ``r.reason`` says why)."""
    if any(math.isnan(v) for v in r.theta_star.values()):
        return None
    return contamination_bias(r.objective, model, truth, at, eps, bound=bound)


def _bias_json(r, b, eps: list[float]) -> dict[str, Any]:
    """The ``bias`` (``{"eps": [...], NAME: [...]}``), ``breakdown`` and ``contamination`` keys
    of one objective's JSON result (NaN, written as null, where there is no theta*)."""
    if b is None:
        return {
            "bias": {"eps": eps, **{k: [math.nan] * len(eps) for k in r.params}},
            "breakdown": None,
            "contamination": {"reason": r.reason or "no theta*"},
        }
    d = b.to_dict()
    return {
        "bias": {"eps": d["eps"], **d["bias"]},
        "breakdown": d["breakdown"],
        "contamination": {
            "at": d["contamination"],
            "theta_star": d["theta_star"],
            "reasons": d["reasons"],
            "bound": d["bound"],
            "breakdown_evidence": d["breakdown_evidence"],
        },
    }


def _parse_points(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ParameterError(f"--influence-at takes numbers X1,X2,..., got {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ParameterError(f"--influence-at takes finite numbers X1,X2,..., got {text!r}")
    return values


def _number_or_dash(x: float, digits: int = 6) -> str:
    """A number; '-' where there is none (NaN: the row's note says why)."""
    return "-" if isinstance(x, float) and math.isnan(x) else _fmt(x, digits)


def _ges_text(ges: dict) -> str:
    value = ges.get("value")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "unbounded" if value == math.inf else _fmt(value, 4)


def _print_asymptotics(
    results, failures, *, truth: str, family: str, biases=None, eps=None, at=None
) -> None:
    table = TableData(
        f"asymptotics of {family} fitted to {truth} (SE at n = asymptotic SD / sqrt(n))",
        ["objective", "param", "theta*", "asymptotic SD", "ARE vs log", "MSE ratio vs log", "GES"],
    )
    notes = _Notes()
    for r, _extra in results:
        mark = f" {notes.mark(r.reason)}" if r.reason else ""
        are_mark = f" {notes.mark(r.are_reason)}" if r.are_reason and not r.reason else ""
        for name in r.params:
            table.add_row(
                _label(r.objective) + mark,
                name,
                _number_or_dash(r.theta_star[name]),
                _number_or_dash(r.asymptotic_sd[name]),
                _number_or_dash(r.are_vs_log[name], 4) + are_mark,
                _number_or_dash(r.mse_ratio[name], 4) + f" (n = {r.n})"
                if r.theta_star_differs
                else "-",
                _ges_text(r.gross_error_sensitivity[name]),
            )
    for f in failures:
        failed = f"failed {notes.mark(f['error'])}"
        table.add_row(_label(f["objective"]), "-", failed, "-", "-", "-", "-")
    if eps is None:
        _show_with_notes(table, notes)
        return
    bias_table = _bias_table(results, biases or {}, eps, truth=truth, at=at, notes=notes)
    extra = notes.table()
    _show(table, bias_table, *([extra] if extra is not None else []))


def _grouped(dgp: str) -> str:
    """A mixture spec in brackets, so that ``(1-eps) [A + B] + eps C`` reads as meant."""
    return f"[{dgp.strip()}]" if " + " in dgp.strip() else dgp.strip()


def _bias_table(results, biases, eps, *, truth: str, at: str, notes: _Notes) -> TableData:
    """Per objective and parameter: theta*(eps) - theta*(0) at each eps, and the breakdown."""
    bound = next((b.bound for b in biases.values()), None)
    rule = (
        notes.mark(
            "breakdown point: the smallest eps at which some parameter has moved by more than "
            f"{bound:g} (--bound) or theta* has left the parameter space; located on the eps "
            "given, then by bisection to the interval shown"
        )
        if bound is not None
        else ""
    )
    table = TableData(
        f"asymptotic bias theta*(eps) - theta*(0) under (1-eps) {_grouped(truth)} + eps "
        f"{_grouped(at)}",
        ["objective", "param", *(f"eps={e:g}" for e in eps), f"breakdown {rule}".strip()],
    )
    for r, _extra in results:
        b = biases.get(r.objective)
        if b is None:
            mark = f" {notes.mark(r.reason or 'no theta*')}"
            for name in r.params:
                table.add_row(_label(r.objective) + mark, name, *("-" for _ in eps), "-")
            continue
        cells = {}
        for name in r.params:
            cells[name] = []
            for value, why in zip(b.bias[name], b.reasons, strict=True):
                text = _number_or_dash(value, 4)
                cells[name].append(text + (f" {notes.mark(why)}" if why else ""))
        if b.breakdown is None:
            breakdown = f"none up to {b.eps[-1]:g}"
        else:
            lo, hi = b.breakdown_evidence["bracket"]
            breakdown = f"{hi:.4g} (in ({lo:.4g}, {hi:.4g}])"
        for name in r.params:
            table.add_row(_label(r.objective), name, *cells[name], breakdown)
    return table


# ---------------------------------------------------------------------- train
@app.command("train")
def train_cmd(
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="A built-in dataset: xor[:flip=0.2], xor-gauss, moons, circles, iris, wine, "
            "breast_cancer, digits or next-word. Or give --data.",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            metavar="FILE",
            help="Your own table instead of --dataset: a CSV file with a header row, or a "
            "Parquet file (.parquet). --target names the class column; every other column is "
            "a numeric feature (text in one is an error naming it), standardised with the "
            "training split's mean and sd.",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="COLUMN",
            help="With --data: the class column (a header name or a 0-based index); its "
            "distinct values are the classes.",
        ),
    ] = None,
    missing: Annotated[
        str | None,
        typer.Option(
            "--missing",
            metavar="error|drop",
            help="With --data: a row with no value in some column ('', NA, N/A, nan, null, "
            "None, #N/A): error (default; lists the rows) or drop (leave it out; the count goes "
            "to stderr and to --json as dropped_missing).",
        ),
    ] = None,
    objectives: ObjectivesTrainOpt = None,
    noise: Annotated[
        str | None,
        typer.Option("--noise", help="Training-label noise: symmetric:RATE or pairflip:RATE."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="logistic, mlp:W1,W2,... (default mlp:64,64) or next-word:DIM."
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            help="The most passes over the training set (default: 1000 full-batch steps, or "
            "100 mini-batch epochs); training stops earlier once converged.",
        ),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds 0..S-1, each a paired run.")] = 3,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 0.01,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help="Mini-batch size; 0: the whole training set (default: the whole training set "
            "up to 4096 examples, else 256).",
        ),
    ] = None,
    tol: Annotated[
        float,
        typer.Option(
            "--tol",
            help="Converged when the gradient norm of the training risk over the whole "
            "training set is at most this (0: never stop on it).",
        ),
    ] = 1e-5,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adam or sgd.")] = "adam",
    validation: Annotated[
        float, typer.Option("--validation", help="Share of the training set held out.")
    ] = 0.0,
    patience: Annotated[
        int | None, typer.Option("--patience", help="Early stopping on the validation risk.")
    ] = None,
    as_json: JsonOpt = False,
    fmt: FormatOpt = "table",
    plot: Annotated[
        str | None,
        typer.Option("--plot", help="Write learning curves and reliability diagrams to DIR."),
    ] = None,
    report: Annotated[
        str | None,
        typer.Option("--report", help="Write a self-contained HTML page to DIR/index.html."),
    ] = None,
    figures: FiguresOpt = "png",
) -> None:
    """Train one network per objective and seed on the same data; clean test metrics,
    mean ± sd over seeds, and when and why each run stopped.

    Each run stops when converged (the gradient norm of the training risk over the whole
    training set is at most --tol), when it diverges, at the epoch limit, or by early stopping
    (--validation and --patience); the table says which, and at which epoch.

    Exit status: 0 when every run trained; 1 when some run diverged or an objective could not
    train this model on this data (its row says why; the others' results are printed first);
    2 for bad input, or when no run has any result.
    """
    as_json = _output_format(fmt, as_json)
    from likelab.classify import compare, load_dataset
    from likelab.classify.trainer import MAX_SEEDS

    if (dataset is None) == (data is None):
        raise SpecError(
            "give exactly one of --dataset NAME (a built-in dataset) and --data FILE --target "
            "COLUMN (your own table)"
        )
    if data is None and (target is not None or missing is not None):
        raise SpecError("--target and --missing apply to --data FILE, not to --dataset")
    if data is not None and target is None:
        raise SpecError(f"--data {data} needs --target COLUMN: the column holding the classes")
    if missing not in (None, "error", "drop"):
        raise SpecError(f"--missing must be error or drop, got {missing!r}")
    plot = None if plot is None else check_output_dir(plot, what="--plot")
    report = None if report is None else check_output_dir(report, what="--report")
    figures = _figures(figures)
    specs = _spelled(_distinct_objectives(_objective_specs(objectives, "log,linear,brier")))
    if not 1 <= seeds <= MAX_SEEDS:
        raise ParameterError(f"--seeds must be an integer in [1, {MAX_SEEDS}], got {seeds}")
    if epochs is not None and epochs < 1:
        raise ParameterError(f"--epochs must be an integer >= 1, got {epochs}")
    if batch_size is not None and batch_size < 0:
        raise ParameterError(
            f"--batch-size must be >= 1, or 0 for the whole training set, got {batch_size}"
        )
    if not (math.isfinite(lr) and lr > 0):
        raise ParameterError(f"--lr must be a finite number > 0, got {lr:g}")
    if not (math.isfinite(tol) and tol >= 0):
        raise ParameterError(f"--tol must be a finite number >= 0, got {tol:g}")
    source: Any = dataset
    dropped: int | None = None
    if data is not None:
        from likelab.classify.tabular import read_table

        table = read_table(data, target, missing=missing or "error")
        table.dataset(0, noise=noise)  # too few rows per class, bad --noise: before training
        dropped = table.dropped_missing
        if missing == "drop":
            _notes.append(
                f"--missing drop: dropped {dropped:,} of {table.rows:,} rows of {data.name} "
                "with a missing value"
                + (f" ({', '.join(table.missing_rows[:5])}" if dropped else "")
                + (f" and {dropped - 5:,} more)" if dropped > 5 else ")" if dropped else "")
            )

        def source(seed: int):
            return table.dataset(seed, noise=noise)

    if model is None:
        is_words = dataset is not None and dataset.split(":")[0] == "next-word"
        model = "next-word:16" if is_words else "mlp:64,64"
    if batch_size == 0:
        first = source(0) if data is not None else load_dataset(dataset, seed=0)
        batch_size = len(first.y_train)
    kwargs = {
        "model": model,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "tol": tol,
        "optimizer": optimizer,
        "validation": validation,
        "patience": patience,
    }
    compare = _train_interruptible(compare, seeds * len(specs))
    progress = None
    if not as_json and _err.is_terminal:
        from rich.progress import Progress

        progress = Progress(console=_err, transient=True)
    if progress is None:
        result = compare(source, specs, seeds=seeds, noise=noise, **kwargs)
    else:
        with progress:
            task = progress.add_task("training", total=seeds * len(specs))
            result = compare(
                source,
                specs,
                seeds=seeds,
                noise=noise,
                on_run=lambda r: progress.advance(task),
                **kwargs,
            )
    if result.all_diverged:
        first = next(r for r in result.runs)
        why = first.failed or first.diverged
        failed = sum(r.failed is not None for r in result.runs)
        what = (
            "every run diverged"
            if not failed
            else "no objective could train"
            if failed == len(result.runs)
            else "every run failed or diverged"
        )
        hint = f"; try a smaller --lr than {lr:g}" if any(r.diverged for r in result.runs) else ""
        raise ParameterError(
            f"{what} ({len(result.runs)} of {len(result.runs)}; seed {first.seed}: {why}): no "
            f"metric is determined{hint}"
        )
    if plot is not None:
        _write_train_figures(result, plot)
    if report is not None:
        from likelab.report.pages import write_train_report

        page = write_train_report(result, report, figures=figures)
        _err.print(f"report written to {page}")
    if as_json:
        payload = result.to_dict()
        if data is not None:
            payload.update(
                {
                    "data": str(data),
                    "target": table.target,
                    "features": list(table.features),
                    "classes": list(table.classes),
                    "dropped_missing": dropped,
                }
            )
        payload["failed"] = result.any_failed
        _emit_json(payload)
    else:
        _print_comparison(result)
        for row in result.rows():
            for kind, count, reasons in (
                ("diverged", row["diverged"], row["divergence"]),
                ("failed", row["failed"], row["failures"]),
            ):
                if count:
                    ok = row["seeds"] - row["diverged"] - row["failed"]
                    what = "over the other seeds" if ok else "undetermined"
                    why = {r.partition(": ")[2] for r in reasons}
                    said = (
                        f"every seed: {why.pop()}" if len(why) == 1 < count else "; ".join(reasons)
                    )
                    _err.print(
                        f"warning: {_label(row['objective'])}: {count} of {row['seeds']} run(s) "
                        f"{kind} ({said}); its metrics are {what}",
                        markup=False,
                    )
        if plot is not None:
            _err.print(f"figures written to {plot}/ (learning_curves.png, reliability.png)")
    if result.any_failed:
        _exit_failed(
            "train",
            [
                f"{_label(row['objective'])}: {row['diverged'] + row['failed']} of "
                f"{row['seeds']} run(s) failed or diverged"
                for row in result.rows()
                if row["diverged"] or row["failed"]
            ],
        )


def _write_train_figures(result, plot: Path) -> None:
    """Both figures drawn first, then written into the directory ``plot``: both or neither."""
    from likelab.errors import OutputError
    from likelab.report.figures import plot_learning_curves, plot_reliability, save_figure

    check_output_dir(plot, what="--plot")
    existed = plot.exists()
    figs = {
        "learning_curves.png": plot_learning_curves(result),
        "reliability.png": plot_reliability(result),
    }
    written: list[Path] = []
    try:
        for name, fig in figs.items():
            written.append(save_figure(fig, plot / name))
    except OutputError:
        for done in written:
            done.unlink(missing_ok=True)
        if not existed and plot.is_dir() and not any(plot.iterdir()):
            plot.rmdir()
        raise


def _train_interruptible(compare, runs: int):
    """``compare`` that, interrupted, says how many of its ``runs`` had finished and that
    nothing was kept (:class:`_Interrupted`)."""

    def wrapped(*args: Any, on_run=None, **kwargs: Any):
        finished: list[Any] = []

        def count(result: Any) -> None:
            finished.append(result)
            if on_run is not None:
                on_run(result)

        try:
            return compare(*args, on_run=count, **kwargs)
        except KeyboardInterrupt:
            raise _Interrupted(
                f"interrupted: {len(finished)} of {runs} training runs finished, nothing kept "
                "(train writes its results once every run has finished); run the command again "
                "to train from the start"
            ) from None

    return wrapped


def _print_comparison(result) -> None:
    rows = result.rows()
    keys = [
        k for k in ("accuracy", "nll", "brier", "ece", "confidence", "prob_gap") if k in rows[0]
    ]
    noise = f", label noise {result.noise}" if result.noise else ""
    table = TableData(
        f"{result.dataset}{noise}: {result.model}, {len(result.seeds)} seed(s), "
        "clean test set (mean ± sd)",
        ["objective", *keys, "stopped"],
        justify=dict.fromkeys(keys, "right"),
    )
    for row in rows:
        failed = row["failed"] == row["seeds"]
        table.add_row(
            _label(row["objective"]),
            *(
                ("failed" if failed else "undetermined")
                if row[k] is None
                else f"{row[k]:.3f}±{row[k + '_sd']:.3f}"
                for k in keys
            ),
            row["stopped"],
        )
    stops = TableData(
        "when and why each run stopped",
        ["objective", "seed", "epoch", "stopped"],
        justify={"seed": "right", "epoch": "right"},
    )
    for row in rows:
        reasons = {stop.get("reason") for stop in row["stops"]}
        if row["failed"] == row["seeds"] > 1 and len(reasons) == 1:  # one reason, every seed
            stops.add_row(_label(row["objective"]), "all", "-", row["stops"][0]["reason"])
            continue
        for stop in row["stops"]:
            stops.add_row(
                _label(row["objective"]),
                str(stop["seed"]),
                str(stop.get("epoch") or "-"),
                stop.get("reason", ""),
            )
    _show(table, stops)


# ---------------------------------------------------------------------- scorecard
@app.command("scorecard")
def scorecard_cmd(
    objectives: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="OBJECTIVE...",
            help="The objectives to judge, as specs (log, dpd:beta=0.5, phi:-p**0.3, "
            "mypackage.losses:my_loss).",
            show_default=False,
        ),
    ] = None,
    every: Annotated[
        bool,
        typer.Option(
            "--all",
            help="The atlas: every built-in objective, those with a tuning parameter along "
            "its path (dpd β, gamma γ, lq q, gce q, power α, pseudospherical γ).",
        ),
    ] = False,
    against: Annotated[
        str, typer.Option("--against", help="Reference objectives judged beside them.")
    ] = "log,linear",
    quick: Annotated[
        bool, typer.Option("--quick", help="The battery's small sizes (a first look).")
    ] = False,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder of the page (index.html), scorecard.json and the store."
        ),
    ] = Path("scorecard"),
    seed: Annotated[int, typer.Option("--seed", help="The battery's seed.")] = 0,
    parts: Annotated[
        str,
        typer.Option(
            "--parts",
            help="Some of properness, landscape, efficiency, robustness, classification "
            "(default: all).",
        ),
    ] = "properness,landscape,efficiency,robustness,classification",
    executor: Annotated[
        str, typer.Option("--executor", help="local (default), process or dask.")
    ] = "local",
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    as_json: JsonOpt = False,
    fmt: FormatOpt = "table",
) -> None:
    """Judge objectives on the whole battery (properness, landscapes, efficiency, robustness,
    classification) beside the reference objectives; resumable: run it again to continue."""
    as_json = _output_format(fmt, as_json)
    from likelab._paths import atomic_write, check_output_dir
    from likelab.scorecard.core import atlas_objectives

    names = [spec for text in objectives or [] for spec in split_specs(text)]
    if every:
        names = [*names, *atlas_objectives()]
    if not names:
        raise ParameterError("name the objectives to judge (OBJECTIVE...), or --all for the atlas")
    refs = split_specs(against) if against.strip() else []
    folder = check_output_dir(out, what="--out")
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "scorecard.duckdb"
    kwargs: dict[str, Any] = {
        "store": store,
        "against": refs,
        "quick": quick,
        "seed": seed,
        "parts": [p.strip() for p in parts.split(",")],
        "executor": executor,
        "workers": workers,
        "scheduler": scheduler,
    }
    try:
        result = _scorecard_run(names, as_json, kwargs)
    except BaseException:
        if made and not any(folder.iterdir()):  # nothing kept: no folder left behind either
            folder.rmdir()
        raise
    data = _jsonable(result.to_dict())
    with atomic_write(folder / "scorecard.json") as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    from likelab.report.scorecard import write_scorecard_report

    page = write_scorecard_report(data, folder)
    if as_json:
        _emit_json(data)
        return
    table = TableData(
        "scorecard: one row per objective",
        [
            "objective",
            "proper",
            "worst ARE vs log",
            "bounded influence",
            "bias at 10%",
            "multimodal rate",
            "prob. gap",
            "Pareto front",
        ],
        caption="worst ARE over the battery's families and parameters; bias: the largest "
        "|θ*(0.1) - θ*(0)| under 10% contamination; multimodal rate: share of seeded datasets "
        "whose empirical risk has more than one local minimum; prob. gap: mean |p̂ - p| on XOR "
        "with 20% flipped labels",
    )
    for entry in result.objectives:
        s = entry["summary"]
        bounded = s.get("bounded_influence")
        table.add_row(
            _label(entry["objective"]),
            s.get("proper") or "-",
            _fmt(s.get("min_are"), 3),
            "-" if bounded is None else ("yes" if bounded else "no"),
            _fmt(s.get("max_bias_10"), 3),
            _fmt(s.get("multimodal_rate"), 3),
            _fmt(s.get("prob_gap"), 3),
            "yes" if entry["objective"] in result.front else "",
        )
    _show(table)
    _out.print(
        f"{result.units_run} of {result.units_total} units run now "
        f"({result.units_total - result.units_run} from the store); page {page}, "
        f"JSON {folder / 'scorecard.json'}, store {store}"
    )


def _scorecard_run(names: list[str], as_json: bool, kwargs: dict[str, Any]):
    """:func:`likelab.scorecard.core.scorecard` with progress (a bar on a terminal, a line per
    unit elsewhere, none with --json); interrupted, it says what the store keeps."""
    from likelab.scorecard.core import ScorecardInterrupted, scorecard

    try:
        if _err.is_terminal and not as_json:
            progress, advance = _progress_bar("scorecard units", 0)
            with progress:
                return scorecard(names, on_unit=advance, **kwargs)

        def report(done: int, total: int) -> None:
            _err.print(f"unit {done}/{total} done")

        return scorecard(names, on_unit=None if as_json else report, **kwargs)
    except ScorecardInterrupted as exc:
        resume = "; run the same command again to resume" if exc.units_done else ""
        raise _Interrupted(f"interrupted: {exc}{resume}") from None


# ---------------------------------------------------------------------- study
study_app = typer.Typer(
    help="Simulation studies: run a study file, summarise a store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(study_app, name="study")


@study_app.command("run")
def study_run_cmd(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The study file (YAML or TOML).")],
    store: Annotated[
        Path | None,
        typer.Option("--store", help="DuckDB store (default: NAME.duckdb beside the file)."),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="local, process (default) or dask.")
    ] = "process",
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run (or resume) a study: every unfinished cell, written to the store as it finishes."""
    from likelab.study import default_store, load_study, run_study

    spec = load_study(file)
    target = store or default_store(file, spec)
    run_study = _study_interruptible(run_study)
    if _err.is_terminal and not as_json:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        columns = (
            "{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            "cells",
            "{task.fields[rate]}",
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=_err) as progress:
            task = progress.add_task(spec.name, total=None, rate="")
            start = time.perf_counter()

            def advance(done: int, total: int, fits: int) -> None:
                rate = fits / max(time.perf_counter() - start, 1e-9)
                progress.update(task, completed=done, total=total, rate=f"{rate:,.0f} fits/s")

            report = run_study(
                spec,
                target,
                executor=executor,
                workers=workers,
                scheduler=scheduler,
                on_cell=advance,
            )
    else:

        def advance(done: int, total: int, fits: int) -> None:
            _err.print(f"cell {done}/{total} done ({fits} fits this run)")

        report = run_study(
            spec,
            target,
            executor=executor,
            workers=workers,
            scheduler=scheduler,
            on_cell=None if as_json else advance,
        )
    if as_json:
        _emit_json(report.to_dict())
        return
    _out.print(
        f"{spec.name}: {report.cells_run} cells run, {report.cells_skipped} already done, "
        f"{report.fits:,} fits in {report.seconds:.1f} s; store {target}"
    )


def _study_interruptible(run_study):
    """``run_study`` that, interrupted, says what the store keeps and how to resume
    (:class:`_Interrupted`)."""
    from likelab.study import StudyInterrupted

    def wrapped(*args: Any, **kwargs: Any):
        try:
            return run_study(*args, **kwargs)
        except StudyInterrupted as exc:
            resume = "; run the same command again to resume" if exc.cells_done else ""
            raise _Interrupted(f"interrupted: {exc}{resume}") from None

    return wrapped


@study_app.command("summary")
def study_summary_cmd(
    store: Annotated[Path, typer.Argument(metavar="STORE", help="A study's DuckDB store.")],
    as_json: JsonOpt = False,
    fmt: FormatOpt = "table",
    csv: Annotated[str | None, typer.Option("--csv", help="Write the summary as CSV.")] = None,
    parquet: Annotated[
        str | None, typer.Option("--parquet", help="Write the summary as Parquet.")
    ] = None,
    theory: TheoryOpt = None,
) -> None:
    """Performance measures per (DGP, n, objective, parameter), with Monte Carlo SEs, and the
    asymptotic theory beside them."""
    as_json = _output_format(fmt, as_json)
    from likelab.study import export
    from likelab.study.summary import MEASURES, NOT_COMPUTED

    csv = None if csv is None else check_output_file(csv, what="--csv")
    parquet = None if parquet is None else check_output_file(parquet, what="--parquet")
    for option, path in (("--csv", csv), ("--parquet", parquet)):
        if path is not None and path.resolve() == store.resolve():
            raise OutputError(f"{option} {path} is the store itself; write the summary elsewhere")
    rows = _summary_rows(store, "auto" if theory is None else theory, quiet=as_json)
    for path, fmt in ((csv, "csv"), (parquet, "parquet")):
        if path is not None:
            with atomic_write(path) as tmp:
                export(store, tmp, fmt, rows=rows)
    if as_json:
        _emit_json({"rows": rows, "measures": MEASURES})
        return
    if csv is not None or parquet is not None:
        _err.print(f"summary written to {csv or parquet}")
        return
    # the theory's columns where it was computed (for some pairs at least); where it was left
    # out for the study's size, the caption says so (and how to ask for it)
    skipped = [r["theory_note"] for r in rows if (r["theory_note"] or "").startswith(NOT_COMPUTED)]
    shown = len(skipped) < len(rows)
    columns = ["dgp", "n", "objective", "param", "bias", "emp SE"]
    columns += ["√n·emp SE", "asy SD"] if shown else []
    columns += ["RE vs log"] + (["ARE vs log"] if shown else [])
    columns += ["rel MSE vs log", "coverage", "fail"]
    caption = (
        "RE vs log: relative efficiency, EmpSE² ratio EmpSE_log²/EmpSE² (ignores bias); "
        "rel MSE vs log: MSE ratio MSE_log/MSE (includes bias); both paired, above 1 favours "
        "the objective; '-': undetermined, nothing to measure it on (e.g. coverage where no SE "
        "could be given)"
    )
    if shown:
        caption += (
            "; asy SD: asymptotic SD √V_jj of the estimator (likelab asymptotics, V = A⁻¹BA⁻¹ at "
            "θ*), the limit of √n·emp SE; ARE vs log: asymptotic relative efficiency "
            "V_log,jj/V_jj, the limit of RE vs log"
        )
    elif theory is None and skipped:
        caption += f"; asymptotic theory {skipped[0]}"
    table = TableData(
        f"{store.name}: estimate ± Monte Carlo SE",
        columns,
        justify={c: "left" if c in ("dgp", "objective", "param") else "right" for c in columns},
        caption=caption,
    )
    notes = _Notes()
    for r in rows:
        mark = f" {notes.mark(r['theory_note'])}" if shown and r["theory_note"] else ""
        theory_cells = [
            _pm(r["emp_se_root_n"], r["emp_se_root_n_mcse"]),
            _pm(r["asymptotic_sd"], None) + mark,
        ]
        table.add_row(
            r["dgp"],
            str(r["n"]),
            _label(r["objective"]),
            r["parameter"],
            _pm(r["bias"], r["bias_mcse"]),
            _pm(r["emp_se"], r["emp_se_mcse"]),
            *(theory_cells if shown else []),
            _pm(r["rel_eff"], r["rel_eff_mcse"], 3),
            *([_pm(r["are_vs_log"], None, 3)] if shown else []),
            _pm(r["rel_mse"], r["rel_mse_mcse"], 3),
            _pm(r["coverage"], r["coverage_mcse"], 3),
            f"{r['failure_rate']:.1%}",
        )
    if notes.table() is not None:
        table.caption += "; [k]: see the notes on the theory"
    _show_with_notes(table, notes)


def _summary_rows(store: Path, theory: bool | str, *, quiet: bool) -> list[dict[str, Any]]:
    """``summarise(store, theory=...)`` with a progress bar on a terminal while the theory of
    each (DGP point, objective) is computed (seconds each)."""
    from likelab.study import summarise

    if quiet or not _err.is_terminal or theory is False:
        return summarise(store, theory=theory)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_err, transient=True) as progress:
        task = progress.add_task("asymptotic theory per (DGP point, objective)", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return summarise(store, theory=theory, on_theory=advance)


def _pm(value: float | None, mcse: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if mcse is None or not math.isfinite(mcse):
        return _fmt(value, digits)
    return f"{_fmt(value, digits)} ± {_fmt(mcse, 2)}"


# ---------------------------------------------------------------------- underflow
@app.command("underflow")
def underflow_cmd(
    likelihoods: Annotated[
        str,
        typer.Option("--likelihoods", help="Per-sample likelihoods l1,l2,... repeated to n."),
    ] = "0.3,0.2,0.1",
    num_classes: Annotated[
        int, typer.Option("--num-classes", help="Classes of the softmax behind each l_i.")
    ] = 10,
    as_json: JsonOpt = False,
    fmt: FormatOpt = "table",
    plot: PlotOpt = None,
) -> None:
    """Where the naive product of likelihoods underflows, and its gradient with it."""
    as_json = _output_format(fmt, as_json)
    from likelab.landscape import underflow

    try:
        values = tuple(float(v) for v in likelihoods.split(",") if v.strip())
    except ValueError:
        raise SpecError(
            f"--likelihoods expects numbers like 0.3,0.2,0.1, got {likelihoods!r}"
        ) from None
    plot = _plot_target(plot)
    report = underflow(values, num_classes=num_classes)
    _finish(report, plot=plot, as_json=as_json, figure="plot_underflow", show=_print_underflow)


def _print_underflow(report) -> None:
    d = report.to_dict()
    ls = ", ".join(_fmt(v, 4) for v in d["likelihoods"])
    table = TableData(
        f"naive product of likelihoods ({ls}, repeated)",
        ["dtype", "subnormal at n", "exactly 0 at n", "gradient 0 at n", "log-product there"],
    )
    for dt, t in d["thresholds"].items():
        table.add_row(
            dt,
            _fmt(t["subnormal_at"]),
            _fmt(t["zero_at"]),
            _fmt(t["grad_zero_at"]),
            _fmt(t["log_product_at_zero"]),
        )
    tables = [table]
    rows = d["rows"]
    if rows:
        by_n = TableData(
            "by batch size n (gradient norms: RMS over samples of |dL/dlogits_i|)",
            [_short_header(key) for key in rows[0]],
        )
        for r in rows:
            by_n.add_row(
                *(_fmt(v, 4) if isinstance(v, float) or v is None else str(v) for v in r.values())
            )
        tables.append(by_n)
    _show(*tables)


def _short_header(key: str) -> str:
    """Short underflow-table headers: ``grad_norm_product_float32`` -> ``|grad prod| f32``."""
    for long, short in (
        ("grad_norm_product_", "|grad prod| "),
        ("grad_norm_nll", "|grad NLL|"),
        ("product_", "prod "),
        ("log_product", "log-prod"),
    ):
        if key.startswith(long):
            return short + key[len(long) :].replace("float", "f")
    return key


def _figures(value: str) -> str:
    """``--figures``, checked before any work: png or svg."""
    from likelab.report.html import check_figure_format

    return check_figure_format(value)


# ---------------------------------------------------------------------- demo
@app.command("demo")
def demo_cmd(
    out: Annotated[str, typer.Option("--out", help="Directory for the report.")] = "report",
    quick: Annotated[
        bool, typer.Option("--quick", help="Small budgets: the same page in under a minute.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the simulated data.")] = 0,
    as_json: JsonOpt = False,
    figures: FiguresOpt = "png",
) -> None:
    """The whole story in one HTML page, OUT/index.html: underflow, the seed's landscape,
    properness, classifiers, a simulation study; every number computed in this run."""
    from likelab.report.demo import run_demo

    out = check_output_dir(out, what="--out")
    figures = _figures(figures)
    before = set(out.rglob("*")) if out.exists() else set()
    try:
        if _err.is_terminal and not as_json:
            from rich.progress import BarColumn, Progress, TimeElapsedColumn

            with Progress(
                "{task.description}", BarColumn(), TimeElapsedColumn(), console=_err, transient=True
            ) as progress:
                task = progress.add_task("demo", total=None)

                def step(done: int, total: int, label: str) -> None:
                    progress.update(task, completed=done, total=total, description=label)

                demo = run_demo(out, quick=quick, seed=seed, on_step=step, figures=figures)
        else:

            def step(done: int, total: int, label: str) -> None:
                _err.print(f"step {done + 1}/{total}: {label}")

            demo = run_demo(
                out, quick=quick, seed=seed, on_step=None if as_json else step, figures=figures
            )
    except KeyboardInterrupt:
        written = sorted(
            str(p.relative_to(out)) for p in set(out.rglob("*")) - before if p.is_file()
        )
        kept = f": {', '.join(written)}" if written else ""
        raise _Interrupted(
            f"interrupted: the demo stopped before it finished; {len(written)} file(s) it wrote "
            f"are in {out}{kept}; run the same command again for the whole report"
        ) from None
    if as_json:
        _emit_json(demo.to_dict())
        return
    walk = demo.walkthrough
    _out.rule("1. The naive product of likelihoods underflows")
    _print_underflow(walk.underflow_report)
    _out.rule("2. The seed's landscape: sum of likelihoods vs product vs log-product")
    _print_landscape(walk.landscape_report)
    _out.print(
        f"\nreport written to {demo.page} ({len(demo.sections)} sections: "
        f"{', '.join(demo.sections)}; {demo.seconds:.0f} s)"
    )


# ---------------------------------------------------------------------- report
@app.command("report")
def report_cmd(
    store: Annotated[Path, typer.Argument(metavar="STORE", help="A study store (.duckdb).")],
    out: Annotated[
        str | None,
        typer.Option("--out", help="Directory for the page (default: STORE-report/ beside it)."),
    ] = None,
    figures: FiguresOpt = "png",
    theory: TheoryOpt = None,
) -> None:
    """Render a study store as a self-contained HTML page, OUT/index.html."""
    from likelab.report.pages import write_study_report

    target = check_output_dir(
        store.with_name(store.stem + "-report") if out is None else out, what="--out"
    )
    page = write_study_report(
        store, target, figures=_figures(figures), theory="auto" if theory is None else theory
    )
    _out.print(f"report written to {page}")


# ---------------------------------------------------------------------- entry point
class _Interrupted(Exception):
    """A command interrupted (Ctrl-C); its message says what was kept and how to resume. An
    ``Exception``, not a ``KeyboardInterrupt``, so that it reaches :func:`main` intact (typer
    turns a ``KeyboardInterrupt`` into a bare exit status)."""


#: The exit status of a command interrupted by SIGINT (128 + 2, the shells' convention).
INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad input, one line on stderr; 130 when
    interrupted, with a line saying what was kept)."""
    args = sys.argv[1:] if argv is None else argv
    global _table_format
    _table_format = "table"
    _given.clear()
    _notes.clear()
    try:
        with _stdout_for_json(args):
            code = app(args=args, prog_name="likelab", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except _Interrupted as exc:
        typer.echo(_one_line(str(exc)), err=True)
        return INTERRUPTED
    except KeyboardInterrupt:  # one that typer did not see (e.g. while it parsed)
        typer.echo("interrupted", err=True)
        return INTERRUPTED
    except SystemExit as exc:
        return _system_exit(exc)
    except _UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `likelab`, `likelab study`: the help
            typer.echo(exc.format_message(), err=True)  # as is, as click itself shows it
            return 2
        typer.echo(f"error: {_one_line(exc.format_message())}", err=True)
        return 2
    except LikelabError as exc:
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        return 2
    except Exception as exc:  # a bug, not bad input: still one line unless asked
        if os.environ.get("LIKELAB_DEBUG"):
            raise
        typer.echo(
            f"internal error: {type(exc).__name__}: {_one_line(str(exc))} "
            "(set LIKELAB_DEBUG=1 for the traceback)",
            err=True,
        )
        return 1
    # typer returns the status of a typer.Exit (130 for a KeyboardInterrupt it caught) instead
    # of raising it when not standalone; None when the command returned normally
    if isinstance(code, int) and code:
        if code == INTERRUPTED:
            typer.echo("interrupted", err=True)
        if code == SOMETHING_FAILED:  # the results were printed: so are the notes on the data
            for note in _notes:
                typer.echo(_one_line(note), err=True)
        return code
    for note in _notes:
        typer.echo(_one_line(note), err=True)
    return 0


def _system_exit(exc: SystemExit) -> int:
    """The status for a ``SystemExit`` raised inside a command. typer's own (a closed pipe)
    keeps its status; likelab never calls ``sys.exit`` in a command, so any other came from
    user code (an objective calling ``sys.exit()``), which is an error however it exits, never a
    silent success."""
    import sysconfig

    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(os.path.abspath(tb.tb_frame.f_code.co_filename))
        tb = tb.tb_next
    if frames and frames[-1].startswith(os.path.dirname(os.path.abspath(typer.__file__))):
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    library = [sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")]
    library.append(os.path.dirname(os.path.abspath(__file__)))
    users = [f for f in frames if not f.startswith(tuple(library))]
    raised_in = f" in {users[-1]}" if users else ""
    typer.echo(
        f"error: sys.exit({exc.code!r}) was called{raised_in} inside the command and stopped "
        "it: user code (an objective) must return its losses or raise an exception",
        err=True,
    )
    return 2


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
