"""underflow(): thresholds against independent numpy / math computations, gradients against the
closed form and against plain per-n autograd, validation."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from likelab.errors import ParameterError, UnknownNameError
from likelab.landscape import UnderflowReport, underflow
from likelab.landscape.underflow import MAX_N

NP = {"float32": np.float32, "float64": np.float64}


@pytest.fixture(scope="module")
def default() -> UnderflowReport:
    return underflow()


def _numpy_sequential(ls, n_max, dt):
    """Sequential product p <- p * l in numpy scalars of type dt; first subnormal / zero n."""
    tiny = np.finfo(dt).tiny
    p = dt(1.0)
    values, sub, zero = [], None, None
    for i in range(n_max):
        p = dt(p * dt(ls[i % len(ls)]))
        values.append(float(p))
        if sub is None and 0 < p < tiny:
            sub = i + 1
        if zero is None and p == 0:
            zero = i + 1
    return np.array(values), sub, zero


def _log10_estimate(ls, threshold_log10):
    """First n with sum_{i<=n} log10 l_i < threshold (the exact product crosses it)."""
    s, n = 0.0, 0
    while True:
        n += 1
        s += math.log10(ls[(n - 1) % len(ls)])
        if s < threshold_log10:
            return n


@pytest.mark.parametrize("ls", [(0.3, 0.2, 0.1), (0.5,), (0.99, 0.01), (0.45, 0.05, 0.3, 0.2)])
def test_thresholds_match_numpy_sequential_product(ls):
    rep = underflow(ls, max_n=512) if ls != (0.5,) else underflow(ls, max_n=1100)
    for name, dt in NP.items():
        values, sub, zero = _numpy_sequential(ls, rep.max_n, dt)
        t = rep.thresholds[name]
        assert t["subnormal_at"] == sub and t["zero_at"] == zero
        np.testing.assert_array_equal(rep.product[name], values)  # bit for bit


def test_default_thresholds_and_log10_estimates(default):
    ls = (0.3, 0.2, 0.1)
    t32, t64 = default.thresholds["float32"], default.thresholds["float64"]
    # measured: float32 subnormal from n = 52, zero from 62; float64 from 416 and 438
    assert (t32["subnormal_at"], t32["zero_at"]) == (52, 62)
    assert (t64["subnormal_at"], t64["zero_at"]) == (416, 438)
    for t, dt in ((t32, np.float32), (t64, np.float64)):
        info = np.finfo(dt)
        smallest = float(info.smallest_subnormal)
        # the exact product crosses tiny at the same n (sequential rounding errors are ~n eps);
        # zero needs the product below smallest/2, where subnormal rounding is coarse: +-1
        assert t["subnormal_at"] == _log10_estimate(ls, math.log10(info.tiny))
        half = math.log10(smallest) - math.log10(2.0)  # smallest / 2 is 0 in float64
        assert abs(t["zero_at"] - _log10_estimate(ls, half)) <= 1
        assert t["tiny"] == float(info.tiny) and t["smallest_subnormal"] == smallest
        logs = [math.log(v) for v in ls]
        expected = math.fsum(logs[i % 3] for i in range(t["zero_at"]))
        assert math.isfinite(t["log_product_at_zero"])
        np.testing.assert_allclose(t["log_product_at_zero"], expected, rtol=1e-14)


def test_powers_of_two_exact_oracle():
    # l = 1/2: P_n = 2^-n exactly. float32: 2^-127 is the first subnormal (tiny = 2^-126);
    # 2^-150 is half the smallest subnormal 2^-149 and rounds (ties to even) to 0.
    rep = underflow((0.5,), dtypes=("float32",), max_n=160)
    t = rep.thresholds["float32"]
    assert (t["subnormal_at"], t["zero_at"]) == (127, 150)
    np.testing.assert_array_equal(rep.product["float32"][:149], 2.0 ** -np.arange(1, 150))


def test_sequential_is_not_torch_cumprod():
    # torch.cumprod on the CPU accumulates float32 in float64 and rounds each partial product:
    # its subnormal values differ from sequential float32 multiplication. underflow() uses the
    # sequential product (the numpy loop above is the oracle).
    rep = underflow((0.3, 0.2, 0.1), dtypes=("float32",), max_n=64)
    x = torch.tensor([(0.3, 0.2, 0.1)[i % 3] for i in range(64)], dtype=torch.float32)
    cum = torch.cumprod(x, 0).double().numpy()
    assert not np.array_equal(cum, rep.product["float32"])


def test_sequential_product_sticks_at_a_subnormal_for_large_likelihoods():
    # l = 0.9: among subnormals (multiples k of the smallest, s) k s * 0.9 rounds back to k s
    # while 0.1 k < 1/2, i.e. k <= 4 (and 5 s * 0.9 = 4.5 s ties to even, 4 s). So the
    # sequential product stops at 4 s and never reaches 0 although the exact product does.
    rep = underflow((0.9,), dtypes=("float32",), max_n=1100)
    values, sub, zero = _numpy_sequential((0.9,), 1100, np.float32)
    assert rep.thresholds["float32"]["zero_at"] is None and zero is None
    assert rep.thresholds["float32"]["subnormal_at"] == sub
    s = float(np.finfo(np.float32).smallest_subnormal)
    assert (rep.product["float32"][-50:] == 4 * s).all()  # stuck from n = 964 on
    np.testing.assert_array_equal(rep.product["float32"], values)


def test_gradient_vanishes_with_the_product_and_nll_does_not(default):
    for name in ("float32", "float64"):
        t = default.thresholds[name]
        assert t["grad_zero_at"] is not None
        assert t["grad_zero_at"] >= t["zero_at"] - 2
        n0 = t["grad_zero_at"]
        assert (default.grad_norm_product[name][n0 - 1 :] == 0).all()
        assert default.grad_norm_product[name][n0 - 2] > 0
    assert (default.grad_norm_nll > 0.1).all()


def test_gradient_norms_match_closed_form(default):
    # dP/dz_i = P (e_y - softmax(z_i)), so RMS_i ||dP/dz_i|| = P * RMS_i ||e_y - s_i||, and
    # ||e_y - s_i||^2 = (1 - l)^2 + (K - 1) ((1 - l) / (K - 1))^2 = (1 - l)^2 K / (K - 1).
    ls, k = np.array([0.3, 0.2, 0.1]), 10
    n = default.n
    per = (1 - ls[(n - 1) % 3]) ** 2 * k / (k - 1)
    nll = np.sqrt(np.cumsum(per) / n)
    # the per-sample NLL gradients are softmax outputs minus one-hot, a few ulps each: 1e-13
    np.testing.assert_allclose(default.grad_norm_nll, nll, rtol=1e-13)
    # P itself from exact rational arithmetic (Fraction products of the float64 l_i, rounded
    # once). Where P is a normal float64 (n < 416): the sequential product, the softmax
    # probabilities (a few ulps from l_i each) and the backward pass add relative errors of at
    # most ~ 3 n eps = 3 * 416 * 1.1e-16 = 1.4e-13, so rtol = 1e-12.
    exact, acc = [], Fraction(1)
    for i in range(n.size):
        acc *= Fraction(float(ls[i % 3]))
        exact.append(float(acc))
    exact = np.array(exact)
    normal = default.product["float64"] > np.finfo(np.float64).tiny
    np.testing.assert_allclose(
        default.grad_norm_product["float64"][normal], exact[normal] * nll[normal], rtol=1e-12
    )
    # float32: the same to float32 precision, n < 52 roundings of 6e-8: rtol = 52 * 6e-8 * 3
    normal32 = default.product["float32"] > np.finfo(np.float32).tiny
    np.testing.assert_allclose(
        default.grad_norm_product["float32"][normal32],
        exact[normal32] * nll[normal32],
        rtol=1e-5,
    )


def _plain_autograd(ls, n, k, dtype):
    """One ordinary backward pass through p = p * softmax(z_i)[0], i = 1..n."""
    lv = torch.tensor([ls[i % len(ls)] for i in range(n)], dtype=torch.float64)
    z = (torch.log1p(-lv) - math.log(k - 1))[:, None].repeat(1, k)
    z[:, 0] = torch.log(lv)
    z = z.to(dtype).requires_grad_(True)
    probs = torch.softmax(z, dim=-1)[:, 0]
    acc = torch.ones((), dtype=dtype)
    for i in range(n):
        acc = acc * probs[i]
    (g,) = torch.autograd.grad(acc, z)
    return g.double()


@pytest.mark.parametrize("name", ["float32", "float64"])
def test_batched_scan_equals_separate_backward_passes(default, name):
    dtype = getattr(torch, name)
    t = default.thresholds[name]
    for n in (1, 2, 17, t["subnormal_at"], t["zero_at"] - 1, t["zero_at"], t["zero_at"] + 1):
        g = _plain_autograd((0.3, 0.2, 0.1), n, 10, dtype)
        assert bool((g == 0).all()) == (default.grad_norm_product[name][n - 1] == 0)
        # the norm of the same gradient (computed with scaling, so subnormals do not vanish)
        peak = g.abs().max()
        norm = 0.0 if peak == 0 else float(peak * torch.sqrt(((g / peak) ** 2).sum()))
        np.testing.assert_allclose(
            default.grad_norm_product[name][n - 1], norm / math.sqrt(n), rtol=1e-13
        )


def test_rows_and_json(default):
    sizes = [r["n"] for r in default.rows]
    for p in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512):
        assert p in sizes
    for t in default.thresholds.values():
        assert t["subnormal_at"] in sizes and t["zero_at"] in sizes
    assert default.max_n == 512  # the power of two past the float64 zero point (438)
    row = next(r for r in default.rows if r["n"] == 62)
    assert row["product_float32"] == 0.0 and row["grad_norm_product_float32"] == 0.0
    assert row["product_float64"] > 0 and math.isfinite(row["log_product"])
    assert list(row) == [
        "n",
        "product_float32",
        "product_float64",
        "log_product",
        "grad_norm_product_float32",
        "grad_norm_product_float64",
        "grad_norm_nll",
    ]
    d = default.to_dict()
    json.dumps(d, allow_nan=False)
    assert set(d) == {"likelihoods", "num_classes", "max_n", "dtypes", "thresholds", "rows"}
    with_curves = default.to_dict(curves=True)
    json.dumps(with_curves, allow_nan=False)
    assert len(with_curves["curves"]["n"]) == 512


def test_explicit_sizes_and_float16():
    rep = underflow((0.3, 0.2, 0.1), dtypes=("float16",), sizes=[3, 1, 3, 20])
    assert [r["n"] for r in rep.rows] == [1, 3, 20]
    values, sub, zero = _numpy_sequential((0.3, 0.2, 0.1), rep.max_n, np.float16)
    t = rep.thresholds["float16"]
    assert (t["subnormal_at"], t["zero_at"]) == (sub, zero)
    np.testing.assert_array_equal(rep.product["float16"], values)


def test_likelihood_one_has_no_gradient_and_never_underflows():
    rep = underflow((1.0,), dtypes=("float64",), max_n=16)
    t = rep.thresholds["float64"]
    assert t["zero_at"] is None and t["subnormal_at"] is None
    assert (rep.product["float64"] == 1.0).all()
    # a certain prediction (softmax saturated at exactly 1) has zero gradient for P and NLL
    assert t["grad_zero_at"] == 1 and (rep.grad_norm_nll == 0).all()


@pytest.mark.parametrize(
    "bad",
    [
        (0.0,),
        (1.5,),
        (float("nan"),),
        (),
        (0.3, -0.1),
        (float("inf"),),
        [[0.1, 0.2]],
        "0.3",
        ("a",),
    ],
)
def test_invalid_likelihoods(bad):
    with pytest.raises(ParameterError):
        underflow(bad)


def test_invalid_options():
    with pytest.raises(UnknownNameError):
        underflow(dtypes=("float128",))
    with pytest.raises(ParameterError):
        underflow(dtypes=())
    with pytest.raises(ParameterError):
        underflow(num_classes=1)
    with pytest.raises(ParameterError):
        underflow(max_n=MAX_N + 1)
    with pytest.raises(ParameterError):
        underflow(sizes=[0, 4])
    with pytest.raises(ParameterError):
        underflow(sizes=[])
    with pytest.raises(ParameterError):
        underflow(max_n=2.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_thresholds_match_cpu(default):
    gpu = underflow(device="cuda")
    for name in ("float32", "float64"):
        # IEEE multiplication with gradual underflow is exact to the rounding rule everywhere
        np.testing.assert_array_equal(gpu.product[name], default.product[name])
        assert gpu.thresholds[name]["zero_at"] == default.thresholds[name]["zero_at"]


def test_too_many_classes_are_refused_before_allocating(monkeypatch):
    monkeypatch.setenv("LIKELAB_MEMORY_LIMIT", "1GB")
    with pytest.raises(ParameterError, match=r"10000000 classes .* needs about"):
        underflow((0.5,), num_classes=10_000_000, max_n=64)
