"""Parity with real Caffe2 1.5.0: sparse lookups, counters, learning rates and optimizers.

Bit for bit everywhere except SparseLengthsIndicesInGradientWeightedSumWithMainInputGradient's
weight gradient (a dot product whose order Caffe2's vectorised code fixes differently): within
4 ulp of float32 at the magnitude of the terms' sum of absolute values. Both the fast kernels and
the NumPy reference kernels are checked.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import caffe2ops as c2
from caffe2ops import core, workspace

F32 = np.float32


@pytest.fixture(params=["reference", "fast"])
def backend(request):
    if request.param == "fast":
        from caffe2ops import kernels

        assert kernels.load()
        ctx = contextlib.nullcontext()
    else:
        ctx = c2.reference_kernels()
    with ctx:
        yield request.param


def ours(op, feeds: dict, fetch) -> dict:
    workspace.ResetWorkspace()
    for k, v in feeds.items():
        workspace.FeedBlob(k, v)
    workspace.RunOperatorOnce(op)
    return {n: workspace.FetchBlob(n) for n in fetch}


def same_bits(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (
        f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
    assert a.tobytes() == b.tobytes(), f"{what}: {np.count_nonzero(a != b)} elements differ"


def check(caffe2, op, feeds, fetch):
    want = caffe2.run_ops(op, feeds, fetch)
    got = ours(op, feeds, fetch)
    for n in fetch:
        same_bits(got[n], want[n], f"{op.type} {n}")
    return got


def rng(seed):
    return np.random.RandomState(seed)


def segments(r, n_seg, max_len, rows):
    lengths = r.randint(0, max_len + 1, size=n_seg).astype(np.int32)
    idx = r.randint(0, rows, size=int(lengths.sum())).astype(np.int64)
    return lengths, idx


@pytest.mark.parametrize("d", [1, 7, 64, 67])
def test_sparse_lengths_forward(caffe2, backend, d):
    r = rng(d)
    data = r.randn(300, d).astype(F32)
    lengths, idx = segments(r, 200, 40, 300)
    w = r.randn(idx.size).astype(F32)
    feeds = {"D": data, "I": idx, "L": lengths, "W": w}
    check(caffe2, core.CreateOperator("SparseLengthsSum", ["D", "I", "L"], ["Y"]), feeds, ["Y"])
    check(caffe2, core.CreateOperator("SparseLengthsMean", ["D", "I", "L"], ["Y"]), feeds, ["Y"])
    check(caffe2, core.CreateOperator("SparseLengthsWeightedSum", ["D", "W", "I", "L"], ["Y"]),
          feeds, ["Y"])
    feeds["I"] = idx.astype(np.int32)
    check(caffe2, core.CreateOperator("SparseLengthsSum", ["D", "I", "L"], ["Y"]), feeds, ["Y"])


@pytest.mark.parametrize("d", [1, 64, 67])
def test_sparse_lengths_gradients(caffe2, backend, d):
    r = rng(10 + d)
    data = r.randn(300, d).astype(F32)
    lengths, idx = segments(r, 150, 30, 300)
    w = r.randn(idx.size).astype(F32)
    dy = r.randn(150, d).astype(F32)
    feeds = {"dY": dy, "L": lengths, "I": idx, "W": w, "D": data}
    for t in ("SparseLengthsIndicesInGradientSumGradient",
              "SparseLengthsIndicesInGradientMeanGradient"):
        check(caffe2, core.CreateOperator(t, ["dY", "L", "I"], ["G"]), feeds, ["G"])
    check(caffe2, core.CreateOperator("SparseLengthsIndicesInGradientWeightedSumGradient",
                                      ["W", "dY", "L", "I"], ["G"]), feeds, ["G"])
    op = core.CreateOperator("SparseLengthsIndicesInGradientWeightedSumWithMainInputGradient",
                             ["W", "dY", "L", "D", "I"], ["G", "GW"], grad_on_weights=1)
    want = caffe2.run_ops(op, feeds, ["G", "GW"])
    got = ours(op, feeds, ["G", "GW"])
    same_bits(got["G"], want["G"], "values")
    seg = np.repeat(np.arange(150), lengths)
    scale = np.sum(np.abs(dy[seg].astype(np.float64) * data[idx]), axis=1)
    bound = 4 * np.spacing(scale.astype(F32))
    assert np.all(np.abs(got["GW"].astype(np.float64) - want["GW"]) <= bound + 1e-30)


@pytest.mark.parametrize("fwd,ins,args", [
    ("SparseLengthsSum", ["D", "I", "L"], {}),
    ("SparseLengthsMean", ["D", "I", "L"], {}),
    ("SparseLengthsWeightedSum", ["D", "W", "I", "L"], {}),
    ("SparseLengthsWeightedSum", ["D", "W", "I", "L"], {"grad_on_weights": 1}),
    ("Gather", ["D", "I"], {}),
    ("Gather", ["D", "I"], {"dense_gradient": True}),
    ("Gather", ["D", "I"], {"axis": 1}),
    ("WeightedSum", ["X0", "w0", "X1", "w1"], {}),
])
def test_gradient_defs(caffe2, fwd, ins, args):
    op = core.CreateOperator(fwd, ins, ["Y"], **args)
    # Through exec: the worker's `gradient` command cannot encode a GradientSlice.
    want = caffe2.exec(
        "from caffe2.proto import caffe2_pb2 as pb\n"
        "op = pb.OperatorDef.FromString(feeds['op'].tobytes())\n"
        "ops, g = core.GradientRegistry.GetGradientForOp(op, ['Y_grad'])\n"
        "result = {'ops': [o.SerializeToString() for o in ops],\n"
        "          'g': [[str(x.indices), str(x.values)] if hasattr(x, 'values') else x\n"
        "                for x in g]}\n",
        op=np.frombuffer(op.SerializeToString(), np.uint8))
    got_ops, got_g = core.GradientRegistry.GetGradientForOp(op, ["Y_grad"])
    got_defs = [core.caffe2_pb2.OperatorDef.FromString(b) for b in want["ops"]]
    assert [str(o) for o in got_ops] == [str(o) for o in got_defs]
    got = [[str(g.indices), str(g.values)] if isinstance(g, core.GradientSlice) else g
           for g in got_g]
    assert got == want["g"]


@pytest.mark.parametrize("fwd,ins", [
    ("ScatterWeightedSum", ["X", "w", "I", "S", "v"]), ("Adagrad", ["p", "m", "g", "lr"]),
    ("SparseAdagrad", ["p", "m", "i", "g", "lr"]),
    ("RowWiseSparseAdagrad", ["p", "m", "i", "g", "lr"]),
    ("Adam", ["p", "m", "v", "g", "lr", "it"]),
    ("SparseAdam", ["p", "m", "v", "i", "g", "lr", "it"]),
    ("CreateMutex", []),
])
def test_no_gradient_for_updates(caffe2, fwd, ins):
    n_out = {"ScatterWeightedSum": 1, "CreateMutex": 1}.get(fwd, 3 if "Adam" in fwd else 2)
    op = core.CreateOperator(fwd, ins, ins[:n_out] if ins else ["mu"])
    with pytest.raises(Exception, match="should not"):
        caffe2.gradient(op, [None] * n_out)
    with pytest.raises(Exception, match="should not"):
        core.GradientRegistry.GetGradientForOp(op, [f"g{k}" for k in range(n_out)])


def test_add_gradient_operators_returns_gradient_slice():
    net = core.Net("sls_grad")
    y = net.SparseLengthsSum(["emb", "idx", "len"], ["y"])
    grads = net.AddGradientOperators([y])
    g = grads["emb"]
    assert isinstance(g, core.GradientSlice)
    assert (str(g.indices), str(g.values)) == ("idx", "emb_grad_values")
    assert [op.type for op in net.Proto().op][-1] == "SparseLengthsIndicesInGradientSumGradient"


def test_gather_and_sparse_to_dense(caffe2, backend):
    r = rng(3)
    data = r.randn(50, 6).astype(F32)
    idx = np.array([[3, -1], [49, 0]], np.int64)
    check(caffe2, core.CreateOperator("Gather", ["D", "I"], ["Y"]), {"D": data, "I": idx}, ["Y"])
    check(caffe2, core.CreateOperator("Gather", ["D", "I"], ["Y"], axis=1),
          {"D": data, "I": np.array([5, 0], np.int32)}, ["Y"])
    v = r.randn(5, 6).astype(F32)
    i = np.array([4, 0, 4, 9, 4], np.int64)
    check(caffe2, core.CreateOperator("SparseToDense", ["I", "V", "D"], ["Y"]),
          {"I": i, "V": v, "D": data}, ["Y"])
    check(caffe2, core.CreateOperator("SparseToDense", ["I", "V"], ["Y"]), {"I": i, "V": v},
          ["Y"])


@pytest.mark.parametrize("policy,args", [
    ("fixed", {}), ("step", {"stepsize": 7, "gamma": 0.93}), ("exp", {"gamma": 0.9993}),
    ("inv", {"gamma": 1e-3, "power": 0.75}),
])
def test_learning_rate(caffe2, policy, args):
    for it in (0, 1, 6, 7, 8, 150, 12345):
        op = core.CreateOperator("LearningRate", ["it"], ["lr"], base_lr=-0.037, policy=policy,
                                 **args)
        check(caffe2, op, {"it": np.array([it], np.int64)}, ["lr"])


def test_iter_and_atomic_iter(caffe2):
    check(caffe2, core.CreateOperator("Iter", ["it"], ["it"]), {"it": np.array([5], np.int64)},
          ["it"])
    code = (
        "workspace.FeedBlob('it', np.array([41], np.int64))\n"
        "workspace.RunOperatorOnce(core.CreateOperator('CreateMutex', [], ['mu']))\n"
        "for _ in range(3):\n"
        "    workspace.RunOperatorOnce(core.CreateOperator('AtomicIter', ['mu', 'it'], ['it']))\n"
        "result = {'it': workspace.FetchBlob('it')}\n"
    )
    want = caffe2.exec(code)["it"]
    workspace.ResetWorkspace()
    workspace.FeedBlob("it", np.array([41], np.int64))
    workspace.RunOperatorOnce(core.CreateOperator("CreateMutex", [], ["mu"]))
    for _ in range(3):
        workspace.RunOperatorOnce(core.CreateOperator("AtomicIter", ["mu", "it"], ["it"]))
    same_bits(workspace.FetchBlob("it"), want, "AtomicIter")


def test_weighted_sums(caffe2):
    r = rng(4)
    x0, x1, x2 = (r.randn(100, 67).astype(F32) for _ in range(3))
    w0, w1, w2 = (np.array([v], F32) for v in (0.7, -1.3, 0.11))
    feeds = dict(x0=x0, w0=w0, x1=x1, w1=w1, x2=x2, w2=w2)
    check(caffe2, core.CreateOperator("WeightedSum", ["x0", "w0", "x1", "w1", "x2", "w2"], ["y"]),
          feeds, ["y"])
    check(caffe2, core.CreateOperator("WeightedSum", ["x0", "w0", "x1", "w1"], ["x0"]), feeds,
          ["x0"])
    check(caffe2, core.CreateOperator("WeightedSumGradient", ["y", "x0", "w0", "x1", "w1"],
                                      ["g0", "g1"]), dict(feeds, y=x2), ["g0", "g1"])
    idx = np.array([3, 7, 3, 0, 49], np.int64)
    s = r.randn(5, 67).astype(F32)
    for w in (w0, np.array([1.0], F32)):
        check(caffe2, core.CreateOperator("ScatterWeightedSum", ["x", "w", "i", "s", "v"], ["x"]),
              dict(x=x0[:50].copy(), w=w, i=idx, s=s, v=w1), ["x"])


@pytest.mark.parametrize("d", [1, 64, 67])
def test_adagrad_family(caffe2, backend, d):
    r = rng(20 + d)
    n = 400
    p = r.randn(n, d).astype(F32)
    m = np.abs(r.randn(n, d)).astype(F32)
    g = r.randn(n, d).astype(F32)
    lr = np.array([-0.013], F32)
    feeds = dict(p=p, m=m, g=g, lr=lr)
    check(caffe2, core.CreateOperator("Adagrad", ["p", "m", "g", "lr"], ["p", "m"]), feeds,
          ["p", "m"])
    check(caffe2, core.CreateOperator("Adagrad", ["p", "m", "g", "lr"], ["p2", "m2"],
                                      decay=0.9, epsilon=1e-4), feeds, ["p2", "m2", "p", "m"])
    check(caffe2, core.CreateOperator("Adagrad", ["p", "m", "g", "lr"], ["p", "m", "e", "u"]),
          feeds, ["p", "m", "e", "u"])
    idx = r.randint(0, n, size=n // 2).astype(np.int64)  # with duplicates
    feeds = dict(p=p, m=m, i=idx, g=g[: n // 2].copy(), lr=lr)
    check(caffe2, core.CreateOperator("SparseAdagrad", ["p", "m", "i", "g", "lr"], ["p", "m"]),
          feeds, ["p", "m"])
    feeds["i"] = idx.astype(np.int32)
    feeds["m"] = np.abs(r.randn(n)).astype(F32)
    check(caffe2, core.CreateOperator("RowWiseSparseAdagrad", ["p", "m", "i", "g", "lr"],
                                      ["p", "m"], epsilon=1e-6), feeds, ["p", "m"])


@pytest.mark.parametrize("d", [1, 64, 67])
def test_adam_family(caffe2, backend, d):
    r = rng(30 + d)
    n = 300
    p = r.randn(n, d).astype(F32)
    m = (r.randn(n, d) * 0.1).astype(F32)
    v = (np.abs(r.randn(n, d)) * 0.1).astype(F32)
    g = r.randn(n, d).astype(F32)
    lr = np.array([-0.013], F32)
    for it in (0, 5, 1000):
        feeds = dict(p=p, m=m, v=v, g=g, lr=lr, it=np.array([it], np.int64))
        check(caffe2, core.CreateOperator("Adam", ["p", "m", "v", "g", "lr", "it"],
                                          ["p", "m", "v"]), feeds, ["p", "m", "v"])
        check(caffe2, core.CreateOperator("Adam", ["p", "m", "v", "g", "lr", "it"],
                                          ["p", "m", "v", "eg"], beta1=0.8), feeds,
              ["p", "m", "v", "eg"])
        idx = r.randint(0, n, size=n // 2).astype(np.int64)
        feeds = dict(p=p, m=m, v=v, i=idx, g=g[: n // 2].copy(), lr=lr,
                     it=np.array([it], np.int64))
        check(caffe2, core.CreateOperator("SparseAdam", ["p", "m", "v", "i", "g", "lr", "it"],
                                          ["p", "m", "v"]), feeds, ["p", "m", "v"])


def test_sparse_training_steps_match(caffe2, backend):
    """SLS forward, its GradientSlice, LearningRate + AtomicIter + SparseAdagrad, 5 steps."""
    r = rng(7)
    emb = r.randn(100, 16).astype(F32)
    lengths, idx = segments(r, 30, 6, 100)

    code = (
        "init = core.Net('init')\n"
        "init.ConstantFill([], 'it', shape=[1], value=0, dtype=10)\n"
        "init.CreateMutex([], ['mu'])\n"
        "init.ConstantFill(['emb'], 'emb_m', value=0.0)\n"
        "net = core.Net('train')\n"
        "y = net.SparseLengthsSum(['emb', 'idx', 'len'], ['y'])\n"
        "g = net.AddGradientOperators([y])['emb']\n"
        "net.AtomicIter(['mu', 'it'], ['it'])\n"
        "net.LearningRate(['it'], ['lr'], base_lr=-0.1, policy='step', stepsize=2, gamma=0.5)\n"
        "net.SparseAdagrad(['emb', 'emb_m', g.indices, g.values, 'lr'], ['emb', 'emb_m'])\n"
        "for k, v in feeds.items(): workspace.FeedBlob(k, v)\n"
        "workspace.RunNetOnce(init)\n"
        "workspace.CreateNet(net)\n"
        "for _ in range(5): workspace.RunNet(net.Proto().name)\n"
        "result = {'emb': workspace.FetchBlob('emb'), 'emb_m': workspace.FetchBlob('emb_m'),\n"
        "          'ops': [op.type for op in net.Proto().op]}\n"
    )
    dy = r.randn(30, 16).astype(F32)
    feeds = {"emb": emb, "idx": idx, "len": lengths, "dy": dy}
    want = caffe2.exec(code, **feeds)
    workspace.ResetWorkspace()
    scope = {"core": core, "workspace": workspace, "np": np, "feeds": feeds}
    exec(code, scope)  # the same script, our modules
    got = scope["result"]
    assert got["ops"] == want["ops"]
    same_bits(got["emb"], want["emb"], "emb after 5 steps")
    same_bits(got["emb_m"], want["emb_m"], "emb moment after 5 steps")
