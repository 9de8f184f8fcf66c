"""model_helper.ModelHelper and the modeling pieces it uses (ParameterInfo, initializers)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from training_support import arg_value, op_types, requires_ops

from caffe2ops import brew, core, model_helper, workspace
from caffe2ops.modeling import initializers
from caffe2ops.modeling.parameter_info import ParameterInfo, ParameterTags


def constant(value=0.0):
    return initializers.Initializer("ConstantFill", value=value)


def test_names_of_the_two_nets_and_default_arg_scope():
    model = model_helper.ModelHelper(name="mh_names")
    assert model.net.Name() == "mh_names" and model.param_init_net.Name() == "mh_names_init"
    assert model.arg_scope == {"order": "NCHW", "use_cudnn": True,
                               "cudnn_exhaustive_search": False}
    scoped = model_helper.ModelHelper(name="mh_names_scoped", arg_scope={"order": "NHWC"})
    assert scoped.arg_scope["order"] == "NHWC" and scoped.arg_scope["use_cudnn"] is True
    assert model_helper.ModelHelper().name == "model"


def test_create_param_records_blob_tags_and_info():
    model = model_helper.ModelHelper(name="mh_create")
    w = model.create_param("w", shape=[3, 2], initializer=constant(0.5),
                           tags=ParameterTags.WEIGHT)
    b = model.create_param("b", shape=[3], initializer=constant(),
                           tags=[ParameterTags.BIAS])
    assert isinstance(w, core.BlobReference) and str(w) == "w"
    assert model.params == [w, b] and model.weights == [w] and model.biases == [b]
    info = model.get_param_info(w)
    assert isinstance(info, ParameterInfo)
    assert (info.name, info.shape, info.size, info.grad) == ("w", [3, 2], 6, None)
    op = model.param_init_net.Proto().op[0]
    assert (op.type, list(op.output)) == ("ConstantFill", ["w"])
    assert arg_value(op, "shape") == [3, 2] and arg_value(op, "value") == 0.5
    # Creating it again gives the same blob and no new operator; another shape is an error.
    assert model.create_param("w", shape=[3, 2], initializer=constant()) == w
    assert len(model.param_init_net.Proto().op) == 2
    with pytest.raises(AssertionError, match="shape"):
        model.create_param("w", shape=[2, 3], initializer=constant())
    with pytest.raises(TypeError):
        model.create_param(3, shape=[1], initializer=constant())
    with pytest.raises(AssertionError, match="BlobReference"):
        model.get_param_info("w")


def test_create_param_uses_the_name_scope_and_get_params_filters_by_it():
    model = model_helper.ModelHelper(name="mh_scope")
    with core.NameScope("tower"):
        inner = model.create_param("w", shape=[1], initializer=constant())
        assert model.GetParams() == [inner]
    outer = model.create_param("w", shape=[1], initializer=constant())
    assert (str(inner), str(outer)) == ("tower/w", "w")
    assert model.GetParams() == [inner, outer]
    assert model.GetParams("tower") == [inner] and model.GetParams("tower/") == [inner]
    # A BlobReference name is used as is, whatever the scope.
    with core.NameScope("other"):
        fixed = model.create_param(core.BlobReference("fixed"), shape=[1],
                                   initializer=constant())
    assert str(fixed) == "fixed"


def test_computed_params_and_all_params():
    model = model_helper.ModelHelper(name="mh_computed")
    p = model.create_param("p", shape=[1], initializer=constant())
    c = model.create_param("c", shape=[1], initializer=constant(),
                           tags=[ParameterTags.COMPUTED_PARAM])
    assert model.GetParams() == [p] and model.GetComputedParams() == [c]
    assert model.GetAllParams() == [p, c]


def test_validate_names_duplicate_params():
    model = model_helper.ModelHelper(name="mh_validate")
    model.Validate()
    p = core.BlobReference("dup")
    model.AddParameter(p)
    model.AddParameter(p)
    with pytest.raises(AssertionError, match="Duplicate params: \\['dup'\\]"):
        model.Validate()
    with pytest.raises(AssertionError, match="BlobReference"):
        model.AddParameter("not_a_reference")


def test_init_params_false_expects_parameters_in_the_workspace():
    model = model_helper.ModelHelper(name="mh_external", init_params=False)
    w = model.create_param("w", shape=[2], initializer=initializers.ExternalInitializer())
    assert str(w) == "w" and len(model.param_init_net.Proto().op) == 0
    assert model.get_param_info(w).shape == [2]


def test_add_gradient_operators_fills_param_to_grad_once():
    model = model_helper.ModelHelper(name="mh_grad")
    w = model.create_param("w", shape=[3], initializer=constant(0.25))
    y = model.net.Cos([w], "y")
    loss = model.net.LpNorm([y], "loss")
    with pytest.raises(RuntimeError, match="AddGradientOperators first"):
        model.get_param_to_grad(model.params)
    grad_map = model.AddGradientOperators([loss])
    assert str(grad_map["w"]) == "w_grad"
    assert model.param_to_grad == {w: core.BlobReference("w_grad")}
    assert str(model.get_param_info(w).grad) == "w_grad"
    assert [info.name for info in model.GetOptimizationParamInfo()] == ["w"]
    with pytest.raises(RuntimeError, match="twice"):
        model.AddGradientOperators([loss])
    # The gradient really is d/dw of Σcos(w)²: -2·cos(w)·sin(w).
    workspace.ResetWorkspace()
    workspace.RunNetOnce(model.param_init_net)
    workspace.RunNetOnce(model.net)
    expected = -2 * np.cos(np.float32(0.25)) * np.sin(np.float32(0.25))
    np.testing.assert_allclose(workspace.FetchBlob("w_grad"), np.full(3, expected), rtol=1e-6)


def test_getattr_forwards_operators_to_net(caplog):
    model = model_helper.ModelHelper(name="mh_getattr")
    with caplog.at_level(logging.WARNING, logger="caffe2ops.model_helper"):
        model.Clip(["x"], ["y"], min=0.0)
    assert op_types(model.net) == ["Clip"]
    assert "does not recognize: Clip" in caplog.text
    with pytest.raises(AttributeError, match="not a registered operator"):
        model.Clipp(["x"], ["y"])
    strict = model_helper.ModelHelper(name="mh_getattr_strict", allow_not_known_ops=False)
    with pytest.raises(AttributeError, match="not known to be safe"):
        strict.Clip(["x"], ["y"])
    assert "Sigmoid" in dir(model)
    assert model.Proto() is model.net.Proto()
    assert model.InitProto() is model.param_init_net.Proto()


def test_param_model_shares_parameters():
    train = model_helper.ModelHelper(name="mh_train")
    w = train.create_param("w", shape=[1], initializer=constant())
    test = model_helper.ModelHelper(name="mh_test", param_model=train)
    assert test.params is train.params and test.param_init_net is train.param_init_net
    assert test.get_param_info(w) is train.get_param_info(w)


def test_parameter_info_optimizer_is_set_once():
    info = ParameterInfo(param_id=0, param=core.BlobReference("p"))
    assert info.size is None and info.length == 1 and info.parameter == "p"
    info.optimizer = "sgd"
    with pytest.raises(AssertionError, match="already been set"):
        info.optimizer = "adagrad"
    with pytest.raises(AssertionError):
        ParameterInfo(param_id=0, param="p")


def test_update_initializer_prefers_the_given_pair_and_class():
    init = initializers.update_initializer(None, ("GaussianFill", {"std": 0.1}),
                                           ("XavierFill", {}))
    assert (init.operator_name, init.operator_kwargs) == ("GaussianFill", {"std": 0.1})
    with pytest.raises(Exception, match="overwrites"):
        init.update("UniformFill", {})


@requires_ops("FC", "XavierFill")
def test_brew_fc_parameters_as_caffe2_registers_them():
    model = model_helper.ModelHelper(name="mh_fc")
    brew.fc(model, "x", "fc1", dim_in=4, dim_out=3)
    brew.fc(model, "fc1", "fc2", dim_in=3, dim_out=2, freeze_bias=True)
    assert [str(p) for p in model.params] == ["fc1_w", "fc1_b", "fc2_w"]
    assert [str(p) for p in model.GetComputedParams()] == ["fc2_b"]
    assert [str(p) for p in model.weights] == ["fc1_w", "fc2_w"]
    assert [str(p) for p in model.biases] == ["fc1_b", "fc2_b"]
    assert model.get_param_info(model.params[0]).shape == [3, 4]
    assert op_types(model.param_init_net) == ["XavierFill", "ConstantFill"] * 2
