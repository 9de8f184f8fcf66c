"""caffe2ops.kernels: every fused kernel against its formula written in plain NumPy.

Float results must match bit for bit (±0 included; NaN only by position, not payload), for
float32 and float64, below and above the parallel threshold, in place where allowed, and with
1 and 2 threads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from caffe2ops import kernels
from caffe2ops.kernels import cpu

FLOATS = [np.float32, np.float64]
INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
SMALL, LARGE = 1000, 1_100_000
assert SMALL < cpu.cos.PAR_MIN_COS <= cpu.PAR_MIN < LARGE
THREADS = [1, 2] if kernels.get_max_threads() >= 2 else [1]
SRC = Path(__file__).resolve().parent.parent / "src"
# (threads, streaming stores forced on): the large-output path is exercised on small arrays
MODES = [(n, False) for n in THREADS] + [(THREADS[-1], True)]


@pytest.fixture(params=MODES, ids=lambda m: f"{m[0]}thr" + ("-stream" if m[1] else ""))
def threads(request, monkeypatch):
    nt, stream = request.param
    cpu.load()
    if stream:
        monkeypatch.setattr(cpu, "STREAMING_MIN_BYTES", 0)
    old = kernels.get_num_threads()
    kernels.set_num_threads(nt)
    yield nt
    kernels.set_num_threads(old)


def assert_bits(got: np.ndarray, want: np.ndarray) -> None:
    """Same dtype, shape and bits; NaNs must sit at the same places (payload not compared)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    if got.dtype.kind != "f":
        np.testing.assert_array_equal(got, want)
        return
    gn, wn = np.isnan(got), np.isnan(want)
    np.testing.assert_array_equal(gn, wn, err_msg="NaN positions differ")
    ui = np.dtype(f"u{got.dtype.itemsize}")
    g, w = got.view(ui)[~gn], want.view(ui)[~wn]
    if not np.array_equal(g, w):
        bad = np.flatnonzero(g != w)[:5]
        raise AssertionError(f"bits differ at {bad}: got {got[~gn][bad]} want {want[~wn][bad]}")


def data(n: int, dtype, seed: int = 0, specials: tuple = ()) -> np.ndarray:
    """Random values with IEEE specials (and ``specials``) scattered through."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 2).astype(dtype)
    fi = np.finfo(dtype)
    sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, fi.tiny / 4, -fi.tiny, fi.max, fi.min,
                   1.0, -1.0, *specials], dtype)
    k = min(n, 8 * sp.size)
    x[rng.choice(n, k, replace=False)] = np.resize(sp, k)
    return x


def skip_f64_parallel(dt, n: int) -> None:
    """The float64 parallel/streaming wrappers are the float32 code at another item size; clip,
    cos and the row kernels run them, the other element-wise ops skip them (compile time)."""
    if dt == np.float64 and (n > SMALL or cpu.STREAMING_MIN_BYTES == 0):
        pytest.skip("float64 parallel path: covered by clip (saves compiling)")


def one(dt):
    return np.dtype(dt).type(1)


def zero(dt):
    return np.dtype(dt).type(0)


# ---------------------------------------------------------------------------------------------
# NumPy formulas (every operation in the array's dtype)


def clip_ref(x, lo, hi):
    m = np.where(x < lo, lo, x)
    return np.where(hi < m, hi, m).astype(x.dtype)


@np.errstate(invalid="ignore")
def clip_gradient_ref(y, dy, lo, hi):
    return dy * np.where((lo < y) & (y < hi), one(y.dtype), zero(y.dtype))


def trelu_ref(x, alpha):
    return np.where(x > alpha, x, zero(x.dtype))


def trelu_grad_ref(y, dy, alpha):
    return np.where(y > alpha, dy, zero(y.dtype))


def cec_ref(s, label, margin):
    v = s - margin
    return np.where(label.reshape(s.shape) == 1, one(s.dtype) - s,
                    np.where(v > zero(s.dtype), v, zero(s.dtype)))


@np.errstate(invalid="ignore")
def cec_grad_ref(s, label, dloss, margin):
    return np.where(label.reshape(s.shape) == 1, -dloss,
                    dloss * np.where(s >= margin, one(s.dtype), zero(s.dtype)))


def row_sums(x, y):
    """Per-row float64 sums accumulated in index order (one vector op per column)."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    a = np.zeros(x.shape[0])
    b = np.zeros(x.shape[0])
    c = np.zeros(x.shape[0])
    for j in range(x.shape[1]):
        a += x64[:, j] * x64[:, j]
        b += y64[:, j] * y64[:, j]
        c += x64[:, j] * y64[:, j]
    dt = x.dtype.type
    return a.astype(dt), b.astype(dt), c.astype(dt)


