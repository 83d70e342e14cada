r"""Scorecard part 2, landscape: how often an objective's empirical risk is multimodal.

For every truth of :data:`~likelab.scorecard.battery.LANDSCAPE_TRUTHS`, every sample size of
:data:`~likelab.scorecard.battery.LANDSCAPE_N` and every scan of
:data:`~likelab.scorecard.battery.LANDSCAPE_KINDS`, many seeded datasets are drawn and the
empirical risk :math:`R(\theta) = \frac1n \sum_i S(F_\theta, y_i)` (the objective's ``risk``)
is evaluated on one grid for all of them at once: the loss tensor has shape
(datasets x grid points x n), chunked over datasets and grid points so that one chunk holds
:data:`~likelab.scorecard.battery.LANDSCAPE_CHUNK_ELEMENTS` elements, with the memory estimated
before anything is allocated. Each dataset's risk is then read like ``likelab landscape`` reads
one (:func:`likelab.landscape.grid.summarise`, plateau-aware local minima):

- *multimodal*: more than one local minimum (minima shallower than rounding error merged:
  :func:`likelab.landscape.grid.significant_minima`);
- *farther than the MLE*: the global minimum lies strictly farther from the truth than
  ``log``'s global minimum on the same grid and the same dataset (paired), in the standardised
  distance :math:`|\mu - \mu_0| / \sigma_0` for location scans and
  :math:`\sqrt{((\mu - \mu_0)/\sigma_0)^2 + \log^2(\sigma / \sigma_0)}` on the location-scale
  surface.

Shares come with their binomial Monte Carlo standard error :math:`\sqrt{\hat p (1 - \hat p) / m}`
over the :math:`m` datasets on which they are determined. The scans are the seed's question
(Stats.SE, "why not the sum of likelihoods": the sum of N(mu, 0.1²) likelihoods of ten N(0, 1)
draws is "highly multimodal and nonconvex") asked of any objective, at the truth's scale, at a
narrow scale (the seed's) and with the scale free.

Every dataset is drawn by ``parse_dgp(truth).sample(n, seed=s)`` with its own seed
``s = stream_seed(seed, "landscape", f"{truth} / n={n} / dataset {j}")``: every scan and every
objective sees the same datasets, and the evidence a row gives (a dataset with more than one
minimum) is reproduced by the ``likelab landscape --simulate ... --seed s`` command it quotes.
"""

from __future__ import annotations

import math
import shlex
from typing import Any

import numpy as np
import torch

from likelab._budget import check_memory
from likelab.errors import LikelabError, UnsupportedError
from likelab.families import get_family, parse_dgp
from likelab.landscape.grid import ROUNDING_EPS
from likelab.landscape.grid import summarise as summarise_landscape
from likelab.objectives import get_objective
from likelab.scorecard import battery
from likelab.scorecard.battery import stream_seed

__all__ = ["PART", "dataset_seed", "run", "summarise", "units"]

PART = "landscape"
#: The reference the "farther than the MLE" comparison is paired with.
MLE = "log"
#: How many minima a row's evidence lists.
_EVIDENCE_MINIMA = 10


# ---------------------------------------------------------------------- units
def units(objective: str, *, quick: bool) -> list[dict[str, Any]]:
    """One unit per (truth, n, scan): the grid, the fixed scale and the number of datasets.

    The units do not depend on the objective (every objective is judged on the same scans).
    """
    size = "quick" if quick else "full"
    return [
        _unit(truth, n, kind, size)
        for truth in battery.LANDSCAPE_TRUTHS
        for n in battery.LANDSCAPE_N
        for kind in battery.LANDSCAPE_KINDS
    ]


