r"""Fused kernels: the moments of :mod:`likelab.estimate.moments` in one compiled pass.

A batched fit spends its time in one computation: for ``B`` datasets of ``n`` observations, the
per-observation log-density :math:`\ell_i`, its gradient and Hessian in the family's parameters,
and the means of :math:`\varphi(\ell_i)`, :math:`\varphi'\nabla\ell_i` and
:math:`\varphi''\nabla\ell_i\nabla\ell_i^\top + \varphi'\nabla^2\ell_i`. Eagerly, each of the
30-60 elementwise operations is a pass over ``B × n`` doubles in memory. Here the same code is
compiled by ``torch.compile`` (TorchInductor's C++/OpenMP backend, Ansel et al. 2024, *PyTorch 2*,
ASPLOS '24) into one loop per dataset row that keeps every intermediate in registers.

- **Which rules.** φ must be an :class:`~likelab.objectives.forms.ExpLinear`
  (const + lin·ℓ + coef·E(rate·ℓ)): every built-in local rule but focal, and the local part f(y)^c
  of every integral rule; or a :class:`~likelab.objectives.forms.Focal`. Their coefficients
  (γ for focal) are tensors, not constants, so one kernel per family and variant (linear, with
  an exponential, or focal; with or without the sandwich's second moments) serves every rule
  and hyperparameter.
- **When.** ``LIKELAB_FUSED``: ``auto`` (the default) compiles where a batch has at least
  :data:`AUTO_MIN_ELEMENTS` observations, or belongs to a job declared that large
  (:func:`expected_work`: a simulation study), and a C++ compiler is on the PATH; ``on``
  wherever one is; ``off`` never. Anything else falls back to the eager reference, which gives
  the same numbers to 1e-12 (tested on every family × rule pair).
- **Cost, paid once.** A kernel is compiled on its first use in a process (seconds) and kept; the
  compiled code is also cached on disk by TorchInductor (``TORCHINDUCTOR_CACHE_DIR``), so later
  processes load it. :func:`compile_report` lists what each compilation cost.
- **Threads.** Kernels read the number of OpenMP threads at run time (``cpp.dynamic_threads``),
  so one compilation serves any :func:`torch.set_num_threads`; the reductions run one row per
  thread, so the result does not depend on the thread count (tested).
- **Failure.** A compilation that fails (no compiler, an unsupported operation) marks that
  kernel as unavailable for the process, is recorded in :func:`compile_report` and the eager
  path is used. Ctrl-C during a compilation propagates; nothing of it is kept in memory, and
  TorchInductor writes its cache files atomically (tested).
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import os
import shutil
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.fx.experimental import _config as _fx_config

from likelab.errors import ParameterError
from likelab.families import Family
from likelab.families.derivatives import parameter_terms
from likelab.objectives.forms import ExpLinear, Focal, focal_terms

from .moments import LocalMoments, _free_components, reduce_moments

__all__ = [
    "AUTO_MIN_ELEMENTS",
    "CompileRecord",
    "compile_report",
    "expected_work",
    "fused_local_moments",
    "fused_local_value",
    "fused_mode",
    "use_fused",
]

#: ``auto`` compiles for batches of at least this many observations (B · n): below it, a
#: compilation (seconds) costs more than it can save in one call.
AUTO_MIN_ELEMENTS = 1 << 19
_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class CompileRecord:
    """One compilation: the kernel's key, the seconds it took, and its outcome (``"ok"`` or the
    error that made the kernel unavailable)."""

    kernel: str
    seconds: float
    outcome: str


_KERNELS: dict[tuple, Callable[..., Any] | None] = {}
_REPORT: list[CompileRecord] = []
_LOCK = threading.Lock()


def fused_mode() -> str:
    """``LIKELAB_FUSED`` (``auto``, ``on`` or ``off``; default ``auto``)."""
    mode = os.environ.get("LIKELAB_FUSED", "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise ParameterError(f"LIKELAB_FUSED must be one of auto, on, off; got {mode!r}")
    return mode


def compiler_available() -> bool:
    """Whether TorchInductor can build CPU kernels here: a C++ compiler on the PATH."""
    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


_EXPECTED: contextvars.ContextVar[int] = contextvars.ContextVar("likelab_fused_work", default=0)


@contextlib.contextmanager
def expected_work(observations: int) -> Iterator[None]:
    """Declare that the calls inside belong to a job of about ``observations`` observations in
    all (a simulation study: replicates × n × objectives), so that ``auto`` compiles for its
    many small fits as it would for one large one.

    The decision then depends on the job alone, never on what this process happened to run
    before, so a study's numbers are the same on any executor.
    """
    token = _EXPECTED.set(max(0, int(observations)))
    try:
        yield
    finally:
        _EXPECTED.reset(token)


def use_fused(fam: Family, phi: Any, y: torch.Tensor) -> bool:
    """Whether the fused kernel applies to a problem on data ``y`` (see the module docstring);
    a caller that works on ``y`` in chunks asks once, with the whole of ``y``."""
    mode = fused_mode()
    if mode == "off" or not isinstance(phi, _FORMS) or y.device.type != "cpu":
        return False
    if not y.dtype.is_floating_point:
        return False
    if mode == "auto" and max(y.numel(), _EXPECTED.get()) < AUTO_MIN_ELEMENTS:
        return False
    return compiler_available()


def compile_report() -> list[CompileRecord]:
    """Every compilation of this process, in order."""
    with _LOCK:
        return list(_REPORT)


#: The forms of φ that a kernel serves, with their coefficients as data.
_FORMS = (ExpLinear, Focal)


def _variant(phi: ExpLinear | Focal) -> str:
    if isinstance(phi, Focal):
        return "focal"
    return "lin" if phi.coef == 0.0 else "exp"


def _phi_terms(ell, variant: str, const, lin, coef, rate):
    """φ, φ', φ'' of an ExpLinear with tensor coefficients. An ``expm1`` form comes in as
    ``exp`` with const - coef: its value then loses at most |coef|·ε absolutely where rate·ℓ is
    near 0 (1e-14 for lq at q = 0.99), its derivatives nothing; one exponential per
    observation serves both forms."""
    if variant == "lin":
        one = torch.ones_like(ell)
        return const + lin * ell, lin * one, 0.0 * one
    if variant == "focal":  # const carries γ
        return focal_terms(ell, const)
    e = torch.exp(rate * ell)
    d1 = coef * rate * e
    return const + lin * ell + coef * e, lin + d1, rate * d1


def _moments_fn(fam: Family, variant: str, outer: bool):
    names = list(fam.free)

    def kernel(params: tuple[torch.Tensor, ...], terms, y, rows, const, lin, coef, rate):
        natural = dict(zip(names, params, strict=True))
        # y[rows]: gathered as it is read, not copied first
        ell, gl, hl = _free_components(fam, natural, y[rows], terms or None)
        f0, f1, f2 = _phi_terms(ell, variant, const, lin, coef, rate)
        m = reduce_moments(ell, gl, hl, f0, f1, f2, outer=outer)
        return (m.value, m.grad, m.hess, m.outer) if outer else (m.value, m.grad, m.hess)

    return kernel


def _options() -> dict[str, Any]:
    """TorchInductor options for likelab's kernels only (``torch.compile(options=...)``: the
    process's own settings, for the user's compilations, are left alone)."""
    options: dict[str, Any] = {
        "cpp.dynamic_threads": True,  # one kernel for any torch.set_num_threads
        "compile_threads": 1,  # compile in this process: no worker pool to leave behind
        # never write a per-observation intermediate to memory: the kernel recomputes it
        # (the sandwich's second moments read φ, φ' and ∇ℓ many times: 13.8 -> 9.0 ms per 10^6)
        "realize_reads_threshold": 1000,
        "realize_acc_reads_threshold": 1000,
        "realize_opcount_threshold": 1000,
    }
    cxx = next((c for c in ("g++", "c++", "clang++") if shutil.which(c)), None)
    if cxx is not None:
        options["cpp.cxx"] = (cxx,)  # never a download (TorchInductor may fetch gcc via conda)
    return options


def _own_code(fn: Callable[..., Any], serial: int) -> Callable[..., Any]:
    """``fn`` with a code object of its own. TorchDynamo keeps its compiled graphs per code
    object, at most ``recompile_limit`` (8) of them: every kernel built from one closure would
    share that budget and the ninth would silently run uncompiled."""
    code = fn.__code__.replace(co_name=f"{fn.__code__.co_name}_{serial}")
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)


def _run(fn: Callable[..., Any], args: tuple) -> Any:
    """Call a compiled kernel the same way every time, so that TorchDynamo's guards hold and it
    does not compile again (after 8 compilations of one kernel it would run it uncompiled):
    without autograd (the kernels' outputs are closed-form derivatives; the grad mode is
    guarded), and without duck sizing (which assumes that sizes equal at the first call, the
    rows asked for and the datasets held, stay equal)."""
    with torch.no_grad(), _fx_config.patch(use_duck_shape=False):
        return fn(*args)


def _call(key: tuple, build, args: tuple) -> Any | None:
    with _LOCK:
        known = key in _KERNELS
        fn = _KERNELS.get(key)
    if known and fn is None:
        return None
    if known:
        return _run(fn, args)
    validate = torch.distributions.Distribution._validate_args
    start = time.perf_counter()
    try:
        code = _own_code(build(), len(_KERNELS))
        fn = torch.compile(code, dynamic=True, fullgraph=False, options=_options())
        out = _run(fn, args)  # the first call compiles
    except MemoryError:
        raise  # like Ctrl-C (not an Exception): nothing was kept, the next call compiles again
    except Exception as exc:  # any compiler failure: this kernel is unavailable, use eager
        with _LOCK:
            _KERNELS[key] = None
            _REPORT.append(_record(key, start, f"unavailable: {type(exc).__name__}: {exc}"))
        return None
    finally:
        # TorchDynamo's first compilation turns torch.distributions' argument validation off
        # for the whole process (TorchPatcher.patch); the user's default is theirs to keep
        torch.distributions.Distribution.set_default_validate_args(validate)
    # A compilation leaves ~400,000 new objects (TorchDynamo's and TorchInductor's) for the
    # cyclic garbage collector: its next full pass over them (0.3 s) would fall inside a later
    # fit. Paid here, as part of the compilation, the later passes find them old and stay rare.
    gc.collect()
    with _LOCK:
        _KERNELS[key] = fn
        _REPORT.append(_record(key, start, "ok"))
    return out


def _record(key: tuple, start: float, outcome: str) -> CompileRecord:
    seconds = time.perf_counter() - start
    return CompileRecord(" ".join(str(k) for k in key), seconds, outcome.splitlines()[0][:300])


def _args(fam: Family, natural, y: torch.Tensor, rows: torch.Tensor | None, phi: ExpLinear | Focal):
    # fresh tensors, not views: TorchDynamo guards a view's base (its strides), which differs
    # from one caller to the next
    params = tuple(natural[n].reshape(-1).clone() for n in fam.free)
    if rows is None:
        rows = torch.arange(params[0].shape[0], device=y.device)
    shaped = {n: v.unsqueeze(-1) for n, v in zip(fam.free, params, strict=True)}
    dist = fam.distribution_unchecked(shaped)
    terms = parameter_terms(dist) or ()  # eager: once per dataset, not once per observation
    terms = tuple(t if t._base is None else t.clone() for t in terms)
    if isinstance(phi, Focal):
        coeffs = (phi.gamma, 0.0, 0.0, 0.0)
    else:
        const = phi.const - phi.coef if phi.minus_one else phi.const  # coef·expm1 = coef·exp - coef
        coeffs = (const, phi.lin, phi.coef, phi.rate)
    return (params, terms, y, rows, *(torch.tensor(c, dtype=y.dtype) for c in coeffs))


def _key(kind: str, fam: Family, variant: str, y: torch.Tensor, *extra) -> tuple:
    return (kind, fam.spec, tuple(fam.free), variant, str(y.dtype), *extra)


def fused_local_moments(
    fam: Family,
    natural: Mapping[str, torch.Tensor],
    y: torch.Tensor,
    phi: ExpLinear | Focal,
    *,
    outer: bool = False,
    rows: torch.Tensor | None = None,
) -> LocalMoments | None:
    """:func:`likelab.estimate.moments.local_moments` by a compiled kernel, or ``None`` where
    the kernel is unavailable (the caller then uses the eager reference). ``rows``: the data
    are ``y[rows]``, gathered inside the kernel."""
    b = y.shape[0] if rows is None else rows.shape[0]
    if not isinstance(phi, _FORMS) or b < 1 or y.shape[-1] < 2:
        return None
    if b == 1:  # a batch of 1 would make TorchDynamo specialise (compile again): run it twice
        rows = torch.zeros(1, dtype=torch.long, device=y.device) if rows is None else rows
        natural = {k: v.reshape(-1).repeat(2) for k, v in natural.items()}
        out = fused_local_moments(fam, natural, y, phi, outer=outer, rows=rows.repeat(2))
        if out is None:
            return None
        first = [None if t is None else t[:1] for t in (out.value, out.grad, out.hess, out.outer)]
        return LocalMoments(*first)
    variant = _variant(phi)
    key = _key("moments", fam, variant, y, "outer" if outer else "")
    args = _args(fam, natural, y, rows, phi)
    out = _call(key, lambda: _moments_fn(fam, variant, outer), args)
    if out is None:
        return None
    return LocalMoments(*out) if outer else LocalMoments(*out, None)


def fused_local_value(
    fam: Family,
    natural: Mapping[str, torch.Tensor],
    y: torch.Tensor,
    phi: ExpLinear | Focal,
    *,
    rows: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """:func:`likelab.estimate.moments.local_value` by a compiled kernel, or ``None``: the
    value of the moments kernel. A kernel of its own would cost as much again to compile, and
    fits ask for values alone rarely (their line search takes derivatives with each trial)."""
    out = fused_local_moments(fam, natural, y, phi, rows=rows)
    return None if out is None else out.value
