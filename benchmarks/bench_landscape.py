"""Landscape evaluation: likelab's batched grid against the seed's per-point loop.

The seed draws its figure with R's ``sapply(mu_seq, function(mu) sum(dnorm(x, mu, sigma)))``: one
density call per grid point. The baseline here is that loop in Python with ``scipy.stats.norm.pdf``
(10,000 grid points, n = 10, three objectives: sum, product, log-product). likelab evaluates the
same three objectives over the whole grid in batched torch calls, in float64, and finds the minima.
A second case, 2-D (loc x scale, 200 x 200) with n = 1,000 and the log objective, compares against
a vectorised numpy broadcast of the same formula, the strongest simple baseline.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from benchmarks._timing import best_time, fmt_seconds
from likelab.families import get_family
from likelab.landscape import evaluate


def seed_loop_baseline(y: np.ndarray, mu: np.ndarray, sigma: float) -> np.ndarray:
    out = np.empty((3, mu.size))
    for i, m in enumerate(mu):
        lik = stats.norm.pdf(y, m, sigma)
        out[0, i] = -lik.mean()
        out[1, i] = -np.prod(lik)
        out[2, i] = -stats.norm.logpdf(y, m, sigma).mean()  # log(pdf) would underflow
    return out


def numpy_2d_log(y: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    m = loc[:, None, None]
    s = scale[None, :, None]
    z = (y[None, None, :] - m) / s
    return (0.5 * z**2 + np.log(s) + 0.5 * np.log(2 * np.pi)).mean(-1)


def main() -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    y = get_family("normal").sample(10, seed=0, loc=0.0, scale=1.0)
    mu = np.linspace(-3, 3, 10_000)
    fam = get_family("normal:scale=0.1")
    objectives = ["linear", "product", "log"]

    t_base = best_time(lambda: seed_loop_baseline(y, mu, 0.1), repeat=3, min_time=0.5)
    t_ll = best_time(lambda: evaluate(y, fam, objectives, {"loc": mu}), repeat=5)
    land = evaluate(y, fam, objectives, {"loc": mu})
    base = seed_loop_baseline(y, mu, 0.1)
    for k, spec in enumerate(objectives):
        np.testing.assert_allclose(land.results[spec].values, base[k], rtol=1e-9, atol=1e-300)
    print(
        "seed landscape: 10,000 grid points, n = 10, objectives sum/product/log "
        "(values checked equal)"
    )
    print(f"  baseline (seed's per-point loop, scipy.stats.norm.pdf): {fmt_seconds(t_base)}")
    print(f"  likelab.landscape.evaluate (incl. local minima):        {fmt_seconds(t_ll)}")
    print(f"  speed-up vs baseline: {t_base / t_ll:.1f}x")

    y2 = get_family("normal").sample(1000, seed=1, loc=0.0, scale=1.0)
    loc, scale = np.linspace(-1, 1, 200), np.linspace(0.5, 2, 200)
    fam2 = get_family("normal")
    t_np = best_time(lambda: numpy_2d_log(y2, loc, scale), repeat=3)
    t_ll2 = best_time(lambda: evaluate(y2, fam2, ["log"], {"loc": loc, "scale": scale}), repeat=3)
    np.testing.assert_allclose(
        evaluate(y2, fam2, ["log"], {"loc": loc, "scale": scale}).results["log"].values,
        numpy_2d_log(y2, loc, scale),
        rtol=1e-10,
    )
    print("2-D landscape: 200 x 200 grid (loc, scale), n = 1,000, log objective")
    print(f"  baseline (vectorised numpy broadcast): {fmt_seconds(t_np)}")
    print(f"  likelab.landscape.evaluate:            {fmt_seconds(t_ll2)}")
    print(f"  ratio likelab / numpy: {t_ll2 / t_np:.2f} (time; below 1 is faster)")


if __name__ == "__main__":
    main()
