"""``fit``: batched M-estimation of any family with any objective.

R datasets of n observations are fitted together: the empirical risk of dataset r is
:math:`\\frac1n\\sum_i S(F_{\\theta_r}, y_{ri})`, minimised over the free parameters in the
family's unconstrained coordinates by :func:`~likelab.estimate.newton.newton_minimize` in float64.
Standard errors are sandwich (Godambe) SEs from the objective's own per-observation gradients and
Hessians (:mod:`likelab.estimate.sandwich`), mapped to the natural parameters by the delta method
(exact for the sandwich at a stationary point: it is equivariant under reparametrisation).

Non-smooth objectives get their own treatment. The uniform family under a density-based objective
(its risk is a step function of the ends) is solved exactly by :mod:`likelab.estimate.support`
(the log score's MLE is ``(min y, max y)``); its SEs are NaN with the reason: the model is not
regular. A family with a kinked density (the Laplace) gets the kink's term in the sandwich's bread
(:mod:`likelab.estimate.sandwich`). Every SE that is NaN says why in ``se_reason``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from likelab._threads import on_policy_threads, requested_threads
from likelab.errors import (
    DataError,
    LikelabError,
    ParameterError,
    UnknownNameError,
    UnsupportedError,
    UserContractError,
)
from likelab.estimate import fused, structured, support
from likelab.estimate.moments import local_moments, local_value
from likelab.estimate.newton import CONVERGED, newton_minimize, value_grad_hess
from likelab.estimate.sandwich import sandwich_covariance, sandwich_from_moments
from likelab.estimate.tuning import Tunable, TuningResult, auto_objective, select
from likelab.families import Family, get_family
from likelab.families.derivatives import log_prob_derivatives
from likelab.families.discrete import CategoricalFamily
from likelab.io import as_observations
from likelab.objectives import Objective, get_objective
from likelab.objectives.forms import phi_form

__all__ = ["FitComparison", "FitFailure", "FitResult", "fit", "fit_objectives"]


@dataclass(frozen=True)
class FitResult:
    """The outcome of :func:`fit`, one entry per dataset.

    For data of shape ``(R, n)`` every field is a numpy array of shape ``(R,)`` (a probability
    vector adds a trailing axis of length K). For one dataset of shape ``(n,)`` the fields hold
    plain Python scalars, as :func:`scipy.optimize.minimize`'s result does: ``params[name]``,
    ``se[name]`` and ``value`` are ``float``, ``converged`` is ``bool``, ``n_iter`` is ``int``,
    ``reason`` and ``se_reason`` are ``str`` (a probability vector stays a 1-D array of length
    K).
    """

    family: str
    objective: str
    free: tuple[str, ...]
    params: dict[str, np.ndarray | float]
    se: dict[str, np.ndarray | float]
    value: np.ndarray | float
    converged: np.ndarray | bool
    n_iter: np.ndarray | int
    reason: np.ndarray | str
    n: int
    starts: int = field(default=1)
    #: Why an SE is NaN, per dataset ("" where every SE is valid); shaped like ``reason``.
    se_reason: np.ndarray | str | None = None
    #: How the objective's parameter was chosen from the data (``dpd:beta=auto``), else None.
    tuning: TuningResult | None = None

    @property
    def R(self) -> int:
        """The number of datasets."""
        return int(np.asarray(self.value).size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with stable keys (non-finite floats become ``None``)."""
        return {
            "family": self.family,
            "objective": self.objective,
            "n": self.n,
            "R": self.R,
            "free": list(self.free),
            "params": {k: _json(v) for k, v in self.params.items()},
            "se": {k: _json(v) for k, v in self.se.items()},
            "value": _json(self.value),
            "converged": _json(self.converged),
            "n_iter": _json(self.n_iter),
            "reason": _json(self.reason),
            "se_reason": None if self.se_reason is None else _json(self.se_reason),
            "starts": self.starts,
            "tuning": None if self.tuning is None else self.tuning.to_dict(),
        }


@dataclass(frozen=True)
class FitFailure:
    """An objective that could not be fitted in a comparison (:func:`fit_objectives`), and why:
    ``reason`` is the message of the error that :func:`fit` raised for it alone."""

    objective: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"objective": self.objective, "error": self.reason}


@dataclass(frozen=True)
class FitComparison:
    """Several objectives fitted to the same data (:func:`fit_objectives`): one entry per
    objective, in the order asked, a :class:`FitResult` or a :class:`FitFailure`."""

    family: str
    n: int
    fits: list[FitResult | FitFailure]

    @property
    def failures(self) -> list[FitFailure]:
        """The objectives that could not be fitted."""
        return [f for f in self.fits if isinstance(f, FitFailure)]

    @property
    def unconverged(self) -> list[FitResult]:
        """The fits with at least one dataset that did not converge."""
        return [
            f
            for f in self.fits
            if isinstance(f, FitResult) and not bool(np.all(np.asarray(f.converged)))
        ]

    @property
    def ok(self) -> bool:
        """Whether every objective was fitted and every fit converged."""
        return not self.failures and not self.unconverged

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "n": self.n, "fits": [f.to_dict() for f in self.fits]}


