"""Asymptotic theory against simulation: the ARE vs ``log`` of every built-in objective.

For the normal family (loc and scale free) at N(0, 1) and the Student-t family with df fixed at 5
(loc and scale free) at t_5(0, 1), each objective of the registry is judged two ways:

- theory: ``likelab.asymptotics(objective, family, truth)``, the asymptotic relative efficiency
  ARE_j = V_log,jj / V_jj of the sandwich V = A⁻¹BA⁻¹ by quadrature (no Monte Carlo error). Each
  family's pass starts cold (log's cached reference, the quadrature's cached nodes and the
  truth's cached mass cleared), so the first call pays for what the others reuse; the pass is
  run twice and the faster one reported;
- simulation: a study of R datasets of n = 1,000 draws (large enough for the asymptotic regime:
  the O(1/n) terms are ~0.1% of the variances), each fitted by the objective and by ``log`` with
  the batched ``likelab.fit`` on (block, n) arrays (``se=False``: a study of efficiencies needs the
  estimates only). rel_eff = var(log estimates) / var(objective estimates), paired on the same
  datasets (those where both fits converged), with the study summary's Monte Carlo SE
  2·RE·√((1-ρ²)/(m-1)) (Morris et al. 2019, Table 6; ``likelab.study.summary``). R is chosen to
  reach MCSE <= 0.01 on every free parameter: a pilot block of 500, then the R the pilot's MCSE
  implies (MCSE ∝ 1/√R), rounded up to blocks, checked again, until it is reached (cap 40,000).

Objectives without a θ* on the family (``linear``, ``mae``: the scale runs to 0) and the
batch-level ``product`` (not a per-observation scoring rule) are listed as n/a with the reason.
Per objective: theory ARE, simulated rel_eff ± MCSE, |difference| in MCSEs, both times. Overall:
simulation time / theory time, measured in the same run (target: theory >= 1,000x faster). The
simulation time counts every fit: the objective's and log's (log once per dataset, shared by the
objectives of a family, as in a study).
"""

from __future__ import annotations

import math
import time

import numpy as np

from benchmarks._timing import fmt_seconds
from likelab import asymptotics
from likelab.asymptotics import core
from likelab.estimate import fit
from likelab.families import get_family
from likelab.objectives import get_objective, list_objectives
from likelab.properness import density, expected
from likelab.study.summary import _paired

N = 1_000
BLOCK = 500
TARGET_MCSE = 0.01
MAX_R = 40_000
THEORY_PASSES = 2
SETTINGS = (  # (family spec, truth spec, truth parameters for sampling)
    ("normal", "normal:loc=0,scale=1", {"loc": 0.0, "scale": 1.0}),
    ("student_t:df=5", "student_t:df=5,loc=0,scale=1", {"df": 5.0, "loc": 0.0, "scale": 1.0}),
)


def cold() -> None:
    """Forget everything computed for a (family, truth) before: log's reference, the rules'
    nodes and weights, the truths' masses and frames."""
    core._LOG_CACHE.clear()
    expected._PIECES.clear()
    expected._FRAMES.clear()
    density._MASS_CACHE.clear()


def theory_pass(family: str, truth: str, names: list[str]) -> dict[str, dict]:
    """One cold pass of ``likelab.asymptotics`` over ``names``: result or n/a reason, and time
    (the first objective pays for what the others on the same setting reuse: log's reference,
    the quadrature's nodes)."""
    cold()
    out = {}
    for name in names:
        obj = get_objective(name)
        if obj.batch_level:
            out[name] = {
                "na": "batch-level objective (scores a whole batch, not each observation): "
                "no M-estimator asymptotics",
                "time": 0.0,
            }
            continue
        start = time.perf_counter()
        r = asymptotics(obj.spec, family, truth)
        seconds = time.perf_counter() - start
        out[name] = {"result": r, "time": seconds, "spec": obj.spec}
        if r.reason:
            out[name]["na"] = r.reason
    return out


