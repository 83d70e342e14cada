"""User objectives: their contract, checked once on a probe, and errors inside user code.

A user objective is a Python function ``fn(dist, y) -> losses``: ``dist`` a batched
``torch.distributions.Distribution`` (the forecasts), ``y`` the observations, and the result
one loss per observation, in loss orientation (lower is better):

* a floating-point ``torch.Tensor`` of shape ``broadcast(dist.batch_shape, y.shape)``, not
  reduced (PyTorch's losses reduce to the mean by default: pass ``reduction="none"``);
* computed with torch operations, so that it is differentiable in the forecast's parameters
  (fitting, properness and training differentiate it; landscapes do not).

A function of one argument is a function of the likelihood alone, a local rule
``S(F, y) = φ(f(y))``: it receives ``p = f(y)``, or ``l = log f(y)`` when its argument is named
``l`` (or ``log_f``), and returns one loss per element. The spec ``phi:EXPR`` writes such a
rule as an expression in ``p`` or ``l`` (``phi:-log(p)`` is the log score), parsed by a small
grammar (:func:`phi_expression`), never by ``eval``.

Every user objective is wrapped in a :class:`UserLoss`. Each call checks the output's type, dtype
and shape; the first call on each kind of forecast (per hyperparameters, and per whether
derivatives are taken) first runs the function on a small standard forecast of that kind (the
*probe*) and checks there that it is finite wherever the log score is, and that its gradient
reaches the forecast's parameters. Anything the user's code raises (``SystemExit`` included,
``KeyboardInterrupt`` excepted) becomes a :class:`~likelab.errors.UserCodeError` naming the
function, the input that broke it, the user's own message and this contract.

>>> import torch
>>> from likelab.objectives import get_objective
>>> def mean_nll(dist, y):  # a mean, not one loss per observation
...     return -dist.log_prob(y).mean()
>>> F = torch.distributions.Normal(torch.zeros(2, 1), torch.ones(2, 1))
>>> get_objective(mean_nll).loss(F, torch.zeros(5))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
likelab.errors.UserContractError: user objective ...mean_nll returned one number (shape ()) for ...
"""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical, Distribution

from likelab.errors import LikelabError, SpecError, UserCodeError, UserContractError

__all__ = [
    "CONTRACT",
    "UserLoss",
    "callable_label",
    "describe_input",
    "phi_derivatives",
    "phi_expression",
    "wrap_user_function",
]

#: The user-objective contract, quoted in every error about a user objective.
CONTRACT = (
    "the contract: a user objective is fn(dist, y) -> one loss per observation, a floating-point "
    "torch tensor of shape broadcast(dist.batch_shape, y.shape) (not reduced: no mean or sum), "
    "lower is better, computed with torch operations so that it is differentiable in the "
    "forecast's parameters; or a function of the likelihood alone, fn(p) with p = f(y) "
    "(an argument named l receives log f(y)), or the spec phi:EXPR"
)

_LOG_ARGS = ("l", "log_f")
_NO_PATH = (
    "changes with the forecast's parameters but its gradient does not reach them (computed "
    "from detached values?)"
)
_NO_GRAD = (
    "returned a tensor that does not require grad (detached, or computed outside torch), so it "
    "cannot be differentiated in the forecast's parameters"
)


def callable_label(fn: Any) -> str:
    """``module:qualname`` of a function (what an import path would name), else its repr."""
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if module and name:
        return f"{module}:{name}"
    return name or repr(fn)


