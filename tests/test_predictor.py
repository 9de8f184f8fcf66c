"""workspace.Predictor, predictor.mobile_exporter.Export, load_net / save_net."""

from __future__ import annotations

import numpy as np
import pytest
from training_support import requires_ops

import caffe2ops
from caffe2ops import OperatorError, brew, core, model_helper, workspace
from caffe2ops.predictor import mobile_exporter
from caffe2ops.proto import caffe2_pb2


def clip_nets():
    init = core.Net("pred_clip_init")
    init.ConstantFill([], "unused_param", shape=[2], value=3.0)
    pred = core.Net("pred_clip")
    pred.Clip(["x"], ["y"], min=0.0, max=1.0)
    pred.Cos(["x"], ["z"])
    pred.AddExternalOutput("y", "z")
    return init, pred


def test_predictor_runs_lists_dicts_and_bytes_in_its_own_workspace():
    workspace.ResetWorkspace()
    init, pred = clip_nets()
    x = np.array([-1.0, 0.25, 2.0], np.float32)
    for p in (workspace.Predictor(init.Proto(), pred.Proto()),
              workspace.Predictor(init.Proto().SerializeToString(),
                                  pred.Proto().SerializeToString())):
        y, z = p.run([x])
        np.testing.assert_array_equal(y, np.clip(x, 0, 1))
        np.testing.assert_allclose(z, np.cos(x), rtol=1e-6)
        (y2, _) = p.run({"x": x[:2]})
        np.testing.assert_array_equal(y2, [0.0, 0.25])
    assert workspace.Blobs() == []  # the current workspace is untouched
    # The returned arrays are copies.
    y[:] = 7
    np.testing.assert_array_equal(p.run([x])[0], np.clip(x, 0, 1))


def test_predictor_errors():
    init, pred = clip_nets()
    p = workspace.Predictor(init, pred)
    with pytest.raises(OperatorError, match="blob does not exist: nope"):
        p.run({"nope": np.zeros(1, np.float32)})
    with pytest.raises(OperatorError, match="2 inputs given, the net has 1"):
        p.run([np.zeros(1, np.float32)] * 2)
    with pytest.raises(TypeError):
        workspace.Predictor("not a net", pred)


def test_export_fills_params_by_dtype_and_orders_inputs():
    workspace.ResetWorkspace()
    net = core.Net("export_dtypes")
    net.Clip(["x", ], ["y"], min=0.0)
    net.Cos(["y"], ["z"])
    net.AddExternalInput("p_f32")
    values = {"p_f32": np.arange(4, dtype=np.float32).reshape(2, 2),
              "p_i32": np.array([1, -2], np.int32),
              "p_i64": np.array([[2**40]], np.int64),
              "p_u8": np.array([1, 2, 255], np.uint8)}
    for name, value in values.items():
        workspace.FeedBlob(name, value)
    init_net, predict_net = mobile_exporter.Export(workspace, net, list(values))
    kinds = [(op.type, op.output[0]) for op in init_net.op]
    assert kinds == [("GivenTensorFill", "p_f32"), ("GivenTensorIntFill", "p_i32"),
                     ("GivenTensorInt64Fill", "p_i64"),
                     ("GivenTensorByteStringToUInt8Fill", "p_u8"), ("GivenTensorFill", "x")]
    f32 = init_net.op[0]
    assert [a.name for a in f32.arg] == ["shape", "values"]
    assert list(f32.arg[0].ints) == [2, 2] and list(f32.arg[1].floats) == [0, 1, 2, 3]
    assert list(init_net.op[2].arg[1].ints) == [2**40]
    assert list(init_net.op[3].arg[1].strings) == [bytes([1, 2, 255])]
    fake_input = init_net.op[4]
    assert list(fake_input.arg[0].ints) == [1, 1] and list(fake_input.arg[1].floats) == [0.0]
    # Inputs first, then the net's other external inputs; outputs: written, never read.
    assert list(predict_net.external_input) == ["x", "p_f32"]
    assert list(predict_net.external_output) == ["z"]
    assert [op.type for op in predict_net.op] == ["Clip", "Cos"]
    with pytest.raises(TypeError, match="dtype float64"):
        mobile_exporter.add_tensor(caffe2_pb2.NetDef(), "d", np.zeros(1))


@requires_ops("FC", "Relu", "XavierFill", "GivenTensorFill")
def test_exported_model_predicts_what_the_workspace_computed():
    workspace.ResetWorkspace()
    model = model_helper.ModelHelper(name="export_fc")
    hidden = brew.fc(model, "data", "hidden", dim_in=3, dim_out=4)
    brew.relu(model, hidden, "out")
    data = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    workspace.FeedBlob("data", data)
    workspace.RunNetOnce(model.param_init_net)
    workspace.RunNetOnce(model.net)
    expected = workspace.FetchBlob("out")
    init_net, predict_net = mobile_exporter.Export(workspace, model.net, model.params)
    assert list(predict_net.external_input) == ["data", "hidden_w", "hidden_b"]
    assert list(predict_net.external_output) == ["out"]
    (out,) = workspace.Predictor(init_net, predict_net).run([data])
    np.testing.assert_array_equal(out, expected)
    w = workspace.FetchBlob("hidden_w")
    np.testing.assert_allclose(out, np.maximum(data @ w.T, 0), rtol=1e-5, atol=1e-6)


def test_load_net_tells_binary_from_text_by_content(tmp_path):
    _, pred = clip_nets()
    proto = pred.Proto()
    for saved, written_as in (("a.pb", "binary"), ("a.pbtxt", "text")):
        caffe2ops.save_net(pred, tmp_path / saved)
        data = (tmp_path / saved).read_bytes()
        assert (data == proto.SerializeToString()) == (written_as == "binary")
        # Swap the suffixes: the content decides.
        swapped = tmp_path / ("b.pbtxt" if saved.endswith(".pb") else "b.pb")
        swapped.write_bytes(data)
        assert caffe2ops.load_net(swapped) == proto
        assert caffe2ops.load_net(tmp_path / saved) == proto


def test_load_net_rejects_what_is_neither(tmp_path):
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xff\xff\xff\xff\x0f")
    with pytest.raises(OperatorError, match="neither a binary nor a text NetDef"):
        caffe2ops.load_net(bad)
    text = tmp_path / "bad.pbtxt"
    text.write_text('name: "x"\nop { bogus_field: 1 }\n')
    with pytest.raises(OperatorError, match="as text"):
        caffe2ops.load_net(text)
    with pytest.raises(TypeError, match="NetDef or core.Net"):
        caffe2ops.save_net("not a net", tmp_path / "x.pb")
