"""The scorecard's simulation check of efficiency: a paired study at n = 100, per family.

The efficiency part gives the asymptotic relative efficiency against ``log`` by theory
(:mod:`likelab.scorecard.efficiency`). Beside it, the relative efficiency measured in a finite
sample: for each family of :data:`SIM_FAMILIES`, one study (:mod:`likelab.study`) fits every
objective judged, ``log`` included, to the *same* seeded datasets of n = 100 from the family's
standard member, both parameters free. So the comparison is paired. Its store is a DuckDB file
beside the scorecard's, resumable after a kill and distributable like any study. From the
study's summary come rel_eff = EmpSE²(log) / EmpSE²(objective) and its Monte Carlo SE (Morris,
White & Crowther 2019, Table 6), per parameter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from likelab.scorecard import battery

__all__ = [
    "SIM_FAMILIES",
    "SIM_N",
    "SIM_REPLICATES",
    "simulation_rows",
    "store_path",
    "study_spec",
]

#: The families of the check, as (family, standard member's parameters).
SIM_FAMILIES: tuple[tuple[str, dict[str, float]], ...] = (
    ("normal", {"loc": 0.0, "scale": 1.0}),
    ("student_t:df=5", {"loc": 0.0, "scale": 1.0}),
)
#: The sample size of the check (the issue's n = 100).
SIM_N = 100
#: Datasets per family: quick and full. The MCSE of rel_eff shrinks like 1/√R.
SIM_REPLICATES = {"quick": 200, "full": 2000}


def study_spec(
    family: str, params: dict[str, float], objectives: list[str], *, quick: bool, seed: int
):
    """The study of one family's check: every objective on the same datasets."""
    from likelab.study.spec import parse_study

    base, _, fixed_text = family.partition(":")
    fixed = dict(kv.split("=") for kv in fixed_text.split(",") if kv) if fixed_text else {}
    reps = SIM_REPLICATES[battery.mode(quick)]
    name = f"scorecard-efficiency-{base}"
    return parse_study(
        {
            "name": name,
            "seed": int(battery.stream_seed(seed, "simulation", family) % (2**31)),
            "dgps": [
                {"family": base, "params": {**{k: float(v) for k, v in fixed.items()}, **params}}
            ],
            "sample_sizes": [SIM_N],
            "replicates": reps,
            "block": min(reps, 500),
            "model": {
                "family": base,
                **({"fixed": {k: "truth" for k in fixed}} if fixed else {}),
                "estimand": list(params),
            },
            "objectives": list(objectives),
        },
        source=name,
    )


def store_path(scorecard_store: str | Path, family: str) -> Path:
    """The study store of ``family``'s check, beside the scorecard's store."""
    base = family.partition(":")[0]
    path = Path(scorecard_store)
    return path.with_name(f"{path.stem}-efficiency-{base}.duckdb")


def simulation_rows(summary: list[dict[str, Any]], family: str) -> dict[str, dict[str, Any]]:
    """Per objective: ``{"setting", "n", parameter: {"rel_eff", "rel_eff_mcse", "failure_rate",
    "replicates"}}`` from a study summary (:func:`likelab.study.summarise`)."""
    out: dict[str, dict[str, Any]] = {}
    for row in summary:
        obj = row["objective"]
        entry = out.setdefault(
            obj, {"setting": f"family {family} / n={row['n']} (paired study)", "n": row["n"]}
        )
        entry[row["parameter"]] = {
            "rel_eff": row.get("rel_eff"),
            "rel_eff_mcse": row.get("rel_eff_mcse"),
            "failure_rate": row.get("failure_rate"),
            "replicates": row.get("replicates"),
        }
    return out
