"""ONNX's backend node tests for Clip, ThresholdedRelu and Cos, run through our operators, and a
differential check against ``onnx.reference.ReferenceEvaluator`` and onnxruntime.

The node test cases are built in memory by ``onnx.backend.test.loader.load_model_tests(kind=
"node")`` (onnx >= 1.23 no longer ships ``data/node``). A node is translated into a Caffe2
``OperatorDef``: Clip-13's optional ``min``/``max`` inputs (``""`` when omitted) become our
``min``/``max`` arguments, Clip-6's attributes likewise, ThresholdedRelu's ``alpha`` attribute
is copied. The ``_expanded`` twins hold the ONNX function bodies (Less/Where, CastLike,
Constant, Identity); for those the arguments are read back from the function body (the graph's
``min``/``max`` inputs, the ``value_float`` constant) and our operator runs on the same inputs.
Every one of the 32 data sets is compared with its expected output at the case's rtol/atol.

Known divergences (peer-systems §1.5 / §8), pinned below: with no bounds, ±inf inputs become
±FLT_MAX (onnxruntime, Caffe2) where the ONNX reference keeps ±inf; a NaN bound is ignored
(onnxruntime) where the ONNX reference returns all-NaN.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from onnx import helper, numpy_helper  # noqa: E402
from onnx_cases import all_node_cases  # noqa: E402
from optable import assert_same  # noqa: E402

import caffe2ops as c2  # noqa: E402
from caffe2ops import core, workspace  # noqa: E402

PATTERN = re.compile(r"test_(clip|thresholdedrelu|cos)(_|$)")
_CLIP = ["example", "", "inbounds", "outbounds", "splitbounds", "min_greater_than_max",
         "default_min", "default_max", "default_inbounds", "default_int8_min",
         "default_int8_max", "default_int8_inbounds"]
CLIP_NAMES = [f"test_clip_{n}" if n else "test_clip" for n in _CLIP]
EXPECTED_NAMES = sorted(
    CLIP_NAMES + [n + "_expanded" for n in CLIP_NAMES]
    + [f"test_thresholdedrelu{s}" for s in ("", "_example", "_default")]
    + [f"test_thresholdedrelu{s}_expanded_ver18" for s in ("", "_example", "_default")]
    + ["test_cos", "test_cos_example"]
)


@functools.cache
def node_cases() -> dict:
    # The loader runs every node-case generator of the wheel (~5 s), once per session.
    return {c.name: c for c in all_node_cases() if PATTERN.match(c.name)}


pytestmark = pytest.mark.usefixtures("fresh_workspace")


def test_the_32_selected_cases_exist():
    names = sorted(node_cases())
    assert names == EXPECTED_NAMES
    assert len(names) == 24 + 6 + 2


# ---- translation ------------------------------------------------------------------------------


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _scalar(value):
    """A bound given as a numpy scalar or 0-d array -> a Python number (int stays int)."""
    v = np.asarray(value).item()
    return v


def translate_node(node, values: dict):
    """One ONNX node -> a Caffe2 OperatorDef (values: the graph's input values by name)."""
    if node.op_type == "Clip":
        args = {}
        if len(node.input) > 1:  # Clip-11+: optional inputs, "" when omitted
            for name, key in zip(node.input[1:], ("min", "max"), strict=False):
                if name:
                    args[key] = _scalar(values[name])
        else:  # Clip-6: attributes
            for key in ("min", "max"):
                v = _attr(node, key)
                if v is not None:
                    args[key] = float(v)
        return core.CreateOperator("Clip", [node.input[0]], list(node.output), **args)
    if node.op_type == "ThresholdedRelu":
        return core.CreateOperator("ThresholdedRelu", [node.input[0]], list(node.output),
                                   alpha=float(_attr(node, "alpha", 1.0)))
    if node.op_type == "Cos":
        return core.CreateOperator("Cos", list(node.input), list(node.output))
    return None


def expanded_as_operator(case, values: dict):
    """The operator an ``_expanded`` function body computes, with the arguments read back from
    the body: Clip's bounds are the graph inputs named min/max, ThresholdedRelu's alpha is the
    ``value_float`` Constant; the body's ops (Less/Where/CastLike/Identity) are not ours."""
    graph = case.model.graph
    x, y = graph.input[0].name, graph.output[0].name
    ops = {n.op_type for n in graph.node}
    if case.name.startswith("test_clip"):
        assert ops <= {"Less", "Where", "Identity"}, ops
        args = {k: _scalar(values[k]) for k in ("min", "max") if k in values}
        return core.CreateOperator("Clip", [x], [y], **args)
    if case.name.startswith("test_thresholdedrelu"):
        assert ops == {"Constant", "CastLike", "Less", "Where"}, ops
        alphas = [_attr(n, "value_float") for n in graph.node if n.op_type == "Constant"]
        alpha = next(a for a in alphas if a is not None)
        return core.CreateOperator("ThresholdedRelu", [x], [y], alpha=float(alpha))
    raise AssertionError(f"no translation for {case.name}")


def run_case(case):
    graph = case.model.graph
    checked = 0
    for inputs, outputs in case.data_sets:
        values = {i.name: v for i, v in zip(graph.input, inputs, strict=True)}
        ops = [translate_node(n, values) for n in graph.node]
        if any(op is None for op in ops):
            ops = [expanded_as_operator(case, values)]
        workspace.ResetWorkspace()
        workspace.FeedBlob(graph.input[0].name, np.asarray(values[graph.input[0].name]))
        workspace.RunOperatorsOnce(ops)
        for out, expected in zip(graph.output, outputs, strict=True):
            got = workspace.FetchBlob(out.name)
            expected = np.asarray(expected)
            assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, rtol=case.rtol, atol=case.atol,
                                       err_msg=case.name)
            checked += 1
    return checked


