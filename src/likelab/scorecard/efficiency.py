r"""Scorecard part 3 (theory): asymptotic relative efficiency against the log score.

For each (family, truth) of ``EFFICIENCY_SETTINGS`` (:mod:`likelab.scorecard.battery`), the truth
the family's standard member, :func:`likelab.asymptotics` gives θ* of the objective and the
sandwich :math:`V = A^{-1} B A^{-1}` (Huber 1964; van der Vaart 1998, Thm 5.23), and the ARE per
parameter :math:`V_{\log,jj} / V_{jj}`. Where the objective has no θ* inside the parameter space
(``linear`` with a free scale: the scale runs to 0) or A is singular, the row is
``"not applicable"`` with the reason, and no number is reported. Where θ* differs from log's
(an inconsistent estimator), the ARE compares variances around different limits: the row says
so (``theta_star_differs``, ``mse_ratio`` at n = ``EFFICIENCY_N``) and :func:`summarise` leaves
it out of the worst-case ARE.

The paired simulation check at n = 100 with its Monte Carlo SE runs through ``likelab.study``
(the orchestrator's part).
"""

from __future__ import annotations

import math
from typing import Any

from likelab.asymptotics import asymptotics
from likelab.objectives import get_objective
from likelab.scorecard.battery import EFFICIENCY_N, EFFICIENCY_SETTINGS, guarded, mode

__all__ = ["PART", "ROW_KEYS", "run", "summarise", "units"]

PART = "efficiency"
#: The keys of every row besides the unit's (``setting, family, truth``).
ROW_KEYS = (
    "status",
    "reason",
    "params",
    "are",
    "theta_star",
    "log_theta_star",
    "theta_star_differs",
    "asymptotic_sd",
    "mse_ratio",
    "n",
    "are_reason",
)


def units(objective: str, *, quick: bool) -> list[dict[str, Any]]:
    """One unit per (family, truth) of the battery.

    >>> units("log", quick=True)[1]["setting"]
    'family normal:scale=1 / truth normal:loc=0,scale=1'
    """
    return [
        {"setting": f"family {family} / truth {truth}", "family": family, "truth": truth}
        for family, truth in EFFICIENCY_SETTINGS[mode(quick)]
    ]


def run(objective: str, unit: dict[str, Any], *, seed: int) -> dict[str, Any]:
    """θ*, asymptotic SDs and the ARE against log in one setting (by quadrature: ``seed`` draws
    nothing here and is accepted for the parts' common signature).

    Row keys: the unit's (``setting, family, truth``), ``status``, ``reason``, ``params``,
    ``are`` (per parameter), ``theta_star``, ``log_theta_star``, ``theta_star_differs``,
    ``asymptotic_sd``, ``mse_ratio``, ``n`` (of the MSE ratio), ``are_reason``. ``"not
    applicable"`` where the objective has no θ* or no invertible A here (``reason`` says why),
    or where the ARE is not a finite number (``are_reason``).
    """

    def work() -> dict[str, Any]:
        obj = get_objective(objective)
        r = asymptotics(obj, unit["family"], unit["truth"], n=EFFICIENCY_N)
        row = {
            "params": list(r.params),
            "are": r.are_vs_log,
            "theta_star": r.theta_star,
            "log_theta_star": r.log_theta_star,
            "theta_star_differs": r.theta_star_differs,
            "asymptotic_sd": r.asymptotic_sd,
            "mse_ratio": r.mse_ratio,
            "n": r.n,
            "are_reason": r.are_reason,
        }
        if r.reason:
            return {**row, "status": "not applicable", "reason": r.reason}
        if not all(math.isfinite(v) for v in r.are_vs_log.values()):
            return {
                **row,
                "status": "not applicable",
                "reason": r.are_reason or "the ARE is not a finite number here",
            }
        return {**row, "status": "ok", "reason": ""}

    return guarded(unit, work, ROW_KEYS)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``min_are``: the worst ARE over the settings and parameters where the objective is
    consistent for the same limit as log (``theta_star_differs`` False); ``min_are_at``: where
    (``{"setting", "param"}``). None with ``min_are_reason`` where no setting gives one; never a
    number that no row supports. ``min_are_note`` names settings left out (θ* differs)."""
    ok = [r for r in rows if r.get("status") == "ok"]
    same = [r for r in ok if not r.get("theta_star_differs")]
    out: dict[str, Any] = {}
    candidates = [
        (float(v), r["setting"], k)
        for r in same
        for k, v in (r.get("are") or {}).items()
        if v is not None and math.isfinite(v)
    ]
    if candidates:
        value, setting, param = min(candidates)
        out["min_are"] = value
        out["min_are_at"] = {"setting": setting, "param": param}
    else:
        out["min_are"] = None
        out["min_are_at"] = None
        why = [f"{r['setting']}: {r.get('reason') or r.get('status')}" for r in rows if r not in ok]
        why += [f"{r['setting']}: θ* differs from log's" for r in ok if r not in same]
        out["min_are_reason"] = "no setting has an ARE at a common limit" + (
            f" ({'; '.join(why)})" if why else " (no rows)"
        )
    left = [r["setting"] for r in ok if r not in same]
    if left:
        out["min_are_note"] = (
            "left out, θ* of the objective differs from log's there (the ARE compares "
            f"variances around different limits; see mse_ratio): {', '.join(left)}"
        )
    return out