def _unit(truth: str, n: int, kind: str, size: str) -> dict[str, Any]:
    true_fam = get_family(truth)
    loc0 = float(true_fam.fixed["loc"])
    scale0 = float(true_fam.fixed["scale"])
    shape = {k: float(v) for k, v in true_fam.fixed.items() if k not in ("loc", "scale")}
    if kind == "location-scale":
        fixed: dict[str, float] = {}
        lo, hi, points = battery.LANDSCAPE_SURFACE_LOC[size]
        slo, shi, spoints = battery.LANDSCAPE_SURFACE_SCALE[size]
        grid = {
            "loc": [loc0 + scale0 * lo, loc0 + scale0 * hi, points],
            "scale": [scale0 * slo, scale0 * shi, spoints],
        }
    else:
        narrow = battery.LANDSCAPE_NARROW if kind == "location-narrow" else 1.0
        fixed = {"scale": scale0 * narrow}
        lo, hi, points = battery.LANDSCAPE_LOC_AXIS[size]
        grid = {"loc": [loc0 + scale0 * lo, loc0 + scale0 * hi, points]}
    model = get_family(true_fam.name, **shape, **fixed).spec
    return {
        "setting": f"{truth} / n={n} / {kind}",
        "truth": truth,
        "n": int(n),
        "kind": kind,
        "family": model,
        "grid": grid,
        "datasets": int(battery.LANDSCAPE_DATASETS[size]),
    }


# ---------------------------------------------------------------------- run
def run(objective: str, unit: dict[str, Any], *, seed: int) -> dict[str, Any]:
    """Evaluate ``objective`` (and ``log``, for the paired comparison) on the unit's datasets.

    The row: the unit's keys, ``status`` / ``reason``, and ``evaluated`` (datasets with a finite
    global minimum), ``multimodal`` (count) with ``multimodal_share`` / ``multimodal_se``,
    ``mean_minima`` and ``max_minima``, ``boundary`` (global minimum on the grid's edge),
    ``compared`` / ``farther`` / ``ties`` with ``farther_share`` / ``farther_se``,
    ``median_distance`` and ``mle_median_distance`` (standardised distance of the global minimum
    from the truth), ``mle_multimodal`` (``log``'s own count), ``rounding_eps`` (minima
    shallower than this many epsilons x max|risk| are merged) and ``evidence`` (the first
    dataset with more than one minimum, with the command that shows it, or None).
    A problem of this objective here (it cannot be evaluated on this family, a user objective
    that raises, a grid that does not fit in memory) is a row with status ``"not applicable"``
    or ``"failed"`` and its reason; nothing is raised.
    """
    row: dict[str, Any] = {
        key: unit[key] for key in ("setting", "truth", "n", "kind", "family", "grid", "datasets")
    }
    row.update(_EMPTY)
    try:
        obj = get_objective(objective)
        specs = [obj.spec] if obj.spec == MLE else [obj.spec, MLE]
        objs = {obj.spec: obj, MLE: get_objective(MLE)}
        fam = get_family(unit["family"])
        axes = {p: np.linspace(lo, hi, int(k)) for p, (lo, hi, k) in unit["grid"].items()}
        names = tuple(p for p in fam.param_names if p in axes)
        data, seeds = _datasets(unit, seed)
        y = fam.check_data(data)
        per = _evaluate({s: objs[s] for s in specs}, fam, y, names, axes)
    except UnsupportedError as exc:
        return {**row, "status": "not applicable", "reason": _one_line(exc)}
    except LikelabError as exc:
        return {**row, "status": "failed", "reason": _one_line(exc)}
    mine, mle = per[obj.spec], per[MLE]
    truth = get_family(unit["truth"]).fixed
    loc0, scale0 = float(truth["loc"]), float(truth["scale"])
    dist = _distances(mine, loc0, scale0)
    dist_mle = _distances(mle, loc0, scale0)
    counts = np.array([d["minima"] for d in mine])
    finite = counts > 0
    m = int(finite.sum())
    multimodal = int((counts > 1).sum())
    both = np.isfinite(dist) & np.isfinite(dist_mle)
    farther = int((dist[both] > dist_mle[both]).sum())
    ties = int((dist[both] == dist_mle[both]).sum())
    compared = int(both.sum())
    row.update(
        evaluated=m,
        multimodal=multimodal,
        multimodal_share=_share(multimodal, m),
        multimodal_se=_binomial_se(multimodal, m),
        mean_minima=float(counts[finite].mean()) if m else math.nan,
        max_minima=int(counts.max()) if m else 0,
        boundary=int(sum(bool(d["on_boundary"]) for d in mine)),
        compared=compared,
        farther=farther,
        ties=ties,
        farther_share=_share(farther, compared),
        farther_se=_binomial_se(farther, compared),
        median_distance=float(np.median(dist[np.isfinite(dist)])) if m else math.nan,
        mle_median_distance=(
            float(np.median(dist_mle[np.isfinite(dist_mle)]))
            if np.isfinite(dist_mle).any()
            else math.nan
        ),
        mle_multimodal=int(sum(d["minima"] > 1 for d in mle)),
        rounding_eps=ROUNDING_EPS,
        evidence=_evidence(obj.spec, unit, mine, seeds),
    )
    if m == 0:
        row["status"] = "failed"
        row["reason"] = (
            f"{obj.spec}'s risk has no finite value on the grid for any of the "
            f"{unit['datasets']} datasets"
        )
    else:
        row["status"] = "ok"
        if m < len(mine):
            row["reason"] = (
                f"{len(mine) - m} of {len(mine)} datasets have no finite risk on the grid "
                "(undetermined, left out of the shares)"
            )
    return row


