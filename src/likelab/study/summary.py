r"""Performance measures with their Monte Carlo standard errors, from the store's rows.

Per (DGP point, n, objective, parameter), over the :math:`n_{sim}` replicates whose fit
converged to a finite estimate :math:`\hat\theta_i` (true value θ, model SE :math:`\widehat{SE}_i`),
with the formulas of Morris, White & Crowther (2019, Stat. Med. 38:2074-2102, Table 6):

- bias :math:`\bar\theta - \theta`, MCSE :math:`\mathrm{EmpSE}/\sqrt{n_{sim}}`;
- empirical SE :math:`\mathrm{EmpSE} = \sqrt{\sum(\hat\theta_i-\bar\theta)^2/(n_{sim}-1)}`,
  MCSE :math:`\mathrm{EmpSE}/\sqrt{2(n_{sim}-1)}`;
- MSE :math:`\sum(\hat\theta_i-\theta)^2/n_{sim}`, MCSE
  :math:`\sqrt{\sum[(\hat\theta_i-\theta)^2-\mathrm{MSE}]^2/(n_{sim}(n_{sim}-1))}`;
- model SE :math:`\mathrm{ModSE} = \sqrt{\sum \widehat{SE}_i^2 / n_{sim}}` (replicates with a
  finite SE);
- relative error of the model SE (``model_se_rel_error``)
  :math:`\mathrm{ModSE}/\mathrm{EmpSE} - 1` (Table 6's "relative % error in ModSE", as a
  fraction, not a percentage), MCSE
  :math:`\frac{\mathrm{ModSE}}{\mathrm{EmpSE}}\sqrt{\frac{\widehat{\mathrm{Var}}(\widehat{SE}^2)}
  {4\,n_{sim}\,\mathrm{ModSE}^4} + \frac{1}{2(n_{sim}-1)}}` with
  :math:`\widehat{\mathrm{Var}}(\widehat{SE}^2) = \sum(\widehat{SE}_i^2 -
  \mathrm{ModSE}^2)^2/(n_{sim}-1)`; both SEs over the same replicates, those with a finite SE
  (where some converged fits have none, EmpSE here is over that subset, not the ``emp_se``
  column). Below 0, the sandwich SEs are too small (intervals too narrow); above, too large;
- coverage C of the Wald interval :math:`\hat\theta_i \pm 1.96\,\widehat{SE}_i`, MCSE
  :math:`\sqrt{C(1-C)/n_{sim}}`.

Two measures compare an objective with ``log`` (the MLE) on the same datasets, over the
:math:`m` replicates where both converged (paired, common random numbers):

- **relative efficiency** (``rel_eff``), the ratio of empirical variances
  :math:`\mathrm{RE} = \mathrm{EmpSE}_{log}^2/\mathrm{EmpSE}^2`, MCSE
  :math:`2\,\mathrm{RE}\sqrt{(1-\rho^2)/(m-1)}` (Morris et al., Table 6; ρ the correlation of
  the paired estimates). It measures spread about each estimator's *own* mean and **ignores
  bias**: under contamination a biased MLE can look "efficient";
- **relative MSE** (``rel_mse``), the ratio of mean squared errors about the truth
  :math:`\mathrm{RM} = \overline{b}/\overline{a}`, with :math:`a_i = (\hat\theta_i-\theta)^2`
  the objective's and :math:`b_i = (\hat\theta_{log,i}-\theta)^2` log's squared errors on
  replicate i. It **includes bias** (MSE = bias² + variance). Its MCSE is the delta method for
  a ratio of paired means, :math:`\mathrm{RM}-\widehat{\mathrm{RM}} \approx
  (\overline{b}-\mathrm{RM}\,\overline{a})/\overline{a}`, so
  :math:`\mathrm{Var} \approx
  [s_b^2 - 2\,\mathrm{RM}\,s_{ab} + \mathrm{RM}^2 s_a^2]/(m\,\overline{a}^2)`
  with the sample (co)variances :math:`s` of the paired squared errors; equivalently
  :math:`\mathrm{MCSE} =
  \sqrt{\sum_i (b_i - \widehat{\mathrm{RM}}\,a_i)^2/(m(m-1))}\,/\,\overline{a}`
  (the residuals have mean zero), with the :math:`m(m-1)` convention of Morris et al.'s MCSE
  of the MSE (Table 6). Both ratios' MCSEs are first-order (delta-method) approximations.

Above 1, both say the objective beats ``log``; below 1, that it does worse.

The failure rate is the share of all replicates whose fit failed (not converged, non-finite, or
an error). A measure that needs more replicates than there are (an SE from one replicate, a
ratio with a zero denominator) is ``None``, never a number.

**Theory beside simulation.** With ``theory``, each row also carries what M-estimator
theory predicts for its (DGP point, objective), from :func:`likelab.asymptotics` (θ*, the
sandwich :math:`V = A^{-1}BA^{-1}` at θ*, by quadrature; Huber 1964, van der Vaart 1998,
Thm 5.23): ``asymptotic_sd`` :math:`\sqrt{V_{jj}}`, to compare with ``emp_se_root_n``
:math:`\sqrt n\,\mathrm{EmpSE}` (MCSE :math:`\sqrt n` times EmpSE's), ``are_vs_log``
:math:`V_{\log,jj}/V_{jj}`, the limit of ``rel_eff``, and ``asymptotic_bias``
:math:`\theta^*_j - \theta_j`, the limit of ``bias``. They are computed once per (DGP point,
objective), whatever the number of sample sizes and replicates, and kept for the process (a
second summary of the same study computes nothing). Each pair takes seconds (minutes for a
contamination far out in the tails), so ``theory="auto"`` computes them only for a study of at
most :data:`THEORY_AUTO_MAX` pairs and within :data:`THEORY_AUTO_SECONDS`. Where the theory
does not exist or cannot be computed (no θ* inside the parameter space, a gradient without a
finite second moment, a model whose support moves, an objective the quadrature cannot
integrate, any error, the time budget), the columns are ``None`` and ``theory_note`` says why:
the summary never fails because of the theory.

**Determinism.** Every sum is exactly rounded (:func:`math.fsum`), so a measure is a function of
the *set* of rows only: two stores holding the same rows, written in any order by any executor,
give the same summary bit for bit. (SQL aggregates sum in whatever order the engine scans and
combines the rows, which differs in the last bits between stores written in different orders.)
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from likelab.errors import LikelabError, ParameterError, StoreError
from likelab.families.dgp import canonical_dgp
from likelab.study.store import Store

__all__ = [
    "MEASURES",
    "SUMMARY_COLUMNS",
    "THEORY_AUTO_MAX",
    "THEORY_COLUMNS",
    "export",
    "summarise",
]

#: The columns of theory beside simulation (see the module docstring): the empirical SE times
#: √n, and what :func:`likelab.asymptotics` predicts for the cell's (DGP point, objective).
THEORY_COLUMNS = (
    "emp_se_root_n",
    "emp_se_root_n_mcse",
    "asymptotic_sd",
    "are_vs_log",
    "asymptotic_bias",
    "theory_note",
)
#: ``theory="auto"`` computes the theory when the study has at most this many (DGP point,
#: objective) pairs: each takes seconds of quadrature (about 1 to 10 s for a two-parameter
#: family), so a study of thousands of DGP points would take hours.
THEORY_AUTO_MAX = 16
#: ``theory="auto"`` spends at most this many seconds on a summary's theory: a pair still
#: running then is stopped (a contamination far out in the tails can take the quadrature
#: minutes) and the pairs after it are left out, each with a note saying so. ``theory=True``
#: has no limit.
THEORY_AUTO_SECONDS = 60.0
#: How ``theory_note`` begins where the theory was not asked for (``theory=False``) or was
#: left out for the study's size (``"auto"``).
NOT_COMPUTED = "not computed"

SUMMARY_COLUMNS = (
    "dgp",
    "n",
    "objective",
    "parameter",
    "bias",
    "bias_mcse",
    "emp_se",
    "emp_se_mcse",
    "mse",
    "mse_mcse",
    "rel_eff",
    "rel_eff_mcse",
    "rel_mse",
    "rel_mse_mcse",
    "model_se",
    "model_se_rel_error",
    "model_se_rel_error_mcse",
    "coverage",
    "coverage_mcse",
    "failure_rate",
    "replicates",
    *THEORY_COLUMNS,
)
#: The measures of one group's estimates (:func:`_measures`), bias to coverage.
_MEASURE_COLUMNS = SUMMARY_COLUMNS[4 : SUMMARY_COLUMNS.index("failure_rate")]

#: What each column of the summary is (the CLI's ``--json`` carries these labels).
MEASURES: dict[str, str] = {
    "bias": "bias: mean estimate minus the true value",
    "emp_se": "empirical SE: standard deviation of the estimates",
    "mse": "mean squared error about the true value (bias² + variance)",
    "rel_eff": "relative efficiency vs log (EmpSE² ratio EmpSE_log²/EmpSE², paired; ignores bias)",
    "rel_mse": "relative MSE vs log (MSE ratio MSE_log/MSE, paired; includes bias)",
    "model_se": "model SE: root mean square of the sandwich SEs (replicates with an SE; none "
    "where no SE could be given, e.g. a non-regular model such as the uniform's ends)",
    "model_se_rel_error": "relative error of the model SE: ModSE/EmpSE - 1 over the replicates "
    "with an SE (below 0: the SEs are too small; none where fewer than 2 have an SE)",
    "coverage": "coverage of the 95% Wald interval estimate ± 1.96 SE (replicates with an SE; "
    "none, undetermined, where no SE could be given)",
    "failure_rate": "share of replicates whose fit failed (not converged, non-finite, error)",
    "replicates": "replicates in the store",
    "emp_se_root_n": "√n × empirical SE, to compare with asymptotic_sd (the SE at n is about "
    "asymptotic_sd/√n)",
    "asymptotic_sd": "asymptotic SD √V_jj of the estimator at this DGP point, V = A⁻¹BA⁻¹ at θ* "
    "(likelab.asymptotics, by quadrature; the same at every n); none where the theory does not "
    "exist or was not computed (theory_note says why)",
    "are_vs_log": "asymptotic relative efficiency vs log, V_log,jj/V_jj: the limit of rel_eff "
    "as n grows",
    "asymptotic_bias": "θ* minus the true value: the limit of bias as n grows (under "
    "contamination, the objective's asymptotic bias)",
    "theory_note": "why the theory columns are empty, or a caveat on them (θ* of the objective "
    "differs from log's); none where there is nothing to say",
}

_TYPES = {"dgp": "VARCHAR", "n": "INTEGER", "objective": "VARCHAR", "parameter": "VARCHAR"}
_TYPES["replicates"] = "BIGINT"
_TYPES["theory_note"] = "VARCHAR"

Z975 = 1.959963984540054
REFERENCE = "log"


#: Values handed to :func:`math.fsum` at a time (as Python floats: 32 bytes each).
_FSUM_CHUNK = 1 << 16


def _sum(x: np.ndarray) -> float:
    """The exactly rounded sum: independent of the order of ``x``. The values go to
    :func:`math.fsum` :data:`_FSUM_CHUNK` at a time: ``x.tolist()`` whole would hold 32 bytes
    per value (320 MB for a group of 10⁷ replicates), the same sum in bounded memory."""
    if len(x) <= _FSUM_CHUNK:
        return math.fsum(x.tolist())
    chunks = (x[i : i + _FSUM_CHUNK].tolist() for i in range(0, len(x), _FSUM_CHUNK))
    return math.fsum(itertools.chain.from_iterable(chunks))


def _mean(x: np.ndarray) -> float:
    return _sum(x) / len(x)


def _sum_sq(x: np.ndarray, c: float) -> float:
    """The exactly rounded sum of :math:`(x_i - c)^2`, with one temporary array."""
    d = np.subtract(x, c)
    np.multiply(d, d, out=d)
    return _sum(d)


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0.0 or not math.isfinite(num / den):
        return None
    return num / den


def _measures(est: np.ndarray, se: np.ndarray, theta: float) -> dict[str, Any]:
    """The unpaired measures of one group's converged, finite estimates."""
    k = len(est)
    out: dict[str, Any] = dict.fromkeys(_MEASURE_COLUMNS)
    if k == 0:
        return out
    # (temporaries made in place: a group can hold 10^7 replicates, 80 MB a column)
    mean = _mean(est)
    out["bias"] = mean - theta
    sq = np.subtract(est, theta)
    np.multiply(sq, sq, out=sq)
    out["mse"] = _mean(sq)
    if k >= 2:
        emp = math.sqrt(_sum_sq(est, mean) / (k - 1))
        out["emp_se"] = emp
        out["bias_mcse"] = emp / math.sqrt(k)
        out["emp_se_mcse"] = emp / math.sqrt(2 * (k - 1))
        out["mse_mcse"] = math.sqrt(_sum_sq(sq, out["mse"]) / (k * (k - 1)))
    del sq
    finite = np.isfinite(se)
    k_se = int(finite.sum())
    if k_se:
        if k_se < k:
            est, se = est[finite], se[finite]
        del finite
        s2 = np.multiply(se, se)
        out["model_se"] = math.sqrt(_sum(s2) / k_se)
        if k_se >= 2:
            out.update(_model_se_error(est, s2))
        del s2
        d = np.subtract(est, theta)
        np.abs(d, out=d)
        c = float(np.count_nonzero(d <= np.multiply(se, Z975))) / k_se
        del d
        out["coverage"] = c
        out["coverage_mcse"] = math.sqrt(c * (1 - c) / k_se)
    return out


