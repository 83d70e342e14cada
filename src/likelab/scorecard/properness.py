r"""Scorecard part 1: properness on classes and densities, and Bernardo's theorem for φ-rules.

Each unit is one setting of :mod:`likelab.scorecard.battery`: forecasts over the whole K-simplex
(``K`` in ``PROPERNESS_CLASSES``, :func:`likelab.properness.check_classes`) or a truth forecast
by its own family with every parameter free (``PROPERNESS_TRUTHS``,
:func:`likelab.properness.check_density`). A row carries the numerical verdict
(``"strictly proper"``, ``"proper"``, ``"improper"``, ``"undetermined"``), the registry's claim,
and the evidence (the optimum found, the gap of expected scores, the distance to the truth, in
words how the optimum is wrong).

For a local rule written as a function of the likelihood alone, :math:`S(F, y) = \phi(f(y))`
(a ``phi:EXPR`` spec, a one-argument user function, or a built-in local rule), the rows on
K >= 3 classes also carry the verdict of Bernardo's theorem: on three or more outcomes a local
scoring rule is proper only if :math:`\phi(p) = a + b \log p` (Bernardo 1979, Ann. Statist.
7:686-690; Gneiting & Raftery 2007, JASA 102:359-378, sec. 2.3), strictly proper when
:math:`b < 0` and proper (not strictly: a constant) when :math:`b = 0`. :func:`bernardo_verdict`
checks the form numerically on a grid of p in (0, 1]; the row says whether the two verdicts
agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from likelab.errors import LikelabError
from likelab.families import get_family
from likelab.objectives import Objective, get_objective
from likelab.objectives.user import UserLoss
from likelab.properness import check_classes, check_density
from likelab.scorecard.battery import (
    BERNARDO_LOG_P,
    BERNARDO_POINTS,
    BERNARDO_RTOL,
    PROPERNESS_CLASS_SIZES,
    PROPERNESS_CLASSES,
    PROPERNESS_DENSITY_SIZES,
    PROPERNESS_TRUTHS,
    guarded,
    jsonable,
    mode,
    stream_seed,
)

__all__ = ["PART", "ROW_KEYS", "bernardo_verdict", "run", "summarise", "units"]

PART = "properness"
#: The keys of every row besides the unit's (``setting, kind, classes, truth, family, sizes``).
ROW_KEYS = (
    "status",
    "reason",
    "verdict",
    "claimed",
    "agrees_with_claim",
    "evidence",
    "bernardo",
    "agrees",
)
#: Verdicts from worst to best; "undetermined" ranks below "proper": it may hide "improper".
_ORDER = ("improper", "undetermined", "proper", "strictly proper")


def units(objective: str, *, quick: bool) -> list[dict[str, Any]]:
    """The settings: K classes for each K of the battery, then each truth with its own family.

    >>> [u["setting"] for u in units("log", quick=True)][:2]
    ['classes K=2', 'classes K=3']
    """
    out: list[dict[str, Any]] = []
    class_sizes = PROPERNESS_CLASS_SIZES[mode(quick)]
    for k in PROPERNESS_CLASSES:
        out.append(
            {
                "setting": f"classes K={k}",
                "kind": "classes",
                "classes": k,
                "truth": None,
                "family": None,
                "sizes": dict(class_sizes),
            }
        )
    density_sizes = PROPERNESS_DENSITY_SIZES[mode(quick)]
    for truth in PROPERNESS_TRUTHS:
        family = get_family(truth.split(":", 1)[0]).spec  # the truth's own, all parameters free
        out.append(
            {
                "setting": f"truth {truth} / family {family}",
                "kind": "density",
                "classes": None,
                "truth": truth,
                "family": family,
                "sizes": dict(density_sizes),
            }
        )
    return out


def run(objective: str, unit: dict[str, Any], *, seed: int) -> dict[str, Any]:
    """One setting's verdict with its evidence (see the module docstring); never raises for a
    problem of ``objective`` here (a ``"failed"`` row with the message instead).

    Row keys: ``setting, kind, classes, truth, family, sizes`` (the unit), ``status``,
    ``reason``, ``verdict``, ``claimed``, ``agrees_with_claim``, ``evidence`` (classes:
    ``worst_truth, optimum, gap, distance, how, truths``; densities: ``truth_params, optimum,
    value, at_truth, gap, distance, how, stop``), ``bernardo`` (the dict of
    :func:`bernardo_verdict` on K >= 3 classes, else None) and ``agrees`` (numerical and
    Bernardo verdicts equal; None where either is missing or undetermined).
    """
    setting = unit["setting"]
    rng_seed = stream_seed(seed, PART, setting)

    def work() -> dict[str, Any]:
        obj = get_objective(objective)
        sizes = unit["sizes"]
        if unit["kind"] == "classes":
            v = check_classes(
                obj,
                int(unit["classes"]),
                n_truths=int(sizes["n_truths"]),
                starts=int(sizes["starts"]),
                max_iter=int(sizes["max_iter"]),
                seed=rng_seed,
            )
            evidence = {
                "worst_truth": v.worst_truth,
                "optimum": v.optimum,
                "gap": v.gap,
                "distance": v.distance,
                "how": v.how,
                "truths": v.truths,
            }
        else:
            v = check_density(
                obj,
                unit["truth"],
                unit["family"],
                starts=int(sizes["starts"]),
                max_iter=int(sizes["max_iter"]),
                seed=rng_seed,
            )
            evidence = {
                "truth_params": v.truth_params,
                "optimum": v.optimum,
                "value": v.value,
                "at_truth": v.at_truth,
                "gap": v.gap,
                "distance": v.distance,
                "how": v.how,
                "stop": v.reason,
            }
        bernardo = None
        if unit["kind"] == "classes" and int(unit["classes"]) >= 3:
            bernardo = bernardo_verdict(obj)
            if not bernardo["applies"]:
                bernardo = None
        return {
            "status": "ok",
            "reason": "",
            "verdict": v.verdict,
            "claimed": v.claimed,
            "agrees_with_claim": v.agrees_with_claim,
            "evidence": evidence,
            "bernardo": bernardo,
            "agrees": _agrees(v.verdict, bernardo),
        }

    return guarded(unit, work, ROW_KEYS)


def _agrees(verdict: str | None, bernardo: dict[str, Any] | None) -> bool | None:
    if bernardo is None or verdict in (None, "undetermined"):
        return None
    if bernardo["verdict"] in (None, "undetermined"):
        return None
    return verdict == bernardo["verdict"]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``proper``: the worst verdict over the settings judged (improper < undetermined < proper
    < strictly proper; a setting that failed makes a better-than-improper answer
    "undetermined"), None with ``proper_reason`` where no setting has a verdict;
    ``bernardo``: the theorem's verdict (None for a rule that is not a function of the
    likelihood), ``bernardo_agrees``: whether it agrees with every numerical verdict on
    K >= 3 classes (None where nothing compares)."""
    judged = [r for r in rows if r.get("status") == "ok" and r.get("verdict") is not None]
    failed = [r for r in rows if r.get("status") == "failed"]
    out: dict[str, Any] = {}
    if not judged:
        out["proper"] = None
        why = "; ".join(f"{r['setting']}: {r.get('reason') or r.get('status')}" for r in rows)
        out["proper_reason"] = f"no setting has a verdict ({why or 'no rows'})"
    else:
        worst = min(judged, key=lambda r: _ORDER.index(r["verdict"]))
        verdict = worst["verdict"]
        if failed and verdict != "improper":
            out["proper"] = "undetermined"
            out["proper_reason"] = (
                f"{len(failed)} setting(s) failed ({failed[0]['setting']}: "
                f"{failed[0].get('reason')}); the others: {verdict}"
            )
        else:
            out["proper"] = verdict
            out["proper_reason"] = f"worst over {len(judged)} settings: {worst['setting']}"
    with_b = [r for r in rows if r.get("status") == "ok" and r.get("bernardo")]
    out["bernardo"] = with_b[0]["bernardo"]["verdict"] if with_b else None
    flags = [r["agrees"] for r in with_b if r.get("agrees") is not None]
    out["bernardo_agrees"] = all(flags) if flags else None
    return out