@pytest.mark.parametrize("backend", ["reference", "default"])
@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_onnx_node_case(name, backend):
    case = node_cases()[name]
    assert case.data_sets, name
    with c2.reference_kernels() if backend == "reference" else contextlib.nullcontext():
        assert run_case(case) == len(case.data_sets)


def test_int8_clip_cases_stay_int8():
    case = node_cases()["test_clip_default_int8_min"]
    (x, lo), (expected,) = case.data_sets[0]
    assert x.dtype == np.int8 and np.asarray(lo).dtype == np.int8
    assert_same(c2.clip(x, min=int(lo)), expected)


def _pytorch_operator_dir():
    import onnx.backend.test as T

    return os.path.join(os.path.dirname(T.__file__), "data", "pytorch-operator",
                        "test_operator_clip")


def test_pytorch_operator_clip_opset6():
    """The opset-6 attribute form (min=-0.5, max=0.5), still shipped in the onnx wheel."""
    d = _pytorch_operator_dir()
    if not os.path.isdir(d):
        pytest.skip("onnx wheel without backend/test/data/pytorch-operator/test_operator_clip")
    model = onnx.load(os.path.join(d, "model.onnx"))
    assert [o.version for o in model.opset_import] == [6]
    (node,) = model.graph.node
    op = translate_node(node, {})
    assert {a.name: a.f for a in op.arg} == {"min": -0.5, "max": 0.5}
    sets = sorted(e for e in os.listdir(d) if e.startswith("test_data_set"))
    assert sets
    for s in sets:
        x = numpy_helper.to_array(onnx.load_tensor(os.path.join(d, s, "input_0.pb")))
        expected = numpy_helper.to_array(onnx.load_tensor(os.path.join(d, s, "output_0.pb")))
        workspace.FeedBlob(node.input[0], x)
        workspace.RunOperatorOnce(op)
        got = workspace.FetchBlob(node.output[0])
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-7)
        assert_same(got, expected)


# ---- differential: ReferenceEvaluator and onnxruntime ------------------------------------------

FLT_MAX = float(np.finfo(np.float32).max)