def _model_se_error(est: np.ndarray, var: np.ndarray) -> dict[str, float | None]:
    """ModSE/EmpSE - 1 and its MCSE (Morris et al. 2019, Table 6) over the same ``k >= 2``
    replicates: ``est`` their estimates, ``var`` their finite model SEs squared."""
    k = len(est)
    emp = math.sqrt(_sum_sq(est, _mean(est)) / (k - 1))
    mod2 = _mean(var)
    ratio = _ratio(math.sqrt(mod2), emp)
    if ratio is None or mod2 == 0.0:
        return {"model_se_rel_error": None, "model_se_rel_error_mcse": None}
    var_se2 = _sum_sq(var, mod2) / (k - 1)
    mcse = ratio * math.sqrt(var_se2 / (4 * k * mod2 * mod2) + 1 / (2 * (k - 1)))
    return {"model_se_rel_error": ratio - 1.0, "model_se_rel_error_mcse": mcse}


def _paired(a: np.ndarray, b: np.ndarray, theta: float) -> dict[str, float | None]:
    """Relative efficiency and relative MSE of estimates ``a`` against log's ``b`` (paired)."""
    out: dict[str, float | None] = dict.fromkeys(
        ("rel_eff", "rel_eff_mcse", "rel_mse", "rel_mse_mcse")
    )
    m = len(a)
    if m < 2:
        return out
    # (one scratch array for the products: m can be 10^7, 80 MB an array)
    da, db = np.subtract(a, _mean(a)), np.subtract(b, _mean(b))
    t = np.multiply(da, da)
    var_a = _sum(t) / (m - 1)
    var_b = _sum(np.multiply(db, db, out=t)) / (m - 1)
    re = _ratio(var_b, var_a)
    if re is not None:
        cov = _sum(np.multiply(da, db, out=t)) / (m - 1)
        # ρ clamped to [-1, 1]: rounding can put it a hair outside for identical columns
        rho2 = min(cov * cov / (var_a * var_b), 1.0) if var_b > 0 else 0.0
        out["rel_eff"] = re
        out["rel_eff_mcse"] = 2 * re * math.sqrt((1 - rho2) / (m - 1))
    sa, sb = np.subtract(a, theta, out=da), np.subtract(b, theta, out=db)
    np.multiply(sa, sa, out=sa)
    np.multiply(sb, sb, out=sb)
    mean_a = _mean(sa)
    rm = _ratio(_mean(sb), mean_a)
    if rm is not None:
        out["rel_mse"] = rm
        r = np.multiply(sa, rm, out=t)
        np.subtract(sb, r, out=r)
        np.multiply(r, r, out=r)
        out["rel_mse_mcse"] = math.sqrt(_sum(r) / (m * (m - 1))) / mean_a
    return out


