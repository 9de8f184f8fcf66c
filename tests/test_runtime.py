"""The Caffe2-compatible runtime: workspace functions (contract §2), core.CreateOperator and
core.Net, scopes, the gradient registry and AddGradientOperators, nets created once and run
many times, devices, shape inference."""

from __future__ import annotations

import numpy as np
import pytest
from optable import F64, assert_same, gradient_check

import caffe2ops
import caffe2ops.workspace as ws_module
from caffe2ops import core, workspace
from caffe2ops.errors import OperatorError, SchemaError
from caffe2ops.gradient_checker import central_difference
from caffe2ops.proto import caffe2_pb2

pytestmark = pytest.mark.usefixtures("fresh_workspace")


def x32(*values):
    return np.array(values, dtype=np.float32)


# ---- workspace functions ----------------------------------------------------------------------


def test_feed_and_fetch_copy_and_keep_dtype():
    for dtype in (np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.bool_):
        a = np.arange(6).reshape(2, 3).astype(dtype)
        assert workspace.FeedBlob("a", a) is True
        a[0, 0] = 1  # feeding copied: the blob does not see this
        got = workspace.FetchBlob("a")
        assert got.dtype == np.dtype(dtype) and got.shape == (2, 3)
        assert got[0, 0] == 0
        got[0, 1] = 5  # fetching copied: the blob does not see this either
        assert workspace.FetchBlob("a")[0, 1] == 1


def test_feed_accepts_lists_scalars_strings_and_tensor_protos():
    workspace.FeedBlob("l", [1.5, 2.5])
    assert workspace.FetchBlob("l").dtype == np.float64
    workspace.FeedBlob("s", np.float32(3.0))
    assert workspace.FetchBlob("s").shape == () and workspace.FetchBlob("s").dtype == np.float32
    workspace.FeedBlob("str", b"bytes blob")
    assert workspace.FetchBlob("str") == b"bytes blob"
    workspace.FeedBlob("u", np.array(["a", "bc"]))
    assert workspace.FetchBlob("u").dtype == object
    t = caffe2_pb2.TensorProto(dims=[2], data_type=caffe2_pb2.TensorProto.INT32, int32_data=[7, 8])
    workspace.FeedBlob("t", t)
    got = workspace.FetchBlob("t")
    assert got.dtype == np.int32 and got.tolist() == [7, 8]


def test_blob_reference_names_work_everywhere():
    ref = core.BlobReference("named")
    workspace.FeedBlob(ref, x32(1.0))
    assert workspace.HasBlob(ref) and workspace.HasBlob("named")
    assert workspace.FetchBlob(ref).tolist() == [1.0]


def test_fetch_blobs_has_blob_blobs():
    workspace.FeedBlob("b", x32(2.0))
    workspace.FeedBlob("a", x32(1.0))
    assert workspace.Blobs() == ["a", "b"]
    assert workspace.HasBlob("a") and not workspace.HasBlob("c")
    a, b = workspace.FetchBlobs(["a", "b"])
    assert a.tolist() == [1.0] and b.tolist() == [2.0]
    with pytest.raises(OperatorError, match="'c'"):
        workspace.FetchBlobs(["a", "c"])


def test_blobs_mapping():
    workspace.blobs["m"] = x32(4.0)
    assert workspace.blobs["m"].tolist() == [4.0]
    assert "m" in list(workspace.blobs) and len(workspace.blobs) == 1
    del workspace.blobs["m"]
    assert not workspace.HasBlob("m")


def test_reset_workspace_clears_blobs_and_nets_and_keeps_the_name():
    workspace.FeedBlob("a", x32(1.0))
    net = core.Net("reset_me")
    net.Cos(["a"], ["b"])
    workspace.CreateNet(net)
    assert workspace.ResetWorkspace() is True
    assert workspace.Blobs() == []
    assert workspace.CurrentWorkspace() == "test_runtime"
    with pytest.raises(OperatorError, match="reset_me"):
        workspace.RunNet(net.Name())


def test_switch_workspace_current_workspaces():
    workspace.FeedBlob("here", x32(1.0))
    with pytest.raises(OperatorError, match="no_such_ws"):
        workspace.SwitchWorkspace("no_such_ws")
    assert workspace.CurrentWorkspace() == "test_runtime"
    workspace.SwitchWorkspace("test_runtime_other", True)
    try:
        assert workspace.CurrentWorkspace() == "test_runtime_other"
        assert "test_runtime_other" in workspace.Workspaces()
        assert "test_runtime" in workspace.Workspaces()
        assert not workspace.HasBlob("here")
        workspace.FeedBlob("there", x32(2.0))
    finally:
        workspace.SwitchWorkspace("test_runtime")
    assert workspace.HasBlob("here") and not workspace.HasBlob("there")
    workspace.SwitchWorkspace("test_runtime_other")  # exists now: no flag needed
    assert workspace.HasBlob("there")
    workspace.ResetWorkspace()
    workspace.SwitchWorkspace("test_runtime")


