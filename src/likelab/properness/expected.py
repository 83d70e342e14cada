r"""Expected scores :math:`\bar S(Q; P) = E_{Y \sim P}\, S(Q, Y)` by deterministic quadrature.

The expected score of a forecast Q under a true distribution P is the quantity whose minimiser
decides properness (Gneiting & Raftery 2007, JASA 102:359-378, eq. 1-2): S is proper if
:math:`\bar S(P; P) \le \bar S(Q; P)` for all Q. :func:`expected_score` computes it for any
objective of the registry, built in or the user's, without Monte Carlo noise:

- **P continuous**: :math:`\int p(y) S(Q, y)\,dy` with the piecewise double-exponential rule of
  :mod:`likelab.families.quadrature` (exp-sinh on half-lines, tanh-sinh on finite pieces,
  Gauss-Legendre panels in the transformed variable). The line is cut at P's centre and at the
  points where the integrand may have a kink or a jump: every ``loc`` of the forecast (Laplace's
  kink) and every finite end of its support (a uniform forecast's edges). These cuts follow the
  forecast's parameters *with their gradients*, so the derivative of the rule is the derivative
  of the integral even where :math:`S(Q_\theta, y)` jumps at a point that moves with θ
  (Leibniz's rule, done by autograd). A mixture P (contamination) is integrated component by
  component, :math:`\sum_j w_j \int p_j S`; an atom (a
  :class:`~likelab.families.mixture.PointMass` component, e.g. ``0.9 normal:loc=0,scale=1 + 0.1
  point:at=8``) is not integrated but added exactly, :math:`w_j S(Q, x_j)`, with its
  derivatives. One blind spot: at a parameter value where a moving cut falls exactly on a kink
  of P (a Laplace truth's location), second derivatives are those of one side only (the first
  are exact); a Newton step there is merely less well scaled.
- **P discrete**: :math:`\sum_y p(y) S(Q, y)` over the whole support when it is small, otherwise
  over a window :math:`\mu \pm (12\sigma + 20)` widened until the mass left out is below
  ``1e-14``.

The rule is refined (1, 2, 4, 8, 16 panels of 256 nodes per piece) until two successive results
agree to ``rtol`` (default ``1e-10``) relative to :math:`\int p\,|S|`, the scale of the integral,
so that an expected score near 0 is not asked for a relative precision it cannot have. Where the
integrand has not decayed at the outermost nodes (above ``1e-6`` of :math:`\int p|S|`) the
integral diverges, or is too close to diverging to be resolved, and the result is ``±inf`` by the
sign of the tail: e.g. the log score of a normal forecast under a Cauchy truth.

The first two rules are applied in one pass of the score (their nodes together), and a rule's
nodes and weights, which depend on the truth and the forecast's cuts alone, are kept for reuse
when no gradient flows through them: every objective scored on the same truth and forecasts
integrates on the same nodes, built once.
"""

from __future__ import annotations

import copy
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch.distributions import Distribution

from likelab.errors import ParameterError, UnsupportedError
from likelab.families.dgp import DataGeneratingProcess
from likelab.families.mixture import Mixture, PointMass, masked_log_prob, support_bounds
from likelab.families.quadrature import centre_scale, dtype_device, piece_nodes
from likelab.objectives import Objective, get_objective

__all__ = ["ExpectedScore", "expected_score", "expected_score_details"]

_N_PANEL = 256
_PANEL_LEVELS = (1, 2, 4, 8, 16)
_RTOL = 1e-10
_DIVERGENCE_RTOL = 1e-6
_DISCRETE_MASS_TOL = 1e-14
_DISCRETE_MAX_TERMS = 2**22
_LOG_TINY = math.log(torch.finfo(torch.float64).tiny)  # weights below this are 0
_PEAK_CUTS = (-8.0, -1.0, 1.0, 8.0)  # extra cuts at loc + k * scale of a forecast