def _log_names() -> tuple[str, ...]:
    from likelab.objectives.base import aliases_of

    return (REFERENCE, *aliases_of(REFERENCE))


def summarise(
    store: str | Path,
    *,
    theory: bool | Literal["auto"] = False,
    on_theory: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """The performance measures of every (DGP, n, objective, parameter) in ``store``, sorted by
    (DGP, n, objective, parameter); see the module docstring for the formulas.

    ``theory``: fill the columns of theory beside simulation (:data:`THEORY_COLUMNS`:
    ``asymptotic_sd``, ``are_vs_log``, ``asymptotic_bias``) from :func:`likelab.asymptotics`,
    once per (DGP point, objective), however long it takes; ``"auto"`` does so when the study
    has at most :data:`THEORY_AUTO_MAX` such pairs, within :data:`THEORY_AUTO_SECONDS` in
    all (so what it fills can depend on the machine's speed); ``False`` does not. Where a
    pair was not computed its columns are ``None`` and ``theory_note`` (beginning "not
    computed") says why. ``on_theory(done, total)`` is called after each pair (a progress
    bar). ``emp_se_root_n`` is always there.
    """
    if not (isinstance(theory, bool) or (isinstance(theory, str) and theory == "auto")):
        raise ParameterError(f"theory must be True, False or 'auto', got {theory!r}")
    rows: list[dict[str, Any]] = []
    with Store(store, read_only=True) as db:
        # the blocks this reads are read once: DuckDB's buffer pool would keep up to its limit
        # of them (on top of the group's columns here) for nothing
        db.con.execute(f"SET memory_limit = '{_SUMMARY_MEMORY_LIMIT}'")
        info = db.study()
        points = db.con.execute("SELECT DISTINCT dgp, n FROM results ORDER BY dgp, n").fetchall()
        for dgp, n in points:
            rows.extend(_summarise_point(db.con, dgp, n))
    _add_theory(rows, info["spec_json"], theory, on_theory)
    return rows


def _floats(col: Any) -> np.ndarray:
    """A fetched column as float64 with SQL NULL as NaN. DuckDB hands columns holding NULLs
    over as masked arrays, whose raw data under the mask is a fill value (0), never to be read
    as a number: a NULL SE (none could be given) read as 0 made the coverage 0."""
    return np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)