def test_run_operator_once_and_run_operators_once():
    workspace.FeedBlob("X", x32(-2.0, 0.5, 3.0))
    op = core.CreateOperator("Clip", ["X"], ["Y"], min=-1.0, max=1.0)
    assert workspace.RunOperatorOnce(op) is True
    assert workspace.FetchBlob("Y").tolist() == [-1.0, 0.5, 1.0]
    assert workspace.RunOperatorOnce(op.SerializeToString()) is True  # bytes work too
    ops = [core.CreateOperator("Cos", ["Y"], ["Z"]),
           core.CreateOperator("ThresholdedRelu", ["Z"], ["W"], alpha=0.6)]
    assert workspace.RunOperatorsOnce(ops) is True
    z = np.cos(np.array([-1.0, 0.5, 1.0], np.float32).astype(np.float64))
    np.testing.assert_allclose(workspace.FetchBlob("Z"), z, rtol=3e-7)
    assert_same(workspace.FetchBlob("W"), np.where(z > np.float32(0.6), z, 0).astype(np.float32))
    with pytest.raises(OperatorError):  # stops at the failing op; later ones do not run
        workspace.RunOperatorsOnce([core.CreateOperator("Cos", ["nope"], ["A"]),
                                    core.CreateOperator("Cos", ["Y"], ["B"])])
    assert not workspace.HasBlob("B")


def test_create_net_run_net_run_net_once():
    net = core.Net("runs")
    net.Clip(["x"], ["y"], min=0.0)
    net.Cos(["y"], ["z"])
    workspace.FeedBlob("x", x32(-1.0, 1.0))
    assert workspace.CreateNet(net) is True
    with pytest.raises(OperatorError, match="overwrite"):
        workspace.CreateNet(net)
    assert workspace.CreateNet(net, overwrite=True) is True
    assert workspace.RunNet(net.Name()) is True
    assert workspace.RunNet(net, num_iter=3) is True  # a core.Net works as the name
    assert workspace.RunNet(net.Proto()) is True  # and so does its NetDef
    np.testing.assert_allclose(workspace.FetchBlob("z"), np.cos([0.0, 1.0]), rtol=3e-7)
    with pytest.raises(OperatorError, match="'unknown_net'"):
        workspace.RunNet("unknown_net")
    workspace.ResetWorkspace()
    workspace.FeedBlob("x", x32(2.0))
    assert workspace.RunNetOnce(net) is True
    assert workspace.RunNetOnce(net.Proto().SerializeToString()) is True
    np.testing.assert_allclose(workspace.FetchBlob("z"), np.cos([2.0]), rtol=3e-7)
    assert net.Name() not in ws_module.GetNetNames()  # RunNetOnce keeps nothing


def test_create_net_input_blobs_and_allow_fail():
    net = core.Net("allow_fail")
    net.Cos(["in"], ["out"])
    workspace.CreateNet(net, input_blobs=["in"])
    assert workspace.HasBlob("in")  # created empty
    assert workspace.RunNet(net.Name(), allow_fail=True) is False  # empty input: fails
    with pytest.raises(OperatorError, match="Cos"):
        workspace.RunNet(net.Name())
    workspace.FeedBlob("in", x32(0.0))
    assert workspace.RunNet(net.Name(), allow_fail=True) is True
    assert workspace.FetchBlob("out").tolist() == [1.0]


def test_create_net_verifies_operators_up_front():
    net = core.Net("bad_schema")
    net.Cos(["x"], ["x"])
    with pytest.raises(SchemaError, match="Cos"):
        workspace.CreateNet(net)


# ---- CreateNet / RunNet reuse output buffers --------------------------------------------------


def test_run_net_reuses_output_arrays_when_shape_and_dtype_fit():
    net = core.Net("reuse")
    net.Clip(["x"], ["y"], min=-0.5, max=0.5)
    net.Cos(["y"], ["z"])
    net.CosineSimilarity(["z", "y"], ["s"])
    net.ThresholdedRelu(["z"], ["z"], alpha=0.9)  # in place
    x = np.random.default_rng(0).uniform(-1, 1, (4, 3)).astype(np.float32)
    workspace.FeedBlob("x", x)
    workspace.CreateNet(net)
    workspace.RunNet(net.Name())
    blobs = ws_module.current_blobs()
    first = {n: blobs[n] for n in ("y", "z", "s")}
    fetched = workspace.FetchBlob("z")
    workspace.FeedBlob("x", -x)
    workspace.RunNet(net.Name())
    for n, arr in first.items():
        assert blobs[n] is arr, f"blob {n} was reallocated"
    assert_same(workspace.FetchBlob("y"), caffe2ops.clip(-x, -0.5, 0.5))
    assert_same(workspace.FetchBlob("z"), fetched)  # cos is even and clip symmetric
    workspace.FeedBlob("x", x[:2])  # another shape: a new buffer of the right shape
    workspace.RunNet(net.Name())
    assert blobs["y"] is not first["y"] and blobs["y"].shape == (2, 3)
    assert workspace.FetchBlob("s").shape == (2,)
    workspace.FeedBlob("x", x[:2].astype(np.float64))  # another dtype: a new buffer
    workspace.RunNet(net.Name())
    assert workspace.FetchBlob("y").dtype == np.float64