def assert_close_sums(got, want):
    """Equal up to the reordering of float64 row sums (NaN where the reference has NaN)."""
    tol = {np.dtype(np.float32): (2e-6, 1e-6), np.dtype(np.float64): (1e-13, 1e-14)}[got.dtype]
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=tol[0], atol=tol[1], equal_nan=True)


def cos_sim_ref(x, y):
    eps = x.dtype.type(1e-12)
    x2, y2, xy = row_sums(x, y)
    return xy / np.sqrt(np.maximum(x2, eps) * np.maximum(y2, eps))


def cos_sim_grad_ref(x, y, dz):
    eps = x.dtype.type(1e-12)
    x2, y2, xy = row_sums(x, y)
    xn = np.sqrt(np.maximum(x2, eps))
    yn = np.sqrt(np.maximum(y2, eps))
    xyn = xn * yn
    k = (dz / xyn)[:, None]
    kx = ((dz * xy) / ((xn * xn) * xyn))[:, None]
    ky = ((dz * xy) / ((yn * yn) * xyn))[:, None]
    return k * y - kx * x, k * x - ky * y


def sparse_normalize_ref(param, indices, norm, use_max_norm):
    p = param.copy()
    rows = np.unique(indices)
    dt = param.dtype.type
    sub = p[rows].astype(np.float64)
    s = np.zeros(rows.size)
    for j in range(p.shape[1]):
        s += sub[:, j] * sub[:, j]
    n = np.sqrt(s).astype(dt)
    scale = dt(norm) / (n + dt(1e-12))
    keep = (n <= dt(norm)) if use_max_norm else np.zeros(rows.size, bool)
    p[rows[~keep]] = p[rows[~keep]] * scale[~keep][:, None]
    return p


# ---------------------------------------------------------------------------------------------
# element-wise kernels


@pytest.mark.parametrize("n", [SMALL, LARGE])
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("bounds", [(-0.5, 0.75), (0.0, 1.0), (0.5, -0.5), (-np.inf, np.inf)])
def test_clip(threads, dt, n, bounds):
    lo, hi = (dt(b) for b in bounds)
    x = data(n, dt, specials=(lo, hi))
    want = clip_ref(x, lo, hi)
    assert_bits(cpu.clip.clip(x, lo, hi, np.empty_like(x)), want)
    y = x.copy()
    assert cpu.clip.clip(y, lo, hi, y) is y  # in place
    assert_bits(y, want)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_streaming_stores_any_alignment(monkeypatch, dt):
    """Streaming path: every offset (alignment) and length, in place too, 1 and 2 threads."""
    cpu.load()
    monkeypatch.setattr(cpu, "STREAMING_MIN_BYTES", 0)
    base = (np.arange(-3000, 3000) % 251).astype(dt)
    lo, hi = dt(5), dt(100)
    old = kernels.get_num_threads()
    try:
        for nt in THREADS:
            kernels.set_num_threads(nt)
            for off in range(0, 9):
                for n in (0, 1, 15, 16, 17, 63, 64, 65, 200, 4097, 5000):
                    x = base[off:off + n]
                    buf = np.zeros(base.size + 16, dt)
                    out = buf[off:off + n]
                    cpu.clip.clip(x, lo, hi, out)
                    assert_bits(out, clip_ref(x, lo, hi))
                    assert not buf[:off].any() and not buf[off + n:].any()
                    y = x.copy()
                    assert_bits(cpu.clip.clip(y, lo, hi, y), clip_ref(x, lo, hi))
    finally:
        kernels.set_num_threads(old)


def test_clip_special_cases():
    x = np.array([-0.0, 0.0, np.nan, -1, 2], np.float32)
    y = cpu.clip.clip(x, np.float32(0), np.float32(1), np.empty_like(x))
    assert np.signbit(y[0]) and not np.signbit(y[1]) and np.isnan(y[2])
    assert_bits(cpu.clip.clip(x, np.float32(3), np.float32(2), np.empty_like(x)),
                np.array([2, 2, np.nan, 2, 2], np.float32))