def _kind_of(target: Any) -> str:
    if inspect.ismodule(target):
        return "a module"
    if inspect.isclass(target):
        return f"a class ({target.__name__})"
    if inspect.isbuiltin(target) or inspect.ismethoddescriptor(target):
        return "a built-in function (not written in Python)"
    name = type(target).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def wrap_user_function(
    fn: Any, label: str, *, hypers: Iterable[str] = (), what: str = "user objective"
) -> UserLoss:
    """``fn`` as a :class:`UserLoss`, after checking it can be one: a Python callable taking
    ``(dist, y)`` (plus the objective's hyperparameters by keyword) or one argument (a function
    of the likelihood). Otherwise a :class:`UserCodeError` saying what it is and the contract."""
    hyper_names = set(hypers)
    if not callable(fn) or inspect.isclass(fn) or inspect.isbuiltin(fn):
        raise UserCodeError(f"{what} {label} is {_kind_of(fn)}, not a function; {CONTRACT}")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read: checked when called
        return UserLoss(fn, label)
    params = list(sig.parameters.values())
    kinds = inspect.Parameter
    positional = [
        p
        for p in params
        if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
        and p.name not in hyper_names
    ]
    required = [p for p in positional if p.default is p.empty]
    varargs = any(p.kind == kinds.VAR_POSITIONAL for p in params)
    kw_required = [
        p.name
        for p in params
        if p.kind == kinds.KEYWORD_ONLY and p.default is p.empty and p.name not in hyper_names
    ]
    if kw_required:
        raise UserCodeError(
            f"{what} {label}{sig} requires the keyword argument(s) {', '.join(kw_required)}, "
            f"which likelab does not pass; {CONTRACT}"
        )
    if len(required) > 2:
        raise UserCodeError(
            f"{what} {label}{sig} takes {len(required)} required arguments, likelab passes 2 "
            f"(dist, y); {CONTRACT}"
        )
    if varargs or len(positional) >= 2:
        return UserLoss(fn, label)
    if len(positional) == 1:
        return UserLoss(fn, label, of="l" if positional[0].name in _LOG_ARGS else "p")
    raise UserCodeError(
        f"{what} {label}{sig} takes no argument, likelab passes (dist, y); {CONTRACT}"
    )


def describe_input(dist: Any, y: Any) -> str:
    """``a Normal forecast with batch shape (2, 1) and y of shape (4,)``."""
    name = type(dist).__name__
    batch = tuple(getattr(dist, "batch_shape", ()))
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name} forecast with batch shape {batch} and y of shape {_shape(y)}"


def _shape(x: Any) -> tuple[int, ...] | str:
    try:
        return tuple(x.shape) if isinstance(x, torch.Tensor) else tuple(np.shape(x))
    except Exception:  # an object numpy cannot size
        return "unknown"


def _expected_shape(dist: Distribution, y: Any) -> tuple[int, ...] | None:
    ys = _shape(y)
    if isinstance(ys, str):
        return None
    event = len(getattr(dist, "event_shape", ()))
    if event:
        ys = ys[: len(ys) - event]
    try:
        return tuple(torch.broadcast_shapes(tuple(dist.batch_shape), ys))
    except (RuntimeError, TypeError, AttributeError):
        return None


def _tensors(dist: Any) -> list[torch.Tensor]:
    """The tensors a distribution holds (its parameters), its base distribution's included."""
    found = [v for v in vars(dist).values() if isinstance(v, torch.Tensor)]
    base = vars(dist).get("base_dist")
    return found + (_tensors(base) if isinstance(base, Distribution) else [])


def _needs_grad(dist: Any) -> bool:
    return torch.is_grad_enabled() and any(v.requires_grad for v in _tensors(dist))