def test_reused_buffer_never_aliases_what_the_user_fetched():
    net = core.Net("no_alias")
    net.Clip(["x"], ["y"], max=0.0)
    workspace.FeedBlob("x", x32(1.0, -1.0))
    workspace.CreateNet(net)
    workspace.RunNet(net.Name())
    before = workspace.FetchBlob("y")
    workspace.FeedBlob("x", x32(-5.0, -6.0))
    workspace.RunNet(net.Name())
    assert before.tolist() == [0.0, -1.0]
    assert workspace.FetchBlob("y").tolist() == [-5.0, -6.0]


# ---- core.CreateOperator argument typing ------------------------------------------------------


def test_create_operator_argument_fields():
    op = core.CreateOperator(
        "Clip", "X", "Y", min=0, max=1.5, flag=True, s="text", b=b"raw", floats=[1.0, 2.5],
        ints=[1, 2], mixed=[1, 2.5], strings=["a", "b"], np_f=np.float32(0.25),
        np_i=np.int64(3), arr=np.array([1, 2]), skipped=None,
    )
    args = {a.name: a for a in op.arg}
    assert "skipped" not in args
    assert args["min"].HasField("i") and args["min"].i == 0  # int -> i (Caffe2's MakeArgument)
    assert args["max"].HasField("f") and args["max"].f == 1.5  # float -> f
    assert args["flag"].HasField("i") and args["flag"].i == 1  # bool -> i
    assert args["s"].s == b"text" and args["b"].s == b"raw"
    assert list(args["floats"].floats) == [1.0, 2.5] and not args["floats"].ints
    assert list(args["ints"].ints) == [1, 2] and not args["ints"].floats
    assert list(args["mixed"].floats) == [1.0, 2.5]
    assert list(args["strings"].strings) == [b"a", b"b"]
    assert args["np_f"].HasField("f") and args["np_f"].f == 0.25
    assert args["np_i"].HasField("i") and args["np_i"].i == 3
    assert list(args["arr"].ints) == [1, 2]
    assert list(op.input) == ["X"] and list(op.output) == ["Y"]  # single strings accepted
    assert not op.HasField("device_option")
    with pytest.raises(TypeError, match="mixed"):
        core.CreateOperator("Clip", "X", "Y", mixed=[1, "a"])


def test_int_arguments_are_accepted_for_float_parameters():
    """Caffe2 rejected Clip(min=0) ('expected field f'); the contract accepts it."""
    workspace.FeedBlob("X", x32(-1.0, 0.5, 7.0))
    workspace.RunOperatorOnce(core.CreateOperator("Clip", ["X"], ["Y"], min=0, max=1))
    assert workspace.FetchBlob("Y").tolist() == [0.0, 0.5, 1.0]
    workspace.RunOperatorOnce(core.CreateOperator("ThresholdedRelu", ["X"], ["T"], alpha=0))
    assert workspace.FetchBlob("T").tolist() == [0.0, 0.5, 7.0]


def test_create_operator_other_fields():
    arg = caffe2_pb2.Argument(name="min", f=-1.0)
    op = core.CreateOperator("Clip", ["X"], ["Y"], name="c", control_input=["dep"], arg=arg,
                             engine="CUDNN", random_seed=5, debug_info="here")
    assert op.name == "c" and list(op.control_input) == ["dep"] and op.engine == "CUDNN"
    assert op.arg[0] == arg and op.device_option.random_seed == 5 and op.debug_info == "here"
    workspace.FeedBlob("X", x32(-3.0, 3.0))
    workspace.RunOperatorOnce(op)  # engine and random seed do not change CPU results
    assert workspace.FetchBlob("Y").tolist() == [-1.0, 3.0]


def test_unknown_arguments_are_ignored_like_caffe2_with_a_warning():
    workspace.FeedBlob("X", x32(2.0))
    with pytest.warns(UserWarning, match="unknown argument 'not_an_arg'"):
        workspace.RunOperatorOnce(core.CreateOperator("Cos", ["X"], ["Y"], not_an_arg=3.0))
    np.testing.assert_allclose(workspace.FetchBlob("Y"), np.cos([2.0]), rtol=3e-7)


# ---- core.Net, BlobReference, scopes ----------------------------------------------------------