@pytest.mark.parametrize("n", [SMALL, LARGE])
@pytest.mark.parametrize("dt", INTS)
def test_clip_integers(threads, dt, n):
    if n == LARGE and dt not in (np.int8, np.uint64):
        pytest.skip("parallel path: same code for every integer type, three suffice")
    info = np.iinfo(dt)
    rng = np.random.default_rng(1)
    x = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
    for lo, hi in [(dt(info.min // 3), dt(info.max // 3)), (dt(info.max // 2), dt(info.min)),
                   (dt(0), dt(0))]:
        want = clip_ref(x, lo, hi)
        assert_bits(cpu.clip.clip(x, lo, hi, np.empty_like(x)), want)
        y = x.copy()
        assert_bits(cpu.clip.clip(y, lo, hi, y), want)
    assert cpu.supports(dt, "clip") and not cpu.supports(dt)


@pytest.mark.parametrize("n", [SMALL, LARGE])
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("bounds", [(-0.5, 0.75), (0.5, -0.5)])
def test_clip_gradient(threads, dt, n, bounds):
    skip_f64_parallel(dt, n)
    lo, hi = (dt(b) for b in bounds)
    y = clip_ref(data(n, dt, 1, specials=(lo, hi)), lo, hi)
    y[::7] = data(n, dt, 5)[::7]
    dy = data(n, dt, 2)
    want = clip_gradient_ref(y, dy, lo, hi)
    assert_bits(cpu.clip.clip_gradient(y, dy, lo, hi, np.empty_like(y)), want)
    g = dy.copy()
    assert cpu.clip.clip_gradient(y, g, lo, hi, g) is g  # out=dy
    assert_bits(g, want)
    # masked entries are dy*0: -0 for negative dy, NaN for inf/NaN dy
    masked = ~((lo < y) & (y < hi))
    assert np.all(np.signbit(want[masked & (dy < 0)]))


@pytest.mark.parametrize("n", [SMALL, LARGE])
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("alpha", [1.0, 0.0, -0.5, -np.inf])
def test_thresholded_relu(threads, dt, n, alpha):
    skip_f64_parallel(dt, n)
    a = dt(alpha)
    x = data(n, dt, 3, specials=(a,))
    want = trelu_ref(x, a)
    assert_bits(cpu.thresholded_relu.thresholded_relu(x, a, np.empty_like(x)), want)
    y = x.copy()
    assert cpu.thresholded_relu.thresholded_relu(y, a, y) is y
    assert_bits(y, want)
    assert not np.any(np.signbit(want[~(x > a)]))  # +0, NaN gives +0
    assert not np.any(np.isnan(want[np.isnan(x)]))


@pytest.mark.parametrize("n", [SMALL, LARGE])
@pytest.mark.parametrize("dt", FLOATS)
def test_thresholded_relu_gradient(threads, dt, n):
    skip_f64_parallel(dt, n)
    y = trelu_ref(data(n, dt, 4), dt(0.5))
    dy = data(n, dt, 5)
    want = trelu_grad_ref(y, dy, zero(dt))
    assert_bits(cpu.thresholded_relu.thresholded_relu_gradient(y, dy, np.empty_like(y)), want)
    g = dy.copy()
    assert cpu.thresholded_relu.thresholded_relu_gradient(y, g, g) is g
    assert_bits(g, want)


@pytest.mark.parametrize("n", [SMALL, LARGE])
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("alpha", [1.0, -0.5])
def test_thresholded_relu_gradient_from_x(threads, dt, n, alpha):
    skip_f64_parallel(dt, n)
    a = dt(alpha)
    x = data(n, dt, 6, specials=(a,))
    dy = data(n, dt, 7)
    want = trelu_grad_ref(x, dy, a)
    assert_bits(cpu.thresholded_relu.thresholded_relu_gradient_from_x(x, dy, a, np.empty_like(x)),
        want)
    g = dy.copy()
    assert cpu.thresholded_relu.thresholded_relu_gradient_from_x(x, g, a, g) is g
    assert_bits(g, want)


@pytest.mark.parametrize("n", [SMALL, LARGE])
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("ldt", [np.int32, np.int64])
@pytest.mark.parametrize("margin", [0.0, 0.25, -0.5])
def test_cosine_embedding_criterion(threads, dt, ldt, n, margin):
    skip_f64_parallel(dt, n)
    if ldt == np.int64 and (dt == np.float64 or n == LARGE or cpu.STREAMING_MIN_BYTES == 0):
        pytest.skip("int64 labels: covered by float32 serial calls (saves compiling)")
    m = dt(margin)
    s = data(n, dt, 8, specials=(m,))
    rng = np.random.default_rng(9)
    label = rng.choice(np.array([1, -1, 0, 2, -7, 1], ldt), n)
    want = cec_ref(s, label, m)
    cec = cpu.cosine_embedding_criterion
    assert_bits(cec.cosine_embedding_criterion(s, label, m, np.empty_like(s)), want)
    dloss = data(n, dt, 10)
    want = cec_grad_ref(s, label, dloss, m)
    got = cec.cosine_embedding_criterion_gradient(s, label, dloss, m, np.empty_like(s))
    assert_bits(got, want)


def test_cosine_embedding_criterion_nan_and_shapes():
    s = np.array([[np.nan, np.nan], [0.5, -0.0]], np.float32)
    label = np.array([1, -1, 0, 1], np.int64)  # flat labels, 2-D similarities
    cec = cpu.cosine_embedding_criterion
    got = cec.cosine_embedding_criterion(s, label, np.float32(0), np.empty_like(s))
    assert np.isnan(got[0, 0]) and got[0, 1] == 0 and not np.signbit(got[0, 1])
    assert_bits(got, cec_ref(s, label, np.float32(0)))


# ---------------------------------------------------------------------------------------------
# cos / sin / cos_gradient


def _cos_inputs(dt, n, seed=11):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.uniform(-10, 10, n // 2), rng.uniform(-1e4, 1e4, n // 4),
                        rng.standard_normal(n - n // 2 - n // 4) * 1e5])
    x = x.astype(dt)
    x[:12] = [0.0, -0.0, np.inf, -np.inf, np.nan, np.pi / 2, 32767.5, 32768, -32769, 1e30,
              np.finfo(dt).max, np.finfo(dt).tiny]
    rng.shuffle(x)
    return x


def sin_of(x):
    """The kernels' own sine: cos_gradient(x, dy=-1) = 1 * sin(x), exactly."""
    return cpu.cos.cos_gradient(x, np.full_like(x, -1), np.empty_like(x))


@pytest.mark.parametrize("n", [SMALL, LARGE])
@pytest.mark.parametrize("dt", FLOATS)
def test_cos_sin_accuracy(threads, dt, n):
    x = _cos_inputs(dt, n)
    with np.errstate(invalid="ignore"):
        ref_c, ref_s = np.cos(x.astype(np.float64)), np.sin(x.astype(np.float64))
    for f, ref in ((lambda a, o: cpu.cos.cos(a, o), ref_c), (lambda a, o: sin_of(a), ref_s)):
        y = f(x, np.empty_like(x))
        assert y.dtype == dt
        np.testing.assert_array_equal(np.isnan(y), ~np.isfinite(x))
        if dt == np.float32:
            np.testing.assert_allclose(y, ref, rtol=2.5e-7, atol=2.5e-7)
        else:
            np.testing.assert_allclose(y, ref, rtol=1e-14, atol=1e-15)
    y = cpu.cos.cos(x, np.empty_like(x))
    z = x.copy()
    assert cpu.cos.cos(z, z) is z  # in place, including the libm pass for |x| > 32768
    assert_bits(z, y)
    assert cpu.cos.cos(np.zeros(3, dt), np.empty(3, dt)).tolist() == [1.0, 1.0, 1.0]


def test_cos_float32_dense_range():
    # every float32 in [2^12, 2^12 + 2^20 ulps) and a sweep of |x| up to 2^17
    a = np.arange(0x45800000, 0x45800000 + (1 << 20), dtype=np.uint32).view(np.float32)
    b = np.linspace(-(2.0 ** 17), 2.0 ** 17, 1 << 20).astype(np.float32)
    for x in (a, -a, b):
        x64 = x.astype(np.float64)
        np.testing.assert_allclose(cpu.cos.cos(x, np.empty_like(x)), np.cos(x64), rtol=2.5e-7,
                                   atol=2.5e-7)
        np.testing.assert_allclose(sin_of(x), np.sin(x64), rtol=2.5e-7, atol=2.5e-7)


@pytest.mark.parametrize("n", [SMALL, LARGE])
@pytest.mark.parametrize("dt", FLOATS)
def test_cos_gradient(threads, dt, n):
    x = _cos_inputs(dt, n, 12)
    dy = data(n, dt, 13)
    want = (-dy) * sin_of(x)
    assert_bits(cpu.cos.cos_gradient(x, dy, np.empty_like(x)), want)
    g = dy.copy()
    assert cpu.cos.cos_gradient(x, g, g) is g  # out=dy, including the libm path for |x| > 32768
    assert_bits(g, want)
    z = x.copy()
    assert cpu.cos.cos_gradient(z, dy, z) is z  # out=x
    assert_bits(z, want)


# ---------------------------------------------------------------------------------------------
# row kernels


@pytest.mark.parametrize("shape", [(7, 5), (3, 0), (5000, 64), (40000, 1)])
@pytest.mark.parametrize("dt", FLOATS)
def test_cosine_similarity(threads, dt, shape):
    rng = np.random.default_rng(14)
    x = rng.standard_normal(shape).astype(dt)
    y = rng.standard_normal(shape).astype(dt)
    if shape[1]:
        x[0] = 0  # zero row
        x[1] = y[1] * dt(3)
        y[2, 0] = np.nan
    z = cpu.cosine_similarity.cosine_similarity(x, y, np.empty(shape[0], dt))
    # the kernel sums in vector lanes (cpu/norms.py), the reference in index order
    assert_close_sums(z, cos_sim_ref(x, y))
    dz = rng.standard_normal(shape[0]).astype(dt)
    dx, dy = np.empty_like(x), np.empty_like(y)
    got = cpu.cosine_similarity.cosine_similarity_gradient(x, y, dz, dx, dy)
    assert got[0] is dx and got[1] is dy
    wx, wy = cos_sim_grad_ref(x, y, dz)
    assert_close_sums(dx, wx)
    assert_close_sums(dy, wy)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("idt", [np.int32, np.int64])
@pytest.mark.parametrize("use_max_norm", [True, False])
@pytest.mark.parametrize("size", ["small", "few", "large"])
def test_sparse_normalize(threads, dt, idt, use_max_norm, size):
    rng = np.random.default_rng(15)
    # "few": indices << rows takes the sort-based de-duplication, the others the row marks
    rows, d, k = {"small": (50, 6, 40), "few": (5000, 9, 30), "large": (20000, 32, 50000)}[size]
    param = (rng.standard_normal((rows, d)) * rng.uniform(0, 2, (rows, 1))).astype(dt)
    param[3] = 0  # zero row
    param[4] = param[4] / np.linalg.norm(param[4])  # norm ~ 1: the n <= norm edge
    idx = rng.integers(0, rows, k).astype(idt)
    idx[:6] = [3, 4, 5, 5, 5, 3]  # duplicates normalize once
    for norm in (1.0, 0.5):
        want = sparse_normalize_ref(param, idx, norm, use_max_norm)
        p = param.copy()
        assert cpu.sparse_normalize.sparse_normalize(p, idx, dt(norm), use_max_norm) is p
        assert_bits(p, want)


def test_sparse_normalize_untouched_rows():
    p = np.full((4, 3), 5.0, np.float32)
    cpu.sparse_normalize.sparse_normalize(p, np.array([2], np.int64), np.float32(1.0), True)
    assert np.all(p[[0, 1, 3]] == 5.0)
    np.testing.assert_allclose(np.linalg.norm(p[2]), 1.0, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# threads, API, import cost


@pytest.mark.skipif(len(THREADS) < 2, reason="needs NUMBA_NUM_THREADS >= 2")
def test_same_bits_with_1_and_2_threads():
    dt = np.float32
    x = _cos_inputs(dt, LARGE, 17)
    dy = data(LARGE, dt, 18)
    m = np.random.default_rng(19).standard_normal((LARGE // 50, 50)).astype(dt)
    results = []
    old = kernels.get_num_threads()
    try:
        for nt in (1, 2):
            kernels.set_num_threads(nt)
            p = m.copy()
            cpu.sparse_normalize.sparse_normalize(p, np.arange(0, m.shape[0], 3), dt(1), False)
            results.append([
                cpu.clip.clip(x, dt(-1), dt(1), np.empty_like(x)),
                cpu.cos.cos(x, np.empty_like(x)),
                cpu.cos.cos_gradient(x, dy, np.empty_like(x)),
                cpu.cosine_similarity.cosine_similarity(m, m[::-1].copy(),
                                                        np.empty(m.shape[0], dt)),
                p,
            ])
    finally:
        kernels.set_num_threads(old)
    for a, b in zip(*results, strict=True):
        assert_bits(np.asarray(a), np.asarray(b))


def test_set_num_threads_validation():
    hi = kernels.get_max_threads()
    old = kernels.get_num_threads()
    for bad in (0, -1, hi + 1):
        with pytest.raises(ValueError):
            kernels.set_num_threads(bad)
    for bad in (1.0, True, "2"):
        with pytest.raises(TypeError):
            kernels.set_num_threads(bad)
    kernels.set_num_threads(1)
    assert kernels.get_num_threads() == 1
    kernels.set_num_threads(hi)
    assert kernels.get_num_threads() == hi
    kernels.set_num_threads(old)


def test_supports():
    assert cpu.supports(np.float32) and cpu.supports(np.dtype("float64"), "cos")
    assert not cpu.supports(np.float16) and not cpu.supports(np.float16, "clip")
    assert not cpu.supports(np.int32, "cos") and cpu.supports(np.uint64, "clip")
    assert not cpu.supports(np.dtype(">f4")) and not cpu.supports("not a dtype")


def test_python_scalars_are_converted():
    x = data(SMALL, np.float32, 20)
    got = cpu.clip.clip(x, 0.1, 0.7, np.empty_like(x))
    assert_bits(got, clip_ref(x, np.float32(0.1), np.float32(0.7)))
    assert_bits(cpu.thresholded_relu.thresholded_relu(x, 0.3, np.empty_like(x)),
                trelu_ref(x, np.float32(0.3)))


def test_multidimensional_arrays():
    x = data(6 * 50_000, np.float64, 21).reshape(6, 50_000)
    out = np.empty_like(x)
    assert cpu.clip.clip(x, -1.0, 1.0, out) is out
    assert_bits(out, clip_ref(x, -1.0, 1.0))
    with pytest.raises(AttributeError):  # an out that has no flat view is refused, never copied
        cpu.clip.clip(x[:, :100].copy(), -1.0, 1.0, out[:, :100])


def _run_python(code: str, **env: str) -> str:
    full_env = dict(os.environ, PYTHONPATH=str(SRC), **env)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_import_does_not_load_numba_and_env_threads():
    out = _run_python(
        "import sys; from caffe2ops import kernels; from caffe2ops.kernels import cpu; "
        "print('numba' in sys.modules, kernels.get_max_threads(), kernels.get_num_threads())",
        NUMBA_NUM_THREADS="1")
    assert out == "False 1 1"


@pytest.mark.parametrize("setting, expected", [
    ("on", "quarter"), ("1", "quarter"), ("off", 1 << 62), ("0", 1 << 62), ("123456", 123456)])
def test_streaming_store_threshold_setting(monkeypatch, setting, expected):
    monkeypatch.setenv("CAFFE2OPS_STREAMING_STORES", setting)
    quarter = (cpu.llc_bytes() // 4) or (32 << 20)
    assert cpu.streaming_min_bytes() == (quarter if expected == "quarter" else expected)


def test_streaming_store_default_is_by_cpu_vendor(monkeypatch):
    monkeypatch.delenv("CAFFE2OPS_STREAMING_STORES", raising=False)
    quarter = (cpu.llc_bytes() // 4) or (32 << 20)
    monkeypatch.setattr(cpu, "cpu_vendor", lambda: "GenuineIntel")
    assert cpu.streaming_min_bytes() == quarter
    monkeypatch.setattr(cpu, "cpu_vendor", lambda: "AuthenticAMD")
    assert cpu.streaming_min_bytes() == 1 << 62


def test_streaming_store_bad_setting_warns_and_uses_the_default(monkeypatch):
    monkeypatch.setenv("CAFFE2OPS_STREAMING_STORES", "sometimes")
    monkeypatch.setattr(cpu, "cpu_vendor", lambda: "AuthenticAMD")
    with pytest.warns(RuntimeWarning, match="CAFFE2OPS_STREAMING_STORES"):
        assert cpu.streaming_min_bytes() == 1 << 62
