r"""Performance measures with their Monte Carlo standard errors: SQL over the store.

Per (DGP point, n, objective, parameter), over the :math:`n_{sim}` replicates whose fit
converged to a finite estimate :math:`\hat\theta_i` (true value θ, model SE :math:`\widehat{SE}_i`),
with the formulas of Morris, White & Crowther (2019, Stat. Med. 38:2074-2102, Table 6):

- bias :math:`\bar\theta - \theta`, MCSE :math:`\mathrm{EmpSE}/\sqrt{n_{sim}}`;
- empirical SE :math:`\mathrm{EmpSE} = \sqrt{\sum(\hat\theta_i-\bar\theta)^2/(n_{sim}-1)}`,
  MCSE :math:`\mathrm{EmpSE}/\sqrt{2(n_{sim}-1)}`;
- MSE :math:`\sum(\hat\theta_i-\theta)^2/n_{sim}`, MCSE
  :math:`\sqrt{\sum[(\hat\theta_i-\theta)^2-\mathrm{MSE}]^2/(n_{sim}(n_{sim}-1))}`;
- relative efficiency against ``log`` :math:`\mathrm{RE} = \mathrm{EmpSE}_{log}^2/\mathrm{EmpSE}^2`,
  MCSE :math:`2\,\mathrm{RE}\sqrt{(1-\rho^2)/(n_{sim}-1)}`;
- model SE :math:`\sqrt{\sum \widehat{SE}_i^2 / n_{sim}}` (replicates with a finite SE);
- coverage C of the Wald interval :math:`\hat\theta_i \pm 1.96\,\widehat{SE}_i`, MCSE
  :math:`\sqrt{C(1-C)/n_{sim}}`.

The relative efficiency is paired: both empirical SEs and the correlation ρ are taken over the
replicates where both ``log`` and the objective converged, on the same datasets. The failure
rate is the share of all replicates whose fit failed (not converged, non-finite, or an error).
Everything is one DuckDB query; no Python loop touches the rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from likelab.errors import ParameterError
from likelab.study.store import Store

__all__ = ["SUMMARY_COLUMNS", "summarise"]

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
    "model_se",
    "coverage",
    "coverage_mcse",
    "failure_rate",
    "replicates",
)

Z975 = 1.959963984540054

SUMMARY_SQL = f"""
WITH ok AS (
    SELECT * FROM results WHERE converged AND isfinite(estimate)
),
base AS (
    SELECT dgp, n, objective, parameter,
           count(*) AS k,
           avg(estimate) - any_value(truth) AS bias,
           stddev_samp(estimate) AS emp_se,
           avg((estimate - truth) ^ 2) AS mse,
           var_samp((estimate - truth) ^ 2) AS sq_err_var,
           sqrt(avg(se * se) FILTER (WHERE isfinite(se))) AS model_se,
           avg(CASE WHEN abs(estimate - truth) <= {Z975} * se THEN 1.0 ELSE 0.0 END)
               FILTER (WHERE isfinite(se)) AS coverage,
           count(*) FILTER (WHERE isfinite(se)) AS k_se
    FROM ok GROUP BY dgp, n, objective, parameter
),
fails AS (
    SELECT dgp, n, objective, parameter, count(*) AS total,
           avg(CASE WHEN converged AND isfinite(estimate) THEN 0.0 ELSE 1.0 END) AS failure_rate
    FROM results GROUP BY dgp, n, objective, parameter
),
paired AS (
    SELECT a.dgp, a.n, a.objective, a.parameter,
           count(*) AS m,
           stddev_samp(a.estimate) AS se_obj,
           stddev_samp(b.estimate) AS se_log,
           -- the correlation, clamped to [-1, 1] (DuckDB's corr can return NaN for columns
           -- that agree to rounding, as log's does with itself)
           greatest(least(covar_samp(a.estimate, b.estimate)
                          / (stddev_samp(a.estimate) * stddev_samp(b.estimate)), 1.0), -1.0)
               AS rho
    FROM ok a JOIN ok b
      ON a.cell_key = b.cell_key AND a.replicate = b.replicate AND a.parameter = b.parameter
     AND b.objective = 'log'
    GROUP BY a.dgp, a.n, a.objective, a.parameter
)
SELECT f.dgp, f.n, f.objective, f.parameter,
       b.bias, b.emp_se / sqrt(b.k) AS bias_mcse,
       b.emp_se, b.emp_se / sqrt(2 * (b.k - 1)) AS emp_se_mcse,
       b.mse, sqrt(b.sq_err_var / b.k) AS mse_mcse,
       (p.se_log / p.se_obj) ^ 2 AS rel_eff,
       2 * (p.se_log / p.se_obj) ^ 2 * sqrt(greatest(1 - p.rho * p.rho, 0) / (p.m - 1))
           AS rel_eff_mcse,
       b.model_se,
       b.coverage, sqrt(b.coverage * (1 - b.coverage) / b.k_se) AS coverage_mcse,
       f.failure_rate,
       f.total AS replicates
FROM fails f
LEFT JOIN base b USING (dgp, n, objective, parameter)
LEFT JOIN paired p USING (dgp, n, objective, parameter)
ORDER BY f.dgp, f.n, f.objective, f.parameter
"""


def summarise(store: str | Path) -> list[dict[str, Any]]:
    """The performance measures of every (DGP, n, objective, parameter) in ``store``."""
    with Store(store, read_only=True) as db:
        db.study()
        rows = db.con.execute(SUMMARY_SQL).fetchall()
    return [dict(zip(SUMMARY_COLUMNS, row, strict=True)) for row in rows]


def export(store: str | Path, path: str | Path, fmt: str) -> None:
    """Write the summary to ``path`` as CSV or Parquet (DuckDB's ``COPY``)."""
    if fmt not in ("csv", "parquet"):
        raise ParameterError(f"export format must be csv or parquet, got {fmt!r}")
    target = str(Path(path)).replace("'", "''")
    with Store(store, read_only=True) as db:
        db.study()
        options = "FORMAT csv, HEADER" if fmt == "csv" else "FORMAT parquet"
        db.con.execute(f"COPY ({SUMMARY_SQL}) TO '{target}' ({options})")
