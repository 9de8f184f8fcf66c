"""GradientClipping (Caffe2's modeling/gradient_clipping.py) on a small net of our operators.

Caffe2's test model is fc(4→2) → fc(2→1) → Sigmoid → SquaredL2Distance → SumElements: 5
forward and 6 backward operators, clipping ``fc1_w`` and ``fc2_w``. Ours has the same counts
with operators this package has: Cos → CosineSimilarity, Clip, Div → LpNorm (5 forward ops),
whose backward pass is ConstantFill, LpNormGradient, DivGradient, ClipGradient,
CosineSimilarityGradient, CosGradient (6 ops); the parameters are ``w1`` and ``w2``.
"""

from __future__ import annotations

import numpy as np
import pytest

from caffe2ops import core, workspace
from caffe2ops.modeling import GradientClipping, GradientSlice, NetModifier
from caffe2ops.proto import caffe2_pb2

BASE_OPS = 11
PARAMS = ("w1", "w2")


def build(name: str):
    workspace.ResetWorkspace()
    net = core.Net(name)
    y1 = net.Cos(["w1"], ["y1"])
    s = net.CosineSimilarity([y1, "data"], ["s"])
    t = net.Clip(["w2"], ["t"], min=-5.0, max=5.0)
    u = net.Div([s, t], ["u"])
    loss = net.LpNorm([u], ["loss"])
    grad_map = net.AddGradientOperators([loss])
    assert len(net.Proto().op) == BASE_OPS
    rng = np.random.RandomState(0)
    workspace.FeedBlob("data", rng.rand(4, 2).astype(np.float32))
    workspace.FeedBlob("w1", rng.rand(4, 2).astype(np.float32) * 3)
    workspace.FeedBlob("w2", rng.uniform(0.1, 0.2, 4).astype(np.float32))
    return net, {key: grad_map[key] for key in PARAMS}


def raw_gradients(net) -> dict:
    """The gradients without clipping: run the first BASE_OPS operators of ``net``."""
    proto = caffe2_pb2.NetDef()
    proto.CopyFrom(net.Proto())
    del proto.op[BASE_OPS:]
    proto.name = net.Name() + "_unclipped"
    workspace.RunNetOnce(proto)
    return {p: workspace.FetchBlob(f"{p}_grad") for p in PARAMS}


def op_types(net, start=BASE_OPS):
    return [op.type for op in net.Proto().op[start:]]


@pytest.mark.parametrize("kwargs,per_param,types", [
    ({"clip_norm_type": "l2_norm"}, 3, ["LpNorm", "Pow", "ClipTensorByScaling"]),
    ({"clip_norm_type": "l1_norm"}, 2, ["LpNorm", "ClipTensorByScaling"]),
    ({"use_parameter_norm": True}, 5,
     ["LpNorm", "Pow", "LpNorm", "Pow", "ClipTensorByScaling"]),
    ({"use_parameter_norm": True, "compute_norm_ratio": True}, 6,
     ["LpNorm", "Pow", "LpNorm", "Pow", "Div", "ClipTensorByScaling"]),
])
def test_by_norm_op_counts(kwargs, per_param, types):
    net, grad_map = build("gc_counts")
    GradientClipping(grad_clip_method="by_norm", clip_threshold=0.1, **kwargs)(
        net, grad_map=grad_map)
    # Caffe2's asserted totals: 17 (l2), 15 (l1), 21 (+param norm), 23 (+ratio).
    assert len(net.Proto().op) == BASE_OPS + 2 * per_param
    assert op_types(net) == types * 2
    workspace.RunNetOnce(net)