def expected_score(
    objective: str | Objective | Callable[..., torch.Tensor],
    truth: Distribution | DataGeneratingProcess,
    forecast: Distribution,
    *,
    rtol: float | None = None,
    panels: int | None = None,
) -> torch.Tensor:
    r""":math:`E_{Y \sim P} S(Q, Y)` for a single truth P and a batch of forecasts Q.

    ``truth`` is a torch distribution with an empty batch shape (or a data-generating process
    such as ``parse_dgp("0.9 normal:loc=0,scale=1 + 0.1 normal:loc=8,scale=1")``), ``forecast``
    any batched univariate torch distribution. The result has the forecast's batch shape, dtype
    and device and is differentiable with respect to the forecast's parameters. ``panels`` fixes
    the rule (that many panels of 256 nodes per piece) instead of refining it to ``rtol``.
    Method and accuracy: see :mod:`likelab.properness.expected`.

    >>> import torch
    >>> from torch.distributions import Normal
    >>> one = torch.tensor(1.0, dtype=torch.float64)
    >>> v = expected_score("log", Normal(0 * one, one), Normal(0 * one, one))
    >>> abs(v.item() - 0.5 * (1 + torch.log(2 * torch.pi * one).item())) < 1e-12  # entropy
    True
    """
    return expected_score_details(objective, truth, forecast, rtol=rtol, panels=panels).value


class ExpectedScore(NamedTuple):
    r"""An expected score with the size of its integral and the quadrature's error estimate.

    ``scale`` is :math:`E_P |S(Q, Y)|`, the size the quadrature's error is relative to;
    ``error`` the larger of the difference between the last two refinements and an estimate of
    the error from nodes rounded to the float grid (:math:`\sum_i w_i |S_i|\,\epsilon |y_i| /
    \mathrm{width}_i`, which dominates when the forecast is far narrower than its distance from
    0); 0 for a discrete truth, whose sum is exact up to the 1e-14 of mass left out; ``nan`` for
    a fixed rule. Both are detached.
    """

    value: torch.Tensor
    scale: torch.Tensor
    error: torch.Tensor


def expected_score_details(
    objective: str | Objective | Callable[..., torch.Tensor],
    truth: Distribution | DataGeneratingProcess,
    forecast: Distribution,
    *,
    rtol: float | None = None,
    panels: int | None = None,
) -> ExpectedScore:
    r""":func:`expected_score` with the scale of its integral, :math:`E_P |S(Q, Y)|`, and the
    quadrature's error estimate (see :class:`ExpectedScore`). The error is below ``rtol`` times
    the scale unless the finest rule was reached without agreement (which happens, for
    instance, when the forecast is so much narrower than its distance from 0 that its nodes
    round: the relative precision is then about ``eps * |loc| / scale``)."""
    obj = get_objective(objective)
    if obj.batch_level:
        raise UnsupportedError(f"{obj.name!r} is a batch-level objective, not a scoring rule")
    if isinstance(truth, DataGeneratingProcess):
        truth = truth.distribution()
    for name, d in (("truth", truth), ("forecast", forecast)):
        if not isinstance(d, Distribution):
            raise ParameterError(f"the {name} must be a torch Distribution, got {type(d).__name__}")
        if d.event_shape != torch.Size():
            raise UnsupportedError(
                f"the {name} must be univariate, got event shape {tuple(d.event_shape)}"
            )
    if truth.batch_shape != torch.Size():
        raise ParameterError(
            f"the truth must be a single distribution (empty batch shape), got batch shape "
            f"{tuple(truth.batch_shape)}"
        )
    if getattr(forecast, "_validate_args", False):  # nodes outside its support are expected
        forecast = copy.copy(forecast)
        forecast._validate_args = False
    dtype, device = dtype_device(forecast)
    shape = forecast.batch_shape
    if rtol is None:
        rtol = max(_RTOL, 100 * torch.finfo(dtype).eps)

    def score(y: torch.Tensor) -> torch.Tensor:
        return obj.loss(forecast, y, validate=False)

    if truth.support.is_discrete:
        y, log_w = _discrete_nodes(truth, shape, dtype, device)
        live = torch.isfinite(log_w)
        weights = torch.where(live, log_w, torch.zeros_like(log_w)).exp() * live
        value, scale = _weighted_sum(score(y), weights, live, None)
        return ExpectedScore(value, scale, torch.zeros_like(scale))
    if panels is not None:
        value, scale, rounding = _continuous(
            score, truth, forecast, (_N_PANEL, int(panels)), dtype, device
        )
        return ExpectedScore(value, scale, torch.full_like(scale, math.nan))
    levels = [(_N_PANEL, p) for p in _PANEL_LEVELS]
    # the first two rules in one pass of the score (most integrals stop there)
    (previous, _, _), first = _continuous_rules(score, truth, forecast, levels[:2], dtype, device)
    previous = previous.detach()
    for k, rule in enumerate(levels[1:]):
        current, scale, rounding = (
            first if k == 0 else _continuous(score, truth, forecast, rule, dtype, device)
        )
        same = previous == current.detach()
        error = torch.where(same, 0.0, (previous - current.detach()).abs())
        if bool((same | (error <= rtol * scale)).all()):
            break
        previous = current.detach()
    return ExpectedScore(current, scale, torch.maximum(error, rounding))


