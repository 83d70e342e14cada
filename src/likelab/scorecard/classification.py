r"""Scorecard part 5, classification: what a network trained with the objective learns.

Three settings (:data:`~likelab.scorecard.battery.CLASSIFICATION_SETTINGS`), each trained with
:func:`likelab.classify.compare` on one or more seeds (paired: every objective sees the same
split, label noise, initial weights and batch order for a seed):

- ``xor:flip=0.2``: XOR with 20% of the labels of every point flipped, so the true
  :math:`P(Y=1 \mid x)` is 0.8 or 0.2. The gap to the truth is ``prob_gap``
  :math:`= \frac1{nK}\sum_{i,k} |\hat p_{ik} - p_{ik}|` (for two classes the mean
  :math:`|\hat P(Y=1|x) - P(Y=1|x)|`); how far the predictions are pushed to 0 and 1 is
  ``extremeness`` :math:`= \frac1n\sum_i |\hat P(Y=1|x_i) - 1/2|` (0.3 for the truth, 0.5 for
  predictions of exactly 0 and 1) and ``extreme_share``, the share of test examples whose
  largest predicted probability is within
  :data:`~likelab.scorecard.battery.CLASSIFICATION_EXTREME` of 1;
- ``next-word``: the seed's corpus ("data science is" fun 6/10, hard 3/10, cool 1/10, ...); the
  gap to the corpus frequencies is the total variation
  :math:`\mathrm{TV} = \frac12 \sum_k |\hat p_k - p_k|` between the predicted next-word
  distribution and the corpus' conditional frequencies, averaged over the test examples
  (``tv``; ``tv_max`` the largest);
- ``digits / noise symmetric:0.4``: scikit-learn's digits with 40% symmetric label noise on the
  training labels; accuracy and expected calibration error (15 bins, Guo et al. 2017) on the
  clean test labels.

Every metric is a mean over the seeds whose run neither diverged nor failed, with its standard
deviation over seeds (``None`` with fewer than two such runs); when and why each run stopped is
kept (``stops``). An objective that cannot train a classifier (``crps``, ``hyvarinen``: no
formula for a ``Categorical``) gives a row with status ``"not applicable"`` and the reason.
Seeds: run ``j`` of a setting uses ``stream_seed(seed, "classification", f"{setting} / seed
{j}")`` for the dataset (split, noise) and for the network (weights, batch order).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from likelab.classify import compare
from likelab.classify.trainer import _classification_objective, stop_summary
from likelab.errors import LikelabError, UnsupportedError
from likelab.objectives import get_objective
from likelab.scorecard import battery
from likelab.scorecard.battery import stream_seed

__all__ = ["METRICS", "PART", "run", "summarise", "units"]

PART = "classification"
#: The metrics of a row (each with ``_sd``); ``None`` where the dataset does not define it.
METRICS = (
    "accuracy",
    "ece",
    "nll",
    "brier",
    "confidence",
    "prob_gap",
    "tv",
    "tv_max",
    "extremeness",
    "extreme_share",
)
#: The summary's entries: (key, setting, metric).
_SUMMARY = (
    ("prob_gap", "xor:flip=0.2", "prob_gap"),
    ("extremeness", "xor:flip=0.2", "extremeness"),
    ("extreme_share", "xor:flip=0.2", "extreme_share"),
    ("next_word_tv", "next-word", "tv"),
    ("ece", "digits / noise symmetric:0.4", "ece"),
    ("noisy_accuracy", "digits / noise symmetric:0.4", "accuracy"),
)


def units(objective: str, *, quick: bool) -> list[dict[str, Any]]:
    """One unit per setting: dataset, noise, model, epochs, batch size, lr and seed count."""
    size = "quick" if quick else "full"
    return [
        {"setting": setting, **dict(sizes[size])}
        for setting, sizes in battery.CLASSIFICATION_SETTINGS.items()
    ]


def run(objective: str, unit: dict[str, Any], *, seed: int) -> dict[str, Any]:
    """Train ``objective`` on the unit's dataset for each of its seeds; one row of metrics.

    Row keys: the unit's (``setting``, ``dataset``, ``noise``, ``model``, ``epochs``,
    ``batch_size``, ``lr``), ``seeds`` (the derived seeds, a list), ``status``, ``reason``,
    ``runs`` / ``ok_runs`` / ``diverged`` / ``failed`` (counts), ``stopped`` (one line),
    ``stops`` (per run), each of :data:`METRICS` and its ``_sd``, and ``true_extremeness`` /
    ``true_extreme_share`` (the true probabilities' own values, where known). Nothing is
    raised for a problem of this objective: it is the row's status and reason.
    """
    seeds = [stream_seed(seed, PART, f"{unit['setting']} / seed {j}") for j in range(unit["seeds"])]
    row: dict[str, Any] = {
        "setting": unit["setting"],
        "dataset": unit["dataset"],
        "noise": unit["noise"],
        "model": unit["model"],
        "epochs": unit["epochs"],
        "batch_size": unit["batch_size"],
        "lr": unit["lr"],
        "seeds": seeds,
        "status": "failed",
        "reason": None,
        "runs": 0,
        "ok_runs": 0,
        "diverged": 0,
        "failed": 0,
        "stopped": "",
        "stops": [],
        **{k: None for m in METRICS for k in (m, f"{m}_sd")},
        "true_extremeness": None,
        "true_extreme_share": None,
    }
    try:
        obj = get_objective(objective)
    except LikelabError as exc:
        return {**row, "reason": _one_line(exc)}
    try:
        _classification_objective(obj)
    except UnsupportedError as exc:
        return {**row, "status": "not applicable", "reason": _one_line(exc)}
    except LikelabError as exc:
        return {**row, "reason": _one_line(exc)}
    try:
        comparison = compare(
            unit["dataset"],
            [obj],
            seeds=seeds,
            noise=unit["noise"],
            model=unit["model"],
            epochs=unit["epochs"],
            batch_size=unit["batch_size"],
            lr=unit["lr"],
            eval_every=0,
        )
    except LikelabError as exc:
        return {**row, "reason": _one_line(exc)}
    runs = comparison.runs
    ok = [r for r in runs if r.ok]
    row.update(
        runs=len(runs),
        ok_runs=len(ok),
        diverged=sum(r.diverged is not None for r in runs),
        failed=sum(r.failed is not None for r in runs),
        stopped=stop_summary(runs),
        stops=[{"seed": r.seed, **_json_ready(r.stop)} for r in runs],
    )
    per_run = [_run_metrics(r) for r in ok]
    for m in METRICS:
        values = [p[m] for p in per_run if p.get(m) is not None]
        row[m] = float(np.mean(values)) if values else None
        row[f"{m}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    if runs and runs[0].p_test is not None:  # the truth's own values, for reference
        truth = _run_metrics(runs[0], runs[0].p_test)
        row["true_extremeness"] = truth.get("extremeness")
        row["true_extreme_share"] = truth["extreme_share"]
    bad = "; ".join(f"seed {r.seed}: {r.diverged or r.failed}" for r in runs if not r.ok)
    if ok:
        row["status"] = "ok"
        row["reason"] = bad or None  # some seeds diverged or failed: said, not hidden
    else:
        row["reason"] = bad or "no run"
    return row


def _run_metrics(r: Any, probs: np.ndarray | None = None) -> dict[str, float | None]:
    """One run's metrics: the trainer's, and the gap / extremeness measures of this part (of
    ``probs`` instead of the run's predictions when given)."""
    probs = np.asarray(r.probs_test if probs is None else probs, dtype=np.float64)
    out: dict[str, float | None] = {k: r.metrics.get(k) for k in METRICS if k in r.metrics}
    top = probs.max(axis=1)
    out["extreme_share"] = float((top >= 1.0 - battery.CLASSIFICATION_EXTREME).mean())
    if probs.shape[1] == 2:
        out["extremeness"] = float(np.abs(probs[:, 1] - 0.5).mean())
    if r.p_test is not None:
        tv = 0.5 * np.abs(probs - np.asarray(r.p_test, dtype=np.float64)).sum(axis=1)
        out["tv"] = float(tv.mean())
        out["tv_max"] = float(tv.max())
    return out


def _json_ready(d: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (float(v) if isinstance(v, np.floating) else v)
        for k, v in d.items()
        if isinstance(v, str | int | float | bool | type(None) | np.floating)
    }


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``prob_gap`` (XOR's gap to the true probabilities), ``extremeness`` and
    ``extreme_share`` (XOR), ``next_word_tv`` (next-word's total variation to the corpus
    frequencies), ``ece`` and ``noisy_accuracy`` (digits with 40% label noise). An entry whose
    row is missing, not ok or not finite is None with ``<key>_reason``."""
    by_setting = {r.get("setting"): r for r in rows}
    out: dict[str, Any] = {}
    for key, setting, metric in _SUMMARY:
        r = by_setting.get(setting)
        value = None if r is None or r.get("status") != "ok" else r.get(metric)
        if value is not None and math.isfinite(value):
            out[key] = value
            continue
        out[key] = None
        if r is None:
            out[f"{key}_reason"] = f"no {setting} row"
        elif r.get("status") != "ok":
            out[f"{key}_reason"] = f"{setting}: {r.get('status')}: {r.get('reason')}"
        else:
            out[f"{key}_reason"] = f"{setting}: {metric} is undetermined"
    return out