#: DuckDB's memory for a summary: it reads each block once, groups a few columns, and hands
#: over at most :data:`_FETCH_REPLICATES` rows at a time.
_SUMMARY_MEMORY_LIMIT = "128MB"
#: A group's fitted rows: converged to a finite estimate (a NULL ``converged`` or estimate is
#: a failure).
_GOOD = "converged AND isfinite(estimate)"
#: Replicates of a group fetched by one query: DuckDB holds a query's whole result, and about
#: as much again while it converts it, before numpy has it; larger groups are fetched by
#: ranges of replicates into arrays made once.
_FETCH_REPLICATES = 1 << 20


def _summarise_point(con: Any, dgp: str, n: int) -> list[dict[str, Any]]:
    """The rows of one (DGP, n), sorted by (objective, parameter). One group (objective,
    parameter) is fetched at a time, only its good rows and only the columns the measures
    read, and log's estimates once per parameter for the paired measures: memory is bounded
    by a few columns of one group (a whole design point of 10⁷ replicates fetched at once took
    over 4 GB)."""
    sizes = con.execute(
        "SELECT objective, parameter, count(*), count(*) FILTER (WHERE " + _GOOD + "), "
        "arg_min(truth, replicate), min(replicate), max(replicate) FROM results "
        "WHERE dgp = ? AND n = ? GROUP BY objective, parameter ORDER BY objective, parameter",
        [dgp, n],
    ).fetchall()
    names = {o for o, *_ in sizes}
    # ``log`` may be spelled by an alias in the study file (``nll``)
    reference = next((o for o in _log_names() if o in names), REFERENCE)

    def good(group: tuple, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
        """The group's good rows' ``columns``, in no particular order: every measure is a
        function of the set of rows (exact sums), the pairing goes by replicate."""
        o, p, _, k, _, lo, hi = group
        sql = (
            f"SELECT {', '.join(columns)} FROM results WHERE dgp = ? AND n = ? AND "
            f"objective = ? AND parameter = ? AND {_GOOD}"
        )
        if k <= _FETCH_REPLICATES:
            got = con.execute(sql, [dgp, n, o, p]).fetchnumpy()
            return {c: _column(c, got[c]) for c in columns}
        out = {c: np.empty(k, np.int32 if c == "replicate" else np.float64) for c in columns}
        at = 0
        for first in range(lo, hi + 1, _FETCH_REPLICATES):
            got = con.execute(
                sql + " AND replicate >= ? AND replicate < ?",
                [dgp, n, o, p, first, first + _FETCH_REPLICATES],
            ).fetchnumpy()
            m = len(got[columns[0]])
            for c in columns:
                out[c][at : at + m] = _column(c, got[c])
            at += m
            del got
        if at != k:
            raise StoreError(f"the store changed while it was summarised ({dgp}, n = {n})")
        return out

    found: dict[tuple[str, str], dict[str, Any]] = {}
    # parameter by parameter, so that one parameter's log estimates are held at a time
    for p in dict.fromkeys(g[1] for g in sizes):
        ref = next((g for g in sizes if g[0] == reference and g[1] == p), None)
        ref_cols = None if ref is None else good(ref, ("replicate", "estimate"))
        for group in sizes:
            o, q, total, k, truth, *_ = group
            if q != p:
                continue
            theta = float(truth)
            row: dict[str, Any] = {"dgp": dgp, "n": int(n), "objective": o, "parameter": p}
            cols = good(group, ("replicate", "estimate", "se"))
            row.update(_measures(cols["estimate"], cols.pop("se"), theta))
            if ref_cols is not None:
                i, j = _pairs(cols["replicate"], ref_cols["replicate"])
                a = cols["estimate"] if i is None else cols["estimate"][i]
                row.update(_paired(a, ref_cols["estimate"][j], theta))
                del i, j, a
            else:
                row.update(dict.fromkeys(("rel_eff", "rel_eff_mcse", "rel_mse", "rel_mse_mcse")))
            del cols
            row["failure_rate"] = float(total - k) / total
            row["replicates"] = total
            root = math.sqrt(n)
            emp, emp_mcse = row["emp_se"], row["emp_se_mcse"]
            row["emp_se_root_n"] = None if emp is None else emp * root
            row["emp_se_root_n_mcse"] = None if emp_mcse is None else emp_mcse * root
            row.update(dict.fromkeys(THEORY_COLUMNS[2:]))
            found[o, p] = {c: row[c] for c in SUMMARY_COLUMNS}
        del ref_cols
    return [found[g[0], g[1]] for g in sizes]


def _column(name: str, col: Any) -> np.ndarray:
    """A fetched column: the replicate numbers as integers, the rest as :func:`_floats`."""
    return np.asarray(col, dtype=np.int32) if name == "replicate" else _floats(col)


def _pairs(rep: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Indices ``i``, ``j`` with ``rep[i] == ref[j]``, every replicate in both (each holds a
    replicate at most once); ``i`` is None where every one of ``rep`` is in ``ref`` (all of
    ``rep``, in its order). Where the replicates are dense (a study's are 0 … R-1), a table
    from replicate to position in ``ref``; otherwise by sorting."""
    if not len(rep) or not len(ref):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lo, hi = int(ref.min()), int(ref.max())
    if hi - lo + 1 > 4 * len(ref) + 1024:
        _, i, j = np.intersect1d(rep, ref, assume_unique=True, return_indices=True)
        return i, j
    where = np.full(hi - lo + 1, -1, dtype=np.int32)
    where[ref - lo] = np.arange(len(ref), dtype=np.int32)
    inside = (rep >= lo) & (rep <= hi)
    if inside.all():
        j = where[rep - lo]
        del where, inside
        if (j >= 0).all():
            return None, j
        i = np.flatnonzero(j >= 0)
        return i, j[i]
    i = np.flatnonzero(inside)
    j = where[rep[i] - lo]
    keep = j >= 0
    return i[keep], j[keep]


# ---------------------------------------------------------------------- theory
#: (model, fixed, DGP, objective) -> what :func:`_theory` found: kept for the process, so that
#: a second summary of a study (its export, its report) computes nothing again.
_CACHE: dict[tuple, dict[str, tuple[float, float, float, str]] | str] = {}
_CACHE_MAX = 4096
#: pairs stopped at the automatic time budget -> the seconds they were given: an automatic
#: summary with no more time than that does not try them again (``theory=True`` does).
_STOPPED: dict[tuple, float] = {}


class _OutOfTime(BaseException):
    """The time limit of a theory computation rang (a ``BaseException``: no ``except
    Exception`` inside the computation may swallow it)."""


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`_OutOfTime` in this thread after ``seconds`` (SIGALRM, checked between
    Python bytecodes, so within a few torch operations). No limit where none can be set
    safely: ``seconds`` None, off the main thread, without ``setitimer`` (Windows), or while
    another timer is running (whoever set it keeps it)."""
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0.0
    )
    if not usable:
        yield
        return

    def ring(signum: int, frame: Any) -> None:
        raise _OutOfTime

    previous = signal.signal(signal.SIGALRM, ring)
    try:
        signal.setitimer(signal.ITIMER_REAL, max(float(seconds), 1e-3))
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.0)
        finally:
            signal.signal(signal.SIGALRM, previous)


def _add_theory(
    rows: list[dict[str, Any]],
    spec_json: str,
    theory: bool | str,
    on_theory: Callable[[int, int], None] | None,
) -> None:
    """Fill the theory columns of ``rows`` in place, one :func:`_theory` per (DGP, objective)."""
    pairs = list(dict.fromkeys((r["dgp"], r["objective"]) for r in rows))
    note = None
    if theory is False:
        note = f"{NOT_COMPUTED} (theory off)"
    elif theory == "auto" and len(pairs) > THEORY_AUTO_MAX:
        note = (
            f"{NOT_COMPUTED}: the study has {len(pairs):,} (DGP point, objective) pairs, over "
            f"the automatic limit of {THEORY_AUTO_MAX} (each takes seconds of quadrature); ask "
            "for it with theory=True (--theory on the command line)"
        )
    else:
        try:
            model, points = _study_points(spec_json)
        except Exception as exc:  # a store of an older spec: no theory, the measures stand
            note = f"no theory: the study's spec cannot be rebuilt ({_one_line(exc)})"
    if note is not None:
        for r in rows:
            r["theory_note"] = note
        return
    found = {}
    deadline = time.monotonic() + THEORY_AUTO_SECONDS if theory == "auto" else None
    for k, (dgp, objective) in enumerate(pairs):
        point = points.get(canonical_dgp(dgp))
        if point is None:
            found[dgp, objective] = f"no theory: {dgp!r} is no DGP point of the study's spec"
        else:
            left = None if deadline is None else deadline - time.monotonic()
            found[dgp, objective] = _theory(model, point, objective, left)
        if on_theory is not None:
            on_theory(k + 1, len(pairs))
    for r in rows:
        result = found[r["dgp"], r["objective"]]
        if isinstance(result, str):
            r["theory_note"] = result
            continue
        if r["parameter"] not in result:
            r["theory_note"] = f"no theory: the asymptotics has no parameter {r['parameter']!r}"
            continue
        sd, are, theta_star, note = result[r["parameter"]]
        truth = points[canonical_dgp(r["dgp"])].truth.get(r["parameter"], math.nan)
        r["asymptotic_sd"] = _finite(sd)
        r["are_vs_log"] = _finite(are)
        r["asymptotic_bias"] = _finite(theta_star - truth)
        r["theory_note"] = note or None


def _study_points(spec_json: str) -> tuple[str, dict[str, Any]]:
    """The model family and the DGP points (by :func:`canonical_dgp`) of the study's stored spec."""
    from likelab.study.design import dgp_points
    from likelab.study.spec import StudySpec

    spec = StudySpec.model_validate_json(spec_json)
    return spec.model.family, {canonical_dgp(p.spec): p for p in dgp_points(spec)}


def _theory(
    model: str, point: Any, objective: str, seconds: float | None = None
) -> dict[str, tuple[float, float, float, str]] | str:
    """:func:`likelab.asymptotics` of ``objective`` in the study's ``model`` (with the point's
    fixed parameters) under the point's DGP: per free parameter (asymptotic SD, ARE vs log, θ*,
    note), or why there is none. Any failure is the answer, never raised: a user objective
    that raises or calls ``sys.exit()`` too (a ``KeyboardInterrupt`` does stop). ``seconds``:
    the time it may take (the rest of the automatic budget; None: no limit)."""
    from likelab.asymptotics import core
    from likelab.objectives import get_objective

    try:
        obj = get_objective(objective)
    except (Exception, SystemExit) as exc:
        return f"no theory: {_one_line(exc)}"
    key = (
        model,
        tuple(sorted(point.fixed.items())),
        point.dgp.spec,
        obj.spec,
        id(obj.fn) if obj.user else None,  # a user objective re-registered under its name
    )
    if key in _CACHE:
        return _CACHE[key]
    budget = f"the automatic time budget ({THEORY_AUTO_SECONDS:g} s for the whole summary)"
    again = "theory=True (--theory on the command line) computes it however long it takes"
    if seconds is not None and (seconds <= 0 or _STOPPED.get(key, -1.0) >= seconds):
        return f"{NOT_COMPUTED}: {budget} was spent before it; {again}"
    start = time.monotonic()
    try:
        with _time_limit(seconds):
            res = core.asymptotics(obj, model, point.dgp, point.fixed or None)
        out: dict[str, tuple[float, float, float, str]] | str = {
            name: (
                res.asymptotic_sd[name],
                res.are_vs_log[name],
                res.theta_star[name],
                _theory_note(res, name),
            )
            for name in res.params
        }
    except _OutOfTime:
        _STOPPED[key] = max(_STOPPED.get(key, 0.0), float(seconds or 0.0))
        took = time.monotonic() - start
        return f"{NOT_COMPUTED}: stopped after {took:.0f} s, at {budget}; {again}"
    except (Exception, SystemExit) as exc:
        out = f"no theory: {_one_line(exc)}"
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = out
    _STOPPED.pop(key, None)
    return out


def _theory_note(res: Any, name: str) -> str:
    """Why parameter ``name`` of an :class:`~likelab.asymptotics.AsymptoticsResult` has no
    asymptotic SD or ARE, or the caveat on its ARE; "" when there is nothing to say."""
    if res.reason:
        return f"no asymptotics: {res.reason}"
    if not math.isfinite(res.are_vs_log[name]):
        return f"no ARE vs log: {res.are_reason}" if res.are_reason else "no ARE vs log"
    if res.theta_star_differs:
        return (
            "θ* of the objective differs from θ* of log: the ARE compares variances around "
            "different limits (the relative MSE includes the bias)"
        )
    return ""


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, LikelabError):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def export(
    store: str | Path,
    path: str | Path,
    fmt: str,
    *,
    theory: bool | Literal["auto"] = False,
    rows: list[dict[str, Any]] | None = None,
) -> None:
    """Write the summary to ``path`` as CSV or Parquet: ``rows`` of :func:`summarise` where
    given (``store`` and ``theory`` are then not used), else ``summarise(store, theory=theory)``.

    The file is written beside ``path`` under a temporary name and renamed when complete: a
    failure leaves nothing behind, and a :class:`~likelab.errors.ParameterError` names the path.
    """
    import os
    import tempfile

    import duckdb

    if fmt not in ("csv", "parquet"):
        raise ParameterError(f"export format must be csv or parquet, got {fmt!r}")
    target = Path(path)
    if target.is_dir():
        raise ParameterError(f"cannot write the summary to {str(path)!r}: it is a directory")
    if rows is None:
        rows = summarise(store, theory=theory)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        os.close(fd)
        if fmt == "csv":
            # repr() is the shortest string that reads back to the same double
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(SUMMARY_COLUMNS)
                for r in rows:
                    writer.writerow(["" if r[c] is None else r[c] for c in SUMMARY_COLUMNS])
        else:
            with duckdb.connect(":memory:") as con:
                con.execute(
                    "CREATE TABLE summary ("
                    + ", ".join(f"{c} {_TYPES.get(c, 'DOUBLE')}" for c in SUMMARY_COLUMNS)
                    + ")"
                )
                if rows:
                    con.executemany(
                        f"INSERT INTO summary VALUES ({', '.join('?' * len(SUMMARY_COLUMNS))})",
                        [[r[c] for c in SUMMARY_COLUMNS] for r in rows],
                    )
                quoted = tmp.replace("'", "''")
                con.execute(f"COPY summary TO '{quoted}' (FORMAT parquet)")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, target)
        tmp = None
    except (OSError, duckdb.Error) as exc:
        why = getattr(exc, "strerror", None) or " ".join(str(exc).split())
        raise ParameterError(f"cannot write the summary to {str(path)!r}: {why}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