def fit(
    data: Any,
    family: str | Family,
    objective: str | Objective | Callable[..., torch.Tensor] = "log",
    *,
    fixed: Mapping[str, Any] | None = None,
    start: Mapping[str, Any] | None = None,
    multistart: int = 1,
    seed: int = 0,
    max_iter: int = 100,
    se: bool = True,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    max_elements: int = 2**18,
    on_progress: Callable[[int, int], None] | None = None,
    pilot: str | Objective | Mapping[str, Any] | None = None,
    tune_grid: Sequence[float] | None = None,
) -> FitResult:
    """Fit ``family`` to each dataset by minimising ``objective``'s empirical risk.

    ``data`` has shape ``(n,)`` or ``(R, n)``; the R datasets are fitted in one batched
    computation, each with its own convergence test. ``fixed`` holds parameters fixed (in
    addition to those in the family spec); ``start`` gives starting values of free parameters
    (default: the family's quick estimate); ``multistart=K`` adds K - 1 random starts around it
    (seeded by ``seed``) and keeps the best converged fit, for multimodal objectives.
    Non-convergence is reported in ``converged`` and ``reason``, never raised; ``converged`` is
    true only at a verified minimum (reasons ``gtol``, ``ftol``, ``xtol``, ``kink``, ``exact``:
    :mod:`likelab.estimate.newton`). An SE that cannot be given is NaN and ``se_reason`` says why.
    An objective that cannot be fitted at all (``hyvarinen`` on a kinked density, the naive
    ``product``, a user objective that raises on these data) raises a
    :class:`~likelab.errors.LikelabError`; :func:`fit_objectives` compares several objectives
    and keeps such a failure as a row.
    ``on_progress(done, total)`` follows the iterations of the K * R fits
    (:func:`~likelab.estimate.newton.newton_minimize`); the library never prints.

    ``dpd:beta=auto``, ``gamma:gamma=auto`` and ``lq:q=auto`` choose the parameter per dataset
    on the grid ``tune_grid`` by the iterated Warwick-Jones rule, starting from the estimate of
    ``pilot`` (an objective spec, or the free parameters' values as a mapping); defaults and
    formula in :mod:`likelab.estimate.tuning`. The result is the fit at the chosen value, with
    ``tuning`` saying how it was chosen (the MSE curve, the estimates along the grid). A pilot
    that is invalid, incomplete or whose fit does not converge raises a
    :class:`~likelab.errors.ParameterError`.

    One dataset of shape ``(n,)`` gives plain Python scalars (see :class:`FitResult`):

    >>> import numpy as np
    >>> y = np.array([0.1, -0.3, 0.5, 1.2, 0.7])
    >>> res = fit(y, "normal")
    >>> type(res.params["loc"]).__name__, bool(np.isclose(res.params["loc"], y.mean()))
    ('float', True)
    >>> res.converged
    True
    """
    prep = _prepare(data, family, fixed, multistart, max_iter, seed, dtype, device)
    tun = auto_objective(objective)
    if tun is None:
        _no_tuning_options(pilot, tune_grid)
        return _fit_prepared(
            prep, get_objective(objective), start, multistart, seed, max_iter, se, dtype,
            max_elements, on_progress,
        )  # fmt: skip
    grid, pilot_ = _tuning_inputs(prep, tun, pilot, tune_grid, se, dtype)

    def fit_one(obj: Objective, with_se: bool) -> FitResult:
        many = _Prepared(prep.fam, prep.y, False)
        return _fit_prepared(
            many, obj, start, multistart, seed, max_iter, with_se, dtype, max_elements, None
        )

    return _fit_auto(prep, tun, grid, pilot_, fit_one, on_progress)


