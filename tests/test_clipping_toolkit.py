"""Tests of the clipping toolkit ``caffe2ops.clipping``.

Differential against torch.nn.utils (clip_grad_norm_, clip_grad_value_, get_total_norm), against
optax's published behaviour (doc examples and test values, rewritten as expected numbers), against
Caffe2's per-tensor clipping formula, plus the edge-case matrix of peer-systems.md §8 with the
behaviour our contract chooses, and hypothesis properties.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from caffe2ops.clipping import (
    ClipStats,
    adaptive_grad_clip,
    clip_by_global_norm,
    clip_by_norm,
    clip_by_value,
    per_sample_clip,
)
from caffe2ops.errors import OperatorTypeError, OperatorValueError

torch = pytest.importorskip("torch")

try:
    import ml_dtypes

    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    BF16 = None

ORDS = [1, 2, math.inf]


def _grads(seed=0, dtype=np.float32, big=False):
    rng = np.random.default_rng(seed)
    shapes = [(7, 5), (5,), (3, 4, 2), (1,), (0,), (11,)]
    if big:  # enough elements for several kernel pieces (2**17 per piece minimum)
        shapes += [(300, 400), (400,), (250, 256)]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _np_norm(arrays, ord):
    flat = np.concatenate([a.astype(np.float64).ravel() for a in arrays] + [np.zeros(0)])
    if ord == 1:
        return float(np.sum(np.abs(flat)))
    if ord == 2:
        return float(np.sqrt(np.sum(flat * flat)))
    return float(np.max(np.abs(flat), initial=0.0))


def _torch_params(arrays):
    params = []
    for a in arrays:
        g = torch.from_numpy(a.copy())
        p = torch.nn.Parameter(torch.empty_like(g))
        p.grad = g
        params.append(p)
    return params


# ------------------------------------------------------------------------------------ torch


@pytest.mark.parametrize("ord", ORDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("big", [False, True])
def test_total_norm_matches_torch_get_total_norm(ord, dtype, big):
    arrays = _grads(1, dtype, big)
    # torch's inf norm rejects empty tensors ("no identity"); ours gives them norm 0.
    tensors = [torch.from_numpy(a) for a in arrays if a.size]
    expected = float(torch.nn.utils.get_total_norm(tensors, ord))
    _, stats = clip_by_global_norm(arrays, 1e30, ord=ord)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert float(stats.total_norm) == pytest.approx(expected, rel=rtol)
    assert float(stats.total_norm) == pytest.approx(_np_norm(arrays, ord), rel=1e-12)
    assert stats.total_norm.dtype == np.float64
    assert stats.num_clipped == 0 and stats.scale == 1.0 and not stats.nonfinite


@pytest.mark.parametrize("ord", ORDS)
@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("big", [False, True])
def test_clip_matches_torch_clip_grad_norm(ord, foreach, big):
    arrays = [a for a in _grads(2, np.float32, big) if a.size]
    max_norm = 0.3 * _np_norm(arrays, ord)
    params = _torch_params(arrays)
    tn = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=ord, foreach=foreach)
    out, stats = clip_by_global_norm(arrays, max_norm, ord=ord)
    assert float(stats.total_norm) == pytest.approx(float(tn), rel=1e-5)
    assert stats.num_clipped == len(arrays)
    # torch scales by max/(norm + 1e-6); ours exactly by max/norm.
    for o, p in zip(out, params, strict=True):
        np.testing.assert_allclose(o, p.grad.numpy(), rtol=1e-5, atol=1e-12)
    # Exactly torch's norm with exact scaling (no epsilon) gives the same bits as ours up to the
    # float64-vs-float32 norm: compare to one float32 rounding.
    factor = np.float32(max_norm / float(stats.total_norm))
    for o, a in zip(out, arrays, strict=True):
        np.testing.assert_array_equal(o, a * factor)


def test_clip_by_value_matches_torch_clip_grad_value():
    arrays = _grads(3, np.float32)
    params = _torch_params(arrays)
    torch.nn.utils.clip_grad_value_(params, 0.5)
    out, stats = clip_by_value(arrays, -0.5, 0.5)
    for o, p in zip(out, params, strict=True):
        np.testing.assert_array_equal(o, p.grad.numpy())
    expected = sum(int(np.count_nonzero(np.abs(a) > 0.5)) for a in arrays)
    assert stats.num_clipped == expected
    assert float(stats.total_norm) == pytest.approx(_np_norm(arrays, 2), rel=1e-12)


def test_torch_difference_at_norm_equal_max():
    """torch shrinks at ‖g‖ == max_norm ([1, 0] -> 0.999999); we keep the bits."""
    a = np.array([1.0, 0.0], np.float32)
    params = _torch_params([a])
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    assert params[0].grad[0].item() < 1.0
    out, stats = clip_by_global_norm([a], 1.0)
    np.testing.assert_array_equal(out[0], a)
    assert stats.num_clipped == 0


def test_torch_difference_on_infinite_norm():
    """torch: coefficient 0 -> finite entries 0, inf -> NaN. Ours (propagate): all NaN, as TF."""
    a = np.array([np.inf, 1.0], np.float32)
    params = _torch_params([a])
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    assert np.isnan(params[0].grad[0].item()) and params[0].grad[1].item() == 0.0
    out, stats = clip_by_global_norm([a], 1.0)
    assert np.isnan(out[0]).all() and stats.nonfinite and np.isnan(stats.scale)
    assert stats.total_norm == np.inf


# ------------------------------------------------------------------------------------ optax


def test_optax_global_norm_example():
    out, stats = clip_by_global_norm([np.array([3.0, 4.0])], 1.0)
    np.testing.assert_allclose(out[0], [0.6, 0.8], rtol=1e-15)
    assert stats.total_norm == 5.0 and stats.scale == 0.2


def test_optax_clip_by_global_norm_steps():
    updates = (np.array([500.0, 5.0], np.float32), np.array([300.0, 3.0], np.float32))
    for i in range(1, 51):
        clipped, _ = clip_by_global_norm(updates, 1.0 / i)
        assert isinstance(clipped, tuple)
        assert _np_norm(clipped, 2) == pytest.approx(1.0 / i, abs=1e-6)
        again, _ = clip_by_global_norm(clipped, 1.0 / i)
        np.testing.assert_allclose(again[0], clipped[0], rtol=1e-6)


def test_optax_per_example_global_norm_clip_values():
    grads = [
        np.array([[0, -0.5], [3, 4], [5, 6], [0, 0]]),
        np.array([[0], [5], [-3], [0]]),
    ]
    sums, stats = per_sample_clip(grads, 1.0)
    np.testing.assert_allclose(
        sums[0],
        np.array([0, -0.5]) + np.array([3, 4]) / np.sqrt(50) + np.array([5, 6]) / np.sqrt(70),
        atol=1e-12,
    )
    np.testing.assert_allclose(sums[1], [5 / np.sqrt(50) - 3 / np.sqrt(70)], atol=1e-12)
    assert stats.num_clipped == 2
    np.testing.assert_allclose(stats.total_norm, [0.5, np.sqrt(50), np.sqrt(70), 0.0])
    np.testing.assert_allclose(stats.scale, [1, 1 / np.sqrt(50), 1 / np.sqrt(70), 1])


@pytest.mark.parametrize(
    "clip, expected, count", [(math.inf, 7.0, 0), (0.0, 0.0, 3), (1.25, 1.75, 3)]
)
def test_optax_per_example_doc_examples(clip, expected, count):
    g = [np.array([[0, 0, 0], [0, 3, 4], [4, 0, 3], [3, 4, 0]], np.float32)]
    sums, stats = per_sample_clip(g, clip)
    np.testing.assert_allclose(sums[0], [expected] * 3, rtol=1e-6)
    assert sums[0].dtype == np.float32
    assert stats.num_clipped == count
    assert not np.isnan(stats.scale).any()  # 0/0 at clip 0 and norm 0 gives 1, not NaN


def test_optax_agc_with_axis_values():
    g = np.full((2, 2, 2, 3, 4), 2.0)
    p = np.ones((2, 2, 2, 3, 4))
    out, stats = adaptive_grad_clip(g, p, clipping=0.5, axis=(0, 1, 2))
    # unit norm 2*sqrt(8), param unit norm sqrt(8) -> limit sqrt(2), factor 1/4.
    np.testing.assert_allclose(out, np.full(g.shape, 0.5), rtol=1e-12)
    assert stats.num_clipped == 12 and stats.norms.shape == (1, 1, 1, 3, 4)
    lin, _ = adaptive_grad_clip(np.full((5, 6), 3.0), np.ones((5, 6)), clipping=0.5)
    np.testing.assert_allclose(lin, np.full((5, 6), 0.5), rtol=1e-12)
    small = np.full((2, 2, 2, 3, 4), 0.1)
    same, st2 = adaptive_grad_clip(small, p, clipping=2.0, axis=(0, 1, 2))
    np.testing.assert_array_equal(same, small)
    assert st2.num_clipped == 0


def test_optax_agc_steps_and_default_units():
    updates = (np.array([500.0, 5.0]), np.array([300.0, 3.0]))
    params = (np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    for i in range(1, 51):
        c = 1.0 / i
        clipped, _ = adaptive_grad_clip(updates, params, clipping=c)
        for u, p in zip(clipped, params, strict=True):
            assert np.linalg.norm(u) - c * np.linalg.norm(p) < 1e-6
    g = [np.array([[1.0, 2.0], [3.0, 4.0]])]
    out, stats = adaptive_grad_clip(g, [np.ones((2, 2))], clipping=1.0)
    # rank 2: units are columns (axis 0 reduced), param column norm sqrt(2)
    col = np.linalg.norm(out[0], axis=0)
    assert (col <= np.sqrt(2) + 1e-12).all()
    np.testing.assert_allclose(stats.norms[0].ravel(), [np.sqrt(10), np.sqrt(20)])


def test_agc_default_unit_rules():
    rng = np.random.default_rng(5)
    for shape, axes in [
        ((6,), (0,)),
        ((1, 6), (0, 1)),  # one non-trivial dimension: the whole array
        ((4, 6), (0,)),
        ((3, 4, 6), (0,)),
        ((3, 3, 4, 6), (0, 1, 2)),
        ((2, 3, 3, 4, 6), (0, 1, 2, 3)),
    ]:
        g = rng.standard_normal(shape)
        p = rng.standard_normal(shape)
        out, stats = adaptive_grad_clip(g, p, clipping=0.01)
        gn = np.sqrt(np.sum(g * g, axis=axes, keepdims=True))
        pn = np.sqrt(np.sum(p * p, axis=axes, keepdims=True))
        lim = 0.01 * np.maximum(pn, 1e-3)
        np.testing.assert_allclose(out, np.where(gn > lim, g * lim / gn, g), rtol=1e-12)
        np.testing.assert_allclose(stats.norms, gn, rtol=1e-12)
    with pytest.raises(ValueError, match="axis"):
        adaptive_grad_clip(np.ones((2,) * 6), np.ones((2,) * 6), clipping=1.0)
    out, _ = adaptive_grad_clip(np.ones((2,) * 6), np.ones((2,) * 6), 0.5, axis=(0, 1, 2))
    assert out.shape == (2,) * 6


def test_agc_zero_params_use_eps():
    out, stats = adaptive_grad_clip(np.array([3.0, 4.0]), np.zeros(2), clipping=1.0, eps=1e-3)
    assert np.linalg.norm(out) == pytest.approx(1e-3, rel=1e-12)
    assert stats.num_clipped == 1
    with pytest.raises(ValueError, match="same structure"):
        adaptive_grad_clip([np.ones(2)], [np.ones(2), np.ones(2)], 1.0)
    with pytest.raises(ValueError, match="shape"):
        adaptive_grad_clip([np.ones(2)], [np.ones(3)], 1.0)


# ----------------------------------------------------------------------------------- Caffe2


@pytest.mark.parametrize("ord, caffe2_norm", [(2, "l2_norm"), (1, "l1_norm")])
def test_caffe2_per_tensor_clip_formula(ord, caffe2_norm):
    """Caffe2 GradientClipping(by_norm): per parameter LpNorm (+ Pow 0.5 for l2) and
    ClipTensorByScaling, which scales by threshold/norm when norm > threshold (no epsilon)."""
    grads = _grads(4, np.float32)
    threshold = 0.5

    def caffe2_reference(g):
        g64 = g.astype(np.float64)
        lp = np.sum(np.abs(g64)) if caffe2_norm == "l1_norm" else np.sum(g64**2)
        norm = lp if caffe2_norm == "l1_norm" else np.sqrt(lp)
        return g * np.float32(threshold / norm) if norm > threshold else g

    out, stats = clip_by_norm(grads, threshold, ord=ord)
    for o, g in zip(out, grads, strict=True):
        np.testing.assert_array_equal(o, caffe2_reference(g))
    assert stats.num_clipped == sum(1 for g in grads if _np_norm([g], ord) > threshold)
    # use_parameter_norm: the threshold times the parameter norm (the per-tensor AGC ancestor)
    params = _grads(5, np.float32)
    for g, p in zip(grads, params, strict=True):
        limit = threshold * _np_norm([p], 2)
        o, _ = clip_by_norm(g, limit)
        n = _np_norm([g], 2)
        np.testing.assert_array_equal(o, g * np.float32(limit / n) if n > limit else g)


# ------------------------------------------------------------------------- edge-case matrix


def test_norm_equal_to_max_is_bit_identical():
    a = np.array([3.0, 4.0], np.float32)
    for fn in (clip_by_global_norm, clip_by_norm):
        out, stats = fn([a], 5.0)
        np.testing.assert_array_equal(out[0], a)
        assert out[0] is not a and stats.num_clipped == 0


def test_max_norm_zero():
    out, stats = clip_by_global_norm([np.array([1.0, -2.0]), np.zeros(3)], 0.0)
    assert all((o == 0).all() for o in out) and stats.scale == 0.0
    zeros, stats = clip_by_global_norm([np.zeros(3)], 0.0)  # 0/0 never happens (optax #1752)
    np.testing.assert_array_equal(zeros[0], np.zeros(3))
    assert stats.scale == 1.0 and not np.isnan(stats.total_norm)
    out, _ = clip_by_norm(np.zeros((2, 2)), 0.0, axis=1)
    assert not np.isnan(out).any()


def test_empty_and_zero_inputs():
    out, stats = clip_by_global_norm([], 1.0)
    assert out == [] and stats.total_norm == 0.0 and stats.num_clipped == 0
    out, stats = clip_by_global_norm(np.zeros((0, 3), np.float32), 1.0)
    assert out.shape == (0, 3) and stats.total_norm == 0.0
    out, stats = clip_by_global_norm([np.zeros(5, np.float32), np.zeros(2)], 1.0, ord=math.inf)
    assert stats.total_norm == 0.0 and stats.scale == 1.0


def test_invalid_arguments():
    with pytest.raises(ValueError, match="max_norm"):
        clip_by_global_norm([np.ones(2)], -1.0)
    with pytest.raises(ValueError, match="max_norm"):
        clip_by_global_norm([np.ones(2)], float("nan"))
    with pytest.raises(ValueError, match="ord"):
        clip_by_global_norm([np.ones(2)], 1.0, ord=3)
    with pytest.raises(ValueError, match="nonfinite"):
        clip_by_global_norm([np.ones(2)], 1.0, nonfinite="ignore")
    with pytest.raises(TypeError, match="int64"):
        clip_by_global_norm([np.ones(2, np.int64)], 1.0)
    with pytest.raises(OperatorTypeError, match="complex"):
        clip_by_norm([np.ones(2, np.complex64)], 1.0)
    ro = np.ones(3)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        clip_by_global_norm([np.ones(3), ro], 0.1, inplace=True)
    with pytest.raises(TypeError, match="NumPy arrays"):
        clip_by_global_norm([[1.0, 2.0]], 0.1, inplace=True)
    with pytest.raises(ValueError, match="NaN"):
        clip_by_value([np.ones(2)], float("nan"), 1.0)
    with pytest.raises(ValueError, match="examples"):
        per_sample_clip([np.ones((3, 2)), np.ones((4, 2))], 1.0)


def test_float16_overflow_case():
    """float16 [60000, 60000, 1]: torch and optax get an infinite norm and zero the gradient."""
    a = np.array([60000, 60000, 1], np.float16)
    params = _torch_params([a])
    tn = torch.nn.utils.clip_grad_norm_(params, 1000.0)
    assert math.isinf(float(tn)) and float(params[0].grad.abs().sum()) == 0.0
    out, stats = clip_by_global_norm([a], 1000.0)
    assert stats.total_norm.dtype == np.float32 and stats.scale.dtype == np.float32
    assert float(stats.total_norm) == pytest.approx(84852.81, rel=1e-6)
    expected = (a.astype(np.float32) * np.float32(1000.0 / float(stats.total_norm))).astype(
        np.float16
    )
    np.testing.assert_array_equal(out[0], expected)
    assert out[0].dtype == np.float16
    assert _np_norm(out, 2) == pytest.approx(1000.0, rel=1e-3)
    small, st2 = clip_by_global_norm(np.array([300, 400], np.float16), 1000.0)
    assert st2.total_norm == np.float32(500.0) and st2.num_clipped == 0


@pytest.mark.skipif(BF16 is None, reason="ml_dtypes (bfloat16 for NumPy) is not installed")
def test_bfloat16_norm_in_float32():
    a = np.array([60000, 60000, 1], BF16)
    exact = float(np.sqrt(np.sum(a.astype(np.float64) ** 2)))
    out, stats = clip_by_global_norm([a], 1000.0)
    assert stats.total_norm.dtype == np.float32
    assert float(stats.total_norm) == pytest.approx(exact, rel=1e-6)
    assert out[0].dtype == BF16
    np.testing.assert_allclose(
        out[0].astype(np.float32), a.astype(np.float32) * 1000 / exact, rtol=1e-2
    )
    big = np.array([1e30, 1e30], BF16)  # squares overflow float32, the norm does not
    _, st2 = clip_by_global_norm(big, 1.0)
    assert np.isfinite(st2.total_norm)
    v, st3 = clip_by_value(np.array([-3.0, 0.5, 3.0], BF16), -1, 1)
    assert v.dtype == BF16 and st3.num_clipped == 2
    n, _ = clip_by_norm(np.array([[3.0, 4.0]], BF16), 1.0, axis=1)
    np.testing.assert_allclose(n.astype(np.float32), [[0.6, 0.8]], rtol=1e-2)


def test_float64_overflow_and_underflow_are_exact():
    big = np.array([1e200, 1e200])
    out, stats = clip_by_global_norm(big, 1.0)
    assert float(stats.total_norm) == pytest.approx(math.sqrt(2) * 1e200, rel=1e-14)
    np.testing.assert_allclose(out, [2**-0.5, 2**-0.5], rtol=1e-14)
    tiny = np.array([3e-200, 4e-200])
    _, stats = clip_by_global_norm([tiny, np.zeros(3)], 1.0)
    assert float(stats.total_norm) == pytest.approx(5e-200, rel=1e-14)
    many = [np.array([1e307, 1e307]) for _ in range(4)]  # global combination overflows naively
    _, stats = clip_by_global_norm(many, 1.0)
    assert float(stats.total_norm) == pytest.approx(math.sqrt(8) * 1e307, rel=1e-14)
    _, s1 = clip_by_global_norm([np.array([1e308, 1e308])], 1.0, ord=1)
    assert np.isfinite(s1.total_norm) or s1.total_norm == np.inf  # 2e308 overflows float64
    n, _ = clip_by_norm(np.array([[1e200, 1e200], [3.0, 4.0]]), 1.0, axis=1)
    np.testing.assert_allclose(n, [[2**-0.5, 2**-0.5], [0.6, 0.8]], rtol=1e-14)


# -------------------------------------------------------------------------------- nonfinite


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("ord", ORDS)
def test_nonfinite_modes(bad, ord):
    arrays = {"w": np.array([1.0, bad, 2.0], np.float32), "b": np.array([3.0, 4.0], np.float32)}
    saved = {k: v.copy() for k, v in arrays.items()}

    out, stats = clip_by_global_norm(arrays, 1.0, ord=ord)
    assert stats.nonfinite and np.isnan(stats.scale)
    assert all(np.isnan(v).all() for v in out.values())
    assert np.isnan(stats.total_norm) == bool(np.isnan(bad))

    with pytest.raises(OperatorValueError, match="array 'w'") as exc:
        clip_by_global_norm(arrays, 1.0, ord=ord, nonfinite="raise", inplace=True)
    assert ("NaN" in str(exc.value)) == bool(np.isnan(bad))
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], saved[k])  # nothing written

    out, stats = clip_by_global_norm(arrays, 1.0, ord=ord, nonfinite="skip")
    assert stats.nonfinite and stats.scale == 1.0 and stats.num_clipped == 0
    for k in arrays:
        np.testing.assert_array_equal(out[k], saved[k])
        assert out[k] is not arrays[k]

    out, stats = clip_by_global_norm(arrays, 1.0, ord=ord, nonfinite="zero")
    clean = [np.array([1.0, 0.0, 2.0]), np.array([3.0, 4.0])]
    n = _np_norm(clean, ord)
    assert stats.nonfinite and float(stats.total_norm) == pytest.approx(n, rel=1e-7)
    np.testing.assert_allclose(out["w"], clean[0] / n, rtol=1e-6)
    np.testing.assert_allclose(out["b"], clean[1] / n, rtol=1e-6)
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], saved[k])  # inplace=False: inputs untouched

    work = {k: v.copy() for k, v in arrays.items()}
    out, _ = clip_by_global_norm(work, 1.0, ord=ord, nonfinite="zero", inplace=True)
    assert out["w"] is work["w"] and np.isfinite(work["w"]).all()


def test_nonfinite_raise_names_list_index_and_big_arrays():
    arrays = _grads(6, np.float32, big=True)
    arrays[6][123, 45] = np.nan
    with pytest.raises(OperatorValueError, match=r"array 6 \(shape \(300, 400\), float32\)"):
        clip_by_global_norm(arrays, 1.0, nonfinite="raise")
    with pytest.raises(ValueError, match="array 6"):
        clip_by_norm(arrays, 1.0, nonfinite="raise")


def test_clip_by_norm_nonfinite_per_unit():
    x = np.array([[3.0, 4.0], [np.nan, 1.0], [np.inf, 1.0]])
    out, stats = clip_by_norm(x, 1.0, axis=1)
    np.testing.assert_allclose(out[0], [0.6, 0.8])
    assert np.isnan(out[1:]).all() and stats.nonfinite
    out, _ = clip_by_norm(x, 1.0, axis=1, nonfinite="skip")
    np.testing.assert_array_equal(out[1:], x[1:])
    out, _ = clip_by_norm(x, 1.0, axis=1, nonfinite="zero")
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 1.0], [0.0, 1.0]])
    out, st2 = clip_by_norm([x[0], x[1]], 1.0, nonfinite="skip")
    np.testing.assert_allclose(out[0], [0.6, 0.8])
    np.testing.assert_array_equal(out[1], x[1])
    assert st2.num_clipped == 1


def test_per_sample_nonfinite_modes():
    g = [np.array([[3.0, 4.0], [np.nan, 1.0], [0.3, 0.4]])]
    s, stats = per_sample_clip(g, 1.0)
    assert np.isnan(s[0]).all() and stats.nonfinite
    s, _ = per_sample_clip(g, 1.0, nonfinite="skip")
    np.testing.assert_allclose(s[0], [0.9, 1.2])
    s, _ = per_sample_clip(g, 1.0, nonfinite="zero")
    np.testing.assert_allclose(s[0], [0.9, 2.2])
    assert np.isnan(g[0][1, 0])  # the caller's gradient is not modified
    with pytest.raises(ValueError, match="example 1 of array 0"):
        per_sample_clip(g, 1.0, nonfinite="raise")


# ---------------------------------------------------------------------- structure, in place


def test_structures_and_inplace_semantics():
    a = np.array([3.0, 4.0], np.float32)
    b = np.array([[0.0, 0.0]], np.float32)
    out, stats = clip_by_global_norm({"a": a, "b": b}, 1.0)
    assert set(out) == {"a", "b"} and set(stats.norms) == {"a", "b"}
    assert out["a"] is not a and a[0] == 3.0
    single, st1 = clip_by_global_norm(a, 1.0)
    assert isinstance(single, np.ndarray) and st1.norms == 5.0
    tup, _ = clip_by_global_norm((a, b), 1.0)
    assert isinstance(tup, tuple)
    arrays = [a.copy(), b.copy()]
    res, _ = clip_by_global_norm(arrays, 1.0, inplace=True)
    assert res[0] is arrays[0] and res[1] is arrays[1]
    np.testing.assert_allclose(arrays[0], [0.6, 0.8], rtol=1e-7)
    unchanged = [a.copy()]
    res, _ = clip_by_global_norm(unchanged, 10.0, inplace=True)
    assert res[0] is unchanged[0]
    lst, _ = clip_by_global_norm([[3.0, 4.0]], 1.0)  # Python lists are accepted out of place
    np.testing.assert_allclose(lst[0], [0.6, 0.8])
    assert isinstance(stats, ClipStats)
    with pytest.raises(AttributeError):
        stats.scale = 2.0  # frozen


def test_strided_fortran_and_mixed_dtypes():
    rng = np.random.default_rng(7)
    base = rng.standard_normal((40, 30)).astype(np.float32)
    strided = base[::2, ::3]
    fortran = np.asfortranarray(rng.standard_normal((20, 10)))
    half = rng.standard_normal(17).astype(np.float16)
    arrays = [strided, fortran, half]
    n = _np_norm(arrays, 2)
    out, stats = clip_by_global_norm(arrays, 0.5 * n)
    assert stats.total_norm.dtype == np.float64
    assert float(stats.total_norm) == pytest.approx(n, rel=1e-12)
    for o, a in zip(out, arrays, strict=True):
        assert o.dtype == a.dtype and o.shape == a.shape
        np.testing.assert_allclose(o.astype(np.float64), a.astype(np.float64) * 0.5, rtol=1e-3)
    assert out[1].flags.f_contiguous
    before = base.copy()
    clip_by_global_norm([strided], 0.0, inplace=True)
    assert (base[::2, ::3] == 0).all()
    mask = np.ones(base.shape, bool)
    mask[::2, ::3] = False
    np.testing.assert_array_equal(base[mask], before[mask])  # the rest of the base untouched


@pytest.mark.parametrize("threads", [1, 2])
def test_large_arrays_all_thread_counts(threads):
    numba = pytest.importorskip("numba")
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("fewer Numba threads available")
    saved = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        arrays = _grads(8, np.float32, big=True) + _grads(9, np.float64, big=True)
        for ord in ORDS:
            n = _np_norm(arrays, ord)
            out, stats = clip_by_global_norm(arrays, 0.25 * n, ord=ord)
            assert float(stats.total_norm) == pytest.approx(n, rel=1e-12)
            for o, a in zip(out, arrays, strict=True):
                np.testing.assert_array_equal(o, a * a.dtype.type(0.25 * n / stats.total_norm))
        v, vs = clip_by_value(arrays, -1.0, 1.0)
        assert vs.num_clipped == sum(int(np.count_nonzero(np.abs(a) > 1)) for a in arrays)
        for o, a in zip(v, arrays, strict=True):
            np.testing.assert_array_equal(o, np.clip(a, -1, 1))
    finally:
        numba.set_num_threads(saved)


# ---------------------------------------------------------------------------- clip_by_norm


@pytest.mark.parametrize("ord", ORDS)
def test_clip_by_norm_slices_against_numpy(ord):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 5, 6)).astype(np.float32)
    for axis in (0, 1, -1, (0, 2), (0, 1, 2)):
        out, stats = clip_by_norm(x, 2.0, ord=ord, axis=axis)
        nrm = (
            np.linalg.norm(x.astype(np.float64), ord=ord, axis=axis, keepdims=True)
            if (isinstance(axis, int))
            else _slice_norm(x, ord, axis)
        )
        factor = np.where(nrm > 2.0, 2.0 / nrm, 1.0).astype(np.float32)
        np.testing.assert_array_equal(out, x * factor)
        np.testing.assert_allclose(stats.norms, nrm, rtol=1e-12)
        assert stats.num_clipped == int(np.count_nonzero(nrm > 2.0))


def _slice_norm(x, ord, axis):
    y = np.abs(x.astype(np.float64))
    if ord == 1:
        return y.sum(axis=axis, keepdims=True)
    if ord == 2:
        return np.sqrt((y * y).sum(axis=axis, keepdims=True))
    return y.max(axis=axis, keepdims=True)


def test_clip_by_norm_per_array_and_axis_errors():
    arrays = [np.array([3.0, 4.0]), np.array([0.3, 0.4])]
    out, stats = clip_by_norm(arrays, 1.0)
    np.testing.assert_allclose(out[0], [0.6, 0.8])
    np.testing.assert_array_equal(out[1], arrays[1])
    np.testing.assert_allclose(stats.norms, [5.0, 0.5])
    np.testing.assert_allclose(stats.scale, [0.2, 1.0])
    assert stats.total_norm == pytest.approx(np.sqrt(25.25))
    with pytest.raises(ValueError, match="out of range"):
        clip_by_norm(arrays, 1.0, axis=1)
    work = [np.array([[3.0, 4.0]])]
    res, _ = clip_by_norm(work, 1.0, axis=1, inplace=True)
    assert res[0] is work[0]
    np.testing.assert_allclose(work[0], [[0.6, 0.8]])


# --------------------------------------------------------------------------- clip_by_value


def test_clip_by_value_edges():
    x = np.array([-np.inf, -2.0, np.nan, 0.5, 2.0, np.inf], np.float32)
    y, stats = clip_by_value(x, -1.0, 1.0)
    np.testing.assert_array_equal(y, [-1, -1, np.nan, 0.5, 1, 1])
    assert stats.num_clipped == 4 and stats.nonfinite and stats.scale is None
    y, _ = clip_by_value(x, 1.0, -1.0)  # min > max -> max (Caffe2, ONNX-13, torch, numpy)
    np.testing.assert_array_equal(y[~np.isnan(x)], np.full(5, -1.0, np.float32))
    y, stats = clip_by_value(x, None, 0.0)
    np.testing.assert_array_equal(y, [-np.inf, -2, np.nan, 0, 0, 0])
    i, stats = clip_by_value(np.array([-5, 0, 5], np.int32), -1.5, 2.5)
    np.testing.assert_array_equal(i, [-1, 0, 2])
    assert i.dtype == np.int32 and stats.num_clipped == 2
    h, stats = clip_by_value(np.array([-3.0, 0.25, 3.0], np.float16), -1, 1)
    np.testing.assert_array_equal(h, np.array([-1, 0.25, 1], np.float16))
    assert stats.total_norm.dtype == np.float32 and stats.num_clipped == 2
    s = np.arange(12.0).reshape(3, 4)[:, ::2]
    y, stats = clip_by_value(s, 2.0, 6.0)
    np.testing.assert_array_equal(y, np.clip(s, 2.0, 6.0))
    work = [np.array([5.0, -5.0])]
    out, _ = clip_by_value(work, -1, 1, inplace=True)
    assert out[0] is work[0] and (work[0] == [1, -1]).all()


# ----------------------------------------------------------------------------- properties

_float_arrays = st.lists(
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
        elements=st.floats(-1e6, 1e6, width=32),
    ),
    min_size=0,
    max_size=5,
)


# max_norm stays above the float32 subnormal range, where a factor loses its precision.
@given(
    arrays=_float_arrays,
    max_norm=st.one_of(st.just(0.0), st.floats(1e-6, 1e4)),
    ord=st.sampled_from(ORDS),
)
def test_property_global_norm_bounded_idempotent_inplace_equal(arrays, max_norm, ord):
    out, stats = clip_by_global_norm(arrays, max_norm, ord=ord)
    after = _np_norm(out, ord)
    assert after <= max_norm * (1 + 1e-6) + 1e-30 or stats.num_clipped == 0
    assert after <= max(max_norm, float(stats.total_norm)) * (1 + 1e-6) + 1e-30
    if stats.num_clipped == 0:
        for o, a in zip(out, arrays, strict=True):
            np.testing.assert_array_equal(o, a)
    again, _ = clip_by_global_norm(out, max_norm, ord=ord)
    for x, y in zip(again, out, strict=True):
        np.testing.assert_allclose(x, y, rtol=2e-6, atol=0)
    work = [a.copy() for a in arrays]
    res, st2 = clip_by_global_norm(work, max_norm, ord=ord, inplace=True)
    for x, y, w in zip(res, out, work, strict=True):
        assert x is w
        np.testing.assert_array_equal(x, y)
    assert st2.total_norm == stats.total_norm and st2.num_clipped == stats.num_clipped
    assert st2.scale == stats.scale or (np.isnan(st2.scale) and np.isnan(stats.scale))


@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=5),
        elements=st.floats(-1e3, 1e3),
    ),
    max_norm=st.floats(0.0, 100.0),
)
def test_property_clip_by_norm_slices_bounded(x, max_norm):
    out, stats = clip_by_norm(x, max_norm, axis=-1)

    def norm(v):  # scaled, so subnormal entries do not square to 0
        m = np.max(np.abs(v), axis=-1, keepdims=True)
        m = np.where(m > 0, m, 1.0)
        return np.linalg.norm(v / m, axis=-1) * m[..., 0]

    n = norm(x)
    on = norm(out)
    assert (on <= max_norm * (1 + 1e-12) + 1e-300)[n > max_norm].all()
    np.testing.assert_array_equal(out[n <= max_norm], x[n <= max_norm])
    assert stats.num_clipped == int(np.count_nonzero(n > max_norm))


@given(
    g=hnp.arrays(
        np.float64, st.tuples(st.integers(1, 6), st.integers(1, 4)), elements=st.floats(-100, 100)
    ),
    max_norm=st.floats(0.0, 50.0),
)
def test_property_per_sample_matches_loop(g, max_norm):
    sums, stats = per_sample_clip([g], max_norm)
    expected = np.zeros(g.shape[1])
    for row in g:
        n = np.linalg.norm(row)
        expected += row * (max_norm / n if n > max_norm else 1.0)
    np.testing.assert_allclose(sums[0], expected, rtol=1e-10, atol=1e-10)
    assert stats.num_clipped == int(np.count_nonzero(np.linalg.norm(g, axis=1) > max_norm))


# ------------------------------------------------------------------------------ import cost


def test_import_does_not_load_numba():
    code = "import sys, caffe2ops.clipping; assert 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