def truth_mass(truth: Distribution | DataGeneratingProcess) -> float:
    r""":math:`\int p` (or :math:`\sum_y p(y)`) on the nodes that :func:`expected_score` uses
    for the forecast Q = P: 1 up to the rule's error when the quadrature resolves P, less (0)
    where P's log-density cannot be evaluated at its own nodes, e.g. a normal with a scale below
    ~1e-154, whose variance underflows to 0 in float64. Checked before any verdict is given.

    >>> from likelab.families.dgp import parse_dgp
    >>> round(truth_mass(parse_dgp("normal:loc=0,scale=1e-100")), 12)
    1.0
    >>> truth_mass(parse_dgp("normal:loc=0,scale=1e-300"))
    0.0
    """
    if isinstance(truth, DataGeneratingProcess):
        truth = truth.distribution()
    dtype, device = dtype_device(truth)
    with torch.no_grad():
        if truth.support.is_discrete:
            _, log_w = _discrete_nodes(truth, torch.Size(), dtype, device)
            return float(log_w.exp().nan_to_num(nan=0.0).sum())
        mass, _, _ = _continuous(
            lambda y: torch.ones_like(y), truth, truth, (_N_PANEL, _PANEL_LEVELS[-1]), dtype, device
        )
    return float(mass)


# ---------------------------------------------------------------------- continuous truths
class _Piece(NamedTuple):
    """The rule for one continuous component of the truth against one forecast batch: what
    :func:`_continuous` needs besides the score's values at the nodes."""

    y: torch.Tensor  # the nodes, dead ones moved to the centre: (N, *batch)
    live: torch.Tensor  # nodes with a positive, finite weight (or a zero-width piece's)
    weights: torch.Tensor  # the quadrature weights times the truth's density and mass
    density: torch.Tensor  # the integrand's density in u (the tail check of _weighted_sum)
    ends: list[int]  # the outermost node of every piece
    jitter: torch.Tensor  # weights times the relative rounding of a node (the error estimate)