def test_net_methods_external_inputs_auto_names():
    net = core.Net("mynet")
    assert net.Name() == "mynet" and net.Proto().name == "mynet"
    y = net.Clip(["x"], min=0.0)
    assert isinstance(y, core.BlobReference)
    assert str(y) == "mynet/Clip"
    assert list(net.Proto().external_input) == ["x"]
    y2 = net.Clip([y])
    assert str(y2) == "mynet/Clip_2"
    a, b = net.CosineSimilarityGradient(["x", y, "dz"], 2)
    assert (str(a), str(b)) == ("mynet/CosineSimilarityGradient:0",
                                "mynet/CosineSimilarityGradient:1")
    assert list(net.Proto().external_input) == ["x", "dz"]  # y is defined by the net
    assert net.BlobIsDefined(y) and net.BlobIsDefined("x") and not net.BlobIsDefined("q")
    z = y.Cos()  # BlobReference op methods add to the net that defined the blob
    assert net.Proto().op[-1].type == "Cos" and list(net.Proto().op[-1].input) == [str(y)]
    assert z.Net() is net
    net.AddExternalOutput(z)
    assert list(net.Proto().external_output) == [str(z)]
    other = core.Net("mynet")
    assert other.Name() != "mynet"  # net names are made unique
    with pytest.raises(AttributeError, match="NotAnOp"):
        net.NotAnOp(["x"])
    clone = net.Clone("cloned")
    assert clone.Name() == "cloned" and len(clone.Proto().op) == len(net.Proto().op)
    from_proto = core.Net(net.Proto())
    assert from_proto.Proto() == net.Proto()


def test_net_runs_what_it_built():
    net = core.Net("built")
    x = net.AddExternalInput("x")
    y = net.Clip([x], ["y"], min=-1.0, max=1.0)
    net.ThresholdedRelu([y], ["t"], alpha=-0.5)
    workspace.FeedBlob(x, x32(-3.0, -0.25, 0.5, 4.0))
    workspace.RunNetOnce(net)
    assert workspace.FetchBlob("t").tolist() == [0.0, -0.25, 0.5, 1.0]


def test_blob_reference():
    a = core.BlobReference("scope/name")
    assert str(a) == "scope/name" and a == "scope/name" and a == core.BlobReference("scope/name")
    assert hash(a) == hash(core.BlobReference("scope/name"))
    assert a != "other"
    assert str(a + "_grad") == "scope/name_grad" and str("pre_" + a) == "pre_scope/name"
    assert a.GetNameScope() == "scope/" and a.GetUnscopedName() == "name"
    assert str(core.BlobReference(b"bytes")) == "bytes"
    with pytest.raises(AttributeError):
        a.Cos()  # no net attached


def test_device_option_and_device_scope():
    d = core.DeviceOption(caffe2_pb2.CUDA, cuda_gpu_id=2, random_seed=9, node_name="n")
    assert d.device_type == caffe2_pb2.CUDA and d.device_id == 2 and d.random_seed == 9
    assert core.DeviceOption(caffe2_pb2.CPU).device_type == 0
    cpu1 = core.DeviceOption(caffe2_pb2.CPU, 1)
    with core.DeviceScope(cpu1):
        op = core.CreateOperator("Cos", ["x"], ["y"])
        assert core.CurrentDeviceScope() == cpu1
        with core.DeviceScope(d):
            inner = core.CreateOperator("Cos", ["x"], ["y"])
        after = core.CreateOperator("Cos", ["x"], ["y"])
        explicit = core.CreateOperator("Cos", ["x"], ["y"], device_option=d)
    assert op.device_option == cpu1 and inner.device_option == d
    assert after.device_option == cpu1 and explicit.device_option == d
    assert not core.CreateOperator("Cos", ["x"], ["y"]).HasField("device_option")
    assert core.CurrentDeviceScope() is None


def test_name_scope():
    with core.NameScope("outer"):
        with core.NameScope("inner"):
            op = core.CreateOperator("Cos", ["x"], ["y"])
            assert core.CurrentNameScope() == "outer/inner/"
            kept = core.CreateOperator("Cos", [core.BlobReference("abs")], ["y"])
        with core.NameScope("fresh", reset=True):
            reset = core.CreateOperator("Cos", ["x"], ["y"])
    assert list(op.input) == ["outer/inner/x"] and list(op.output) == ["outer/inner/y"]
    assert list(kept.input) == ["abs"]  # BlobReferences keep their names
    assert list(reset.input) == ["fresh/x"]
    assert core.CurrentNameScope() == ""


# ---- gradient registry ------------------------------------------------------------------------