#: The result keys of a row, before anything is known (failed and not-applicable rows keep them).
_EMPTY: dict[str, Any] = {
    "status": "failed",
    "reason": None,
    "evaluated": 0,
    "multimodal": 0,
    "multimodal_share": math.nan,
    "multimodal_se": math.nan,
    "mean_minima": math.nan,
    "max_minima": 0,
    "boundary": 0,
    "compared": 0,
    "farther": 0,
    "ties": 0,
    "farther_share": math.nan,
    "farther_se": math.nan,
    "median_distance": math.nan,
    "mle_median_distance": math.nan,
    "mle_multimodal": 0,
    "rounding_eps": ROUNDING_EPS,
    "evidence": None,
}


def dataset_seed(seed: int, unit: dict[str, Any], j: int) -> int:
    """The seed of dataset ``j`` of the unit's (truth, n): named, shared by every scan."""
    return stream_seed(seed, PART, f"{unit['truth']} / n={unit['n']} / dataset {j}")


def _datasets(unit: dict[str, Any], seed: int) -> tuple[np.ndarray, list[int]]:
    dgp = parse_dgp(unit["truth"])
    seeds = [dataset_seed(seed, unit, j) for j in range(int(unit["datasets"]))]
    data = np.stack([dgp.sample(int(unit["n"]), seed=s) for s in seeds])
    return data, seeds