def fit_objectives(
    data: Any,
    family: str | Family,
    objectives: Sequence[str | Objective | Callable[..., torch.Tensor]],
    *,
    fixed: Mapping[str, Any] | None = None,
    start: Mapping[str, Any] | None = None,
    multistart: int = 1,
    seed: int = 0,
    max_iter: int = 100,
    se: bool = True,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    max_elements: int = 2**18,
    on_progress: Callable[[float, int], None] | None = None,
    pilot: str | Objective | Mapping[str, Any] | None = None,
    tune_grid: Sequence[float] | None = None,
) -> FitComparison:
    """Fit ``family`` to the same data with each objective: a comparison that always finishes.

    Everything the objectives share is checked first and raises as in :func:`fit` (an unknown
    objective or family, bad data, a bad option). Then each objective is fitted in turn; one that
    cannot be fitted (:func:`fit` raises a :class:`~likelab.errors.LikelabError` for it alone:
    ``hyvarinen`` on a Laplace model, the naive ``product``, a user objective that raises on
    these data) becomes a :class:`FitFailure` with its reason, and the others still run. A user
    objective that breaks its contract on likelab's probe, whatever the data
    (:class:`~likelab.errors.UserContractError`: it always raises, or returns a mean), is bad
    input and raises, as it does for a study. A fit that did not
    converge is a :class:`FitResult` with ``converged`` false and its ``reason``, as always.
    ``on_progress(done, total)`` counts objectives (``total`` = their number; ``done`` grows by
    fractions while one is fitted). ``pilot`` and ``tune_grid`` apply to every objective whose
    parameter is chosen from the data (``dpd:beta=auto``; see :func:`fit`); they are checked
    first, and a pilot fit that fails makes that objective a :class:`FitFailure`.

    >>> import numpy as np
    >>> y = np.random.default_rng(0).laplace(size=50)
    >>> cmp = fit_objectives(y, "laplace", ["log", "hyvarinen"])
    >>> [type(f).__name__ for f in cmp.fits], cmp.ok
    (['FitResult', 'FitFailure'], False)
    """
    if isinstance(objectives, str | Objective) or callable(objectives):
        objectives = [objectives]
    tuns = [auto_objective(o) for o in objectives]
    objs = [get_objective(o) if t is None else t for o, t in zip(objectives, tuns, strict=True)]
    if not objs:
        raise ParameterError("no objectives given; name at least one, e.g. ['log']")
    prep = _prepare(data, family, fixed, multistart, max_iter, seed, dtype, device)
    if not any(tuns):
        _no_tuning_options(pilot, tune_grid)
    tuning = {t.spec: _tuning_inputs(prep, t, pilot, tune_grid, se, dtype) for t in tuns if t}
    many = _Prepared(prep.fam, prep.y, False)

    def fit_one(obj: Objective, with_se: bool) -> FitResult:
        return _fit_prepared(
            many, obj, start, multistart, seed, max_iter, with_se, dtype, max_elements, None
        )

    total = len(objs)
    fits: list[FitResult | FitFailure] = []
    for i, obj in enumerate(objs):
        inner = None
        if on_progress is not None:
            on_progress(i, total)

            def inner(done: int, of: int, i: int = i) -> None:
                on_progress(i + done / max(of, 1), total)

        try:
            if isinstance(obj, Tunable):
                fits.append(_fit_auto(prep, obj, *tuning[obj.spec], fit_one, inner))
            else:
                fits.append(_fit_prepared(
                    prep, obj, start, multistart, seed, max_iter, se, dtype, max_elements, inner
                ))  # fmt: skip
        except UserContractError:  # broken whatever the data (likelab's probe): bad input
            raise
        except LikelabError as exc:  # this objective alone; anything else is a bug and raises
            fits.append(FitFailure(obj.spec, " ".join(str(exc).split())))
    if on_progress is not None:
        on_progress(total, total)
    return FitComparison(family=prep.fam.spec, n=prep.y.shape[1], fits=fits)


@dataclass
class _Prepared:
    """What every objective's fit shares: the family, the data as ``(R, n)``, whether it was one
    1-D dataset."""

    fam: Family
    y: torch.Tensor
    one: bool


