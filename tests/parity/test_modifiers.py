"""GradientClipping and the regularizers (MaxNorm, ConstantNorm): the NetDefs ours emit against
those of Caffe2's own caffe2.python.modeling.gradient_clipping / caffe2.python.regularizer,
run in the worker on the same input NetDef."""

from __future__ import annotations

import numpy as np
import pytest
from bounds import bound
from record import RECORDER, bits_equal, ulp_distance
from test_gradients import diff

from caffe2ops import core, workspace
from caffe2ops.modeling.gradient_clipping import GradientClipping
from caffe2ops.regularizer import ConstantNorm, GradientSlice, MaxNorm, RegularizationBy

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
    rec = RECORDER.row("GradientClipping NetDefs, clipped gradients", bound("GradientClipping"))
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
    assert same, diff(net.Proto().op, theirs.op)
    # The same net run on both sides: the clipped gradients.
    rng = np.random.RandomState(0)
    feeds = {"data": rng.rand(4, 2).astype(np.float32),
             "w1": (rng.rand(4, 2) * 3).astype(np.float32),
             "w2": rng.uniform(0.1, 0.2, 4).astype(np.float32)}
    names = sorted(grad_map.values())
    workspace.ResetWorkspace()
    for k, v in feeds.items():
        workspace.FeedBlob(k, v)
    workspace.RunNetOnce(net.Proto())
    mine = {n: workspace.FetchBlob(n) for n in names}
    other = caffe2.run_nets(net.Proto(), feeds, names)["outputs"]
    dist = max(ulp_distance(mine[n], other[n]) for n in names)
    rec.cases += 1
    if all(bits_equal(mine[n], other[n]) for n in names):
        rec.bit_identical += 1
    rec.max_ulp = max(rec.max_ulp, dist)
    assert dist <= rec.bound, f"clipped gradients differ by {dist} ulp > {rec.bound}"


@pytest.mark.parametrize("reg", ["MaxNorm", "ConstantNorm"])
def test_regularizer_netdef_is_caffe2s(caffe2, reg):
    """caffe2.python.regularizer's MaxNorm / ConstantNorm after the optimizer: SparseNormalize on
    the rows of a GradientSlice, same NetDefs (net and init net)."""
    rec = RECORDER.row("Regularizer NetDefs (MaxNorm, ConstantNorm)")
    net, init = core.Net("parity_reg"), core.Net("parity_reg_init")
    regularizer = MaxNorm(norm=1.5) if reg == "MaxNorm" else ConstantNorm(norm=2.0)
    regularizer(net, init, core.BlobReference("emb"), grad=GradientSlice("idx", "vals"),
                by=RegularizationBy.AFTER_OPTIMIZER)
    theirs = caffe2.exec(
        "from caffe2.python import regularizer as R\n"
        "net, init = core.Net('parity_reg'), core.Net('parity_reg_init')\n"
        "r = R.MaxNorm(norm=1.5) if feeds['reg'] == 'MaxNorm' else R.ConstantNorm(norm=2.0)\n"
        "r(net, init, core.BlobReference('emb'), grad=core.GradientSlice('idx', 'vals'),\n"
        "  by=R.RegularizationBy.AFTER_OPTIMIZER)\n"
        "result = {'net': net.Proto(), 'init': init.Proto()}", reg=reg)
    same = (net.Proto().SerializeToString() == theirs["net"].SerializeToString()
            and init.Proto().SerializeToString() == theirs["init"].SerializeToString())
    if same:
        rec.cases += 1
        rec.bit_identical += 1
    else:
        rec.failures.append(reg)
    assert same, diff(net.Proto().op, theirs["net"].op)
