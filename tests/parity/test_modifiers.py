"""GradientClipping: the NetDefs ours emits against those of Caffe2's own
caffe2.python.modeling.gradient_clipping, run in the worker on the same input NetDef."""

from __future__ import annotations

import pytest
from record import RECORDER
from test_gradients import diff

from caffe2ops import core
from caffe2ops.modeling.gradient_clipping import GradientClipping

CLIPPING = [
    {"grad_clip_method": "by_norm", "clip_norm_type": "l2_norm", "clip_threshold": 0.1},
    {"grad_clip_method": "by_norm", "clip_norm_type": "l1_norm", "clip_threshold": 0.1},
    {"grad_clip_method": "by_norm", "clip_norm_type": "l2_norm", "clip_threshold": 0.1,
     "use_parameter_norm": True},
    {"grad_clip_method": "by_norm", "clip_norm_type": "l2_norm", "clip_threshold": 0.1,
     "use_parameter_norm": True, "compute_norm_ratio": True},
    {"grad_clip_method": "by_value", "clip_max": 0.5, "clip_min": -0.5},
]


def _backward_net():
    net = core.Net("parity_clip")
    y = net.Cos(["w1"], ["y1"])
    s = net.CosineSimilarity([y, "data"], ["s"])
    t = net.Clip(["w2"], ["t"], min=-5.0, max=5.0)
    u = net.Div([s, t], ["u"])
    loss = net.LpNorm([u], ["loss"])
    grads = net.AddGradientOperators([loss])
    return net, {p: str(grads[p]) for p in ("w1", "w2")}


@pytest.mark.parametrize("kwargs", CLIPPING, ids=lambda k: "-".join(map(str, k.values())))
def test_gradient_clipping_netdef_is_caffe2s(caffe2, kwargs):
    rec = RECORDER.row("GradientClipping NetDefs")
    net, grad_map = _backward_net()
    before = net.Proto().SerializeToString()
    GradientClipping(**kwargs)(net, grad_map=grad_map)
    theirs = caffe2.exec(
        "from caffe2.python.modeling.gradient_clipping import GradientClipping\n"
        "net = core.Net(caffe2_pb2.NetDef.FromString(feeds['net']))\n"
        "GradientClipping(**feeds['kwargs'])(net, grad_map=feeds['grads'])\n"
        "result = net.Proto()",
        net=before, kwargs=kwargs, grads=grad_map)
    same = net.Proto().SerializeToString() == theirs.SerializeToString()
    if not same:
        rec.failures.append(f"{kwargs}")
    else:
        rec.cases += 1
        rec.bit_identical += 1
    assert same, diff(net.Proto().op, theirs.op)