def _model(op_type, has_min=False, has_max=False, alpha=None, opset=13):
    X = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, None)
    Y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    inputs, graph_inputs = ["x"], [X]
    attrs = {}
    if op_type == "Clip":
        for flag, name in ((has_min, "min"), (has_max, "max")):
            if flag:
                graph_inputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                                  []))
            inputs.append(name if flag else "")
        while inputs and inputs[-1] == "":
            inputs.pop()
    if alpha is not None:
        attrs["alpha"] = alpha
    node = helper.make_node(op_type, inputs, ["y"], **attrs)
    graph = helper.make_graph([node], "g", graph_inputs, [Y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


@functools.cache
def _evaluators(op_type, has_min=False, has_max=False, alpha=None, opset=13):
    from onnx.reference import ReferenceEvaluator

    model = _model(op_type, has_min, has_max, alpha, opset)
    ref = ReferenceEvaluator(model)
    try:
        import onnxruntime as ort
    except ImportError:
        sess = None
    else:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return ref, sess


def _feeds(x, lo, hi):
    feeds = {"x": x}
    if lo is not None:
        feeds["min"] = np.asarray(lo, np.float32)  # ORT rejects numpy scalars
    if hi is not None:
        feeds["max"] = np.asarray(hi, np.float32)
    return feeds


def _x(seed, n=64):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 2).astype(np.float32)
    x[rng.integers(0, n, 4)] = np.array([np.nan, np.inf, -np.inf, -0.0], np.float32)
    return x


def _require_ort(sess):
    if sess is None:
        pytest.skip("onnxruntime is not installed")
    return sess


CLIP_BOUNDS = [(-1.0, 1.0), (0.0, None), (None, 0.5), (2.0, -1.0), (-0.0, 0.0), (-5.0, 5.0),
               (0.25, 0.25)]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("lo,hi", CLIP_BOUNDS)
def test_clip_matches_reference_evaluator_and_onnxruntime(lo, hi, seed):
    x = _x(seed)
    ref, sess = _evaluators("Clip", lo is not None, hi is not None)
    ours = c2.clip(x, min=lo, max=hi)
    (r,) = ref.run(None, _feeds(x, lo, hi))
    # The one known divergence (next test): an omitted bound is ±FLT_MAX here, ±inf there.
    if hi is None:
        r = np.where(np.isposinf(r), np.float32(FLT_MAX), r)
    if lo is None:
        r = np.where(np.isneginf(r), np.float32(-FLT_MAX), r)
    np.testing.assert_array_equal(ours, r)  # NaN positions equal, ±0 compare equal
    (o,) = _require_ort(sess).run(None, _feeds(x, lo, hi))
    np.testing.assert_array_equal(ours, o)


@pytest.mark.parametrize("seed", range(4))
def test_clip_without_bounds_follows_onnxruntime_not_the_reference(seed):
    """Known divergence: no bounds -> ±inf becomes ±FLT_MAX (ORT, Caffe2's lowest()/max()
    defaults); the ONNX reference returns its input unchanged."""
    x = _x(seed)
    ref, sess = _evaluators("Clip")
    ours = c2.clip(x)
    (r,) = ref.run(None, {"x": x})
    assert_same(r, x)  # reference: identity, ±inf kept
    expected = np.where(np.isposinf(x), FLT_MAX, np.where(np.isneginf(x), -FLT_MAX, x))
    assert_same(ours, expected.astype(np.float32))
    (o,) = _require_ort(sess).run(None, {"x": x})
    np.testing.assert_array_equal(ours, o)


@pytest.mark.parametrize("lo,hi", [(np.nan, 0.5), (-0.5, np.nan), (np.nan, np.nan)])
def test_clip_nan_bound_is_ignored_like_onnxruntime(lo, hi):
    """Known divergence: a NaN bound is ignored (ORT, the Clip-13 function body): ``x < NaN``
    and ``NaN < m`` are false, so that side clips nothing, not even ±inf; the ONNX reference
    (np.clip) makes every element NaN."""
    x = _x(99)
    ref, sess = _evaluators("Clip", True, True)
    ours = c2.clip(x, min=lo, max=hi)
    v = x.astype(np.float64)
    m = v if np.isnan(lo) else np.where(v < lo, lo, v)
    expected = (m if np.isnan(hi) else np.where(hi < m, hi, m)).astype(np.float32)
    assert_same(ours, expected)
    assert np.isinf(ours).any()  # the ignored side leaves infinities alone
    (r,) = ref.run(None, _feeds(x, lo, hi))
    assert np.all(np.isnan(r))
    (o,) = _require_ort(sess).run(None, _feeds(x, lo, hi))
    np.testing.assert_array_equal(ours, o)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("alpha", [1.0, 0.0, -0.75, 2.5])
def test_thresholded_relu_matches_reference_evaluator_and_onnxruntime(alpha, seed):
    x = _x(seed)
    x[:3] = np.float32(alpha)  # x == alpha -> 0
    ref, sess = _evaluators("ThresholdedRelu", alpha=alpha, opset=10)
    ours = c2.thresholded_relu(x, alpha)
    (r,) = ref.run(None, {"x": x})
    np.testing.assert_array_equal(ours, r)
    assert np.all(ours[np.isnan(x)] == 0)  # NaN -> 0 in all three
    (o,) = _require_ort(sess).run(None, {"x": x})
    np.testing.assert_array_equal(ours, o)


@pytest.mark.parametrize("seed", range(5))
def test_cos_matches_reference_evaluator_and_onnxruntime(seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(256) * 10 ** rng.uniform(-3, 4, 256)).astype(np.float32)
    x[:3] = [np.nan, np.inf, -np.inf]
    ref, sess = _evaluators("Cos", opset=7)
    ours = c2.cos(x)
    with np.errstate(invalid="ignore"):
        exact = np.cos(x.astype(np.float64))
    np.testing.assert_allclose(ours, exact, rtol=2.5e-7, atol=2.5e-7)
    with np.errstate(invalid="ignore"):
        (r,) = ref.run(None, {"x": x})
    np.testing.assert_allclose(ours, r, rtol=1e-6, atol=1e-6)
    (o,) = _require_ort(sess).run(None, {"x": x})
    np.testing.assert_allclose(ours, o, rtol=1e-6, atol=1e-6)
    assert np.all(np.isnan(ours[:3]))


def test_runtime_agrees_with_functional_on_the_clip_cases():
    """Through RunOperatorOnce the same cases give the same bytes as the functional API."""
    for name in ("test_clip_splitbounds", "test_clip_default_int8_max", "test_clip"):
        case = node_cases()[name]
        graph = case.model.graph
        inputs, _ = case.data_sets[0]
        values = {i.name: v for i, v in zip(graph.input, inputs, strict=True)}
        op = translate_node(graph.node[0], values)
        workspace.FeedBlob(graph.input[0].name, values[graph.input[0].name])
        workspace.RunOperatorOnce(op)
        args = {a.name: (a.f if a.HasField("f") else a.i) for a in op.arg}
        assert_same(workspace.FetchBlob(graph.output[0].name),
                    c2.clip(values[graph.input[0].name], **args))


def test_translated_bounds_keep_their_python_type():
    case = node_cases()["test_clip_default_int8_max"]
    values = {i.name: v for i, v in zip(case.model.graph.input, case.data_sets[0][0],
                                        strict=True)}
    op = translate_node(case.model.graph.node[0], values)
    (arg,) = op.arg
    assert arg.name == "max" and arg.HasField("i")
    case = node_cases()["test_clip_splitbounds"]
    values = {i.name: v for i, v in zip(case.model.graph.input, case.data_sets[0][0],
                                        strict=True)}
    op = translate_node(case.model.graph.node[0], values)
    assert sorted((a.name, a.HasField("f")) for a in op.arg) == [("max", True), ("min", True)]
