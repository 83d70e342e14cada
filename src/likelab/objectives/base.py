"""Objectives as scoring rules, and the registry that names them.

An objective is a scoring rule ``S(F, y)`` in loss orientation (lower is better): a batched
predictive ``torch.distributions.Distribution`` ``F`` and observations ``y`` in, one loss per
observation out. Its *risk* on a sample is the mean loss along the observation axis, except for the
batch-level ``product`` (and any objective registered with its own ``risk``).

Objectives are created from spec strings by :func:`get_objective`::

    >>> from likelab.objectives import get_objective
    >>> get_objective("pseudospherical:gamma=3").spec
    'pseudospherical:gamma=3'

and new ones are registered with :func:`register_objective` (built-ins) or
:func:`likelab.objective` (users).
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as replace_fields
from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical, Distribution, constraints

from likelab._spec import format_spec, parse_spec
from likelab.errors import (
    DataError,
    LikelabError,
    ParameterError,
    SpecError,
    UnknownNameError,
    UnsupportedError,
    UserCodeError,
)
from likelab.objectives.user import (
    UserLoss,
    callable_label,
    phi_derivatives,
    phi_expression,
    wrap_user_function,
)

__all__ = [
    "Hyper",
    "Objective",
    "Properties",
    "check_observations",
    "get_objective",
    "list_objectives",
    "local_objective",
    "objective",
    "register_objective",
]

LossFn = Callable[..., torch.Tensor]
RiskFn = Callable[..., torch.Tensor]
#: For a local rule S = φ(log f(y)): ``phi(log_f, **hyper) -> (φ, φ', φ'')`` in log f.
#: ``logits_risk(logits, y, **hyper) -> risk`` of ``Categorical(logits=logits)``, fused.
PhiFn = Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
LogitsRiskFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Properties:
    """What the literature claims for an objective (``None``: no claim).

    proper: the expected loss under P is minimised by the forecast P.
    strictly_proper: ... and only by P.
    local: the loss depends on the forecast only through f(y).
    robust: proposed as robust to outliers / label noise (bounded influence).
    demonstration: kept to show a failure, not for use.
    """

    proper: bool | None = None
    strictly_proper: bool | None = None
    local: bool | None = None
    robust: bool | None = None
    demonstration: bool = False

    def as_dict(self) -> dict[str, bool | None]:
        return {
            "proper": self.proper,
            "strictly_proper": self.strictly_proper,
            "local": self.local,
            "robust": self.robust,
            "demonstration": self.demonstration,
        }


@dataclass(frozen=True)
class Hyper:
    """One hyperparameter of an objective: its name, default and validity condition.

    ``valid`` returns True for admissible values; ``condition`` says which in words
    (``"gamma > 1"``) and is quoted in the error message.
    """

    name: str
    default: float | None
    valid: Callable[[float], bool]
    condition: str


def gt(bound: float) -> Callable[[float], bool]:
    """Validity check ``value > bound``."""
    return lambda v: v > bound


def ge(bound: float) -> Callable[[float], bool]:
    """Validity check ``value >= bound``."""
    return lambda v: v >= bound


def in_interval(lo: float, hi: float, *, lo_open: bool = True, hi_open: bool = False):
    """Validity check for an interval, e.g. ``(0, 1]``."""

    def check(v: float) -> bool:
        return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)

    return check


@dataclass(frozen=True)
class _Entry:
    name: str
    fn: LossFn
    hypers: tuple[Hyper, ...]
    formula: str
    reference: str
    properties: Properties | Callable[..., Properties]
    kind: str
    risk: RiskFn | None
    aliases: tuple[str, ...]
    summary: str
    user: bool
    phi: PhiFn | None = None
    logits_risk: LogitsRiskFn | None = None


_REGISTRY: dict[str, _Entry] = {}
_ALIASES: dict[str, str] = {}


@dataclass(frozen=True, eq=False)
class Objective:
    """A scoring rule with its hyperparameters bound.

    Call it (or :meth:`loss`) on ``(F, y)`` for per-observation losses; :meth:`risk` for the
    empirical risk along the observation axis. ``formula``, ``reference`` and ``properties`` say
    what it is and what the literature claims for it. ``F`` may also be a frozen
    ``scipy.stats`` distribution of a family likelab knows
    (:mod:`likelab.families.scipy_bridge`).

    >>> import torch
    >>> from likelab.objectives import get_objective
    >>> F = torch.distributions.Normal(torch.tensor(0.0), torch.tensor(1.0))
    >>> round(float(get_objective("log")(F, torch.tensor(0.0))), 6)  # 0.5 log(2π)
    0.918939
    >>> import scipy.stats
    >>> round(float(get_objective("log")(scipy.stats.norm(0, 1), 0.0)), 6)
    0.918939
    """

    name: str
    hyper: Mapping[str, float]
    formula: str
    reference: str
    properties: Properties
    kind: str
    summary: str = ""
    fn: LossFn = field(default=None, repr=False)  # type: ignore[assignment]
    risk_fn: RiskFn | None = field(default=None, repr=False)
    user: bool = False
    phi_fn: PhiFn | None = field(default=None, repr=False)
    logits_risk_fn: LogitsRiskFn | None = field(default=None, repr=False)

    def risk_from_logits(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The risk of the forecasts ``Categorical(logits=logits)`` (rows) on labels ``y``: the
        classifier's training loss, unvalidated (a hot loop).

        A registered fused form is used where there is one (``log``: ``cross_entropy``), then a
        local rule's φ of the labels' log-likelihoods (one fused ``cross_entropy`` with
        ``reduction="none"``), and otherwise the ``Categorical`` predictive itself (integral
        rules, the batch-level product, user objectives). All three agree to rounding.
        """
        if self.logits_risk_fn is not None:
            return self.logits_risk_fn(logits, y, **self.hyper)
        if self.phi_fn is not None:
            log_f = -torch.nn.functional.cross_entropy(logits, y, reduction="none")
            return self.phi_fn(log_f, **self.hyper)[0].mean()
        dist = Categorical(logits=logits, validate_args=False)
        return self.risk(dist, y, validate=False)

    def phi(self, log_f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """For a local rule written S = φ(log f(y)): φ and its first two derivatives at log f.

        ``None`` when the objective has no such form; fitting then differentiates by autograd.
        """
        return None if self.phi_fn is None else self.phi_fn(log_f, **self.hyper)

    @property
    def spec(self) -> str:
        """The spec string that rebuilds this objective."""
        return format_spec(self.name, dict(self.hyper))

    @property
    def batch_level(self) -> bool:
        """True when the objective is defined on a whole batch only (``product``)."""
        return self.kind == "batch"

    def __repr__(self) -> str:
        return f"Objective({self.spec!r})"

    def __call__(self, dist: Distribution, y: Any) -> torch.Tensor:
        return self.loss(dist, y)

    def loss(self, dist: Distribution, y: Any, *, validate: bool = True) -> torch.Tensor:
        """Per-observation losses, shape ``broadcast(F.batch_shape, y.shape)``.

        With ``validate`` (the default) the forecast and the observations are checked first:
        a likelab :class:`~likelab.errors.DataError` names the first NaN, infinite or
        out-of-support observation. Hot loops that already checked may pass ``validate=False``.
        """
        if self.batch_level:
            raise UnsupportedError(
                f"objective {self.name!r} is defined on a whole batch only; use .risk(F, y)"
            )
        dist = _as_forecast(dist)
        if validate:
            y = check_observations(dist, y)
        return self.fn(dist, y, **self.hyper)

    def risk(
        self, dist: Distribution, y: Any, *, dim: int = -1, validate: bool = True
    ) -> torch.Tensor:
        """The empirical risk: the mean loss along ``dim`` (the observation axis).

        For the batch-level ``product`` it is the negated product of the likelihoods, computed the
        naive way.
        """
        dist = _as_forecast(dist)
        if validate:
            y = check_observations(dist, y)
        if self.risk_fn is not None:
            return self.risk_fn(dist, y, dim=dim, **self.hyper)
        return self.fn(dist, y, **self.hyper).mean(dim=dim)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description: name, spec, hyperparameters, formula, reference, properties."""
        return {
            "name": self.name,
            "spec": self.spec,
            "kind": self.kind,
            "hyper": dict(self.hyper),
            "formula": self.formula,
            "reference": self.reference,
            "summary": self.summary,
            "properties": self.properties.as_dict(),
            "user": self.user,
        }


# ---------------------------------------------------------------------- registry
def register_objective(
    name: str,
    *,
    formula: str,
    reference: str,
    properties: Properties | Callable[..., Properties],
    kind: str,
    hypers: Sequence[Hyper] = (),
    aliases: Sequence[str] = (),
    risk: RiskFn | None = None,
    summary: str = "",
    user: bool = False,
    replace: bool = False,
    phi: PhiFn | None = None,
    logits_risk: LogitsRiskFn | None = None,
) -> Callable[[LossFn], LossFn]:
    """Register ``fn(dist, y, **hyper) -> Tensor`` as the objective ``name``.

    ``kind`` is ``"local"``, ``"integral"``, ``"crps"``, ``"hyvarinen"``, ``"batch"`` or
    ``"user"``. ``properties`` may be a function of the hyperparameters (``lq`` is proper only at
    ``q = 1``). ``risk`` overrides the mean-over-observations aggregation. ``phi`` writes a
    local rule as ``S = φ(log f)``: ``phi(log_f, **hyper) -> (φ, φ', φ'')`` (used by fitting
    to form gradients and Hessians in closed form). ``logits_risk(logits, y, **hyper)`` is a fused
    form of the risk of ``Categorical(logits=logits)`` for training classifiers
    (:meth:`Objective.risk_from_logits`).
    """
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_\-]*$", name):
        raise SpecError(f"invalid objective name {name!r}")

    def decorate(fn: LossFn) -> LossFn:
        guarded = (
            wrap_user_function(
                fn, f"{name!r} ({callable_label(fn)})", hypers=[h.name for h in hypers]
            )
            if user and not isinstance(fn, UserLoss)
            else fn
        )
        for key in (name, *aliases):
            if not replace and (key in _REGISTRY or key in _ALIASES):
                raise LikelabError(
                    f"objective {key!r} is already registered; pass replace=True to override"
                )
        entry = _Entry(
            name=name,
            fn=guarded,
            hypers=tuple(hypers),
            formula=formula,
            reference=reference,
            properties=properties,
            kind=kind,
            risk=risk,
            aliases=tuple(aliases),
            summary=summary or (fn.__doc__ or "").strip().split("\n")[0],
            user=user,
            phi=phi,
            logits_risk=logits_risk,
        )
        _REGISTRY[name] = entry
        for alias in aliases:
            _ALIASES[alias] = name
        return fn

    return decorate


def objective(
    name: str,
    *,
    formula: str = "",
    reference: str = "",
    proper: bool | None = None,
    strictly_proper: bool | None = None,
    local: bool | None = None,
    robust: bool | None = None,
    hypers: Sequence[Hyper] = (),
    replace: bool = False,
) -> Callable[[LossFn], LossFn]:
    """Decorator registering a user's own objective ``fn(dist, y, **hyper) -> losses``.

    The contract (checked on first use, see :mod:`likelab.objectives.user`): one loss per
    observation, a floating-point tensor of shape ``broadcast(dist.batch_shape, y.shape)``, lower
    is better, differentiable in the forecast's parameters. A function of one argument is a
    function of the likelihood ``p = f(y)`` alone (of ``log f(y)`` if the argument is named
    ``l``).

    >>> import torch
    >>> from likelab import objective, get_objective
    >>> @objective("half_log", formula="-log f(y) / 2", replace=True)
    ... def half_log(dist, y):
    ...     return -dist.log_prob(y) / 2
    >>> F = torch.distributions.Normal(torch.tensor(0.0), torch.tensor(1.0))
    >>> round(float(get_objective("half_log")(F, torch.tensor(0.0))), 6)
    0.459469
    """

    def decorate(fn: LossFn) -> LossFn:
        of_likelihood = wrap_user_function(fn, name, hypers=[h.name for h in hypers]).of
        props = Properties(
            proper=proper,
            strictly_proper=strictly_proper,
            local=True if local is None and of_likelihood is not None else local,
            robust=robust,
        )
        return register_objective(
            name,
            formula=formula,
            reference=reference,
            properties=props,
            kind="user",
            hypers=hypers,
            user=True,
            replace=replace,
        )(fn)

    return decorate


def list_objectives(*, include_user: bool = True) -> list[str]:
    """Registered objective names (no aliases), in registration order."""
    _load_builtins()
    return [n for n, e in _REGISTRY.items() if include_user or not e.user]


def aliases_of(name: str) -> tuple[str, ...]:
    """The aliases registered for ``name``."""
    _load_builtins()
    return _REGISTRY[name].aliases


def get_objective(spec: str | Objective | Callable[..., torch.Tensor], **hyper: float) -> Objective:
    """An :class:`Objective` from a spec string, an Objective, or a plain callable.

    Spec strings are ``name`` or ``name:key=value,...`` (``lq:q=0.5``), a registered alias
    (``sum`` for ``linear``), or an import path ``package.module:function`` naming a registered
    objective function, an :class:`Objective`, or a callable ``fn(dist, y) -> losses``;
    or ``phi:EXPR``, a function of the likelihood alone (``phi:-log(p)`` is the log score).
    """
    _load_builtins()
    if isinstance(spec, Objective):
        return spec if not hyper else _bind(_REGISTRY[spec.name], {**spec.hyper, **hyper})
    if callable(spec) and not isinstance(spec, str):
        return _from_callable(spec, label=getattr(spec, "__name__", "user_objective"))
    if not isinstance(spec, str):
        raise SpecError(f"objective spec must be a string, got {type(spec).__name__}")
    text = spec.strip()
    head = text.split(":", 1)[0].strip()
    if head == "phi" and head not in _REGISTRY:
        expr = text.split(":", 1)[1] if ":" in text else ""
        if not _looks_like_import_path(text) or expr.strip() in ("p", "l"):
            return _from_phi(expr)
        try:  # phi:NAME: a function in a module named phi, if there is one
            return _from_import_path(text)
        except UnknownNameError:
            return _from_phi(expr)  # the grammar's error names what is wrong
    if head not in _REGISTRY and head not in _ALIASES and _looks_like_import_path(text):
        return _from_import_path(text)
    parsed = parse_spec(text, kind="objective")
    name = _ALIASES.get(parsed.name, parsed.name)
    entry = _REGISTRY.get(name)
    if entry is None:
        raise UnknownNameError(
            f"unknown objective {parsed.name!r}; known objectives: "
            f"{', '.join(list_objectives())} (aliases: {', '.join(sorted(_ALIASES))}); "
            "or give an import path module:function"
        )
    return _bind(entry, {**parsed.kwargs, **hyper})


def _bind(entry: _Entry, given: Mapping[str, Any]) -> Objective:
    known = {h.name: h for h in entry.hypers}
    for key in given:
        if key not in known:
            expected = ", ".join(known) if known else "none"
            raise UnknownNameError(
                f"objective {entry.name!r} has no parameter {key!r} (its parameters: {expected})"
            )
    values: dict[str, float] = {}
    for h in entry.hypers:
        if h.name in given:
            raw = given[h.name]
            if isinstance(raw, str) and raw.strip().lower() == "auto":
                raise ParameterError(
                    f"{entry.name}:{h.name}=auto (a tuning parameter chosen from the data) is "
                    "supported by fit only (likelab.fit, likelab fit), for dpd:beta, gamma:gamma "
                    "and lq:q; give a number here"
                )
            if isinstance(raw, str):
                raise ParameterError(
                    f"{entry.name} parameter {h.name!r} must be a number, got {raw!r}"
                )
            value = float(raw)
        elif h.default is not None:
            value = float(h.default)
        else:
            raise ParameterError(
                f"objective {entry.name!r} needs parameter {h.name!r} ({h.condition}), "
                f"e.g. {entry.name}:{h.name}=..."
            )
        if not math.isfinite(value) or not h.valid(value):
            raise ParameterError(
                f"{entry.name} parameter {h.name} must satisfy {h.condition}, got {value:g}"
            )
        values[h.name] = value
    props = entry.properties(**values) if callable(entry.properties) else entry.properties
    return Objective(
        name=entry.name,
        hyper=values,
        formula=entry.formula,
        reference=entry.reference,
        properties=props,
        kind=entry.kind,
        summary=entry.summary,
        fn=entry.fn,
        risk_fn=entry.risk,
        user=entry.user,
        phi_fn=entry.phi,
        logits_risk_fn=entry.logits_risk,
    )


_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _looks_like_import_path(text: str) -> bool:
    return bool(_IMPORT_PATH.match(text))


def _from_import_path(text: str) -> Objective:
    module_name, _, attr = text.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise UnknownNameError(
                f"objective {text!r}: cannot import module {module_name!r} ({exc})"
            ) from None
        raise _import_failed(text, module_name, exc) from exc
    except (Exception, SystemExit) as exc:  # an error inside the user's module
        raise _import_failed(text, module_name, exc) from exc
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise UnknownNameError(
            f"objective {text!r}: module {module_name!r} has no attribute {attr!r}"
        ) from None
    if isinstance(target, Objective):
        return target
    for entry in _REGISTRY.values():
        if _user_fn(entry.fn) is target:
            return _bind(entry, {})
    return _from_callable(target, label=text)


def _from_phi(expr: str) -> Objective:
    """``phi:EXPR``: the local rule S = φ(f(y)) written as an expression (see
    :func:`~likelab.objectives.user.phi_expression`). Its spec, and so its name everywhere, is
    ``phi:`` and the expression as written without its whitespace (``phi: -p ** 0.3`` is
    ``phi:-p**0.3``, as ``lq: q = 0.5`` is ``lq:q=0.5``); one Objective per spec, so that the
    contract is probed once per process."""
    phi = phi_expression(expr)  # refuses what is outside the grammar, or NaN somewhere
    spec = "phi:" + "".join(expr.split())
    cached = _PHI_OBJECTIVES.get(spec)
    if cached is not None:
        return cached
    obj = Objective(
        name=spec,
        hyper={},
        formula=f"S(F, y) = {spec[4:]}   (p = f(y), l = log f(y))",
        reference="",
        properties=Properties(local=True),
        kind="local",
        summary="a function of the likelihood, written as an expression",
        fn=UserLoss(phi, spec, of="l"),
        user=True,
        phi_fn=phi_derivatives(phi),
    )
    _PHI_OBJECTIVES[spec] = obj
    return obj


_PHI_OBJECTIVES: dict[str, Objective] = {}


def local_objective(
    phi: str | Callable[[torch.Tensor], torch.Tensor],
    *,
    name: str | None = None,
    formula: str = "",
    reference: str = "",
    replace: bool = False,
) -> Objective:
    r"""The local scoring rule :math:`S(F, y) = \varphi(f(y))` from :math:`\varphi` alone.

    ``phi`` is an expression in ``p`` = f(y) or ``l`` = log f(y) (the grammar of ``phi:EXPR``,
    :func:`~likelab.objectives.user.phi_expression`; the prefix ``phi:`` may be given or not),
    or a Python function of one argument, elementwise in torch operations: it receives
    ``p = f(y)``, or ``log f(y)`` when its argument is named ``l`` (or ``log_f``). Anything
    else is refused: a function ``fn(dist, y)`` is an objective of its own
    (:func:`objective`).

    Without ``name`` the objective is not registered and its spec is ``phi:EXPR`` for an
    expression (whitespace removed), ``module:function`` for a function (the import path
    that names it in study files and on the command line). With ``name`` (a letter or ``_``,
    then letters, digits, ``_`` or ``-``) it is registered under that name, which is then its
    spec everywhere: tables, JSON, study stores, pages, and :func:`get_objective`.
    ``formula`` and ``reference`` describe it; ``replace`` overrides an earlier registration
    of the name.

    An expression uses the local-rule machinery of ``log``, ``linear`` and ``lq`` (φ and its
    derivatives in log f, here by autograd); a function is differentiated by autograd through
    the losses, under the user-objective contract (:mod:`likelab.objectives.user`).

    On three or more outcomes (and on densities) a local rule is proper only if φ is an affine
    function of log p, S = a - b log f(y) with b > 0 (Bernardo 1979, Ann. Statist. 7:686-690):
    every other φ is improper, which :func:`likelab.check_properness` finds numerically.

    >>> import torch
    >>> import likelab
    >>> tsallis = likelab.local_objective("(1 - p**0.7) / 0.7", name="tsallis07", replace=True)
    >>> tsallis.spec, likelab.get_objective("tsallis07").spec
    ('tsallis07', 'tsallis07')
    >>> F = torch.distributions.Categorical(probs=torch.tensor([0.5, 0.3, 0.2]))
    >>> round(float(tsallis(F, torch.tensor(0))), 6)  # (1 - 0.5**0.7) / 0.7
    0.549183
    >>> likelab.local_objective("-p**0.3").spec
    'phi:-p**0.3'
    >>> half_nll = likelab.local_objective(lambda l: -l / 2, name="half_nll", replace=True)
    >>> round(float(half_nll(F, torch.tensor(1))), 6)  # -log(0.3) / 2
    0.601986
    >>> likelab.check_properness(half_nll, classes=3).verdict
    'strictly proper'
    """
    if name is not None and (
        not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_\-]*$", name)
    ):
        raise SpecError(
            f"local_objective: name must be a letter or _ followed by letters, digits, _ or -, "
            f"got {name!r} (it is the objective's spec, on the command line and in study files)"
        )
    if name == "phi":
        raise SpecError("local_objective: 'phi' names the expressions phi:EXPR; choose another")
    _load_builtins()
    if isinstance(phi, str):
        expr = phi.strip()
        expr = expr[4:] if expr.startswith("phi:") else expr
        obj = _from_phi(expr)
        if name is None:
            if formula or reference:  # the shared phi:EXPR objective, described anew
                return replace_fields(obj, formula=formula or obj.formula, reference=reference)
            return obj
        guarded: UserLoss = UserLoss(phi_expression(expr), name, of="l")
        derivatives: PhiFn | None = phi_derivatives(guarded.fn)
        formula = formula or obj.formula
        summary = f"a function of the likelihood: {obj.spec}"
    else:
        label = name or callable_label(phi)
        guarded = wrap_user_function(phi, label, what="local objective")
        if guarded.of is None:
            raise UserCodeError(
                f"local objective {label} takes (dist, y): local_objective takes a function of "
                "the likelihood alone, fn(p) or fn(l); register fn(dist, y) with "
                "likelab.objective"
            )
        derivatives = None
        doc = (getattr(phi, "__doc__", None) or "").strip().split("\n")[0]
        formula = formula or f"S(F, y) = φ(f(y)) by {label}" + (f": {doc}" if doc else "")
        summary = "user objective (a function of the likelihood)"
        if name is None:
            return Objective(
                name=label,
                hyper={},
                formula=formula,
                reference=reference,
                properties=Properties(local=True),
                kind="local",
                summary=summary,
                fn=guarded,
                user=True,
            )
    register_objective(
        name,
        formula=formula,
        reference=reference,
        properties=Properties(local=True),
        kind="local",
        summary=summary,
        user=True,
        replace=replace,
        phi=derivatives,
    )(guarded)
    return _bind(_REGISTRY[name], {})


def _import_failed(text: str, module_name: str, exc: BaseException) -> UserCodeError:
    message = " ".join(str(exc).split()) or "(no message)"
    return UserCodeError(
        f"objective {text!r}: importing module {module_name!r} failed with "
        f"{type(exc).__name__}: {message}"
    )


def _user_fn(fn: Any) -> Any:
    return fn.fn if isinstance(fn, UserLoss) else fn


def _from_callable(fn: Callable[..., torch.Tensor], *, label: str) -> Objective:
    """A user objective from a callable: ``fn(dist, y)``, or a function of the likelihood alone
    (one argument), guarded by the contract (:class:`~likelab.objectives.user.UserLoss`)."""
    for entry in _REGISTRY.values():
        if _user_fn(entry.fn) is fn:
            return _bind(entry, {})
    guarded = wrap_user_function(fn, label if ":" in label else callable_label(fn))
    doc = (getattr(fn, "__doc__", None) or "").strip().split("\n")[0]
    if inspect.isfunction(fn) or inspect.ismethod(fn):
        formula = doc or "user-supplied callable"
    else:
        formula = "user-supplied callable"
    local = guarded.of is not None
    return Objective(
        name=label,
        hyper={},
        formula=formula if not local else f"φ(f(y)) by {label}" + (f": {doc}" if doc else ""),
        reference="",
        properties=Properties(local=True if local else None),
        kind="user",
        summary="user objective" + (" (a function of the likelihood)" if local else ""),
        fn=guarded,
        user=True,
    )


_BUILTINS_LOADED = False


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        importlib.import_module("likelab.objectives.local")
        importlib.import_module("likelab.objectives.integral")
        importlib.import_module("likelab.objectives.crps")
        importlib.import_module("likelab.objectives.hyvarinen")
        importlib.import_module("likelab.objectives.product")


# ---------------------------------------------------------------------- validation
def check_observations(dist: Distribution, y: Any) -> torch.Tensor:
    """Observations as a tensor fit for ``dist``, or a :class:`DataError` saying what is wrong.

    Checks: ``dist`` is a torch Distribution; ``y`` is non-empty, finite, broadcastable against
    ``dist.batch_shape`` and inside the forecast's support (integer labels ``0..K-1`` for a
    Categorical). The dtype follows the forecast's parameters.
    """
    if not isinstance(dist, Distribution):
        raise LikelabError(
            f"the forecast must be a torch.distributions.Distribution, got {type(dist).__name__}"
        )
    if isinstance(y, torch.Tensor):
        t = y
    else:
        try:
            arr = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"observations must be numeric, got {type(y).__name__}") from None
        t = torch.as_tensor(arr)
    if t.numel() == 0:
        raise DataError("no observations: y is empty")
    if t.is_floating_point() or t.is_complex():
        bad = ~torch.isfinite(t)
        if bad.any():
            raise DataError(f"observation {_index(bad)} is {t[bad][0].item()}: y must be finite")
    try:
        torch.broadcast_shapes(tuple(t.shape), tuple(dist.batch_shape) + tuple(dist.event_shape))
    except RuntimeError:
        raise DataError(
            f"observations of shape {tuple(t.shape)} do not broadcast against the forecast's "
            f"batch shape {tuple(dist.batch_shape)}"
        ) from None
    if isinstance(dist, Categorical):
        k = dist.probs.shape[-1]
        bad = (t < 0) | (t >= k) | (t != torch.round(t.to(torch.float64)))
        if bad.any():
            raise DataError(
                f"label {_index(bad)} = {t[bad][0].item():g} is not a class in 0..{k - 1}"
            )
        return t.long()
    ref = _param_tensor(dist)
    if ref is not None:
        t = t.to(dtype=ref.dtype, device=ref.device)
    elif not t.is_floating_point():
        t = t.to(torch.float64)
    support = _static_support(dist)
    if support is not None:
        ok = torch.as_tensor(support.check(t))
        if not ok.all():
            bad = ~ok
            vals = t.expand(bad.shape) if bad.shape != t.shape else t
            raise DataError(
                f"observation {_index(bad)} = {vals[bad][0].item():g} lies outside the support "
                f"of {type(dist).__name__} ({support})"
            )
    return t


def _as_forecast(dist: Any) -> Any:
    """A frozen ``scipy.stats`` distribution as its torch distribution
    (:mod:`likelab.families.scipy_bridge`); anything else unchanged."""
    if isinstance(dist, Distribution) or not type(dist).__module__.startswith("scipy.stats"):
        return dist
    from likelab.families.scipy_bridge import as_forecast

    return as_forecast(dist)


def _param_tensor(dist: Distribution) -> torch.Tensor | None:
    for name in dist.arg_constraints:
        value = getattr(dist, name, None)
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value
    for value in vars(dist).values():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value
    return None


def _static_support(dist: Distribution):
    """The support when it does not depend on the parameters (Uniform's does: f = 0 outside)."""
    cls_attr = None
    for cls in type(dist).__mro__:
        if "support" in vars(cls):
            cls_attr = vars(cls)["support"]
            break
    if isinstance(cls_attr, constraints._DependentProperty):
        return None
    try:
        return dist.support
    except NotImplementedError:
        return None


def _index(mask: torch.Tensor) -> int | tuple[int, ...]:
    idx = tuple(int(i) for i in torch.nonzero(mask)[0])
    return idx[0] if len(idx) == 1 else idx


def local_prob(dist: Distribution, y: torch.Tensor) -> torch.Tensor:
    """f(y): the density or probability the forecast gives the observation."""
    return dist.log_prob(y).exp()
