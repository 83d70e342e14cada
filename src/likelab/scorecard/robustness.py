r"""Scorecard part 4: gross-error sensitivity, bias under contamination, breakdown.

For each (family, truth, contamination G) of ``ROBUSTNESS_SETTINGS``
(:mod:`likelab.scorecard.battery`):

- the gross-error sensitivity :math:`\gamma^*_j = \sup_x |\mathrm{IF}_j(x)|` per parameter,
  bounded or not (Hampel et al. 1986, sec. 2.1; :func:`likelab.asymptotics`);
- the asymptotic bias :math:`\theta^*(\varepsilon) - \theta^*(0)` under Huber's gross-error
  model :math:`(1-\varepsilon)P + \varepsilon G` for ε in ``ROBUSTNESS_EPS`` (Huber 1964;
  :func:`likelab.asymptotics.bias.contamination_bias`): for the log score at the normal
  location and G a point mass at :math:`x_0` it is :math:`\varepsilon x_0`;
- the numerical breakdown point: the smallest ε (up to the largest ε of the grid) at which some
  parameter moves by more than ``ROBUSTNESS_BOUND``, bisected ``ROBUSTNESS_BISECT`` times inside
  its bracket on the grid (quick: not refined, the first ε of the grid that breaks); ``None``: no
  ε of the grid breaks.

Where the objective has no θ* on the uncontaminated truth (``linear`` with a free scale), the row
is ``"not applicable"`` with the reason.
"""

from __future__ import annotations

import math
from typing import Any

from likelab.asymptotics import asymptotics
from likelab.asymptotics.bias import contamination_bias
from likelab.errors import LikelabError
from likelab.objectives import get_objective
from likelab.scorecard.battery import (
    ROBUSTNESS_BISECT,
    ROBUSTNESS_BOUND,
    ROBUSTNESS_EPS,
    ROBUSTNESS_SETTINGS,
    guarded,
    mode,
)

__all__ = ["PART", "ROW_KEYS", "run", "summarise", "units"]

PART = "robustness"
#: The keys of every row besides the unit's (``setting, family, truth, contamination, eps,
#: bound, bisect``).
ROW_KEYS = (
    "status",
    "reason",
    "params",
    "theta_star",
    "ges",
    "bias",
    "theta_star_eps",
    "bias_reasons",
    "breakdown",
    "breakdown_evidence",
    "bias_reason",
)


def units(objective: str, *, quick: bool) -> list[dict[str, Any]]:
    """One unit per (family, truth, contamination) of the battery.

    >>> units("log", quick=True)[0]["setting"]
    'family normal / truth normal:loc=0,scale=1 / contamination point:at=8'
    """
    return [
        {
            "setting": f"family {family} / truth {truth} / contamination {g}",
            "family": family,
            "truth": truth,
            "contamination": g,
            "eps": list(ROBUSTNESS_EPS),
            "bound": ROBUSTNESS_BOUND,
            "bisect": ROBUSTNESS_BISECT[mode(quick)],
        }
        for family, truth, g in ROBUSTNESS_SETTINGS[mode(quick)]
    ]


def run(objective: str, unit: dict[str, Any], *, seed: int) -> dict[str, Any]:
    """GES, bias and breakdown in one setting (by quadrature: ``seed`` draws nothing here).

    Row keys: the unit's (``setting, family, truth, contamination, eps, bound, bisect``),
    ``status``,
    ``reason``, ``params``, ``theta_star`` (at ε = 0), ``ges`` (per parameter ``{"value",
    "bounded", "evidence"}``), ``bias`` and ``theta_star_eps`` (per parameter, one value per
    ε of ``eps``; NaN where θ*(ε) does not exist, ``bias_reasons`` says why), ``breakdown``
    (None: no ε of the grid breaks), ``breakdown_evidence``, ``bias_reason`` (why there is no
    bias at all, else "").
    """

    def work() -> dict[str, Any]:
        obj = get_objective(objective)
        family, truth = unit["family"], unit["truth"]
        r = asymptotics(obj, family, truth)
        row: dict[str, Any] = {"params": list(r.params), "theta_star": r.theta_star}
        if r.reason:
            return {**row, "status": "not applicable", "reason": r.reason}
        row["ges"] = r.gross_error_sensitivity
        try:
            b = contamination_bias(
                obj,
                family,
                truth,
                unit["contamination"],
                unit["eps"],
                bound=float(unit["bound"]),
                bisect=int(unit["bisect"]),
            )
        except LikelabError as exc:  # the GES stands; the bias has its own reason
            row["bias_reason"] = " ".join(str(exc).split())
        else:
            row.update(
                bias=b.bias,
                theta_star_eps=b.theta_star,
                bias_reasons=b.reasons,
                breakdown=b.breakdown,
                breakdown_evidence=b.breakdown_evidence,
                bias_reason="",
            )
        return {**row, "status": "ok", "reason": ""}

    return guarded(unit, work, ROW_KEYS)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``bounded_influence``: True when every gross-error sensitivity of every judged setting
    is bounded, False when one is not, None (with ``bounded_influence_reason``) without
    evidence; ``max_bias_10``: the largest |θ*(0.1) − θ*(0)| over settings and parameters
    (None with ``max_bias_10_reason`` without a finite one); ``breakdown``: the smallest
    breakdown point found (None: no setting breaks up to the largest ε, ``breakdown_note``)."""
    ok = [r for r in rows if r.get("status") == "ok"]
    out: dict[str, Any] = {}
    flags = [
        (g["bounded"], r["setting"], k)
        for r in ok
        for k, g in (r.get("ges") or {}).items()
        if g.get("bounded") is not None
    ]
    if flags:
        out["bounded_influence"] = all(f for f, _, _ in flags)
        out["unbounded_at"] = [{"setting": s, "param": k} for f, s, k in flags if not f]
    else:
        out["bounded_influence"] = None
        out["bounded_influence_reason"] = "no setting has a gross-error sensitivity" + _why(rows)
    biases = []
    for r in ok:
        eps, bias = r.get("eps") or [], r.get("bias") or {}
        if 0.1 not in eps:
            continue
        i = eps.index(0.1)
        for k, values in bias.items():
            v = values[i]
            if v is not None and math.isfinite(v):
                biases.append((abs(v), r["setting"], k))
    if biases:
        value, setting, param = max(biases)
        out["max_bias_10"] = value
        out["max_bias_10_at"] = {"setting": setting, "param": param}
    else:
        out["max_bias_10"] = None
        out["max_bias_10_reason"] = "no setting has a finite bias at ε = 0.1" + _why(rows)
    points = [(r["breakdown"], r["setting"]) for r in ok if r.get("breakdown") is not None]
    if points:
        out["breakdown"], where = min(points)
        out["breakdown_at"] = {"setting": where}
    else:
        out["breakdown"] = None
        judged = [r for r in ok if r.get("bias")]
        out["breakdown_note"] = (
            f"no ε up to {max(max(r['eps']) for r in judged):g} breaks in any setting"
            if judged
            else "no setting has a bias" + _why(rows)
        )
    return out


def _why(rows: list[dict[str, Any]]) -> str:
    notes = [
        f"{r['setting']}: {r.get('reason') or r.get('bias_reason')}"
        for r in rows
        if r.get("status") != "ok" or r.get("bias_reason")
    ]
    return f" ({'; '.join(notes)})" if notes else ""
