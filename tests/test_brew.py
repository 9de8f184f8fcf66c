"""brew: helpers, their arguments (model arg_scope, brew.arg_scope, call), Register."""

from __future__ import annotations

import numpy as np
import pytest
from training_support import arg_names, arg_value, op_types, requires_ops

from caffe2ops import brew, core, model_helper, workspace


def test_sum_gets_the_model_arg_scope_as_operator_arguments():
    # Helpers with **kwargs forward the model's arg_scope to the operator, as Caffe2's do.
    model = model_helper.ModelHelper(name="brew_sum")
    out = brew.sum(model, ["a", "b"], "s")
    op = model.net.Proto().op[0]
    assert str(out) == "s" and op.type == "Sum" and list(op.input) == ["a", "b"]
    assert arg_names(op) == ["order", "use_cudnn", "cudnn_exhaustive_search"]
    assert arg_value(op, "order") == "NCHW" and arg_value(op, "use_cudnn") == 1
    workspace.ResetWorkspace()
    workspace.FeedBlob("a", np.array([1.0, 2.0], np.float32))
    workspace.FeedBlob("b", np.array([0.5, 0.5], np.float32))
    workspace.RunNetOnce(model.net)
    np.testing.assert_array_equal(workspace.FetchBlob("s"), [1.5, 2.5])


def test_arg_scope_nests_and_restores():
    model = model_helper.ModelHelper(name="brew_scope")
    with brew.arg_scope([brew.sum], alpha=1):
        with brew.arg_scope(brew.sum, beta=2, alpha=3):
            brew.sum(model, ["a"], "s1")
        brew.sum(model, ["a"], "s2")
        brew.sum(model, ["a"], "s3", alpha=4)  # the call wins
    brew.sum(model, ["a"], "s4")
    ops = model.net.Proto().op
    assert (arg_value(ops[0], "alpha"), arg_value(ops[0], "beta")) == (3, 2)
    assert arg_value(ops[1], "alpha") == 1 and "beta" not in arg_names(ops[1])
    assert arg_value(ops[2], "alpha") == 4
    assert "alpha" not in arg_names(ops[3])
    assert brew.get_current_scope() == {}
    with pytest.raises(AssertionError, match="callable"):
        with brew.arg_scope(["not a helper"], alpha=1):
            pass


def test_helpers_need_the_model():
    with pytest.raises(RuntimeError, match="first input of a helper function"):
        brew.sum("not a model", ["a"], "s")
    model = model_helper.ModelHelper(name="brew_model_kwarg")
    brew.sum(model=model, blob_in=["a"], blob_out="s")
    assert op_types(model.net) == ["Sum"]


def test_register_adds_a_helper_once():
    def brew_test_scale_helper(model, blob_in, blob_out, **kwargs):
        return model.net.Clip(blob_in, blob_out, **kwargs)

    assert not brew.has_helper("brew_test_scale_helper")
    brew.Register(brew_test_scale_helper)
    assert brew.has_helper(brew_test_scale_helper) and brew.has_helper("brew_test_scale_helper")
    model = model_helper.ModelHelper(name="brew_register", arg_scope={"order": "NHWC"})
    with brew.arg_scope([brew.brew_test_scale_helper], min=0.0):
        brew.brew_test_scale_helper(model, ["x"], ["y"])
    op = model.net.Proto().op[0]
    assert op.type == "Clip" and arg_value(op, "order") == "NHWC" and arg_value(op, "min") == 0.0
    with pytest.raises(AttributeError, match="already exists"):
        brew.Register(brew_test_scale_helper)
    with pytest.raises(AttributeError, match="not registered"):
        brew.no_such_helper  # noqa: B018