def test_by_norm_blob_names_and_arguments():
    net, grad_map = build("gc_names")
    GradientClipping("by_norm", use_parameter_norm=True, compute_norm_ratio=True,
                     clip_threshold=0.25)(net, grad_map=grad_map)
    ops = net.Proto().op[BASE_OPS:BASE_OPS + 6]
    assert list(ops[0].input) == ["w1_grad"] and list(ops[0].output) == ["w1_grad_l2_norm"]
    assert [(a.name, a.i) for a in ops[0].arg] == [("p", 2)]
    assert list(ops[1].input) == ["w1_grad_l2_norm"]
    assert [(a.name, a.f) for a in ops[1].arg] == [("exponent", 0.5)]
    assert list(ops[2].input) == ["w1"] and list(ops[2].output) == ["w1_l2_norm"]
    assert list(ops[4].input) == [ops[1].output[0], ops[3].output[0]]
    assert list(ops[4].output) == ["w1_norm_ratio"]
    assert list(ops[5].input) == ["w1_grad", ops[1].output[0], ops[3].output[0]]
    assert list(ops[5].output) == ["w1_grad"]
    assert ops[5].arg[0].name == "threshold" and ops[5].arg[0].f == np.float32(0.25)
    for op in ops:
        assert op.device_option.device_type == caffe2_pb2.CPU


def test_by_value():
    net, grad_map = build("gc_by_value")
    clip_max, clip_min = 1e-8, 0
    GradientClipping(grad_clip_method="by_value", clip_max=clip_max, clip_min=clip_min)(
        net, grad_map=grad_map)
    assert len(net.Proto().op) == 13
    assert op_types(net) == ["Clip", "Clip"]
    workspace.RunNetOnce(net)
    for p in PARAMS:
        g = workspace.FetchBlob(f"{p}_grad")
        assert np.amax(g) <= clip_max
        assert np.amin(g) >= clip_min


def test_include_and_exclude():
    net, grad_map = build("gc_include")
    GradientClipping("by_norm", blobs_to_include=["w1"])(net, grad_map=grad_map)
    assert len(net.Proto().op) == 14
    assert net.Proto().op[-1].output[0] == "w1_grad"
    net, grad_map = build("gc_exclude")
    GradientClipping("by_norm", blobs_to_exclude=["w1", "w2"])(net, grad_map=grad_map)
    assert len(net.Proto().op) == 11
    net, grad_map = build("gc_exclude_one")
    GradientClipping("by_norm", blobs_to_exclude=["w2"])(net, grad_map=grad_map)
    assert len(net.Proto().op) == 14
    net, grad_map = build("gc_undefined")
    with pytest.raises(ValueError, match=r"param nope is not defined in net gc_undefined"):
        GradientClipping("by_norm", blobs_to_include=["nope"])(net, grad_map=grad_map)
    assert len(net.Proto().op) == BASE_OPS


def test_sparse_gradients_are_skipped():
    net, grad_map = build("gc_sparse")
    grad_map["w2"] = GradientSlice(indices="w2_idx", values="w2_vals")
    GradientClipping("by_norm")(net, grad_map=grad_map)
    assert len(net.Proto().op) == BASE_OPS + 3
    assert "w2_vals" not in [b for op in net.Proto().op for b in op.input]


@pytest.mark.parametrize("norm_type,order", [("l2_norm", 2), ("l1_norm", 1)])
def test_running_clips_to_threshold(norm_type, order):
    net, grad_map = build("gc_numeric")
    raw = raw_gradients(net)
    threshold = 0.1
    GradientClipping("by_norm", clip_norm_type=norm_type, clip_threshold=threshold)(
        net, grad_map=grad_map)
    workspace.RunNetOnce(net)
    for p in PARAMS:
        norm = np.linalg.norm(raw[p].astype(np.float64).ravel(), order)
        assert norm > threshold  # the test is about clipping
        g = workspace.FetchBlob(f"{p}_grad")
        np.testing.assert_allclose(np.linalg.norm(g.astype(np.float64).ravel(), order),
                                   threshold, rtol=1e-6)
        np.testing.assert_allclose(g, raw[p] * (threshold / norm), rtol=1e-5)