class Simulation:
    """Datasets in blocks of ``BLOCK`` (block b from its own seed), fitted by log once each."""

    def __init__(self, family: str, params: dict[str, float], seed: int) -> None:
        self.family, self.params, self.seed = family, params, seed
        self.base = get_family(family.split(":")[0])
        self.data: list[np.ndarray] = []
        self.log: list[tuple[dict[str, np.ndarray], np.ndarray, float]] = []
        self.seconds = 0.0  # every fit: the objectives' and log's (once per dataset)

    def block(self, b: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, float]:
        while len(self.data) <= b:
            k = len(self.data)
            y = self.base.sample((BLOCK, N), seed=self.seed + k, **self.params)
            start = time.perf_counter()
            res = fit(y, self.family, "log", se=False)
            seconds = time.perf_counter() - start
            self.seconds += seconds
            self.data.append(y)
            self.log.append((res.params, np.asarray(res.converged), seconds))
        est, conv, seconds = self.log[b]
        return self.data[b], est, conv, seconds

    def study(self, spec: str, free: tuple[str, ...]) -> dict:
        """Blocks until the MCSE of rel_eff is <= TARGET_MCSE for every free parameter."""
        ests: dict[str, list[np.ndarray]] = {k: [] for k in free}
        logs: dict[str, list[np.ndarray]] = {k: [] for k in free}
        fit_time = log_time = 0.0
        blocks, want = 0, 1
        while True:
            while blocks < want:
                y, log_est, log_conv, log_seconds = self.block(blocks)
                start = time.perf_counter()
                res = fit(y, self.family, spec, se=False)
                seconds = time.perf_counter() - start
                fit_time += seconds
                self.seconds += seconds
                log_time += log_seconds
                both = np.asarray(res.converged) & log_conv
                for k in free:
                    ests[k].append(np.asarray(res.params[k])[both])
                    logs[k].append(np.asarray(log_est[k])[both])
                blocks += 1
            stats = {
                k: _paired(np.concatenate(ests[k]), np.concatenate(logs[k]), self.params[k])
                for k in free
            }
            mcse = [s["rel_eff_mcse"] for s in stats.values()]
            worst = max(math.inf if m is None else m for m in mcse)
            if worst <= TARGET_MCSE or blocks * BLOCK >= MAX_R:
                break
            # MCSE ∝ 1/√R: the R this MCSE implies, rounded up to blocks (at least one more)
            need = blocks * (worst / TARGET_MCSE) ** 2
            want = min(max(blocks + 1, math.ceil(need / BLOCK)), MAX_R // BLOCK)
        m = len(np.concatenate(ests[free[0]]))
        return {
            "stats": stats,
            "R": blocks * BLOCK,
            "m": m,
            "fit_time": fit_time,
            "log_time": log_time,
            "reached": worst <= TARGET_MCSE,
        }


def theory_setting(family: str, truth: str) -> tuple[dict[str, dict], float]:
    """The faster of ``THEORY_PASSES`` cold passes over every objective, and its total time."""
    names = list_objectives()
    passes = [theory_pass(family, truth, names) for _ in range(THEORY_PASSES)]
    best = min(passes, key=lambda p: sum(v["time"] for v in p.values()))
    return best, sum(v["time"] for v in best.values())


def simulate_setting(
    index: int, family: str, truth: str, params: dict[str, float], theory: dict[str, dict]
) -> dict[str, float]:
    """The simulation of every objective with a θ*, printed beside its theory; the totals."""
    free = get_family(family).free
    sim = Simulation(family, params, seed=20241400 + 1000 * index)
    print(
        f"{family} family ({', '.join(free)} free) at the truth {truth}; simulation: n = {N:,}, "
        f"R chosen for MCSE(rel_eff) <= {TARGET_MCSE} (blocks of {BLOCK})"
    )
    print(
        f"  {'objective':24s} {'param':5s} {'theory ARE':>10s} {'sim rel_eff ± MCSE':>20s} "
        f"{'|diff|/MCSE':>11s} {'R':>6s} {'theory':>9s} {'simulation':>10s}",
        flush=True,
    )
    worst_z, rows, t_theory_both, t_theory_na = 0.0, 0, 0.0, 0.0
    for name, th in theory.items():
        label = th.get("spec", name)
        if "na" in th:
            t_theory_na += th["time"]
            print(f"  {label:24s} n/a ({fmt_seconds(th['time'])}): {th['na']}", flush=True)
            continue
        r = th["result"]
        t_theory_both += th["time"]
        if label == "log":  # the reference: its rel_eff is 1 with MCSE 0 (the same fits)
            for j, k in enumerate(free):
                print(
                    f"  {label if j == 0 else '':24s} {k:5s} {r.are_vs_log[k]:10.4f} "
                    f"{'1 (reference)':>20s} {'':>11s} {'':>6s} "
                    f"{fmt_seconds(th['time']) if j == 0 else '':>9s}",
                    flush=True,
                )
            continue
        s = sim.study(label, free)
        for j, k in enumerate(free):
            st = s["stats"][k]
            re, mc = st["rel_eff"], st["rel_eff_mcse"]
            are = r.are_vs_log[k]
            if re is None or mc is None:
                z_text, sim_text = f"{'':>11s}", f"{'undetermined':>20s}"
            elif mc == 0.0:  # estimates identical to log's (ρ = 1): rel_eff exact, no MC error
                z_text = f"{f'|d| {abs(re - are):.0e}':>11s}"
                sim_text = f"{re:11.4f} ± {0:6.4f}"
            else:
                z = abs(re - are) / mc
                z_text, sim_text = f"{z:11.2f}", f"{re:11.4f} ± {mc:6.4f}"
                worst_z = max(worst_z, z)
            rows += 1
            first = j == 0
            print(
                f"  {label if first else '':24s} {k:5s} {are:10.4f} {sim_text} {z_text} "
                f"{s['R'] if first else '':>6} "
                f"{fmt_seconds(th['time']) if first else '':>9s} "
                f"{fmt_seconds(s['fit_time'] + s['log_time']) if first else '':>10s}",
                flush=True,
            )
        if not s["reached"]:
            print(f"  {'':24s} MCSE <= {TARGET_MCSE} not reached at the cap R = {MAX_R:,}")
    return {
        "theory": t_theory_both,
        "theory_na": t_theory_na,
        "sim": sim.seconds,
        "worst_z": worst_z,
        "rows": rows,
    }


def main() -> None:
    # the theory first, for every setting, so that its times do not depend on the simulation
    theories = [theory_setting(family, truth) for family, truth, _ in SETTINGS]
    totals = {"theory": 0.0, "theory_na": 0.0, "sim": 0.0}
    worst_all, rows_all = 0.0, 0
    for i, (family, truth, params) in enumerate(SETTINGS):
        t = simulate_setting(i, family, truth, params, theories[i][0])
        print(
            f"  {family}: theory {fmt_seconds(t['theory'])} (one cold pass over the objectives "
            f"with a θ*, log included; {fmt_seconds(t['theory_na'])} more for the n/a ones), "
            f"simulation {fmt_seconds(t['sim'])}: ratio {t['sim'] / t['theory']:,.0f}x; "
            f"largest |diff|/MCSE {t['worst_z']:.2f} over {t['rows']} parameters",
            flush=True,
        )
        for key in totals:
            totals[key] += t[key]
        worst_all, rows_all = max(worst_all, t["worst_z"]), rows_all + t["rows"]
    print(
        f"  all: theory {fmt_seconds(totals['theory'])}, simulation "
        f"{fmt_seconds(totals['sim'])}: simulation / theory = "
        f"{totals['sim'] / totals['theory']:,.0f}x   (target >= 1000x faster); counting the "
        f"theory of the n/a objectives too: "
        f"{totals['sim'] / (totals['theory'] + totals['theory_na']):,.0f}x"
    )
    print(
        f"  agreement: largest |theory ARE - simulated rel_eff| = {worst_all:.2f} MCSE over "
        f"{rows_all} (objective, parameter) pairs (about 5% of them beyond 2 by chance)"
    )


if __name__ == "__main__":
    main()