GRADIENT_TABLE = [
    # forward op, inputs, outputs, args, gradient type, gradient inputs, gradient outputs
    ("Clip", ["X"], ["Y"], {"min": -1.0, "max": 2.0}, "ClipGradient", ["Y", "Y_grad"],
     ["X_grad"]),
    ("ThresholdedRelu", ["X"], ["Y"], {"alpha": 0.5}, "ThresholdedReluGradient",
     ["Y", "Y_grad"], ["X_grad"]),
    ("ThresholdedRelu", ["X"], ["Y"], {"alpha": -0.5}, "ThresholdedReluGradient",
     ["Y", "Y_grad", "X"], ["X_grad"]),
    ("Cos", ["X"], ["Y"], {}, "CosGradient", ["X", "Y_grad"], ["X_grad"]),
    ("CosineEmbeddingCriterion", ["S", "label"], ["loss"], {"margin": 0.2},
     "CosineEmbeddingCriterionGradient", ["S", "label", "loss_grad"], ["S_grad"]),
    ("CosineSimilarity", ["X", "Y"], ["Z"], {}, "CosineSimilarityGradient",
     ["X", "Y", "Z_grad"], ["X_grad", "Y_grad"]),
]


@pytest.mark.parametrize("fwd,ins,outs,args,gtype,gins,gouts", GRADIENT_TABLE)
def test_get_gradient_for_op(fwd, ins, outs, args, gtype, gins, gouts):
    device = core.DeviceOption(caffe2_pb2.CPU, 0, random_seed=3)
    op = core.CreateOperator(fwd, ins, outs, device_option=device, engine="E", **args)
    grad_ops, g_input = core.GradientRegistry.GetGradientForOp(op, [o + "_grad" for o in outs])
    (g,) = grad_ops
    assert g.type == gtype and list(g.input) == gins and list(g.output) == gouts
    assert g.is_gradient_op is True
    assert g.device_option == device and g.engine == "E"
    copied = {a.name: a for a in g.arg}
    for name, value in args.items():
        assert copied[name].f == pytest.approx(value)  # forward arguments copied
    expected_g_input = [n + "_grad" if n + "_grad" in gouts else None for n in ins]
    assert g_input == expected_g_input


@pytest.mark.parametrize("op_type", ["SparseNormalize", "Float16SparseNormalize"])
def test_sparse_normalize_gradient_request_raises(op_type):
    op = core.CreateOperator(op_type, ["param", "indices"], ["param"])
    with pytest.raises(OperatorError,
                       match=f"One should not call gradient for operator {op_type}"):
        core.GradientRegistry.GetGradientForOp(op, ["param_grad"])
    net = core.Net("sn_grad")
    net.Cos(["w"], ["param"])
    net.Proto().op.append(op)
    with pytest.raises(OperatorError, match=op_type):
        net.AddGradientOperators(["param"])


def test_helper_gradients_constant_fill_has_none():
    op = core.CreateOperator("ConstantFill", [], ["c"], shape=[2], value=1.0)
    assert core.GradientRegistry.GetGradientForOp(op, ["c_grad"]) == ([], [])
    copy = core.CreateOperator("Copy", ["a"], ["b"])
    (g,), g_in = core.GradientRegistry.GetGradientForOp(copy, ["b_grad"])
    assert g.type == "CopyOnDeviceLike" and list(g.input) == ["b_grad", "a"]  # Caffe2's
    assert g_in == ["a_grad"]


def test_add_gradient_operators_list_form_autogen_constant_fill():
    net = core.Net("listform")
    y = net.Cos(["x"], ["y"])
    grads = net.AddGradientOperators([y])
    ops = list(net.Proto().op)
    fill = ops[1]
    assert fill.type == "ConstantFill" and list(fill.input) == ["y"]
    assert list(fill.output) == ["y_autogen_grad"]
    (value,) = [a for a in fill.arg if a.name == "value"]
    assert value.HasField("f") and value.f == 1.0
    assert ops[2].type == "CosGradient" and list(ops[2].input) == ["x", "y_autogen_grad"]
    assert grads[core.BlobReference("x")] == "x_grad" and grads["y"] == "y_autogen_grad"
    x = np.array([0.3, -1.2, 2.0])
    workspace.FeedBlob("x", x)
    workspace.RunNetOnce(net)
    np.testing.assert_allclose(workspace.FetchBlob("x_grad"), -np.sin(x), rtol=1e-15)


def test_add_gradient_operators_dict_form():
    net = core.Net("dictform")
    y = net.Clip(["x"], ["y"], min=0.0)
    z = net.Cos(["x"], ["z"])
    grads = net.AddGradientOperators({y: "dy", z: None})
    types = [op.type for op in net.Proto().op]
    assert types.count("ConstantFill") == 1  # only z is auto-filled
    assert grads["x"] == "x_grad" and grads["y"] == "dy"
    x = np.array([-0.5, 0.25, 1.5])
    dy = np.array([10.0, 20.0, 30.0])
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("dy", dy)
    workspace.RunNetOnce(net)
    np.testing.assert_allclose(workspace.FetchBlob("x_grad"), dy * (x > 0) - np.sin(x),
                               rtol=1e-15)


