"""The split clipping API (partial_norms / combine_norms / apply_clip) in one process."""

import numpy as np
import pytest

from caffe2ops import OperatorError, clipping

ORDS = [1, 2, float("inf")]


def _shards(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    full = {"w": rng.standard_normal((12, 5)).astype(dtype),
            "v": rng.standard_normal(7).astype(dtype),
            "b": rng.standard_normal(5).astype(dtype)}
    rank0 = {"w": full["w"][:6], "v": full["v"][:3], "b": full["b"]}
    rank1 = {"w": full["w"][6:], "v": full["v"][3:], "b": full["b"]}
    return full, [rank0, rank1]


def _reduce(parts, ord):
    return np.max(parts, axis=0) if ord == float("inf") else np.sum(parts, axis=0)


@pytest.mark.parametrize("ord", ORDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_sharded_and_replicated_equal_clip_by_global_norm(ord, dtype):
    full, shards = _shards(dtype=dtype)
    parts = [clipping.partial_norms(s, ord, replicated={"b": True}, rank=r)
             for r, s in enumerate(shards)]
    total = clipping.combine_norms(_reduce(parts, ord), ord)
    assert total == clipping.combine_norms(parts, ord)  # unreduced sequence, same result
    ref, ref_stats = clipping.clip_by_global_norm(full, 0.5, ord=ord)
    assert total.dtype == ref_stats.total_norm.dtype
    np.testing.assert_allclose(total, ref_stats.total_norm, rtol=4 * np.finfo(total.dtype).eps)
    outs = [clipping.apply_clip(s, total, 0.5) for s in shards]
    # Given the same total norm, the scale pass is the in-process one, bit for bit.
    same, _ = clipping.apply_clip(full, ref_stats.total_norm, 0.5)
    for name in full:
        np.testing.assert_array_equal(same[name], ref[name])
    assert outs[0][1].num_clipped == 3 and float(outs[0][1].scale) < 1
    np.testing.assert_array_equal(outs[0][0]["b"], outs[1][0]["b"])
    if total == ref_stats.total_norm:
        got_w = np.concatenate([outs[0][0]["w"], outs[1][0]["w"]])
        np.testing.assert_array_equal(got_w, ref["w"])


def test_replicated_counted_once_and_mask_forms():
    full, shards = _shards()
    by_name = [clipping.partial_norms(s, replicated={"b": True}, rank=r)
               for r, s in enumerate(shards)]
    by_pred = [clipping.partial_norms(s, replicated=lambda k, a: k == "b", rank=r)
               for r, s in enumerate(shards)]
    np.testing.assert_array_equal(by_name, by_pred)
    twice = [clipping.partial_norms(s) for s in shards]
    b2 = float(np.sum(np.square(full["b"].astype(np.float64))))
    assert np.sum(twice, axis=0)[0] - np.sum(by_name, axis=0)[0] == pytest.approx(b2)
    seq = [clipping.partial_norms([s["w"], s["b"]], replicated=[False, True], rank=r)
           for r, s in enumerate(shards)]
    assert clipping.combine_norms(seq) == pytest.approx(
        float(np.sqrt(np.sum(np.square(full["w"], dtype=np.float64)) + b2)), rel=1e-14)


def test_errors():
    x = [np.ones(3, np.float32)]
    with pytest.raises(OperatorError, match="rank="):
        clipping.partial_norms(x, replicated=True)
    with pytest.raises(OperatorError, match="replicated has 2 entries"):
        clipping.partial_norms(x, replicated=[True, False], rank=0)
    with pytest.raises(OperatorError, match="length 4"):
        clipping.combine_norms(np.zeros(3))
    with pytest.raises(OperatorError, match="ord"):
        clipping.partial_norms(x, ord=3)
    with pytest.raises(OperatorError, match="max_norm"):
        clipping.apply_clip(x, 1.0, -1.0)
    with pytest.raises(OperatorError, match="another shard"):
        clipping.apply_clip(x, np.float64(np.nan), 1.0, nonfinite="raise")
    bad = [np.array([1.0, np.inf])]
    with pytest.raises(OperatorError, match="array 0"):
        clipping.apply_clip(bad, np.float64(np.inf), 1.0, nonfinite="raise")


@pytest.mark.parametrize("mode", ["propagate", "skip", "zero"])
def test_nonfinite_policies_match_clip_by_global_norm(mode):
    arrays = [np.array([3.0, np.nan, 4.0], np.float32), np.array([12.0, np.inf], np.float32)]
    total = clipping.combine_norms(clipping.partial_norms(arrays, nonfinite=mode))
    out, st = clipping.apply_clip(arrays, total, 1.0, nonfinite=mode)
    ref, ref_st = clipping.clip_by_global_norm(arrays, 1.0, nonfinite=mode)
    for a, b in zip(out, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    assert st.nonfinite and ref_st.nonfinite
    np.testing.assert_array_equal(st.scale, ref_st.scale)


def test_below_max_norm_bit_identical_and_inplace():
    a = np.array([0.1, 0.2], np.float32)
    total = clipping.combine_norms(clipping.partial_norms([a]))
    out, st = clipping.apply_clip([a], total, 1.0)
    assert out[0] is not a and st.num_clipped == 0
    np.testing.assert_array_equal(out[0], a)
    b = np.array([3.0, 4.0])
    out, _ = clipping.apply_clip([b], clipping.combine_norms(clipping.partial_norms([b])), 1.0,
                                 inplace=True)
    assert out[0] is b and b.tolist() == [0.6000000000000001, 0.8]