def _continuous(
    score: Callable[[torch.Tensor], torch.Tensor],
    truth: Distribution,
    forecast: Distribution,
    rule: tuple[int, int],
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rule applied once: the expected score, ∫ p |S| and the error from rounded nodes (an
    estimate), each of the forecast's batch shape."""
    return _continuous_rules(score, truth, forecast, [rule], dtype, device)[0]


def _continuous_rules(
    score: Callable[[torch.Tensor], torch.Tensor],
    truth: Distribution,
    forecast: Distribution,
    rules: list[tuple[int, int]],
    dtype: torch.dtype,
    device: torch.device,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """:func:`_continuous` for several rules at once: the score is called once per component
    of the truth on the nodes of every rule together (one pass of the objective, its graph and
    its derivatives instead of one per rule; each node's value is the same either way, the
    score being elementwise in y). One (value, scale, rounding) per rule."""
    shape = forecast.batch_shape
    parts = _rules_for(truth, forecast, rules, dtype, device)
    return _apply(score, parts, len(rules), shape, dtype, device)


_Parts = list[tuple[float, torch.Tensor | list[_Piece]]]


def _rules_for(
    truth: Distribution,
    forecast: Distribution,
    rules: list[tuple[int, int]],
    dtype: torch.dtype,
    device: torch.device,
) -> _Parts:
    """Per component of the truth (with its log weight): an atom's point, or the pieces of
    every rule, cut where the forecast may have kinks."""
    shape = forecast.batch_shape
    if isinstance(truth, Mixture):
        parts = list(zip(truth.log_weights.to(dtype).tolist(), truth.components, strict=True))
    else:
        parts = [(0.0, truth)]
    cuts = _forecast_cuts(forecast, shape, dtype, device)
    cut_stack = torch.stack(cuts, dim=-1) if cuts else None
    out: _Parts = []
    for log_weight, comp in parts:
        if log_weight == -math.inf:
            continue
        if isinstance(comp, PointMass):  # an atom: w S(Q, x0), exactly (no nodes, no rounding)
            out.append((log_weight, comp.loc.detach().to(dtype=dtype, device=device)))
        else:
            out.append(
                (
                    log_weight,
                    [_piece(comp, log_weight, cut_stack, shape, r, dtype, device) for r in rules],
                )
            )
    return out


def _apply(
    score: Callable[[torch.Tensor], torch.Tensor],
    parts: _Parts,
    count: int,
    shape: torch.Size,
    dtype: torch.dtype,
    device: torch.device,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The ``count`` rules of :func:`_rules_for` applied to ``score``: (value, scale, rounding)
    per rule."""
    zero = torch.zeros(shape, dtype=dtype, device=device)
    total, scale, rounding = [zero] * count, [zero] * count, [zero] * count
    for log_weight, part in parts:
        if isinstance(part, torch.Tensor):  # an atom
            values = score(part.expand(1, *shape))[0]
            for k in range(count):
                total[k] = total[k] + math.exp(log_weight) * values
                scale[k] = scale[k] + math.exp(log_weight) * values.detach().abs()
            continue
        ys = [piece.y for piece in part]
        values_all = score(torch.cat(ys, 0) if len(ys) > 1 else ys[0])
        at = 0
        for k, piece in enumerate(part):
            values = values_all[at : at + piece.y.shape[0]]
            at += piece.y.shape[0]
            piece_total, piece_scale = _weighted_sum(
                values, piece.weights, piece.live, (piece.density, piece.ends)
            )
            total[k] = total[k] + piece_total
            scale[k] = scale[k] + piece_scale
            with torch.no_grad():
                rounding[k] = rounding[k] + (piece.jitter * values.abs()).nan_to_num(nan=0.0).sum(0)
    return list(zip(total, scale, rounding, strict=True))


def frozen_expectation(
    truth: Distribution, anchor: Distribution, panels: int = 1
) -> Callable[[Callable[[torch.Tensor], torch.Tensor]], torch.Tensor]:
    r""":math:`h \mapsto E_P h(Y)` on the nodes of one rule (``panels`` per piece), built once
    for the continuous truth ``truth`` with the cuts of the forecast ``anchor`` and then held
    fixed: ``h`` maps nodes of shape ``(N, *anchor.batch_shape)`` (broadcastable against any
    forecast batch) to values. Its derivatives in anything ``h`` depends on are those of the
    integrand at fixed nodes; no error estimate and no Leibniz term for cuts that move (there
    are none). For a search over smooth forecasts (:mod:`likelab.asymptotics`), whose answer
    is then checked by the adaptive rule of :func:`expected_score_details`."""
    if truth.support.is_discrete:
        raise UnsupportedError("frozen_expectation integrates continuous truths; sum a pmf")
    dtype, device = dtype_device(anchor)
    with torch.no_grad():
        parts = _rules_for(truth, anchor, [(_N_PANEL, int(panels))], dtype, device)
    shape = anchor.batch_shape

    def expect(h: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        return _apply(h, parts, 1, shape, dtype, device)[0][0]

    return expect


#: Rules of :func:`_piece` kept for reuse, keyed by the truth component's class and values, the
#: forecast's cuts and the rule: every objective judged on the same truth and forecasts (a
#: survey, the asymptotics of many objectives) integrates on the same nodes.
_PIECES: OrderedDict[tuple[Any, ...], tuple[_Piece, tuple[int, ...]]] = OrderedDict()
_PIECES_SIZE = 64
_PIECES_LOCK = threading.Lock()  # callers in several threads share the cache
_PIECES_MAX_NODES = 1 << 18  # a rule larger than this (nodes times batch) is not kept
_PIECES_MAX_TOTAL = 1 << 21  # nodes kept in all (~70 MB)


def _piece(
    comp: Distribution,
    log_weight: float,
    cut_stack: torch.Tensor | None,
    shape: torch.Size,
    rule: tuple[int, int],
    dtype: torch.dtype,
    device: torch.device,
) -> _Piece:
    """The nodes and weights of ``rule`` on one continuous component of the truth, cut at its
    centre and at the forecast's ``cut_stack``; reused (:data:`_PIECES`) when nothing in them
    carries a gradient, i.e. when the forecast's cuts and the truth's parameters do not
    require one (then the rule is a constant of the integral)."""
    key = None
    needs_grad = torch.is_grad_enabled() and (
        (cut_stack is not None and cut_stack.requires_grad) or _requires_grad(comp)
    )
    if not needs_grad:
        comp_key = _dist_key(comp)
        if comp_key is not None:
            cut_key = None if cut_stack is None else _tensor_key(cut_stack)
            key = (comp_key, log_weight, cut_key, tuple(shape), rule, dtype, device)
            with _PIECES_LOCK:
                hit = _PIECES.get(key)
                # a score that wrote into its nodes in place changed the rule: built again
                if hit is not None and _versions(hit[0]) == hit[1]:
                    _PIECES.move_to_end(key)
                    return hit[0]
    piece = _build_piece(comp, log_weight, cut_stack, shape, rule, dtype, device)
    if key is not None and piece.y.numel() <= _PIECES_MAX_NODES:
        with _PIECES_LOCK:
            _PIECES[key] = (piece, _versions(piece))
            # at most _PIECES_SIZE rules and _PIECES_MAX_TOTAL nodes (about 33 bytes each)
            while len(_PIECES) > _PIECES_SIZE or (
                len(_PIECES) > 1
                and sum(p.y.numel() for p, _ in _PIECES.values()) > _PIECES_MAX_TOTAL
            ):
                _PIECES.popitem(last=False)
    return piece


def _build_piece(
    comp: Distribution,
    log_weight: float,
    cut_stack: torch.Tensor | None,
    shape: torch.Size,
    rule: tuple[int, int],
    dtype: torch.dtype,
    device: torch.device,
) -> _Piece:
    eps = torch.finfo(dtype).eps
    lo, hi, c, s = _truth_frame(comp, dtype, device)
    lo, hi, c, s = (t.expand(shape) for t in (lo, hi, c, s))
    if cut_stack is None:
        breaks = c.unsqueeze(-1)
    else:  # every cut clipped into the component's support (a non-finite one: its centre)
        lo_, hi_, c_ = lo.unsqueeze(-1), hi.unsqueeze(-1), c.unsqueeze(-1)
        inside = torch.where(
            torch.isfinite(cut_stack), torch.minimum(torch.maximum(cut_stack, lo_), hi_), c_
        )
        breaks = torch.cat([c_, inside], dim=-1)
    y, log_jac, log_gl, ok, ends, width = piece_nodes(lo, hi, breaks, s, rule)
    # nodes of a zero-width piece (a cut that moves with the forecast meeting a fixed one)
    # weigh 0 but carry Leibniz's derivative term h(a) d(width): keep them
    use = ok | ((width == 0) & torch.isfinite(y))
    centre = c.unsqueeze(0).expand_as(y)
    with torch.no_grad():
        log_p0 = masked_log_prob(comp, torch.where(use, y, centre))
        live = use & torch.isfinite(log_p0) & (log_p0 + log_jac + log_gl > _LOG_TINY)
    # P's density and the score are evaluated at live nodes only: elsewhere either may be
    # infinite, and an infinite value or derivative times a zero weight would poison the
    # first or second derivative. Nodes whose weight underflows to 0 are dead too: there
    # log p is finite but huge and negative, and its squared derivative overflows.
    y_live = torch.where(live, y, centre)
    log_p = masked_log_prob(comp, y_live)
    log_u = torch.where(live, log_p + log_jac, torch.zeros_like(log_p))
    finite = torch.isfinite(width)
    factor = torch.where(finite, width, torch.ones_like(width))
    u_density = torch.where(live, factor * log_u.exp(), torch.zeros_like(log_u))
    weights = u_density * (log_gl.exp() * math.exp(log_weight))
    # nodes are rounded to the float grid at |y|: a relative jitter eps |y| / width within a
    # narrow finite piece (a forecast far narrower than its distance from 0)
    with torch.no_grad():
        jitter = torch.where(
            live & finite & (width > 0), eps * y.abs() / width, torch.zeros_like(width)
        )
        jitter = weights.detach() * jitter
    return _Piece(y_live, live, weights, u_density, ends, jitter)


def _versions(piece: _Piece) -> tuple[int, ...]:
    return tuple(t._version for t in piece if isinstance(t, torch.Tensor))


def _requires_grad(dist: Distribution) -> bool:
    return any(isinstance(v, torch.Tensor) and v.requires_grad for v in vars(dist).values()) or any(
        isinstance(v, Distribution) and _requires_grad(v) for v in vars(dist).values()
    )


def _tensor_key(t: torch.Tensor) -> tuple[Any, ...]:
    t = t.detach()
    return (t.dtype, str(t.device), tuple(t.shape), t.cpu().contiguous().numpy().tobytes())


def _dist_key(dist: Distribution, depth: int = 0) -> tuple[Any, ...] | None:
    """What determines a distribution's density: its class and the values of its attributes
    (tensors by their bytes, numbers and strings as they are, nested distributions likewise);
    None where an attribute is anything else (then its rule is not reused)."""
    if depth > 4:
        return None
    items: list[tuple[Any, ...]] = []
    for name, value in sorted(vars(dist).items()):
        if isinstance(value, torch.Tensor):
            items.append((name, _tensor_key(value)))
        elif value is None or isinstance(value, bool | int | float | str | torch.Size):
            items.append((name, type(value), value))
        elif isinstance(value, Distribution):
            inner = _dist_key(value, depth + 1)
            if inner is None:
                return None
            items.append((name, inner))
        elif name == "_validate_args":
            items.append((name, value))
        else:
            return None
    return (type(dist), tuple(items))


_FRAMES: weakref.WeakKeyDictionary[Distribution, dict[tuple[Any, ...], tuple]] = (
    weakref.WeakKeyDictionary()
)


def _truth_frame(
    comp: Distribution, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The support ends, centre and scale of a truth's component (detached, in ``dtype``),
    computed once per component object: a truth is integrated against many forecasts (every
    Newton step, every rule level) and these depend on the truth alone. The entry is keyed by
    the identity and version counter of every tensor attribute, so a parameter changed in place
    is seen."""
    state = tuple(
        (k, id(v), v._version) for k, v in vars(comp).items() if isinstance(v, torch.Tensor)
    )
    key = (dtype, device, state)
    try:
        frames = _FRAMES.setdefault(comp, {})
    except TypeError:  # not weakly referable: computed each time
        frames = {}
    if key not in frames:
        lo, hi = support_bounds(comp.support, dtype=dtype, device=device)
        c, s = centre_scale(comp, comp.support, dtype, device)
        frames.clear()
        frames[key] = tuple(t.detach().to(dtype) for t in (lo, hi, c, s))
    return frames[key]


def _weighted_sum(
    values: torch.Tensor,
    weights: torch.Tensor,
    live: torch.Tensor,
    tails: tuple[torch.Tensor, list[int]] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``Σ_i w_i values_i`` over the live nodes, and ``Σ_i w_i |values_i|`` (detached).

    With ``tails = (integrand density in u, end indices)``: ``±inf`` where the integrand at an
    outermost node is not negligible against ``Σ w |values|``. A live node with a non-finite
    value makes the result non-finite, as it should (the log score of a forecast with a smaller
    support than the truth is ``+inf``).
    """
    safe = torch.where(live, values, torch.zeros_like(values))
    total = (weights * safe).sum(0)
    with torch.no_grad():  # the scale is a number, not part of any derivative
        safe_d = safe.detach()
        scale = (weights.detach() * safe_d.abs()).sum(0)
        if tails is None:
            return total, scale
        density, ends = tails
        at = torch.as_tensor(ends, dtype=torch.long, device=safe_d.device)
        end_values = safe_d.index_select(0, at)
        at_end = (density.detach().index_select(0, at) * end_values.abs()).nan_to_num(nan=math.inf)
        worst = at_end.max(0)
        bad = worst.values > _DIVERGENCE_RTOL * scale
        sign = torch.sign(end_values.gather(0, worst.indices.unsqueeze(0)).squeeze(0))
    if not bool(bad.any()):
        return total, scale
    total = torch.where(bad, torch.where(sign < 0, -math.inf, math.inf), total)
    return total, scale


def _forecast_cuts(
    forecast: Distribution, shape: torch.Size, dtype: torch.dtype, device: torch.device
) -> list[torch.Tensor]:
    """Points where ``S(Q, ·)`` may have a kink or a jump, with their gradients: every ``loc``
    and every finite support end of the forecast (of each component of a mixture)."""
    comps = forecast.components if isinstance(forecast, Mixture) else [forecast]
    cuts: list[torch.Tensor] = []
    for comp in comps:
        loc = getattr(comp, "loc", None)
        if isinstance(loc, torch.Tensor) and loc.is_floating_point():
            loc = loc.to(dtype).expand(shape)
            cuts.append(loc)
            scale = getattr(comp, "scale", None)
            if isinstance(scale, torch.Tensor) and scale.is_floating_point():
                # a forecast much narrower than the truth: resolve its peak on its own scale
                scale = scale.to(dtype).expand(shape)
                cuts.extend(loc + k * scale for k in _PEAK_CUTS)
        try:
            lo, hi = support_bounds(comp.support, dtype=dtype, device=device)
        except NotImplementedError:
            continue
        cuts.extend(b.to(dtype).expand(shape) for b in (lo, hi) if bool(torch.isfinite(b).all()))
    return cuts


# ---------------------------------------------------------------------- discrete truths
def _discrete_nodes(
    truth: Distribution, shape: torch.Size, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer nodes covering all but ``1e-14`` of the truth's mass, and their log pmf."""
    truth_dtype = dtype_device(truth)[0]
    lo, hi = support_bounds(truth.support, dtype=torch.float64)
    lo_f, hi_f = float(lo), float(hi)
    if math.isinf(lo_f):
        raise UnsupportedError(
            f"the truth's integer support {truth.support!r} is not bounded below"
        )
    if math.isfinite(hi_f) and hi_f - lo_f < 2**16:
        start, stop = lo_f, hi_f
    else:
        try:
            with torch.no_grad():
                mu, sd = float(truth.mean), float(truth.stddev)
        except (NotImplementedError, RuntimeError, TypeError, ValueError):
            mu, sd = math.nan, math.nan
        if not (math.isfinite(mu) and math.isfinite(sd)):
            mu, sd = lo_f, 100.0
        half = 12.0 * sd + 20.0
        before: tuple[float, float] | None = None
        while True:
            start = max(lo_f, math.floor(mu - half))
            stop = math.ceil(mu + half) if math.isinf(hi_f) else min(hi_f, math.ceil(mu + half))
            ys = torch.arange(start, stop + 1, dtype=torch.float64)
            log_p_window = masked_log_prob(truth, ys.to(truth_dtype))
            log_mass = torch.logsumexp(log_p_window, 0)
            missing = -torch.expm1(log_mass).item()
            if missing <= _DISCRETE_MASS_TOL:
                break
            if before is not None:
                # the deficit did not come from the tails if widening added (almost) nothing:
                # then it is the rounding of the pmf itself (log pmf terms such as k log λ of
                # size 1e4 round at 1e-12), and a wider window cannot help
                ring = (ys < before[0]) | (ys > before[1])
                added = torch.logsumexp(log_p_window[ring], 0).exp().item() if ring.any() else 0
                if added <= _DISCRETE_MASS_TOL * 1e-2 and missing <= 1e-9:
                    break
            before = (start, stop)
            if 2 * ys.numel() > _DISCRETE_MAX_TERMS:
                raise UnsupportedError(
                    f"the truth's mass is not captured by {ys.numel()} integers around its mean "
                    f"({missing:.1e} left out): its tail is too heavy for a window sum"
                )
            half *= 2
    ys = torch.arange(start, stop + 1, dtype=dtype, device=device)
    log_p = masked_log_prob(truth, ys.to(truth_dtype)).to(dtype)
    view = (-1,) + (1,) * len(shape)
    return ys.view(view).expand(-1, *shape), log_p.view(view).expand(-1, *shape)