def _prepare(data, family, fixed, multistart, max_iter, seed, dtype, device) -> _Prepared:
    fam = get_family(family, **dict(fixed or {}))
    if not fam.free:
        raise ParameterError(f"every parameter of {fam.spec!r} is fixed: nothing to fit")
    if isinstance(multistart, bool) or not isinstance(multistart, int) or multistart < 1:
        raise ParameterError(f"multistart must be an integer >= 1, got {multistart!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise ParameterError(f"max_iter must be an integer >= 0, got {max_iter!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ParameterError(f"dtype must be a floating torch dtype (float64), got {dtype!r}")
    y, one = _check_data(fam, data, dtype, device)
    requested_threads()  # a bad LIKELAB_THREADS or LIKELAB_FUSED is bad input for every
    fused.fused_mode()  # objective, not a failure of one
    if isinstance(fam, CategoricalFamily):
        if fam.num_classes is None:
            fam = type(fam)(num_classes=max(2, int(y.max().item()) + 1), **fam.fixed)
        y = y.long()
    p = fam.n_free
    if y.shape[1] < p:
        raise DataError(
            f"{y.shape[1]} observations per dataset cannot identify {p} free parameters of "
            f"{fam.spec!r}"
        )
    return _Prepared(fam, y, one)


@on_policy_threads(lambda prep, *args: prep.y.shape[1])  # the idle cores (likelab._threads)
def _fit_prepared(
    prep: _Prepared,
    obj: Objective,
    start,
    multistart: int,
    seed: int,
    max_iter: int,
    se: bool,
    dtype: torch.dtype,
    max_elements: int,
    on_progress,
) -> FitResult:
    fam, y, one = prep.fam, prep.y, prep.one
    if obj.batch_level:
        raise UnsupportedError(
            f"objective {obj.name!r} cannot be fitted: the naive product of likelihoods "
            "underflows to 0 for all but tiny samples, and its gradient with it; use 'log', "
            "which has the same minimiser and is computed as a sum of logs"
        )
    r, n = y.shape

    if support.applies(fam, obj):
        result = _fit_support(fam, obj, y, one, start, multistart)
        if on_progress is not None:
            on_progress(1, 1)
        return result

    u0 = _starts(fam, y, start, multistart, seed, dtype)  # (K * R, p)
    rows = torch.arange(r, device=y.device).repeat(multistart)

    closed = _closed_form(fam, obj, y[:1, : min(n, 4)])
    phi = (phi_form(obj) or obj.phi) if closed else None
    # a non-local built-in rule with closed-form derivatives (estimate.structured), else None
    plan = None if closed else structured.plan(fam, obj, y[:1, : min(n, 4)])
    affine = plan is not None and plan.affine is not None
    # one decision for the whole problem: the fused kernel (likelab.estimate.fused) needs no
    # per-observation intermediates in memory, so its chunks can be larger
    local = phi if closed else (plan.affine.psi if affine else None)
    fast = local is not None and fused.use_fused(fam, local, y)
    if plan is not None:
        plan = dataclasses.replace(plan, fused=fast)
    chunk = max(1, (max_elements * (16 if fast else 1)) // n)

    def risk_chunk(uu: torch.Tensor, ii: torch.Tensor) -> torch.Tensor:
        if fast and closed:  # the kernel gathers the rows as it reads them
            return local_value(fam, fam.to_natural(uu), y, phi, fused=True, rows=rows[ii])
        if fast and affine:
            return plan.value(uu, y, rows[ii])
        if plan is not None and plan.has_value:
            return plan.value(uu, y[rows[ii]])
        return obj.risk(_dist(fam, fam.to_natural(uu), 1), y[rows[ii]], validate=False)

    def risk(u: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return _chunked(risk_chunk, u, idx, chunk)

    def one_chunk(u: torch.Tensor, idx: torch.Tensor):
        if closed:
            if fast:
                return _risk_derivatives(fam, phi, u, y, True, rows[idx])
            return _risk_derivatives(fam, phi, u, y[rows[idx]], False)
        if plan is not None:
            if fast:
                return plan.derivatives(u, y, rows[idx])
            return plan.derivatives(u, y[rows[idx]])
        return value_grad_hess(risk, u, idx)  # autograd, one bounded graph per chunk

    def derivs(u: torch.Tensor, idx: torch.Tensor):
        parts = [
            one_chunk(u[i : i + chunk], idx[i : i + chunk]) for i in range(0, u.shape[0], chunk)
        ]
        return tuple(torch.cat(t) for t in zip(*parts, strict=True))

    res = newton_minimize(
        risk,
        u0,
        max_iter=max_iter,
        derivatives=derivs,
        on_progress=on_progress,
    )
    best = _best_start(res.value, res.converged.to(res.value.device), multistart, r)
    pick = best * r + torch.arange(r, device=y.device)
    u = res.u[pick]
    natural = {k: v.detach() for k, v in fam.to_natural(u).items()}
    kinked = bool(fam.kinks(fam.to_natural(u[:1])))
    if not se:
        errors = {k: torch.full_like(v, math.nan) for k, v in natural.items()}
    elif closed and not kinked:
        errors = _closed_form_standard_errors(fam, phi, u, y, chunk, fast)
    elif plan is not None and not kinked:
        errors = structured.standard_errors(plan, u, y, chunk)
    else:
        errors = _standard_errors(fam, obj, u, y, natural, max_elements)
    reasons = np.asarray(res.reason, dtype=object)[pick.cpu().numpy()]
    converged = res.converged[pick.cpu()]
    errors, se_reason = _se_reasons(errors, converged, se, fam, obj)

    def out(t: torch.Tensor | np.ndarray):
        a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        return _single(a) if one else a

    return FitResult(
        family=fam.spec,
        objective=obj.spec,
        free=fam.free,
        params={k: out(v.to(torch.float64)) for k, v in natural.items()},
        se={k: out(v.to(torch.float64)) for k, v in errors.items()},
        value=out(res.value[pick].to(torch.float64)),
        converged=out(converged),
        n_iter=out(res.n_iter[pick]),
        reason=out(reasons),
        n=n,
        starts=multistart,
        se_reason=out(se_reason),
    )


def _single(a: np.ndarray) -> Any:
    """The entry of one dataset: a Python scalar (``float``, ``bool``, ``int``, ``str``), or a
    1-D array for a probability vector."""
    a = a[0:1].reshape(a.shape[1:])  # an array even for an object array's entry
    return a.item() if a.ndim == 0 else a


def _se_reasons(errors, converged: torch.Tensor, se: bool, fam: Family, obj: Objective):
    """NaN every SE of a fit that did not converge, and say per dataset why an SE is NaN."""
    conv = converged.cpu().numpy().astype(bool).reshape(-1)
    cols = [v.reshape(v.shape[0], -1) for v in errors.values()]
    finite = torch.cat(cols, -1).isfinite().all(-1).cpu().numpy().reshape(-1)
    why = np.full(conv.shape, "", dtype=object)
    if not se:
        why[:] = "not computed (se=False)"
        return errors, why
    why[~finite] = (
        "the sandwich's bread (the derivative of the expected estimating function) is singular "
        "or not finite at the estimate: the parameters are not identified there"
    )
    why[~conv] = "the fit did not converge: no SE at a point that is not a verified minimum"
    mask = torch.as_tensor(~conv, device=next(iter(errors.values())).device)
    errors = {
        k: torch.where(mask.reshape(-1, *([1] * (v.dim() - 1))), torch.nan, v)
        for k, v in errors.items()
    }
    return errors, why


def _fit_support(fam: Family, obj: Objective, y: torch.Tensor, one: bool, start, multistart):
    """The exact uniform fit (:mod:`likelab.estimate.support`): no iterations, no SEs."""
    if start:  # an exact solver needs no start, but a wrong name is still an error
        for key in start:
            if key not in fam.free:
                raise UnknownNameError(
                    f"start value for {key!r}, which is not a free parameter of {fam.spec!r} "
                    f"(free: {', '.join(fam.free)})"
                )
    params, value, reason = support.fit_uniform(fam, obj, y)
    reasons = np.asarray(reason, dtype=object)
    converged = np.isin(reasons, list(CONVERGED))
    why = np.full(reasons.shape, "", dtype=object)
    why[:] = (
        f"non-regular model: the support of {fam.name!r} moves with its parameters, so under a "
        "density-based objective the estimate is not asymptotically normal at rate √n (its error "
        "is O(1/n)) and the sandwich does not apply"
    )

    def out(a: np.ndarray):
        return _single(a) if one else a

    nat = {k: v.detach().to(torch.float64).cpu().numpy() for k, v in params.items()}
    return FitResult(
        family=fam.spec,
        objective=obj.spec,
        free=fam.free,
        params={k: out(v) for k, v in nat.items()},
        se={k: out(np.full_like(v, np.nan)) for k, v in nat.items()},
        value=out(value.detach().to(torch.float64).cpu().numpy()),
        converged=out(converged),
        n_iter=out(np.zeros(reasons.shape, dtype=np.int64)),
        reason=out(reasons),
        n=y.shape[1],
        starts=multistart,
        se_reason=out(why),
    )


# ---------------------------------------------------------------------- tuning
def _no_tuning_options(pilot: Any, tune_grid: Any) -> None:
    """``pilot=`` and ``tune_grid=`` without an ``=auto`` objective: a mistake, not a no-op."""
    if pilot is not None or tune_grid is not None:
        given = " and ".join(
            k for k, v in (("pilot", pilot), ("tune_grid", tune_grid)) if v is not None
        )
        raise ParameterError(
            f"{given} {'apply' if ' and ' in given else 'applies'} only to an objective whose "
            "parameter is chosen from the data (dpd:beta=auto, gamma:gamma=auto or lq:q=auto), "
            "and none was given"
        )


def _tuning_inputs(
    prep: _Prepared, tun: Tunable, pilot: Any, tune_grid: Any, se: bool, dtype: torch.dtype
) -> tuple[tuple[float, ...], Objective | dict[str, np.ndarray]]:
    """The checked grid and pilot of ``tun``: the pilot as an :class:`Objective` to fit, or as
    values of every free parameter, shape ``(R, ...)``. A :class:`ParameterError` names what is
    wrong: an invalid or ``auto`` pilot spec, a missing, unknown or non-finite value."""
    if not se:
        raise ParameterError(
            f"{tun.spec} chooses {tun.parameter} from the sandwich SEs; drop se=False"
        )
    grid = tun.check_grid(tune_grid)
    fam, r = prep.fam, prep.y.shape[0]
    if pilot is None:
        pilot = tun.pilot
    if isinstance(pilot, Mapping):
        missing = [k for k in fam.free if k not in pilot]
        unknown = [k for k in pilot if k not in fam.free]
        if unknown or missing:
            what = (
                f"has no free parameter {', '.join(map(repr, unknown))}"
                if unknown
                else f"is missing {', '.join(map(repr, missing))}"
            )
            raise ParameterError(
                f"pilot values for {tun.spec} {what}: give every free parameter of "
                f"{fam.spec!r} ({', '.join(fam.free)})"
            )
        values = {}
        for name in fam.free:
            try:
                v = fam._check_param(name, pilot[name], dtype=torch.float64)
            except LikelabError as exc:
                raise ParameterError(f"pilot value for {tun.spec}: {exc}") from None
            vector = fam.param(name).domain == "simplex"  # one probability vector per dataset
            if v.dim() == vector:
                v = v.expand(r, *v.shape)
            elif v.dim() != 1 + vector or v.shape[0] != r:
                raise ParameterError(
                    f"pilot value for {name!r} has shape {tuple(v.shape)}; give one value for "
                    f"every dataset or one per dataset ({r})"
                )
            values[name] = v.cpu().numpy().copy()
        return grid, values
    if isinstance(pilot, str) and auto_objective(pilot) is not None:
        raise ParameterError(
            f"the pilot of {tun.spec} must be a fixed objective (e.g. {tun.pilot}) or parameter "
            f"values, not {pilot.strip()!r}"
        )
    if not isinstance(pilot, str | Objective) and not callable(pilot):
        raise ParameterError(
            f"pilot must be an objective spec (e.g. {tun.pilot!r}) or a mapping of the free "
            f"parameters' values, got {type(pilot).__name__}"
        )
    try:
        return grid, get_objective(pilot)
    except LikelabError as exc:
        raise ParameterError(f"pilot of {tun.spec}: {exc}") from None


def _flat(params: Mapping[str, Any], free: Sequence[str], r: int) -> np.ndarray:
    """The free parameters of R datasets as one ``(R, P)`` float array."""
    return np.concatenate(
        [np.asarray(params[k], dtype=np.float64).reshape(r, -1) for k in free], axis=-1
    )


def _fit_auto(
    prep: _Prepared,
    tun: Tunable,
    grid: tuple[float, ...],
    pilot: Objective | dict[str, np.ndarray],
    fit_one: Callable[[Objective, bool], FitResult],
    on_progress: Callable[[int, int], None] | None,
) -> FitResult:
    """Fit ``tun`` at every grid value (each over all R datasets at once), choose per dataset by
    the iterated Warwick-Jones rule (:func:`likelab.estimate.tuning.select`) and return the fit
    at the chosen value, with its :class:`TuningResult`."""
    fam, r = prep.fam, prep.y.shape[0]
    total = len(grid) + isinstance(pilot, Objective)
    if isinstance(pilot, Objective):
        try:
            res = fit_one(pilot, False)
        except LikelabError as exc:
            raise ParameterError(
                f"the pilot {pilot.spec!r} of {tun.spec} cannot be fitted: {exc}"
            ) from None
        bad = ~np.asarray(res.converged, bool) | ~np.isfinite(_flat(res.params, fam.free, r)).all(1)
        if bad.any():
            where = (
                "" if r == 1 else f" on dataset(s) {', '.join(map(str, np.flatnonzero(bad)[:5]))}"
            )
            raise ParameterError(
                f"the pilot fit {pilot.spec!r} of {tun.spec} did not converge{where} (stop: "
                f"{np.asarray(res.reason)[bad][0]}); give another pilot: an objective spec or "
                "the free parameters' values"
            )
        label, pilot_params = pilot.spec, {k: np.asarray(res.params[k]) for k in fam.free}
        if on_progress is not None:
            on_progress(1, total)
    else:
        label, pilot_params = "given values", pilot
    fits = []
    for b in grid:
        fits.append(fit_one(tun.at(b), True))
        if on_progress is not None:
            on_progress(total - len(grid) + len(fits), total)

    def along(get: Callable[[FitResult], Any]) -> np.ndarray:  # (R, G, ...) from G fits
        return np.moveaxis(np.stack([np.asarray(get(f)) for f in fits]), 0, 1)

    theta = np.stack([_flat(f.params, fam.free, r) for f in fits], axis=1)  # (R, G, P)
    se = np.stack([_flat(f.se, fam.free, r) for f in fits], axis=1)
    converged = along(lambda f: f.converged).astype(bool)
    finite_se, finite_est = np.isfinite(se).all(-1), np.isfinite(theta).all(-1)
    excluded = np.full(converged.shape, "", dtype=object)
    se_reasons = along(lambda f: f.se_reason)[~finite_se]
    excluded[~finite_se] = [f"no finite SE: {w}" for w in se_reasons]
    excluded[~finite_est] = "the estimate is not finite"
    stops = along(lambda f: f.reason)[~converged]
    excluded[~converged] = [f"the fit did not converge ({w})" for w in stops]
    variance = (se**2).sum(-1)
    chosen, mse, iterations, settled, previous = select(
        theta, variance, excluded == "", _flat(pilot_params, fam.free, r)
    )
    g = np.asarray(grid)
    why = np.full(r, "", dtype=object)
    for i in np.flatnonzero(~settled):
        why[i] = (
            f"undetermined: no usable value of {tun.parameter} on the grid (no fit converged "
            "to a finite estimate with finite SEs; see excluded)"
            if chosen[i] < 0
            else f"did not settle in {iterations[i]} passes: the choice moved between "
            f"{tun.parameter} = {g[previous[i]]:g} and {g[chosen[i]]:g}"
        )
    none, rows, at = chosen < 0, np.arange(r), np.maximum(chosen, 0)

    def pick(a: np.ndarray, empty: Any) -> np.ndarray:  # each dataset's entry at its choice
        a = a[rows, at].copy()
        a[none] = empty
        return a

    def out(a: Any) -> Any:  # one dataset (n,): its entry, as fit gives it
        return _single(np.asarray(a)) if prep.one else a

    def per_grid(a: np.ndarray) -> np.ndarray:
        return a[0] if prep.one else a

    path = {k: along(lambda f, k=k: f.params[k]).astype(np.float64) for k in fits[0].params}
    tuning = TuningResult(
        parameter=tun.parameter,
        objective=tun.spec,
        grid=tuple(float(b) for b in grid),
        chosen=out(np.where(none, np.nan, g[at])),
        mse=per_grid(mse),
        variance=per_grid(variance),
        path={k: per_grid(v) for k, v in path.items()},
        excluded=per_grid(excluded),
        pilot=label,
        pilot_params={k: out(np.asarray(v)) for k, v in pilot_params.items()},
        iterations=out(iterations),
        settled=out(settled),
        reason=out(why),
    )
    se_reason = pick(along(lambda f: f.se_reason), "")
    se_reason[none] = why[none]
    return FitResult(
        family=fits[0].family,
        objective=tun.spec,
        free=fits[0].free,
        params={k: out(pick(v, np.nan)) for k, v in path.items()},
        se={k: out(pick(along(lambda f, k=k: f.se[k]).astype(np.float64), np.nan)) for k in path},
        value=out(pick(along(lambda f: f.value), np.nan)),
        converged=out(pick(converged, False)),
        n_iter=out(pick(along(lambda f: f.n_iter), 0)),
        reason=out(pick(along(lambda f: f.reason), "undetermined")),
        n=fits[0].n,
        starts=fits[0].starts,
        se_reason=out(se_reason),
        tuning=tuning,
    )


# ---------------------------------------------------------------------- pieces
def _check_data(fam: Family, data: Any, dtype: torch.dtype, device) -> tuple[torch.Tensor, bool]:
    """Data as an ``(R, n)`` tensor (and whether it was one 1-D dataset)."""
    arr = as_observations(data)
    if arr.ndim not in (1, 2):
        raise DataError(
            f"data must have shape (n,) or (R, n) (R datasets of n observations), got shape "
            f"{arr.shape}"
        )
    if arr.size == 0:
        raise DataError(f"no observations: data of shape {arr.shape} is empty")
    fam.check_data(arr)  # NaN, inf, support: names the first bad index
    one = arr.ndim == 1
    t = torch.as_tensor(arr.reshape(1, -1) if one else arr, dtype=dtype, device=device)
    return t, one


def _dist(fam: Family, params: Mapping[str, torch.Tensor], obs_axes: int):
    """The family at batched parameters, with ``obs_axes`` trailing axes for observations."""
    shaped = {}
    for name, v in params.items():
        if fam.param(name).domain == "simplex":
            shaped[name] = v.reshape(*v.shape[:-1], *([1] * obs_axes), v.shape[-1])
        else:
            shaped[name] = v.reshape(*v.shape, *([1] * obs_axes))
    return fam.distribution_unchecked(shaped)


def _chunked(fun, u: torch.Tensor, idx: torch.Tensor, chunk: int) -> torch.Tensor:
    """``fun(u, idx)`` over chunks of at most ``chunk`` rows (rows are independent)."""
    if u.shape[0] <= chunk:
        return fun(u, idx)
    return torch.cat(
        [fun(u[i : i + chunk], idx[i : i + chunk]) for i in range(0, u.shape[0], chunk)]
    )


def _starts(
    fam: Family,
    y: torch.Tensor,
    start: Mapping[str, Any] | None,
    k: int,
    seed: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """``(K * R, p)`` unconstrained starting points: the base start, then K - 1 perturbations.

    Perturbations are Gaussian in unconstrained coordinates: standard deviation 1 for log- and
    logit-scale coordinates (a factor e), the dataset's standard deviation for real-valued ones
    (locations). Drawn with ``numpy.random.default_rng(seed)``: the same seed, the same starts.
    """
    base = fam.start(y)
    if start:
        for key, value in start.items():
            if key not in fam.free:
                raise UnknownNameError(
                    f"start value for {key!r}, which is not a free parameter of {fam.spec!r} "
                    f"(free: {', '.join(fam.free)})"
                )
            v = fam._check_param(key, value, dtype=dtype).to(y.device)
            try:
                base[key] = torch.broadcast_to(v, base[key].shape).clone()
            except RuntimeError:
                raise ParameterError(
                    f"start value for {key!r} has shape {tuple(v.shape)}; give a scalar or one "
                    f"value per dataset, shape {tuple(base[key].shape)}"
                ) from None
    u = fam.to_unconstrained(base).to(dtype=dtype, device=y.device)
    u = u.expand(y.shape[0], u.shape[-1]) if u.dim() == 1 else u
    if k == 1:
        return u.clone()
    spread = y.to(dtype).std(dim=-1, correction=0) if y.shape[-1] > 1 else None
    if spread is None:
        spread = torch.ones(y.shape[0], dtype=dtype, device=y.device)
    spread = torch.where(torch.isfinite(spread) & (spread > 0), spread, torch.ones_like(spread))
    scales = []
    for name in fam.free:
        domain = fam.param(name).domain
        width = u.shape[-1] - (len(fam.free) - 1) if domain == "simplex" else 1
        col = spread if domain == "real" else torch.ones_like(spread)
        scales += [col] * width
    scale = torch.stack(scales, dim=-1).to(dtype=dtype)  # (R, p)
    noise = np.random.default_rng(seed).standard_normal((k - 1, *u.shape))
    extra = u + torch.as_tensor(noise, dtype=dtype, device=y.device) * scale
    return torch.cat([u.unsqueeze(0), extra]).reshape(k * u.shape[0], u.shape[-1])


def _best_start(value: torch.Tensor, converged: torch.Tensor, k: int, r: int) -> torch.Tensor:
    """Index in ``0..K-1`` of each dataset's best start: lowest converged value, else lowest
    finite value, else the first."""
    v = value.reshape(k, r)
    c = converged.reshape(k, r)
    inf = torch.full_like(v, math.inf)
    primary = torch.where(c & torch.isfinite(v), v, inf)
    secondary = torch.where(torch.isfinite(v), v, inf)
    choose = torch.where(
        torch.isfinite(primary.min(0).values), primary.argmin(0), secondary.argmin(0)
    )
    return choose


def _closed_form(fam: Family, obj: Objective, y_probe: torch.Tensor) -> bool:
    """Whether closed-form derivatives apply: a local rule S = φ(log f), a family with
    registered log-density derivatives and elementwise maps to unconstrained coordinates."""
    if obj.phi_fn is None or any(fam.param(n).domain == "simplex" for n in fam.free):
        return False
    if type(fam).to_natural is not Family.to_natural:  # e.g. uniform's coupled (low, high)
        return False
    probe = fam.start(y_probe.to(torch.float64))
    dist = _dist(fam, probe, 1)
    return log_prob_derivatives(dist, y_probe) is not None


def _risk_derivatives(
    fam: Family, phi, u: torch.Tensor, y: torch.Tensor, fast: bool, rows: torch.Tensor | None = None
):
    """Risk, gradient and Hessian in unconstrained coordinates, in closed form (chain rule)."""
    natural = fam.to_natural(u)
    m = local_moments(fam, natural, y, phi, fused=fast, rows=rows)
    g_u, h_u = structured.to_unconstrained(fam, natural, m.grad, m.hess)
    return m.value, g_u, h_u


def _closed_form_standard_errors(
    fam: Family, phi, u: torch.Tensor, y: torch.Tensor, chunk: int, fast: bool
) -> dict[str, torch.Tensor]:
    """Sandwich SEs H^-1 J H^-1 / n in the natural parameters from closed-form derivatives."""
    n = y.shape[1]
    covs = []
    for i in range(0, u.shape[0], chunk):
        natural = fam.to_natural(u[i : i + chunk])
        m = local_moments(fam, natural, y[i : i + chunk], phi, outer=True, fused=fast)
        covs.append(sandwich_from_moments(m.hess, m.outer[:, 1:, 1:], n))
    var = torch.diagonal(torch.cat(covs), dim1=-2, dim2=-1)
    sd = var.clamp(min=0).sqrt().where(torch.isfinite(var), var)
    return {name: sd[:, j] for j, name in enumerate(fam.free)}


def _standard_errors(
    fam: Family,
    obj: Objective,
    u: torch.Tensor,
    y: torch.Tensor,
    natural: Mapping[str, torch.Tensor],
    max_elements: int,
) -> dict[str, torch.Tensor]:
    """Sandwich SEs of the natural free parameters (delta method from unconstrained ones)."""
    r, n = y.shape
    chunk = max(1, max_elements // n)
    covs = []
    for i in range(0, r, chunk):
        yc = y[i : i + chunk]

        def losses(per_obs: torch.Tensor, yc=yc) -> torch.Tensor:
            return obj.loss(_dist(fam, fam.to_natural(per_obs), 0), yc, validate=False)

        extra = _kink_bread(fam, obj, u[i : i + chunk])
        covs.append(sandwich_covariance(losses, u[i : i + chunk], n, h_extra=extra))
    cov_u = torch.cat(covs)  # (R, p, p)
    with torch.enable_grad():
        uu = u.detach().requires_grad_(True)
        nat = fam.to_natural(uu)
        out: dict[str, torch.Tensor] = {}
        for name, value in nat.items():
            flat = value.reshape(r, -1)
            cols = []
            for c in range(flat.shape[-1]):
                (jac,) = torch.autograd.grad(flat[:, c].sum(), uu, retain_graph=True)
                var = torch.einsum("bi,bij,bj->b", jac, cov_u, jac)
                cols.append(var.clamp(min=0).sqrt().where(torch.isfinite(var), var))
            out[name] = torch.stack(cols, -1).reshape(natural[name].shape)
    return out


def _kink_bread(fam: Family, obj: Objective, u: torch.Tensor) -> torch.Tensor | None:
    """The kink term of the bread in unconstrained coordinates, ``(B, p, p)``, or ``None``.

    ``g(κ) [ψ(κ⁻) - ψ(κ⁺)] ∇_u κᵀ`` summed over the family's kinks (:meth:`Family.kinks`), with
    ψ the per-observation gradient of the objective's loss (one-sided limits taken at
    ``κ ∓ ε``, ``ε = 10⁻⁷ / g(κ)`` in the density's own length scale) and ``g`` the density of
    the data at the kink, taken from the fitted model: a model-based plug-in, like the Fisher
    information. (A kernel estimate of g would stay consistent under misspecification but is
    noisy and biased at the Laplace's peak; Koenker 2005, sec. 3.4.) For the log score this
    makes the Laplace location's bread 1/b², its Fisher information.
    """
    b, p = u.shape
    with torch.enable_grad():
        uu = u.detach().requires_grad_(True)
        kinks = fam.kinks(fam.to_natural(uu))
        if not kinks:
            return None
        total = u.new_zeros(b, p, p)
        nat = {k: v.detach() for k, v in fam.to_natural(u.detach()).items()}
        for kappa in kinks:
            (dk,) = torch.autograd.grad(kappa.sum(), uu, retain_graph=True, allow_unused=True)
            if dk is None:
                continue
            kap = kappa.detach().reshape(b)
            dens = _dist(fam, nat, 0).log_prob(kap).exp()
            eps = torch.maximum(1e-7 / dens, 1e-12 * (1.0 + kap.abs()))
            y2 = torch.stack([kap - eps, kap + eps], -1)  # (B, 2)
            per = uu.detach()[:, None, :].expand(b, 2, p).clone().requires_grad_(True)
            loss = obj.loss(_dist(fam, fam.to_natural(per), 0), y2, validate=False)
            (psi,) = torch.autograd.grad(loss.sum(), per)
            jump = psi[:, 0] - psi[:, 1]
            total = total + dens[:, None, None] * jump[:, :, None] * dk[:, None, :]
    return total.detach()


def _json(a: Any) -> Any:
    a = np.asarray(a)
    if a.dtype.kind in "OUSb" or np.issubdtype(a.dtype, np.integer):  # text, flags, counts
        return a.tolist()
    flat = [None if not math.isfinite(x) else float(x) for x in a.reshape(-1).tolist()]
    if a.ndim == 0:
        return flat[0]
    return np.array(flat, dtype=object).reshape(a.shape).tolist()