def test_blob_feeding_two_ops_gets_gradients_summed():
    net = core.Net("fanout")
    a = net.Cos(["x"], ["a"])
    b = net.Clip(["x"], ["b"], min=-0.5, max=0.5)
    net.Sum([a, b], ["c"])
    grads = net.AddGradientOperators(["c"])
    sums = [op for op in net.Proto().op if op.type == "Sum" and op.is_gradient_op is False
            and list(op.output) == ["x_grad"]]
    assert len(sums) == 1 and len(sums[0].input) == 2
    assert all(name.startswith("x_grad_autosplit_") for name in sums[0].input)
    assert grads["x"] == "x_grad"
    x = np.array([0.1, 0.7, -0.2, -0.9, 0.45])
    workspace.FeedBlob("x", x)
    workspace.RunNetOnce(net)
    analytic = workspace.FetchBlob("x_grad")
    np.testing.assert_allclose(analytic, -np.sin(x) + (np.abs(x) < 0.5), rtol=1e-15)
    # central differences of L = Σc through the forward net
    forward = core.Net("fanout_fwd")
    forward.Cos(["x"], ["a"])
    forward.Clip(["x"], ["b"], min=-0.5, max=0.5)
    forward.Sum(["a", "b"], ["c"])

    def loss(xp: np.ndarray) -> float:
        workspace.FeedBlob("x", xp)
        workspace.RunNetOnce(forward)
        return workspace.FetchBlob("c").sum()

    numeric = central_difference(loss, x, 1e-4)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_fanout_gradient_check_through_the_checker():
    """The same graph shape through Caffe2's checker (loss ½Σy² on a Sum of two uses)."""
    x = np.array([[0.1, 0.7], [-0.2, -0.9]])
    for name, v in (("x", x),):
        workspace.FeedBlob(name, v)
    net = core.Net("fanout_check")
    net.Cos(["x"], ["a"])
    net.ThresholdedRelu(["x"], ["b"], alpha=-0.5)
    net.Sum(["a", "b", "x"], ["c"])
    net.Copy(["c"], ["dc"])
    grads = net.AddGradientOperators({"c": "dc"})
    workspace.RunNetOnce(net)
    analytic = workspace.FetchBlob(str(grads["x"]))
    c = np.cos(x) + np.where(x > -0.5, x, 0) + x
    expected = c * (-np.sin(x) + (x > -0.5) + 1)
    np.testing.assert_allclose(analytic, expected, rtol=1e-14)
    # and the generic checker on a single op, for completeness
    gradient_check("Cos", ["x"], ["y"], [x], {}, [0], 1e-3, 1e-5)


def test_blob_used_twice_by_one_op_and_symmetrically():
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    y = np.array([[0.5, 2.0], [1.0, 1.0]])
    net = core.Net("twice")
    z = net.CosineSimilarity(["x", "x"], ["z"])  # z = 1: the gradient is (numerically) 0
    net.AddGradientOperators({z: "dz"})
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("dz", np.array([1.0, -2.0]))
    workspace.RunNetOnce(net)
    np.testing.assert_allclose(workspace.FetchBlob("x_grad"), np.zeros((2, 2)), atol=1e-15)
    net = core.Net("symmetric")
    a = net.CosineSimilarity(["x", "y"], ["a"])
    b = net.CosineSimilarity(["y", "x"], ["b"])
    net.Sum([a, b], ["s"])
    net.AddGradientOperators(["s"])
    workspace.FeedBlob("y", y)
    workspace.RunNetOnce(net)
    ones = np.ones(2)
    dx1, dy1 = caffe2ops.cosine_similarity_gradient(x, y, ones)
    dy2, dx2 = caffe2ops.cosine_similarity_gradient(y, x, ones)
    np.testing.assert_allclose(workspace.FetchBlob("x_grad"), dx1 + dx2, rtol=1e-14)
    np.testing.assert_allclose(workspace.FetchBlob("y_grad"), dy1 + dy2, rtol=1e-14)
    net = core.Net("sum_twice")
    net.Sum(["x", "x"], ["t"])
    net.AddGradientOperators({"t": "dt"})
    workspace.FeedBlob("dt", y)
    workspace.RunNetOnce(net)
    assert_same(workspace.FetchBlob("x_grad"), 2 * y)


def test_unrelated_sparse_normalize_does_not_block_the_backward_pass():
    net = core.Net("unrelated_sn")
    net.SparseNormalize(["w", "idx"], ["w"])  # no gradient flows through it
    y = net.Cos(["x"], ["y"])
    net.AddGradientOperators([y])
    assert [op.type for op in net.Proto().op][-1] == "CosGradient"


def test_get_backward_pass():
    ops = [core.CreateOperator("Clip", ["x"], ["y"], min=0.0),
           core.CreateOperator("Cos", ["y"], ["z"])]
    grad_ops, grad_map = core.GradientRegistry.GetBackwardPass(ops, {"z": "dz"})
    assert [op.type for op in grad_ops] == ["CosGradient", "ClipGradient"]
    assert grad_map["x"] == "x_grad" and grad_map["y"] == "y_grad"
    grad_ops, _ = core.GradientRegistry.GetBackwardPass(ops, ["z"])
    assert grad_ops[0].type == "ConstantFill"


