"""``caffe2ops.onnx.import_model`` on ONNX's own node test cases: import -> run in our runtime ->
equals the case's expected output and onnxruntime's, for every case of the operators the
importer maps; a case whose dtype our operators do not take must fail with a clear error."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx_cases import all_node_cases  # noqa: E402

from caffe2ops import core, workspace  # noqa: E402
from caffe2ops.errors import OperatorTypeError  # noqa: E402
from caffe2ops.onnx import OnnxImportError, export_model, import_model  # noqa: E402
from caffe2ops.runtime.schema import has_schema  # noqa: E402

# ONNX node case prefixes for the ONNX operators the importer maps onto registered operators.
_OPS = {"clip": "Clip", "thresholdedrelu": "ThresholdedRelu", "cos": "Cos", "sum": "Sum",
        "div": "Div", "pow": "Pow", "mul": "Mul", "add": "Add", "sub": "Sub", "relu": "Relu",
        "sigmoid": "Sigmoid", "tanh": "Tanh", "gemm": "FC", "gather": "Gather",
        "identity": "Copy"}
PATTERN = re.compile(r"test_(" + "|".join(_OPS) + r")(_|$)")


@functools.cache
def node_cases() -> dict:
    out = {}
    for case in all_node_cases():
        m = PATTERN.match(case.name)
        if m and has_schema(_OPS[m.group(1)]) and "_expanded" not in case.name \
                and not case.name.startswith("test_gather_elements"):  # GatherElements
            out[case.name] = case
    return out


# Cases whose form our operators cannot express: the import must say so.
IMPORT_ERRORS = {"test_gather_1": "axis=0 only", "test_gather_2d_indices": "axis=0 only"}
IMPORT_ERRORS.update({n: "maps onto FC" for n in (
    "test_gemm_all_attributes", "test_gemm_alpha", "test_gemm_beta",
    "test_gemm_default_matrix_bias", "test_gemm_default_no_bias", "test_gemm_default_scalar_bias",
    "test_gemm_default_single_elem_vector_bias", "test_gemm_default_vector_bias",
    "test_gemm_default_zero_bias", "test_gemm_transposeA", "test_gemm_transposeB")})
NON_TENSOR = ["test_identity_opt", "test_identity_sequence"]  # optional / sequence inputs
NAMES = sorted(set(node_cases()) - set(NON_TENSOR))


def _opset(model) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _run_ours(init_net, predict_net, feeds: dict) -> dict:
    previous = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace("test_onnx_import", True)
    workspace.ResetWorkspace()
    try:
        if len(init_net.op):
            workspace.RunNetOnce(init_net)
        for k, v in feeds.items():
            workspace.FeedBlob(k, v)
        workspace.RunNetOnce(predict_net)
        return {o: workspace.FetchBlob(o) for o in predict_net.external_output}
    finally:
        workspace.SwitchWorkspace(previous)


FLOATS = {np.dtype(t) for t in (np.float16, np.float32, np.float64)}


def _input_dtypes(case) -> set:
    return {np.dtype(onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type))
            for i in case.model.graph.input}


def test_the_node_cases_are_found():
    assert len(NAMES) >= 40
    assert {"test_clip_default_int8_min", "test_thresholdedrelu", "test_cos", "test_sum_example",
            "test_div_bcast", "test_pow_bcast_array"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_import_run_equals_expected_and_onnxruntime(name):
    case = node_cases()[name]
    graph = case.model.graph
    try:
        sess = ort.InferenceSession(case.model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
    except ort.capi.onnxruntime_pybind11_state.NotImplemented:
        sess = None  # onnxruntime lacks a kernel (Pow-15 with a uint exponent): expected only
    for inputs, expected in case.data_sets:
        feeds = {i.name: np.asarray(v) for i, v in zip(graph.input, inputs, strict=True)}
        if name in IMPORT_ERRORS:
            with pytest.raises(OnnxImportError, match=IMPORT_ERRORS[name]):
                import_model(case.model, constant_inputs=feeds)
            continue
        init_net, predict_net = import_model(case.model, constant_inputs=feeds)
        try:
            ours = _run_ours(init_net, predict_net, feeds)
        except OperatorTypeError as exc:  # Pow/Div of integers, float^int: ours take one float
            dtypes = _input_dtypes(case)
            assert len(dtypes) > 1 or not dtypes <= FLOATS, (name, exc)
            assert str(exc).startswith(f"{predict_net.op[0].type}: input "), str(exc)
            continue
        theirs = sess.run(None, feeds) if sess is not None else [None] * len(graph.output)
        for out, want, ort_value in zip(graph.output, expected, theirs, strict=True):
            got, want = ours[out.name], np.asarray(want)
            assert got.dtype == want.dtype and got.shape == want.shape, name
            np.testing.assert_allclose(got, want, rtol=max(case.rtol, 1e-6),
                                       atol=max(case.atol, 1e-7), err_msg=name)
            if ort_value is not None:
                np.testing.assert_allclose(got, ort_value, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("name", NON_TENSOR)
def test_non_tensor_inputs_are_refused(name):
    case = node_cases()[name]
    with pytest.raises(OnnxImportError, match="not a tensor"):
        import_model(case.model)


def test_runtime_clip_bounds_must_be_constants():
    case = node_cases()["test_clip"]
    with pytest.raises(OnnxImportError, match="must be a constant"):
        import_model(case.model)


def test_an_unmapped_onnx_operator_is_named_with_the_supported_ones():
    node = onnx.helper.make_node("Softmax", ["x"], ["y"])
    info = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])
    graph = onnx.helper.make_graph([node], "g", [info], [info])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])
    with pytest.raises(OnnxImportError, match=r"Softmax .* no mapping; supported: .*Clip"):
        import_model(model)


@pytest.mark.skipif(not has_schema("GivenTensorFill"), reason="needs the GivenTensorFill "
                    "filler (ops branch) to run an imported init net")
def test_export_then_import_round_trip_with_initializers():
    net = core.Net("n")
    net.Clip(["X"], ["C"], min=-0.5, max=0.5)
    net.Div(["C", "W"], ["D"])
    net.FC(["D", "W2", "b"], ["Y"])
    init = core.Net("init")
    init.ConstantFill([], ["W"], shape=[3], value=2.0)
    init.ConstantFill([], ["W2"], shape=[4, 3], value=1.0)
    init.ConstantFill([], ["b"], shape=[4], value=0.5)
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    model = export_model(init.Proto(), net.Proto(), opset=13,
                         value_info={"X": (x.dtype, x.shape)})
    init_net, predict_net = import_model(model)
    assert [op.type for op in init_net.op] == ["GivenTensorFill"] * len(init_net.op)
    got = _run_ours(init_net, predict_net, {"X": x})["Y"]
    assert [op.type for op in predict_net.op] == ["Clip", "Div", "FC"]
    want = (np.clip(x, -0.5, 0.5) / 2).sum(axis=1, keepdims=True) + 0.5
    np.testing.assert_allclose(got, np.repeat(want, 4, axis=1), rtol=1e-6)


def test_constant_nodes_and_initializers_become_arguments_and_fillers():
    helper = onnx.helper
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4])
    nodes = [helper.make_node("Constant", [], ["lo"], value_float=-0.5),
             helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
             helper.make_node("Mul", ["c", "w"], ["y"])]
    w = onnx.numpy_helper.from_array(np.array([1.0, 2.0, 3.0, 4.0], np.float32), "w")
    hi = onnx.numpy_helper.from_array(np.array(0.5, np.float32), "hi")
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[w, hi])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    init_net, predict_net = import_model(model)
    assert [op.type for op in predict_net.op] == ["Clip", "Mul"]
    assert {a.name: a.f for a in predict_net.op[0].arg} == {"min": -0.5, "max": 0.5}
    assert [(op.type, list(op.output)) for op in init_net.op] == [("GivenTensorFill", ["w"])]
    value = np.array([-2.0, 0.25, 0.4, 3.0], np.float32)
    got = _run_ours(init_net, predict_net, {"x": value})["y"]
    theirs = ort.InferenceSession(model.SerializeToString(),
                                  providers=["CPUExecutionProvider"]).run(None, {"x": value})[0]
    np.testing.assert_array_equal(got, theirs)