class UserLoss:
    """A user's loss function guarded by the contract (see the module docstring).

    ``of`` is ``None`` for ``fn(dist, y)``, ``"p"`` for a function of the likelihood
    ``fn(f(y))`` and ``"l"`` for a function of the log-likelihood ``fn(log f(y))``.
    """

    def __init__(self, fn: Callable[..., Any], label: str, *, of: str | None = None) -> None:
        self.fn = fn
        self.label = label
        self.of = of
        self._probed: set[tuple[Any, ...]] = set()
        self._constant = False  # no graph, and the probe found it constant in the parameters

    def __repr__(self) -> str:
        return f"UserLoss({self.label})"

    def __call__(self, dist: Distribution, y: Any, **hyper: float) -> torch.Tensor:
        grad = _needs_grad(dist)
        key = (type(dist), tuple(sorted(hyper.items())))
        if (*key, grad) not in self._probed and (*key, True) not in self._probed:
            self._probe(dist, hyper, grad)
            self._probed.add((*key, grad))
        return self._checked(dist, y, hyper)

    # ------------------------------------------------------------------ one call
    def _checked(
        self, dist: Distribution, y: Any, hyper: dict, where: str | None = None, *, probe=False
    ) -> torch.Tensor:
        """``fn`` on ``(dist, y)`` with its output checked; ``where`` describes the input in
        errors (default: :func:`describe_input`, formed only on failure)."""
        if self.of is None:
            args: tuple[Any, ...] = (dist, y)
        else:
            log_f = dist.log_prob(y)
            args = (log_f if self.of == "l" else log_f.exp(),)
        try:
            out = self.fn(*args, **hyper)
        except LikelabError:  # a likelab call inside the user's code: already a clear message
            raise
        except (Exception, SystemExit) as exc:  # KeyboardInterrupt propagates untouched
            raise UserCodeError(
                f"user objective {self.label} raised {type(exc).__name__}: "
                f"{_message(exc)} (on {where or describe_input(dist, y)}); {CONTRACT}"
            ) from exc
        self._check_output(out, dist, y, where)
        if not probe and not out.requires_grad and _needs_grad(dist):
            if not self._constant:
                self._fail(_NO_GRAD, where or describe_input(dist, y))
            out = out + _zero_with_grad(dist).to(out.dtype)  # a constant: derivatives 0
        return out

    def _check_output(self, out: Any, dist: Distribution, y: Any, where: str | None) -> None:
        where = where or describe_input(dist, y)
        if out is None:
            self._fail("returned None (a missing return?)", where)
        if not isinstance(out, torch.Tensor):
            if isinstance(out, np.ndarray):
                self._fail(
                    "returned a numpy array: compute it with torch operations and return the "
                    "tensor",
                    where,
                )
            self._fail(f"returned a {type(out).__name__} ({_short(out)}), not a tensor", where)
        if not out.is_floating_point():
            self._fail(f"returned a tensor of dtype {out.dtype}, not floating point", where)
        expected = _expected_shape(dist, y)
        if expected is not None and tuple(out.shape) != expected:
            count = int(np.prod(expected))
            if out.dim() == 0:
                self._fail(
                    f"returned one number (shape ()) for {count} losses of shape {expected}: "
                    "a mean or sum? Return one loss per observation (PyTorch losses: "
                    "reduction='none')",
                    where,
                )
            self._fail(f"returned shape {tuple(out.shape)}, expected {expected}", where)

    def _fail(self, what: str, where: str) -> None:
        raise UserCodeError(f"user objective {self.label} {what} (on {where}); {CONTRACT}")

    # ------------------------------------------------------------------ the probe
    def _probe(self, actual: Distribution, hyper: dict, grad: bool) -> None:
        """Run the probe; a failure there is a :class:`UserContractError` (the function fails
        on likelab's own valid input, whatever the data)."""
        try:
            self._run_probe(actual, hyper, grad)
        except UserContractError:
            raise
        except UserCodeError as exc:
            raise UserContractError(*exc.args) from (exc.__cause__ or exc)

    def _run_probe(self, actual: Distribution, hyper: dict, grad: bool) -> None:
        floats = [t for t in _tensors(actual) if t.is_floating_point()]
        dtype = floats[0].dtype if floats else torch.float64
        device = floats[0].device if floats else torch.device("cpu")
        built = _probe_input(type(actual), dtype, device)
        if built is None:  # a forecast likelab does not make: per-call checks only
            return
        dist, y, leaf = built(0.0)
        where = "likelab's probe, " + describe_input(dist, y)
        with torch.enable_grad() if grad else torch.no_grad():
            out = self._checked(dist, y, hyper, where, probe=True)
        with torch.no_grad():
            ref = -dist.log_prob(y)
        bad = torch.isfinite(ref) & ~torch.isfinite(out.detach())
        if bool(bad.any()):
            value = out.detach()[bad][0].item()
            self._fail(f"returned {value} where the log score is finite", where)
        if not grad:
            return
        g = None
        if out.requires_grad:
            try:
                (g,) = torch.autograd.grad(out.sum(), leaf, allow_unused=True)
            except RuntimeError as exc:
                self._fail(f"cannot be differentiated ({_message(exc)})", where)
        if g is None:  # no graph to the parameters: a constant, or computed outside autograd
            with torch.no_grad():
                moved_dist, moved_y, _ = built(0.25)
                moved = self._checked(moved_dist, moved_y, hyper, where, probe=True).detach()
            same = (moved == out.detach()) | (moved.isnan() & out.detach().isnan())
            if not bool(same.all()):
                self._fail(_NO_GRAD if not out.requires_grad else _NO_PATH, where)
            self._constant = self._constant or not out.requires_grad
        elif not bool(torch.isfinite(g).all()):
            self._fail("has a non-finite gradient in the forecast's parameters", where)