def test_gradient_reads_a_blob_overwritten_in_place_later_raises():
    net = core.Net("overwritten")
    net.Cos(["x"], ["y"])
    net.Clip(["x"], ["x"], min=0.0)  # overwrites x, which CosGradient needs
    net.Sum(["y", "x"], ["z"])
    with pytest.raises(OperatorError, match="Cos.*'x'"):
        net.AddGradientOperators(["z"])


def test_in_place_clip_then_gradient_is_fine():
    net = core.Net("inplace_ok")
    net.Clip(["x"], ["x"], min=-0.5, max=0.5)  # the gradient reads Y, so in place is fine
    net.Cos(["x"], ["y"])
    net.AddGradientOperators(["y"])
    x = np.array([-0.7, -0.3, 0.2, 0.9])
    workspace.FeedBlob("x", x)
    workspace.RunNetOnce(net)
    c = np.clip(x, -0.5, 0.5)
    np.testing.assert_allclose(workspace.FetchBlob("x_grad"), -np.sin(c) * (np.abs(c) < 0.5))


def test_gradient_ops_run_in_float32_with_forward_args():
    net = core.Net("f32grad")
    s = net.CosineSimilarity(["X", "Y"], ["S"])
    net.CosineEmbeddingCriterion([s, "label"], ["loss"], margin=0.25)
    net.AddGradientOperators(["loss"])
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (6, 4)).astype(np.float32)
    Y = rng.uniform(-1, 1, (6, 4)).astype(np.float32)
    label = np.array([1, -1, 1, -1, 0, 2], np.int32)
    for name, v in (("X", X), ("Y", Y), ("label", label)):
        workspace.FeedBlob(name, v)
    workspace.RunNetOnce(net)
    S = workspace.FetchBlob("S")
    dS = workspace.FetchBlob("S_grad")
    assert dS.dtype == np.float32 and workspace.FetchBlob("X_grad").dtype == np.float32
    expected = np.where(label == 1, -1.0, (S >= np.float32(0.25)).astype(np.float32))
    assert_same(dS, expected.astype(np.float32))


# ---- serialized nets in a fresh workspace -----------------------------------------------------


def _build_training_net():
    net = core.Net("serialize_me")
    x = net.AddExternalInput("x")
    y = net.Clip([x], ["y"], min=-0.8, max=0.8)
    c = net.Cos([y], ["c"])
    t = net.ThresholdedRelu([c], ["t"], alpha=0.7)
    s = net.CosineSimilarity([t, "ref"], ["s"])
    loss = net.CosineEmbeddingCriterion([s, "label"], ["loss"], margin=0.1)
    net.AddGradientOperators([loss])
    net.SparseNormalize(["w", "idx"], ["w"], norm=0.5)
    return net


def _feed_inputs():
    rng = np.random.default_rng(11)
    workspace.FeedBlob("x", rng.uniform(-1.5, 1.5, (5, 3)).astype(np.float32))
    workspace.FeedBlob("ref", rng.uniform(-1, 1, (5, 3)).astype(np.float32))
    workspace.FeedBlob("label", np.array([1, -1, 1, -1, 1], np.int32))
    workspace.FeedBlob("w", rng.uniform(-2, 2, (4, 3)).astype(np.float32))
    workspace.FeedBlob("idx", np.array([0, 2, 2], np.int64))


@pytest.mark.parametrize("encoding", ["binary", "text"])
def test_serialized_net_runs_identically_in_a_fresh_workspace(encoding):
    from google.protobuf import text_format

    net = _build_training_net()
    _feed_inputs()
    workspace.RunNetOnce(net)
    names = sorted(workspace.Blobs())
    results = {n: workspace.FetchBlob(n) for n in names}
    if encoding == "binary":
        stored = net.Proto().SerializeToString()
        loaded = caffe2_pb2.NetDef.FromString(stored)
    else:
        stored = text_format.MessageToString(net.Proto())
        loaded = text_format.Parse(stored, caffe2_pb2.NetDef())
    workspace.SwitchWorkspace("test_runtime_fresh", True)
    try:
        workspace.ResetWorkspace()
        assert workspace.Blobs() == []
        _feed_inputs()
        workspace.CreateNet(loaded)
        workspace.RunNet(loaded.name)
        assert sorted(workspace.Blobs()) == names
        for n in names:
            assert_same(workspace.FetchBlob(n), results[n], n)
    finally:
        workspace.ResetWorkspace()
        workspace.SwitchWorkspace("test_runtime")


# ---- devices ----------------------------------------------------------------------------------


def _cupy_installed():
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(_cupy_installed(), reason="CuPy is installed: the no-CuPy error path "
                    "cannot be exercised")