def _evaluate(
    objs: dict[str, Any],
    fam: Any,
    y: torch.Tensor,
    names: tuple[str, ...],
    axes: dict[str, np.ndarray],
) -> dict[str, list[dict[str, Any]]]:
    """Each objective's risk on every dataset (rows of ``y``) over the grid, read per dataset."""
    shape = tuple(len(axes[p]) for p in names)
    points = math.prod(shape)
    r_all, n = y.shape
    budget = battery.LANDSCAPE_CHUNK_ELEMENTS
    g_chunk = max(1, min(points, budget // n))
    # the risks of one block of datasets for every objective, and one chunk's temporaries
    r_block = max(1, min(r_all, (64 * 2**20) // (8 * points * len(objs))))
    nbytes = 8.0 * r_block * points * len(objs) + 8 * 8.0 * max(budget, n) + 16.0 * points
    check_memory(nbytes, what=f"the {' x '.join(map(str, shape))} grid on n = {n}")
    mesh = np.meshgrid(*(axes[p] for p in names), indexing="ij")
    flat = {
        p: torch.as_tensor(a.reshape(-1), dtype=torch.float64)
        for p, a in zip(names, mesh, strict=True)
    }
    out: dict[str, list[dict[str, Any]]] = {spec: [] for spec in objs}
    with torch.no_grad():
        for r0 in range(0, r_all, r_block):
            yb = y[r0 : r0 + r_block]
            rb = yb.shape[0]
            risks = {spec: torch.empty(rb, points, dtype=torch.float64) for spec in objs}
            r_chunk = max(1, budget // (g_chunk * n))
            for g0 in range(0, points, g_chunk):
                dist = fam.distribution(**{p: v[g0 : g0 + g_chunk, None] for p, v in flat.items()})
                for c0 in range(0, rb, r_chunk):
                    yc = yb[c0 : c0 + r_chunk, None, :]
                    for spec, o in objs.items():
                        risk = o.risk(dist, yc, dim=-1, validate=False)
                        risks[spec][c0 : c0 + r_chunk, g0 : g0 + g_chunk] = risk.reshape(
                            yc.shape[0], -1
                        )
            for spec in objs:
                values = risks[spec].numpy().reshape(rb, *shape)
                out[spec].extend(_read(spec, v, names, axes) for v in values)
    return out


def _read(
    spec: str, values: np.ndarray, names: tuple[str, ...], axes: dict[str, np.ndarray]
) -> dict[str, Any]:
    """One dataset's landscape, read as ``likelab landscape`` reads it: its minima (shallower
    than rounding error merged), global argmin and whether that lies on the grid's edge."""
    land = summarise_landscape(spec, values, names, axes)
    if not land.minima:
        return {"minima": 0, "argmin": {}, "on_boundary": False, "list": []}
    best = land.minima[0]
    return {
        "minima": land.local_minima,
        "argmin": dict(best.params),
        "on_boundary": bool(best.on_boundary),
        "list": land.minima,
    }


def _distances(per: list[dict[str, Any]], loc0: float, scale0: float) -> np.ndarray:
    out = np.full(len(per), math.nan)
    for i, d in enumerate(per):
        a = d["argmin"]
        if not a:
            continue
        z = (a["loc"] - loc0) / scale0
        out[i] = math.hypot(z, math.log(a["scale"] / scale0)) if "scale" in a else abs(z)
    return out


def _evidence(
    spec: str, unit: dict[str, Any], per: list[dict[str, Any]], seeds: list[int]
) -> dict[str, Any] | None:
    """The first dataset with more than one significant minimum, and how to see it."""
    j = next((i for i, d in enumerate(per) if d["minima"] > 1), None)
    if j is None:
        return None
    d = per[j]
    params = " ".join(
        f"--param {p}={_num(lo)}:{_num(hi)}:{int(k)}" for p, (lo, hi, k) in unit["grid"].items()
    )
    simulate = f"{unit['truth']},n={unit['n']}"
    command = (
        f"likelab landscape --simulate {shlex.quote(simulate)} "
        f"--seed {seeds[j]} --family {shlex.quote(unit['family'])} {params} "
        f"--objectives {shlex.quote(spec if spec == MLE else f'{spec},{MLE}')}"
    )
    return {
        "dataset": j,
        "seed": seeds[j],
        "local_minima": d["minima"],
        "minima": [
            {
                "params": dict(m.params),
                "value": float(m.value),
                "on_boundary": bool(m.on_boundary),
            }
            for m in d["list"][:_EVIDENCE_MINIMA]
        ],
        "command": command,
    }


def _num(x: float) -> str:
    return repr(float(x)).removesuffix(".0") if float(x).is_integer() else repr(float(x))


def _share(k: int, m: int) -> float:
    return k / m if m else math.nan


def _binomial_se(k: int, m: int) -> float:
    """Binomial Monte Carlo standard error of the share ``k / m`` (NaN when m = 0)."""
    if not m:
        return math.nan
    p = k / m
    return math.sqrt(p * (1.0 - p) / m)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


# ---------------------------------------------------------------------- summary
def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``multimodal_rate`` and ``farther_than_mle_rate``: pooled over the ok rows (every truth,
    n and scan), the share of datasets with more than one local minimum, and whose global
    minimum lies farther from the truth than log's; with the same shares per scan
    (``multimodal_rate_by_kind``). None with a ``..._reason`` where no row determines them."""
    ok = [r for r in rows if r.get("status") == "ok" and r.get("evaluated", 0) > 0]
    out: dict[str, Any] = {}
    m = sum(r["evaluated"] for r in ok)
    c = sum(r["compared"] for r in ok)
    if m:
        out["multimodal_rate"] = sum(r["multimodal"] for r in ok) / m
    else:
        out["multimodal_rate"] = None
        out["multimodal_rate_reason"] = _no_rows(rows)
    if c:
        out["farther_than_mle_rate"] = sum(r["farther"] for r in ok) / c
    else:
        out["farther_than_mle_rate"] = None
        out["farther_than_mle_rate_reason"] = _no_rows(rows)
    by_kind: dict[str, float | None] = {}
    for kind in dict.fromkeys(r.get("kind") for r in rows):
        group = [r for r in ok if r.get("kind") == kind]
        total = sum(r["evaluated"] for r in group)
        by_kind[str(kind)] = sum(r["multimodal"] for r in group) / total if total else None
    out["multimodal_rate_by_kind"] = by_kind
    return out


def _no_rows(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no landscape rows"
    reasons = sorted({str(r.get("reason")) for r in rows if r.get("status") != "ok"})
    return "no landscape row was evaluated: " + "; ".join(reasons) if reasons else "no datasets"
