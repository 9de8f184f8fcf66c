"""caffe2ops.regularizer: MaxNorm / ConstantNorm renormalize the rows a sparse gradient touched,
after the optimizer's update (Caffe2's caffe2/python/regularizer.py)."""

from __future__ import annotations

import numpy as np
import pytest

from caffe2ops import core, workspace
from caffe2ops.regularizer import (
    ConstantNorm,
    GradientSlice,
    MaxNorm,
    RegularizationBy,
    Regularizer,
)

AFTER = RegularizationBy.AFTER_OPTIMIZER


pytestmark = pytest.mark.usefixtures("fresh_workspace")


def embedding():
    rng = np.random.RandomState(0)
    emb = rng.randn(6, 3).astype(np.float32)
    emb[1] *= 0.1 / np.linalg.norm(emb[1])  # norm 0.1: below 1
    emb[3] *= 2.5 / np.linalg.norm(emb[3])  # norm 2.5: above 1
    emb[5] *= 0.7 / np.linalg.norm(emb[5])  # norm 0.7
    return emb


def build(name, regularizer, dtype=np.float32):
    """A net whose "optimizer" doubles the param (Div by 0.5), then the regularizer."""
    net = core.Net(name)
    net.Div(["emb", "half"], ["emb"], broadcast=1)
    grad = GradientSlice(indices="idx", values="grad_values")
    out = regularizer(net, None, core.BlobReference("emb"), grad, by=AFTER)
    assert out is None
    emb = embedding().astype(dtype)
    workspace.FeedBlob("emb", emb)
    workspace.FeedBlob("half", np.array([0.5], dtype))
    workspace.FeedBlob("idx", np.array([3, 1, 3, 5], dtype=np.int64))
    workspace.FeedBlob("grad_values", np.zeros((4, 3), dtype))
    return net, emb * 2


def test_max_norm_renormalizes_touched_rows_after_update():
    net, updated = build("reg_max_norm", MaxNorm(norm=1.0))
    assert [op.type for op in net.Proto().op] == ["Div", "SparseNormalize"]
    op = net.Proto().op[1]
    assert list(op.input) == ["emb", "idx"] and list(op.output) == ["emb"]
    workspace.RunNetOnce(net)
    emb = workspace.FetchBlob("emb")
    norms = np.linalg.norm(emb.astype(np.float64), axis=1)
    # touched rows: 1 (norm 0.2, kept), 3 (norm 5 -> 1), 5 (norm 1.4 -> 1)
    assert emb[1].tobytes() == updated[1].tobytes()
    np.testing.assert_allclose(norms[[3, 5]], 1.0, rtol=1e-6)
    np.testing.assert_allclose(emb[3], updated[3] / np.linalg.norm(updated[3]), rtol=1e-6)
    for r in (0, 2, 4):  # untouched rows: exactly the update's result
        assert emb[r].tobytes() == updated[r].tobytes()
    assert np.linalg.norm(emb[0]) > 1  # untouched rows may exceed the norm


def test_constant_norm_sets_touched_rows_to_norm():
    net, updated = build("reg_constant_norm", ConstantNorm(norm=2.0))
    workspace.RunNetOnce(net)
    emb = workspace.FetchBlob("emb")
    np.testing.assert_allclose(np.linalg.norm(emb[[1, 3, 5]].astype(np.float64), axis=1), 2.0,
                               rtol=1e-6)
    for r in (0, 2, 4):
        assert emb[r].tobytes() == updated[r].tobytes()
    assert net.Proto().op[1].arg[0].name == "use_max_norm" and net.Proto().op[1].arg[0].i == 0


def test_repeated_runs():
    net, _ = build("reg_repeat", MaxNorm(norm=1.0))
    workspace.CreateNet(net)
    workspace.RunNet(net.Name(), num_iter=3)  # doubles 3 times, renormalizes each time
    emb = workspace.FetchBlob("emb")
    np.testing.assert_allclose(np.linalg.norm(emb[[3, 5]].astype(np.float64), axis=1), 1.0,
                               rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(emb[1]), 0.8, rtol=1e-6)  # 0.1·2³ < 1: kept
    np.testing.assert_allclose(emb[0], embedding()[0] * 8)


def test_fp16_uses_float16_sparse_normalize():
    net, updated = build("reg_fp16", MaxNorm(norm=1.0, dtype="fp16"), dtype=np.float16)
    assert net.Proto().op[1].type == "Float16SparseNormalize"
    workspace.RunNetOnce(net)
    emb = workspace.FetchBlob("emb")
    assert emb.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(emb[[3, 5]].astype(np.float64), axis=1), 1.0,
                               rtol=2e-3)
    assert emb[0].tobytes() == updated[0].tobytes()


def test_errors():
    net = core.Net("reg_errors")
    with pytest.raises(NotImplementedError, match="MaxNorm is not supported for dense"):
        MaxNorm()(net, None, core.BlobReference("w"), "w_grad", by=AFTER)
    with pytest.raises(NotImplementedError, match="ConstantNorm is not supported for dense"):
        ConstantNorm()(net, None, core.BlobReference("w"), "w_grad", by=AFTER)
    with pytest.raises(AssertionError, match="norm should be bigger than 0"):
        MaxNorm(norm=0.0)(net, None, core.BlobReference("w"), GradientSlice("i", "v"), by=AFTER)
    with pytest.raises(AssertionError, match="invalid by=sometimes"):
        MaxNorm()(net, None, core.BlobReference("w"), GradientSlice("i", "v"), by="sometimes")
    with pytest.raises(AssertionError, match="must be a core.BlobReference"):
        MaxNorm()(net, None, 3, GradientSlice("i", "v"), by=AFTER)
    assert len(net.Proto().op) == 0


def test_base_class_and_on_loss():
    net = core.Net("reg_base")
    reg = Regularizer()
    assert reg.kEpsilon == 1e-9
    assert reg(net, None, "w", by=RegularizationBy.ON_LOSS) is None
    assert reg(net, None, "w", "w_grad", by=AFTER) is None
    # MaxNorm adds nothing on the loss.
    assert MaxNorm()(net, None, "w", by=RegularizationBy.ON_LOSS) is None
    assert len(net.Proto().op) == 0
