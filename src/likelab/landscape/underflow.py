r"""Where the naive product of likelihoods, and its gradient, underflow; the log-product does not.

The seed's ``l_batch = l1 * l2 * l3 * ...`` multiplied out in floating point: per-sample
likelihoods :math:`l_i \in (0, 1]`, repeated cyclically to a batch of size n. In a floating type
with smallest normal number ``tiny`` and smallest subnormal ``tiny * eps`` the product
:math:`P_n = \prod_{i \le n} l_i` first loses precision (subnormal: :math:`P_n <` ``tiny``) and
then becomes exactly zero (:math:`P_n < \frac12` ``tiny * eps``), roughly at
:math:`n \approx \ln(\text{threshold}) / \overline{\ln l}` (IEEE 754-2008, sec. 3.4; Goldberg
(1991), *What every computer scientist should know about floating-point arithmetic*, ACM Comput.
Surv. 23:5-48, sec. 2.2.4). The log-product :math:`\sum_i \ln l_i` is an ordinary number at every n.

The gradient goes with it. Each :math:`l_i` is modelled as the target-class probability of a
softmax over ``num_classes`` logits, :math:`l_i = \mathrm{softmax}(z_i)_y`. The gradient of the
product with respect to sample i's logits is
:math:`\partial P/\partial z_i = P \, (e_y - \mathrm{softmax}(z_i))`: a factor P too small to
represent, so the autograd gradient is exactly zero from some n on, and training on the product
stops. The gradient of the log-product, :math:`e_y - \mathrm{softmax}(z_i)`, does not depend on n.

"Naive" means sequential multiplication in the floating type,
:math:`P_n = \mathrm{fl}(P_{n-1} \cdot l_n)`, as a Python loop ``p = p * l`` computes it. (On the
CPU ``torch.cumprod`` is NOT that: it accumulates float32 and float16 in float64 and rounds each
partial product, which changes the subnormal values.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from likelab._budget import check_memory
from likelab.errors import ParameterError, UnknownNameError

__all__ = ["MAX_N", "UnderflowReport", "underflow"]

#: The largest batch size :func:`underflow` scans (its gradient scan costs O(n² K)).
MAX_N = 2048
#: Elements per chunk of the batched gradient scan (bounds memory to a few hundred MB).
_CHUNK_ELEMENTS = 2**22
_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


@dataclass(frozen=True, eq=False)
class UnderflowReport:
    """What :func:`underflow` measured.

    ``thresholds[dtype]`` holds ``subnormal_at`` (first n with :math:`0 < P_n <` tiny; ``None``
    when not reached within ``max_n``, or when P jumps from normal straight to 0), ``zero_at``
    (first n with :math:`P_n = 0` exactly; P never grows back), ``grad_zero_at`` (the first n
    from which on, up to ``max_n``, every entry of :math:`\\partial P_n / \\partial z` is
    exactly 0; ``None`` when the gradient at ``max_n`` is not), the log-products
    :math:`\\sum_{i \\le n} \\ln l_i` at ``zero_at`` and ``subnormal_at`` (finite), and the type's
    ``tiny`` and ``smallest_subnormal``.

    ``rows`` is the table by batch size: ``n``, ``product_<dtype>`` (:math:`P_n` in that type),
    ``log_product`` (natural log, float64), ``grad_norm_product_<dtype>`` and ``grad_norm_nll``.
    Both gradient norms are per-sample sizes: the root mean square over the batch of
    :math:`\\|\\partial L / \\partial z_i\\|_2` for :math:`L = P_n` (autograd in that type) and for
    :math:`L = -\\ln P_n = n \\cdot` mean NLL (autograd in float64), whose per-sample gradient
    :math:`\\mathrm{softmax}(z_i) - e_y` does not shrink with n.

    The curves (one entry per n = 1..max_n) are ``n``, ``log_product``, ``product[dtype]``,
    ``grad_norm_product[dtype]`` and ``grad_norm_nll``.
    """

    likelihoods: tuple[float, ...]
    num_classes: int
    max_n: int
    dtypes: tuple[str, ...]
    thresholds: dict[str, dict[str, Any]]
    rows: list[dict[str, Any]]
    n: np.ndarray
    log_product: np.ndarray
    product: dict[str, np.ndarray]
    grad_norm_product: dict[str, np.ndarray]
    grad_norm_nll: np.ndarray

    def to_dict(self, *, curves: bool = False) -> dict[str, Any]:
        """JSON-ready (non-finite floats as ``None``); ``curves`` adds the per-n arrays."""
        out: dict[str, Any] = {
            "likelihoods": list(self.likelihoods),
            "num_classes": self.num_classes,
            "max_n": self.max_n,
            "dtypes": list(self.dtypes),
            "thresholds": {
                d: {k: _json(v) for k, v in t.items()} for d, t in self.thresholds.items()
            },
            "rows": [{k: _json(v) for k, v in r.items()} for r in self.rows],
        }
        if curves:
            out["curves"] = {
                "n": self.n.tolist(),
                "log_product": [_json(v) for v in self.log_product.tolist()],
                "product": {d: [_json(v) for v in a.tolist()] for d, a in self.product.items()},
                "grad_norm_product": {
                    d: [_json(v) for v in a.tolist()] for d, a in self.grad_norm_product.items()
                },
                "grad_norm_nll": [_json(v) for v in self.grad_norm_nll.tolist()],
            }
        return out


def underflow(
    likelihoods: Sequence[float] | np.ndarray | torch.Tensor = (0.3, 0.2, 0.1),
    *,
    dtypes: Sequence[str | torch.dtype] = ("float32", "float64"),
    max_n: int | None = None,
    sizes: Sequence[int] | None = None,
    num_classes: int = 10,
    device: torch.device | str | None = None,
) -> UnderflowReport:
    r"""Measure where the naive product of likelihoods and its gradient underflow, per dtype.

    ``likelihoods`` (each in (0, 1]) are repeated cyclically to n = 1..``max_n``. For each dtype:
    the naive running product :math:`P_n = \mathrm{fl}(P_{n-1} l_n)` (sequential multiplication
    in that type), the first n where it is subnormal and where it is exactly 0; the gradient of
    :math:`P_n` with respect to the logits :math:`z_i` (``l_i = softmax(z_i)[0]`` with the other
    ``num_classes - 1`` classes sharing :math:`1 - l_i` equally), by autograd in that type through
    the same sequential product, at every n, and the n from which on it is exactly 0; the
    gradient of the log-product for comparison (see :class:`UnderflowReport` for the norms). The
    default ``max_n`` is the power of two just past the estimated zero point
    :math:`\ln(\text{smallest subnormal}/2) / \overline{\ln l}` of the requested type that
    underflows last (at least 64, at most :data:`MAX_N`); the default ``sizes`` are the powers of
    two up to ``max_n`` plus the thresholds.

    >>> rep = underflow((0.5,), dtypes=("float32",), max_n=160)
    >>> rep.thresholds["float32"]["zero_at"]  # 2^-150 rounds to 0: half the smallest subnormal
    150
    """
    ls = _check_likelihoods(likelihoods)
    names = _check_dtypes(dtypes)
    k = _check_int(num_classes, "num_classes", low=2)
    cycle = len(ls)
    mean_log = math.fsum(math.log(v) for v in ls) / cycle
    if max_n is None:
        zero_log = min(_log_zero_threshold(_DTYPES[d]) for d in names)
        n_max = _default_max_n(mean_log, zero_log, cycle)
    else:
        n_max = _check_int(max_n, "max_n", low=1)
    if sizes is not None:
        sizes = sorted({_check_int(s, "sizes entry", low=1) for s in sizes})
        if not sizes:
            raise ParameterError("sizes is empty; give batch sizes such as [1, 10, 100]")
        n_max = max(n_max, sizes[-1])
    if n_max > MAX_N:
        raise ParameterError(
            f"max_n (and every size) must be <= {MAX_N}: the gradient scan costs O(n² K); "
            f"got {n_max}"
        )

    # the (n, K) logits, their softmax and the NLL's gradient, per dtype: ~6 n K doubles
    check_memory(
        48.0 * n_max * k * len(names) + 64.0 * _CHUNK_ELEMENTS,
        what=f"the underflow scan with {k} classes up to n = {n_max}",
    )
    l_all = np.array([ls[i % cycle] for i in range(n_max)], dtype=np.float64)
    n = np.arange(1, n_max + 1)
    log_product = np.cumsum(np.log(l_all))
    nll_norm = _nll_grad_rms(l_all, k, device)
    thresholds: dict[str, dict[str, Any]] = {}
    product: dict[str, np.ndarray] = {}
    grad_norm: dict[str, np.ndarray] = {}
    for name in names:
        dtype = _DTYPES[name]
        info = torch.finfo(dtype)
        tiny, smallest = float(info.tiny), float(info.tiny) * float(info.eps)
        prod = _sequential_cumprod(torch.as_tensor(l_all, dtype=dtype, device=device))
        all_zero, rms = _product_grad_scan(l_all, k, dtype, device)
        product[name], grad_norm[name] = prod, rms
        sub = _first(prod < tiny)
        zero = _first(prod == 0.0)
        thresholds[name] = {
            "subnormal_at": sub if sub is not None and sub != zero else None,
            "zero_at": zero,
            "grad_zero_at": _first_for_good(all_zero),
            "log_product_at_zero": None if zero is None else _log_product_at(ls, zero),
            "log_product_at_subnormal": None if sub is None else _log_product_at(ls, sub),
            "tiny": tiny,
            "smallest_subnormal": smallest,
        }

    if sizes is None:
        marks = {2**j for j in range(n_max.bit_length()) if 2**j <= n_max}
        for t in thresholds.values():
            marks |= {
                t[key] for key in ("subnormal_at", "zero_at", "grad_zero_at") if t[key] is not None
            }
        sizes = sorted(marks)
    rows = []
    for s in sizes:
        row: dict[str, Any] = {"n": int(s)}
        for name in names:
            row[f"product_{name}"] = float(product[name][s - 1])
        row["log_product"] = float(log_product[s - 1])
        for name in names:
            row[f"grad_norm_product_{name}"] = float(grad_norm[name][s - 1])
        row["grad_norm_nll"] = float(nll_norm[s - 1])
        rows.append(row)
    return UnderflowReport(
        likelihoods=tuple(ls),
        num_classes=k,
        max_n=n_max,
        dtypes=tuple(names),
        thresholds=thresholds,
        rows=rows,
        n=n,
        log_product=log_product,
        product=product,
        grad_norm_product=grad_norm,
        grad_norm_nll=nll_norm,
    )


# ---------------------------------------------------------------------- the computations
def _sequential_cumprod(x: torch.Tensor) -> np.ndarray:
    """:math:`P_n = \\mathrm{fl}(P_{n-1} x_n)`, multiplied one at a time in ``x.dtype``.

    Returned as float64 numpy (exact: every value of the narrower types is a float64). Once P is
    exactly 0 it stays 0 (:math:`0 \\cdot x = 0` for finite x), so the loop stops there.
    """
    out = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    acc = torch.ones((), dtype=x.dtype, device=x.device)
    for i, value in enumerate(x.unbind(0)):
        acc = acc * value
        out[i] = acc
        if acc.item() == 0.0:
            break
    return out.cpu().to(torch.float64).numpy()


def _logits(l_all: np.ndarray, k: int) -> torch.Tensor:
    """Float64 logits with :math:`\\mathrm{softmax}(z_i)_0 = l_i` and the rest equal.

    :math:`z_{i0} = \\ln l_i`, :math:`z_{ij} = \\ln((1 - l_i)/(k - 1))`: the exponentials sum to
    1, so the softmax returns :math:`l_i` up to rounding (``-inf`` logits when :math:`l_i = 1`).
    """
    l64 = torch.as_tensor(l_all, dtype=torch.float64)
    z = (torch.log1p(-l64) - math.log(k - 1))[:, None].repeat(1, k)
    z[:, 0] = torch.log(l64)
    return z


def _product_grad_scan(
    l_all: np.ndarray, k: int, dtype: torch.dtype, device
) -> tuple[np.ndarray, np.ndarray]:
    """For every n: is :math:`\\partial P_n/\\partial z` exactly zero, and its RMS per-sample norm.

    Autograd in ``dtype`` through the sequential product of the softmax probabilities, for all n
    at once. Row n of a ``(B, N)`` matrix holds :math:`p_1..p_n` followed by ones
    (:math:`\\mathrm{fl}(P \\cdot 1) = P`: the padding changes nothing), the rows are multiplied
    out column by column and one backward pass gives :math:`\\partial P_n / \\partial p_i` for
    every row; a second backward pass through the softmax (rows replicated) carries it to the
    logits. The operations are elementwise, so every row is rounded exactly as a separate
    backward pass ``P_n.backward()`` would round it (the tests check this).
    """
    n_max = l_all.shape[0]
    z_all = _logits(l_all, k).to(dtype=dtype, device=device)
    with torch.no_grad():
        p_all = torch.softmax(z_all, dim=-1)[:, 0]
    all_zero = np.zeros(n_max, dtype=bool)
    rms = np.zeros(n_max, dtype=np.float64)
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // n_max)
    one = torch.ones((), dtype=dtype, device=device)
    for start in range(0, n_max, rows_per_chunk):
        stop = min(n_max, start + rows_per_chunk)
        width = stop  # row n (1-based) uses p_1..p_n; the longest row in the chunk is ``stop``
        ns = torch.arange(start + 1, stop + 1, device=device)
        used = torch.arange(1, width + 1, device=device)[None, :] <= ns[:, None]
        factors = torch.where(used, p_all[None, :width], one).requires_grad_(True)
        acc = torch.ones(stop - start, dtype=dtype, device=device)
        for column in factors.unbind(1):
            acc = acc * column
        (grad_p,) = torch.autograd.grad(acc.sum(), factors)
        grad_p = torch.where(used, grad_p, torch.zeros((), dtype=dtype, device=device))
        del acc, factors
        sq = torch.zeros(stop - start, dtype=torch.float64, device=device)
        peak = torch.zeros(stop - start, dtype=torch.float64, device=device)
        nonzero = torch.zeros(stop - start, dtype=torch.bool, device=device)
        sub = max(1, _CHUNK_ELEMENTS // (width * k))
        for lo in range(0, stop - start, sub):
            hi = min(stop - start, lo + sub)
            z = z_all[:width].expand(hi - lo, width, k).clone().requires_grad_(True)
            p = torch.softmax(z, dim=-1)[..., 0]
            (grad,) = torch.autograd.grad(p, z, grad_outputs=grad_p[lo:hi])
            g = grad.to(torch.float64).flatten(1)
            nonzero[lo:hi] = (g != 0).any(dim=1)
            peak[lo:hi], sq[lo:hi] = _scaled_square_sum(g)
        all_zero[start:stop] = (~nonzero).cpu().numpy()
        norm = peak * torch.sqrt(sq)
        rms[start:stop] = (norm / torch.sqrt(ns.to(torch.float64))).cpu().numpy()
    return all_zero, rms


def _nll_grad_rms(l_all: np.ndarray, k: int, device) -> np.ndarray:
    """RMS over the first n samples of :math:`\\|\\partial(-\\ln l_i)/\\partial z_i\\|`, all n.

    The per-sample gradient of the NLL (autograd in float64) is
    :math:`\\mathrm{softmax}(z_i) - e_y`, independent of the batch size.
    """
    z = _logits(l_all, k).to(device=device).requires_grad_(True)
    nll = -torch.log_softmax(z, dim=-1)[:, 0]
    (grad,) = torch.autograd.grad(nll.sum(), z)
    sq = (grad.detach() ** 2).sum(dim=1).cpu().numpy()
    return np.sqrt(np.cumsum(sq) / np.arange(1, sq.shape[0] + 1))


def _scaled_square_sum(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's max ``m = max |g|`` and ``sum (g / m)^2``: the norm is ``m * sqrt(sum)``.

    Scaling first keeps subnormal entries from squaring to 0 (``norm = 0`` iff ``g = 0``).
    """
    peak = g.abs().amax(dim=1)
    safe = torch.where(peak > 0, peak, torch.ones_like(peak))
    return peak, ((g / safe[:, None]) ** 2).sum(dim=1)