@requires_ops("FC", "XavierFill")
def test_fc_emits_caffe2s_operators_and_arguments():
    model = model_helper.ModelHelper(name="brew_fc")
    y = brew.fc(model, "x", "y", dim_in=4, dim_out=3, axis=1)
    assert str(y) == "y"
    init_ops = model.param_init_net.Proto().op
    assert [(op.type, list(op.output), arg_value(op, "shape")) for op in init_ops] == [
        ("XavierFill", ["y_w"], [3, 4]), ("ConstantFill", ["y_b"], [3])]
    assert [arg_names(op) for op in init_ops] == [["shape"], ["shape"]]
    (fc,) = model.net.Proto().op
    assert fc.type == "FC" and list(fc.input) == ["x", "y_w", "y_b"]
    assert arg_names(fc) == ["order", "use_cudnn", "cudnn_exhaustive_search", "axis"]
    assert not fc.HasField("engine")


@requires_ops("FC", "GaussianFill")
def test_fc_initializers_and_engine_options():
    model = model_helper.ModelHelper(name="brew_fc_init")
    brew.fc(model, "x", "y", 2, 2, weight_init=("GaussianFill", {"std": 0.1}),
            bias_init=("ConstantFill", {"value": 0.5}), enable_tensor_core=True)
    w_op, b_op = model.param_init_net.Proto().op
    assert w_op.type == "GaussianFill" and arg_value(w_op, "std") == pytest.approx(0.1)
    assert arg_value(b_op, "value") == 0.5
    assert model.net.Proto().op[0].engine == "TENSORCORE"
    external = model_helper.ModelHelper(name="brew_fc_ext", init_params=False)
    brew.fc(external, "x", "y", 2, 2)
    assert len(external.param_init_net.Proto().op) == 0
    assert [str(p) for p in external.params] == ["y_w", "y_b"]


@requires_ops("Relu", "Tanh", "Sigmoid")
def test_activations_pass_order_and_use_cudnn_as_caffe2():
    model = model_helper.ModelHelper(name="brew_act")
    brew.relu(model, "x", "r")
    brew.tanh(model, "x", "t", use_cudnn=False)
    brew.sigmoid(model, "x", "s")
    relu, tanh, sigmoid = model.net.Proto().op
    # The model's use_cudnn=True selects the CUDNN engine, and use_cudnn is not an argument.
    assert relu.engine == "CUDNN" and arg_names(relu) == ["order", "cudnn_exhaustive_search"]
    assert not tanh.HasField("engine") and arg_names(tanh) == ["order", "cudnn_exhaustive_search"]
    assert sigmoid.type == "Sigmoid" and arg_names(sigmoid) == [
        "order", "use_cudnn", "cudnn_exhaustive_search"]
    nhwc = model_helper.ModelHelper(name="brew_act_nhwc", arg_scope={"order": "NHWC"})
    brew.relu(nhwc, "x", "r")
    assert arg_value(nhwc.net.Proto().op[0], "order") == "NHWC"


@requires_ops("Iter")
def test_iter_counts_on_the_cpu():
    model = model_helper.ModelHelper(name="brew_iter")
    brew.iter(model, "it")
    (fill,) = model.param_init_net.Proto().op
    assert fill.type == "ConstantFill" and arg_value(fill, "dtype") == 10
    assert fill.device_option == core.DeviceOption(core.CPU, 0)
    assert op_types(model.net) == ["Iter"]
    workspace.ResetWorkspace()
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net)
    workspace.RunNet(model.net, num_iter=3)
    assert workspace.FetchBlob("it").tolist() == [3]


@requires_ops("FC", "XavierFill", "WeightedSum", "AveragedLoss")
def test_add_weight_decay_adds_decay_to_weight_gradients():
    model = model_helper.ModelHelper(name="brew_wd")
    y = brew.fc(model, "x", "y", 2, 1)
    model.AddGradientOperators([model.net.AveragedLoss(y, "loss")])
    brew.add_weight_decay(model, 0.0)
    before = len(model.net.Proto().op)
    brew.add_weight_decay(model, 0.5)
    (op,) = model.net.Proto().op[before:]
    assert op.type == "WeightedSum" and list(op.input) == ["y_w_grad", "ONE", "y_w", "wd"]
    assert list(op.output) == ["y_w_grad"]