# ---------------------------------------------------------------------- Bernardo (1979)
def bernardo_verdict(objective: str | Objective | Callable[..., torch.Tensor]) -> dict[str, Any]:
    r"""The verdict of Bernardo's theorem for a local rule :math:`S = \phi(p)`, p = f(y), on
    K >= 3 outcomes (Bernardo 1979, Ann. Statist. 7:686-690): proper only if
    :math:`\phi(p) = a + b \log p`; then strictly proper for b < 0, proper (constant) for
    b = 0, improper for b > 0; improper when φ is not affine in log p.

    Checked numerically: φ on ``BERNARDO_POINTS`` values of :math:`\log p` evenly spaced over
    ``BERNARDO_LOG_P`` (p in (0, 1]), a least-squares line :math:`a + b\log p`, and φ is affine
    when the largest residual is at most ``BERNARDO_RTOL`` of φ's range on the grid (exactly
    constant: range 0).

    Returns a JSON-ready dict: ``applies`` (φ exists: a ``phi:`` spec, a one-argument user
    function, a built-in local rule), ``verdict`` (None when not applicable, "undetermined"
    when φ is not finite on the grid or the user's φ raised), ``affine``, ``a``, ``b``,
    ``residual`` (relative to φ's range), ``reason``, ``grid``.

    >>> bernardo_verdict("phi:-2*l+3")["verdict"]
    'strictly proper'
    >>> bernardo_verdict("phi:-p**0.3")["verdict"]
    'improper'
    """
    obj = get_objective(objective)
    grid = {"log_p": list(BERNARDO_LOG_P), "points": BERNARDO_POINTS}
    out: dict[str, Any] = {
        "applies": False,
        "verdict": None,
        "affine": None,
        "a": math.nan,
        "b": math.nan,
        "residual": math.nan,
        "reason": "",
        "grid": grid,
    }
    phi = _phi_of_log_p(obj)
    if phi is None:
        out["reason"] = (
            f"{obj.spec} is not written as a function of the likelihood alone: Bernardo's "
            "theorem (local rules) does not apply"
        )
        return out
    out["applies"] = True
    log_p = torch.linspace(*BERNARDO_LOG_P, BERNARDO_POINTS, dtype=torch.float64)
    try:
        with torch.no_grad():
            values = phi(log_p)
        if not isinstance(values, torch.Tensor):
            raise LikelabError(f"φ returned a {type(values).__name__}, not a tensor")
        values = values.to(torch.float64).broadcast_to(log_p.shape).numpy()
    except Exception as exc:  # the user's φ: its failure is the evidence (no verdict)
        out["verdict"] = "undetermined"
        out["reason"] = f"φ could not be evaluated on p in (0, 1]: {' '.join(str(exc).split())}"
        return out
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        out["verdict"] = "undetermined"
        out["reason"] = (
            f"φ is {values[i]} at p = {math.exp(float(log_p[i])):.6g}: not a finite score on "
            "(0, 1], no verdict"
        )
        return out
    x = log_p.numpy()
    span = float(values.max() - values.min())
    if span == 0.0:
        a, b, rel = float(values[0]), 0.0, 0.0
    else:
        design = np.stack([np.ones_like(x), x], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, values, rcond=None)
        a, b = float(a), float(b)
        rel = float(np.abs(values - (a + b * x)).max() / span)
    out.update(a=a, b=b, residual=rel, affine=rel <= BERNARDO_RTOL)
    if not out["affine"]:
        out["verdict"] = "improper"
        out["reason"] = (
            f"φ is not affine in log p (largest residual {rel:.2e} of its range, above "
            f"{BERNARDO_RTOL:g}): on three or more outcomes the local rule is improper"
        )
    elif span == 0.0:
        out["verdict"] = "proper"
        out["reason"] = (
            f"φ is constant ({a:.6g}): every forecast scores the same, proper, not strictly"
        )
    elif b < 0:
        out["verdict"] = "strictly proper"
        out["reason"] = f"φ = {a:.6g} {b:+.6g}·log p with b < 0: the log score, rescaled"
    else:
        out["verdict"] = "improper"
        out["reason"] = f"φ = {a:.6g} {b:+.6g}·log p with b > 0: rewards unlikely outcomes"
    return jsonable(out)


def _phi_of_log_p(obj: Objective) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """φ as a function of l = log p, where the objective has one: a local rule's registered
    φ (``log``, ``linear``, ``lq``, ...), or a user function of the likelihood alone
    (``phi:EXPR``, a one-argument callable: :class:`~likelab.objectives.user.UserLoss` with
    ``of`` set)."""
    if obj.phi_fn is not None:
        phi_fn, hyper = obj.phi_fn, dict(obj.hyper)
        return lambda log_p: phi_fn(log_p, **hyper)[0]
    fn = obj.fn
    if isinstance(fn, UserLoss) and fn.of is not None:
        user, of, hyper = fn.fn, fn.of, dict(obj.hyper)
        return lambda log_p: user(log_p if of == "l" else log_p.exp(), **hyper)
    return None