def test_below_threshold_is_untouched():
    net, grad_map = build("gc_small")
    raw = raw_gradients(net)
    GradientClipping("by_norm", clip_threshold=1e6)(net, grad_map=grad_map)
    workspace.RunNetOnce(net)
    for p in PARAMS:
        assert workspace.FetchBlob(f"{p}_grad").tobytes() == raw[p].tobytes()


def test_parameter_norm_and_ratio_do_not_compound():
    net, grad_map = build("gc_param_norm")
    raw = raw_gradients(net)
    threshold = 0.05
    GradientClipping("by_norm", clip_threshold=threshold, use_parameter_norm=True,
                     compute_norm_ratio=True)(net, grad_map=grad_map)
    workspace.CreateNet(net)
    first = None
    for _ in range(4):  # a training loop: Caffe2 compounded threshold·‖param‖ every run
        workspace.RunNet(net.Name())
        grads = {p: workspace.FetchBlob(f"{p}_grad") for p in PARAMS}
        if first is None:
            first = grads
        for p in PARAMS:
            assert grads[p].tobytes() == first[p].tobytes()
    for p in PARAMS:
        pnorm = np.linalg.norm(workspace.FetchBlob(p).astype(np.float64))
        gnorm = np.linalg.norm(raw[p].astype(np.float64))
        limit = threshold * pnorm
        expected = raw[p] * (limit / gnorm) if gnorm > limit else raw[p]
        np.testing.assert_allclose(first[p], expected, rtol=1e-5)
        ratio = workspace.FetchBlob(f"{p}_norm_ratio")
        np.testing.assert_allclose(ratio, [gnorm / pnorm], rtol=1e-5)
    assert any(np.linalg.norm(raw[p]) > threshold * np.linalg.norm(workspace.FetchBlob(p))
               for p in PARAMS)


def test_blob_to_device():
    net, grad_map = build("gc_device")
    option = core.DeviceOption(caffe2_pb2.CPU, node_name="node7")
    GradientClipping("by_norm")(net, grad_map=grad_map, blob_to_device={"w1": option})
    ops = net.Proto().op[BASE_OPS:]
    assert [op.device_option.node_name for op in ops] == ["node7"] * 3 + [""] * 3
    assert all(op.HasField("device_option") for op in ops)


def test_constructor_checks():
    with pytest.raises(AssertionError, match="This method of clipping, 'by_magic', has not"):
        GradientClipping("by_magic")
    with pytest.raises(AssertionError, match="This type of norm, 'l3_norm', has not"):
        GradientClipping("by_norm", clip_norm_type="l3_norm")
    with pytest.raises(AssertionError, match="by_norm needs clip_norm_type"):
        GradientClipping("by_norm", clip_norm_type=None)
    gc = GradientClipping("by_value", clip_norm_type=None, clip_threshold=1, clip_max=2,
                          clip_min=0)
    assert (gc.clip_threshold, gc.clip_max, gc.clip_min) == (1.0, 2.0, 0.0)
    assert all(isinstance(v, float) for v in (gc.clip_threshold, gc.clip_max, gc.clip_min))
    assert (GradientClipping.L1_NORM, GradientClipping.L2_NORM) == ("l1_norm", "l2_norm")
    assert (GradientClipping.BY_NORM, GradientClipping.BY_VALUE) == ("by_norm", "by_value")
    with pytest.raises(AssertionError, match="grad_map"):
        gc(core.Net("gc_no_map"))


def test_net_modifier_base():
    with pytest.raises(TypeError):
        NetModifier()
    seen = {}

    class Record(NetModifier):
        def modify_net(self, net, init_net=None, grad_map=None, blob_to_device=None,
                       modify_output_record=False):
            seen.update(net=net, init_net=init_net, grad_map=grad_map,
                        blob_to_device=blob_to_device, record=modify_output_record)

    Record()("n", "i", {"a": "b"}, {"a": 1}, True)
    assert seen == {"net": "n", "init_net": "i", "grad_map": {"a": "b"},
                    "blob_to_device": {"a": 1}, "record": True}
    assert isinstance(GradientClipping("by_norm"), NetModifier)