def _log_product_at(ls: Sequence[float], n: int) -> float:
    """:math:`\\sum_{i \\le n} \\ln l_i` (cycle repeated), with ``math.fsum``."""
    logs = [math.log(v) for v in ls]
    full, rest = divmod(n, len(ls))
    return full * math.fsum(logs) + math.fsum(logs[:rest])


def _log_zero_threshold(dtype: torch.dtype) -> float:
    """ln of half the smallest subnormal of ``dtype``: below it a product rounds to 0."""
    info = torch.finfo(dtype)
    return math.log(float(info.tiny)) + math.log(float(info.eps)) - math.log(2.0)


def _default_max_n(mean_log: float, zero_log: float, cycle: int) -> int:
    """The power of two just past the estimated zero point ``zero_log / mean_log`` (64..MAX_N)."""
    if mean_log == 0.0:
        return 64
    estimate = zero_log / mean_log + 2 * cycle
    if estimate >= MAX_N:
        return MAX_N
    return max(64, 1 << math.ceil(math.log2(estimate + 1)))


def _first(mask: np.ndarray) -> int | None:
    """1-based position of the first True, or None."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) + 1 if hits.size else None


def _first_for_good(mask: np.ndarray) -> int | None:
    """1-based start of the run of Trues that lasts to the end, or None when the last is False."""
    misses = np.flatnonzero(~mask)
    if misses.size == 0:
        return 1
    last = int(misses[-1]) + 1  # 1-based position of the last False
    return last + 1 if last < mask.shape[0] else None


# ---------------------------------------------------------------------- validation
def _check_likelihoods(likelihoods: Any) -> list[float]:
    if isinstance(likelihoods, torch.Tensor):
        likelihoods = likelihoods.detach().cpu().numpy()
    if isinstance(likelihoods, str):
        raise ParameterError(
            f"likelihoods must be numbers in (0, 1], got the string {likelihoods!r}"
        )
    try:
        arr = np.asarray(likelihoods, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(
            f"likelihoods must be numbers in (0, 1], got {likelihoods!r}"
        ) from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise ParameterError(
            "likelihoods must be a non-empty 1-D sequence of numbers in (0, 1], "
            f"got shape {arr.shape}"
        )
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0) & (arr <= 1)))
    if bad.size:
        i = int(bad[0])
        raise ParameterError(
            f"likelihood {i} is {arr[i]:g}; every likelihood must lie in (0, 1] (a zero "
            "likelihood makes the product 0 at once and the log-product -inf)"
        )
    return [float(v) for v in arr]


def _check_dtypes(dtypes: Any) -> list[str]:
    if isinstance(dtypes, str | torch.dtype):
        dtypes = [dtypes]
    names: list[str] = []
    for d in dtypes:
        name = str(d).removeprefix("torch.") if isinstance(d, torch.dtype) else str(d)
        if name not in _DTYPES:
            raise UnknownNameError(f"unknown dtype {d!r}; choose from: {', '.join(_DTYPES)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ParameterError("dtypes is empty; give at least one, e.g. ('float32', 'float64')")
    return names


def _check_int(value: Any, what: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ParameterError(f"{what} must be an integer >= {low}, got {value!r}")
    return int(value)


def _json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