def _probe_input(
    dist_type: type, dtype: torch.dtype, device: torch.device
) -> Callable[[float], tuple] | None:
    """A builder ``shift -> (dist, y, leaf)`` of a small standard forecast of ``dist_type`` (batch
    ``(2, 1)``, parameters ``leaf + shift`` requiring grad, of ``dtype`` on ``device``) and 4
    observations in its support, or ``None`` for a type likelab does not build."""
    like = {"dtype": dtype, "device": device}
    if issubclass(dist_type, Categorical):
        base = torch.tensor([[0.2, -0.4, 0.1], [-1.0, 0.3, 0.6]], **like)
        labels = torch.tensor([0, 2, 1, 1], device=device)

        def categorical(shift: float) -> tuple:
            leaf = (base + shift * torch.tensor([1.0, -1.0, 0.5], **like)).requires_grad_(True)
            dist = Categorical(logits=leaf.unsqueeze(-2), validate_args=False)
            return dist, labels, leaf

        return categorical
    from likelab.families import FAMILIES

    for cls in FAMILIES.values():
        if cls.torch_name != dist_type.__name__ or cls.torch_name == "Categorical":
            continue
        fam = cls()
        steps = torch.arange(1, fam.n_free + 1, **like)
        base = torch.stack([0.1 * steps, -0.15 * steps])
        first = {k: float(v[0]) for k, v in fam.to_natural(base).items()}
        y = torch.as_tensor(fam.sample(4, seed=0, **first), **like)

        def family(shift: float, fam=fam, base=base, y=y) -> tuple:
            leaf = (base + shift).requires_grad_(True)
            natural = fam.to_natural(leaf)
            dist = fam.distribution_unchecked({k: v.unsqueeze(-1) for k, v in natural.items()})
            return dist, y, leaf

        if type(family(0.0)[0]) is not dist_type:
            return None
        return family
    return None


# ---------------------------------------------------------------------- phi:EXPR
_PHI_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "log": torch.log,
    "log1p": torch.log1p,
    "exp": torch.exp,
    "expm1": torch.expm1,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "minimum": torch.minimum,
    "maximum": torch.maximum,
}
_PHI_ARITY = {"minimum": 2, "maximum": 2}  # the others take one argument
_PHI_CONSTANTS = {"pi": float(np.pi), "e": float(np.e)}
_PHI_BINARY = {
    ast.Add: torch.add,
    ast.Sub: torch.sub,
    ast.Mult: torch.mul,
    ast.Div: torch.div,
    ast.Pow: torch.pow,
}
_PHI_MAX_LENGTH = 1000
PHI_GRAMMAR = (
    "an expression in p = f(y) or l = log f(y) with numbers, pi, e, + - * / ** (or ^), "
    "parentheses and the functions " + ", ".join(_PHI_FUNCTIONS)
)
#: The likelihoods p in (0, 1] on which a ``phi:EXPR`` must be a number (not NaN): every
#: probability a Categorical forecast can give, and densities up to 1.
PHI_CHECK_GRID = np.unique(np.concatenate([np.logspace(-300, 0, 601), np.linspace(0, 1, 1001)[1:]]))