def test_cuda_device_option_without_cupy_is_a_clear_error():
    cuda = core.DeviceOption(caffe2_pb2.CUDA, 0)
    workspace.FeedBlob("X", x32(1.0))
    with pytest.raises(OperatorError, match="Clip.*CUDA.*CuPy"):
        workspace.RunOperatorOnce(core.CreateOperator("Clip", ["X"], ["Y"], device_option=cuda))
    assert not workspace.HasBlob("Y")
    with pytest.raises(OperatorError, match="FeedBlob.*'Z'.*CuPy"):
        workspace.FeedBlob("Z", x32(1.0), device_option=cuda)
    assert not workspace.HasBlob("Z")
    with core.DeviceScope(cuda):
        op = core.CreateOperator("Cos", ["X"], ["C"])
        with pytest.raises(OperatorError, match="CuPy"):
            workspace.FeedBlob("W", x32(2.0))
    with pytest.raises(OperatorError, match="Cos.*CuPy"):
        workspace.RunOperatorOnce(op)


def test_unsupported_device_type_is_refused():
    op = core.CreateOperator("Cos", ["X"], ["Y"], device_option=core.DeviceOption(
        caffe2_pb2.OPENGL))
    workspace.FeedBlob("X", x32(1.0))
    with pytest.raises(OperatorError, match="Cos.*device type 3"):
        workspace.RunOperatorOnce(op)


def test_cpu_device_option_blobs_are_numpy():
    with core.DeviceScope(core.DeviceOption(caffe2_pb2.CPU)):
        workspace.FeedBlob("X", [1.0, 2.0])
        workspace.RunOperatorOnce(core.CreateOperator("Cos", ["X"], ["Y"]))
    assert type(ws_module.current_blobs()["Y"]) is np.ndarray


# ---- shape inference --------------------------------------------------------------------------


def test_infer_shapes_and_types():
    net = core.Net("infer")
    net.Clip(["x"], ["y"], min=0.0)
    net.Cos(["y"], ["z"])
    net.CosineSimilarity(["z", "y"], ["s"])
    net.CosineEmbeddingCriterion(["s", "label"], ["loss"])
    net.ConstantFill([], ["k"], shape=[2, 5], value=1)
    net.ConstantFill(["z"], ["f"], value=0.5)
    shapes, types = workspace.InferShapesAndTypes(
        [net], blob_dimensions={"x": [4, 3], "label": [4]},
        blob_types={"x": caffe2_pb2.TensorProto.DOUBLE})
    TP = caffe2_pb2.TensorProto
    assert shapes["y"] == [4, 3] and types["y"] == TP.DOUBLE
    assert shapes["z"] == [4, 3] and types["z"] == TP.DOUBLE
    assert shapes["s"] == [4] and types["s"] == TP.DOUBLE
    assert shapes["loss"] == [4]
    assert shapes["k"] == [2, 5] and types["k"] == TP.INT64
    assert shapes["f"] == [4, 3] and types["f"] == TP.DOUBLE
    workspace.FeedBlob("x", np.zeros((2, 7), np.float32))
    shapes, types = workspace.InferShapesAndTypes([net])
    assert shapes["s"] == [2] and types["s"] == TP.FLOAT
    assert "loss" not in shapes  # label is unknown


def test_inferred_shapes_match_what_runs():
    net = _build_training_net()
    _feed_inputs()
    shapes, types = workspace.InferShapesAndTypes([net])
    workspace.RunNetOnce(net)
    from caffe2ops.runtime.tensor import DTYPE_TO_TP

    checked = 0
    for name, shape in shapes.items():
        got = workspace.FetchBlob(name)
        assert list(got.shape) == shape, name
        assert DTYPE_TO_TP[got.dtype] == types[name], name
        checked += 1
    assert checked >= 10


def test_float64_blobs_run_in_float64():
    net = core.Net("f64")
    net.Clip(["x"], ["y"], min=0.1)
    workspace.FeedBlob("x", np.array([0.0, 0.5]))
    workspace.RunNetOnce(net)
    y = workspace.FetchBlob("y")
    assert y.dtype == F64
    assert y[0] == np.float64(np.float32(0.1))  # the Argument.f field is float32


@pytest.mark.parametrize("op_type,ins", [("ClipGradient", ["Y", "dY"]),
                                         ("CosGradient", ["X", "dY"]),
                                         ("MulGradient", ["dC", "A", "B"]),
                                         ("CopyOnDeviceLike", ["X", "like"])])
def test_gradient_never_registered_raises_as_in_caffe2(op_type, ins):
    op = core.CreateOperator(op_type, ins, ["out"] if op_type != "MulGradient" else ["a", "b"])
    g_output = [f"{o}_grad" for o in op.output]
    with pytest.raises(OperatorError, match=f"{op_type}: no gradient is registered"):
        core.GradientRegistry.GetGradientForOp(op, g_output)