def phi_expression(text: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The local rule ``phi:EXPR`` as a function of ``log f(y)``: ``EXPR`` is parsed by a small
    grammar (numbers, ``p`` = f(y), ``l`` = log f(y), ``pi``, ``e``, ``+ - * / **``, unary minus,
    parentheses, the functions in ``_PHI_FUNCTIONS``: ``minimum`` and ``maximum`` of two
    arguments, the others of one), never evaluated as Python. Anything else is a
    :class:`~likelab.errors.SpecError` naming it, and so is an expression that is NaN for some
    likelihood p in (0, 1] (:data:`PHI_CHECK_GRID`): a scoring rule is a number for every
    forecast.

    >>> import torch
    >>> phi = phi_expression("-log(p)")
    >>> phi(torch.tensor([-1.5])).tolist()
    [1.5]
    >>> phi_expression("(1 - p^0.5) / 0.5")(torch.tensor([0.0])).tolist()
    [0.0]
    >>> phi_expression("maximum(-p, -0.5)")(torch.tensor([0.0, -2.0])).tolist()
    [-0.5, -0.1353352814912796]
    >>> phi_expression("p.__class__")
    Traceback (most recent call last):
    ...
    likelab.errors.SpecError: phi:p.__class__: 'p.__class__' is not allowed (attribute access); ...
    """
    tree, uses = _phi_parse(text)

    def phi(log_f: torch.Tensor) -> torch.Tensor:
        values = {"l": log_f, "p": log_f.exp() if "p" in uses else None}
        out = _phi_eval(tree.body, values)
        return out if isinstance(out, torch.Tensor) else torch.full_like(log_f, out)

    _phi_defined(text, phi)
    return phi


def _phi_parse(text: str) -> tuple[ast.Expression, set[str]]:
    source = text.strip().replace("^", "**")
    if not source:
        raise SpecError(f"phi: give an expression after 'phi:', {PHI_GRAMMAR}")
    if len(source) > _PHI_MAX_LENGTH:
        raise SpecError(
            f"phi:{source[:20]}...: the expression has {len(source)} characters, at most "
            f"{_PHI_MAX_LENGTH} are accepted"
        )
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise SpecError(
            f"phi:{text.strip()}: cannot parse the expression: {_syntax(exc, source)}; "
            f"{PHI_GRAMMAR}"
        ) from None
    except (ValueError, RecursionError, MemoryError):  # null bytes, absurd nesting
        raise SpecError(
            f"phi:{text.strip()[:40]}: cannot parse the expression; {PHI_GRAMMAR}"
        ) from None
    uses: set[str] = set()
    try:
        _phi_check(tree.body, source, text.strip(), uses)
    except RecursionError:
        raise SpecError(
            f"phi:{text.strip()[:40]}...: the expression is nested too deeply"
        ) from None
    if not uses & {"p", "l"}:
        raise SpecError(f"phi:{text.strip()} does not use p or l: a constant is not a scoring rule")
    return tree, uses


def _syntax(exc: SyntaxError, source: str) -> str:
    """Where and why ``source`` does not parse: ``"invalid syntax at column 3 ('*/2')"``, or
    ``"it ends early, after 'p**'"`` (Python's offset 0: at the end)."""
    msg = exc.msg if exc.msg and exc.msg != "invalid syntax" else "invalid syntax"
    col = exc.offset or 0
    if exc.lineno not in (None, 1) or not 1 <= col <= len(source):
        return f"{msg}: it ends early, after {source[-10:]!r}"
    return f"{msg} at column {col} ({source[col - 1 : col + 9]!r})"


def _phi_check(node: ast.AST, source: str, text: str, uses: set[str]) -> None:
    """Refuse every node outside the grammar, naming it and what it is."""

    def refuse(what: str, piece: ast.AST | str | None = None) -> None:
        if not isinstance(piece, str):
            piece = ast.get_source_segment(source, piece or node) or type(node).__name__
        raise SpecError(f"phi:{text}: {piece!r} is not allowed ({what}); {PHI_GRAMMAR}")

    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            refuse(f"a {type(node.value).__name__} constant")
        try:
            finite = math.isfinite(float(node.value))
        except OverflowError:
            finite = False
        if not finite:
            refuse("not a finite number")
        return
    if isinstance(node, ast.Name):
        if node.id in ("p", "l") or node.id in _PHI_CONSTANTS:
            uses.add(node.id)
            return
        refuse("an unknown name: the variables are p and l")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        _phi_check(node.operand, source, text, uses)
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _PHI_BINARY:
        _phi_check(node.left, source, text, uses)
        _phi_check(node.right, source, text, uses)
        return
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _PHI_FUNCTIONS:
            refuse("an unknown function", node.func if name is None else name)
        if node.keywords:
            refuse("keyword arguments")
        arity = _PHI_ARITY.get(name, 1)
        if len(node.args) != arity or any(isinstance(a, ast.Starred) for a in node.args):
            refuse(f"{name} takes {arity} argument{'s' if arity > 1 else ''}")
        for arg in node.args:
            _phi_check(arg, source, text, uses)
        return
    kinds = {
        ast.Attribute: "attribute access",
        ast.Subscript: "a subscript",
        ast.Lambda: "a lambda",
        ast.BoolOp: "a boolean operator",
        ast.Compare: "a comparison",
        ast.IfExp: "a conditional",
        ast.BinOp: "an operator outside + - * / **",
        ast.UnaryOp: "an operator outside unary + and -",
        ast.ListComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.GeneratorExp: "a comprehension",
        ast.JoinedStr: "a string",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Set: "a set",
        ast.Dict: "a dict",
        ast.Starred: "unpacking",
        ast.NamedExpr: "an assignment",
    }
    what = next((w for t, w in kinds.items() if isinstance(node, t)), None)
    refuse(what or f"{type(node).__name__.lower()} syntax")


def _phi_defined(text: str, phi: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Refuse an expression that is NaN for some p in (0, 1] (:data:`PHI_CHECK_GRID`)."""
    p = torch.as_tensor(PHI_CHECK_GRID, dtype=torch.float64)
    with torch.no_grad():
        values = phi(p.log())
    bad = torch.isnan(values)
    if bool(bad.any()):
        lo, hi = float(p[bad][0]), float(p[bad][-1])
        where = f"p = {lo:.6g}" if lo == hi else f"p from {lo:.6g} to {hi:.6g}"
        raise SpecError(
            f"phi:{text.strip()} is NaN at {where} ({int(bad.sum())} of the {p.numel()} "
            "likelihoods checked): a scoring rule must be a number for every likelihood p in "
            "(0, 1]"
        )


def _is_p(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "p"


def _phi_eval(node: ast.AST, values: dict[str, Any]) -> Any:
    """The expression's value at ``values`` (``l`` = log f, ``p`` = f). Powers, roots and the
    log of ``p`` itself are taken through ``l`` (``p**c`` as exp(c l), ``sqrt(p)`` as
    exp(l/2), ``log(p)`` as ``l``): the same numbers, but where p underflows to 0 in a far tail
    their derivatives stay finite (exp(c l) → 0) instead of inf · 0 = NaN."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and _is_p(node.left):
        power = _phi_eval(node.right, values)
        if not isinstance(power, torch.Tensor):
            ell = values["l"]
            return torch.ones_like(ell) if power == 0 else torch.exp(power * ell)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("sqrt", "log")
        and len(node.args) == 1
        and _is_p(node.args[0])
    ):
        ell = values["l"]
        return torch.exp(0.5 * ell) if node.func.id == "sqrt" else ell
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return values[node.id] if node.id in values else _PHI_CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp):
        inner = _phi_eval(node.operand, values)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        left, right = _phi_eval(node.left, values), _phi_eval(node.right, values)
        if not isinstance(left, torch.Tensor) and not isinstance(right, torch.Tensor):
            return float(_PHI_BINARY[type(node.op)](torch.tensor(left), torch.tensor(right)))
        return _PHI_BINARY[type(node.op)](left, right)
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    args = [_phi_eval(a, values) for a in node.args]
    fn = _PHI_FUNCTIONS[node.func.id]
    like = next((a for a in args if isinstance(a, torch.Tensor)), None)
    if like is None:
        return float(fn(*(torch.tensor(a, dtype=torch.float64) for a in args)))
    return fn(*(a if isinstance(a, torch.Tensor) else torch.full_like(like, a) for a in args))


def phi_derivatives(
    phi: Callable[[torch.Tensor], torch.Tensor],
) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """An elementwise ``φ(ℓ)`` as the local-rule machinery's ``ℓ -> (φ, φ', φ'')``, the two
    derivatives by autograd (on a detached copy of ``ℓ``: φ itself keeps ``ℓ``'s graph)."""

    def derivatives(ell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        value = phi(ell)
        with torch.enable_grad():
            x = ell.detach().requires_grad_(True)
            out = phi(x)
            d1 = torch.autograd.grad(out.sum(), x, create_graph=True, allow_unused=True)[0]
            if d1 is None:
                d1 = torch.zeros_like(x)
            d2 = None
            if d1.requires_grad:
                d2 = torch.autograd.grad(d1.sum(), x, allow_unused=True)[0]
        d2 = torch.zeros_like(ell) if d2 is None else d2
        return value, d1.detach().expand_as(value), d2.expand_as(value)

    return derivatives


def _zero_with_grad(dist: Any) -> torch.Tensor:
    """0, with zero first and second derivatives (both with a graph, so that callers taking
    Hessians by autograd can) in the first of ``dist``'s tensors that requires grad."""
    for v in _tensors(dist):
        if v.requires_grad:
            finite = torch.where(torch.isfinite(v), v, torch.zeros_like(v))
            return (finite * finite).sum() * 0
    return torch.zeros(())


def _message(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, SystemExit):
        return f"exit status {exc.code!r}" if not text else text
    return text or "(no message)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
