"""``caffe2ops.onnx.export_model``: every exported model passes ``onnx.checker`` and onnxruntime
gives our runtime's outputs, for a net of each mapped operator, across opsets, with the edge
cases onnxruntime shares (NaN, ±inf, ±0, min > max, omitted bounds, legacy broadcast)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from caffe2ops import core, workspace  # noqa: E402
from caffe2ops.onnx import (  # noqa: E402
    OnnxExportError,
    export_model,
    mapped_types,
    parse_value_info,
)
from caffe2ops.runtime.schema import get_schema, has_schema  # noqa: E402

F32 = np.float32


def _edge(shape=(4, 6), seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(F32)
    flat = x.reshape(-1)
    flat[:5] = [np.nan, np.inf, -np.inf, -0.0, 0.0]
    return x


@dataclass
class Case:
    name: str
    ops: list  # (type, inputs, outputs, kwargs)
    inputs: dict
    opsets: tuple = (9, 11, 13, 21)
    init: list = field(default_factory=list)  # (name, array) made by the init net
    rtol: float = 0.0
    atol: float = 0.0
    # onnxruntime's Where (the opset-9 ThresholdedRelu composition) returns +0 for a selected
    # -0.0 at every optimisation level; ThresholdedRelu-10 keeps it, as we do.
    signed_zeros_from: int = 0


def _cases() -> list[Case]:
    x = _edge()
    pos = np.abs(_edge(seed=1)) + F32(0.5)
    pos[np.isnan(pos)] = 1.0
    finite = np.random.default_rng(2).standard_normal((4, 6)).astype(F32)
    label = np.array([1, -1, 1, 0, 1, -1], np.int32)
    s = np.array([0.9, 0.05, np.nan, np.nan, -0.0, 0.1], F32)
    cases = [
        Case("clip", [("Clip", ["X"], ["Y"], {"min": -1.0, "max": 1.0})], {"X": x}),
        Case("clip_no_bounds", [("Clip", ["X"], ["Y"], {})], {"X": x}),
        Case("clip_min_only", [("Clip", ["X"], ["Y"], {"min": 0})], {"X": x}),
        Case("clip_min_gt_max", [("Clip", ["X"], ["Y"], {"min": 2.0, "max": -1.0})], {"X": x}),
        Case("clip_int8", [("Clip", ["X"], ["Y"], {"min": -3.5, "max": 100})],
             {"X": np.arange(-64, 64, dtype=np.int8)}, opsets=(12, 13, 21)),
        Case("thresholded_relu", [("ThresholdedRelu", ["X"], ["Y"], {"alpha": 1.0})],
             {"X": x}, opsets=(9, 10, 21)),
        Case("thresholded_relu_negative_alpha",
             [("ThresholdedRelu", ["X"], ["Y"], {"alpha": -0.75})], {"X": x}, opsets=(9, 10),
             signed_zeros_from=10),
        Case("cos", [("Cos", ["X"], ["Y"], {})], {"X": finite * 100}, rtol=1e-6, atol=1e-6),
        Case("sum", [("Sum", ["X", "Y", "Z"], ["S"], {})],
             {"X": x, "Y": finite, "Z": pos}),
        Case("div", [("Div", ["X", "Y"], ["Z"], {})], {"X": x, "Y": pos}),
        Case("div_zero", [("Div", ["X", "Y"], ["Z"], {})],
             {"X": np.array([1.0, -1.0, 0.0, np.nan], F32), "Y": np.zeros(4, F32)}),
        Case("div_numpy_broadcast", [("Div", ["X", "Y"], ["Z"], {})],
             {"X": x, "Y": pos[:1]}),
        Case("div_legacy_broadcast", [("Div", ["X", "Y"], ["Z"], {"broadcast": 1, "axis": 0})],
             {"X": x, "Y": pos[:, 0].copy()}),
        Case("pow_argument", [("Pow", ["X"], ["Y"], {"exponent": 2.0})], {"X": x},
             rtol=1e-6),
        Case("pow_sqrt", [("Pow", ["X"], ["Y"], {"exponent": 0.5})], {"X": pos}, rtol=1e-6),
        Case("pow_legacy_broadcast",
             [("Pow", ["X", "E"], ["Y"], {"broadcast": 1})],
             {"X": pos, "E": np.linspace(-2, 2, 6).astype(F32)}, rtol=2e-6),
        Case("cosine_similarity", [("CosineSimilarity", ["X", "Y"], ["Z"], {})],
             {"X": finite, "Y": pos}, rtol=1e-6, atol=1e-6),
        Case("cosine_similarity_3d_and_zero_rows", [("CosineSimilarity", ["X", "Y"], ["Z"], {})],
             {"X": np.concatenate([np.zeros((1, 2, 3), F32), finite.reshape(4, 2, 3)]),
              "Y": np.ones((5, 2, 3), F32)}, rtol=1e-6, atol=1e-6),
        Case("cosine_similarity_1d", [("CosineSimilarity", ["X", "Y"], ["Z"], {})],
             {"X": finite[0], "Y": finite[1]}, rtol=1e-6),
        Case("cosine_embedding_criterion",
             [("CosineEmbeddingCriterion", ["S", "label"], ["loss"], {"margin": 0.1})],
             {"S": s, "label": label}),
        Case("cosine_embedding_criterion_reshaped_label",
             [("CosineEmbeddingCriterion", ["S", "label"], ["loss"], {"margin": -0.2})],
             {"S": s.reshape(2, 3), "label": label}),
        Case("lp_norm_2", [("LpNorm", ["X"], ["N"], {"p": 2})], {"X": finite}, rtol=1e-6),
        Case("lp_norm_1_average", [("LpNorm", ["X"], ["N"], {"p": 1, "average": True})],
             {"X": finite}, rtol=1e-6),
        Case("copy", [("Copy", ["X"], ["Y"], {})], {"X": x}),
        Case("stop_gradient", [("StopGradient", ["X"], ["Y"], {})], {"X": x}),
        Case("float64_clip_div_cos", [("Clip", ["X"], ["C"], {"min": -1.5, "max": 0.75}),
                                      ("Div", ["C", "Y"], ["D"], {}), ("Cos", ["D"], ["Z"], {})],
             {"X": x.astype(np.float64), "Y": pos.astype(np.float64)}, opsets=(12, 13, 21),
             rtol=1e-15, atol=1e-15),
        Case("chain", [("Clip", ["X"], ["C"], {"min": -0.8, "max": 0.8}),
                       ("ThresholdedRelu", ["C"], ["T"], {"alpha": -0.5}),
                       ("Cos", ["Y"], ["Yc"], {}),
                       ("CosineSimilarity", ["T", "Yc"], ["S"], {}),
                       ("CosineEmbeddingCriterion", ["S", "label"], ["loss"], {"margin": 0.1})],
             {"X": finite, "Y": pos, "label": label[:4]}, rtol=1e-6, atol=1e-6),
        Case("initializers_from_init_net", [("Mul", ["X", "W"], ["Y"], {}),
                                            ("Add", ["Y", "b"], ["Z"], {})],
             {"X": finite}, init=[("W", np.full((4, 6), 0.5, F32)),
                                  ("b", np.full((4, 6), -1.0, F32))]),
    ]
    if has_schema("Mul"):
        cases += [
            Case("mul_legacy_broadcast", [("Mul", ["X", "Y"], ["Z"], {"broadcast": 1,
                                                                     "axis": 1})],
                 {"X": x.reshape(2, 2, 6), "Y": pos[0, :2].copy()}, opsets=(9, 13)),
            Case("add", [("Add", ["X", "Y"], ["Z"], {})], {"X": x, "Y": finite}),
            Case("sub", [("Sub", ["X", "Y"], ["Z"], {})], {"X": x, "Y": pos}),
            Case("scale", [("Scale", ["X"], ["Y"], {"scale": -0.5})], {"X": x}),
        ]
    cases += _training_cases(x, finite)
    return cases


def _training_cases(x, finite) -> list[Case]:
    out = []
    if has_schema("Relu"):
        out += [Case(t.lower(), [(t, ["X"], ["Y"], {})], {"X": x}, rtol=1e-6, atol=1e-7)
                for t in ("Relu", "Sigmoid", "Tanh") if has_schema(t)]
    if has_schema("FC"):
        w = np.random.default_rng(5).standard_normal((3, 6)).astype(F32)
        b = np.array([0.5, -1.0, 2.0], F32)
        out += [
            Case("fc_gemm", [("FC", ["X", "W", "b"], ["Y"], {})], {"X": finite},
                 init=[("W", w), ("b", b)], rtol=1e-5, atol=1e-6),
            Case("fc_axis2", [("FC", ["X", "W", "b"], ["Y"], {"axis": 2})],
                 {"X": finite.reshape(2, 2, 6)}, init=[("W", w), ("b", b)], rtol=1e-5,
                 atol=1e-6),
        ]
    if has_schema("SquaredL2Distance"):
        out.append(Case("squared_l2_distance", [("SquaredL2Distance", ["X", "Y"], ["D"], {})],
                        {"X": finite, "Y": finite[::-1].copy()}, rtol=1e-6))
    if has_schema("AveragedLoss"):
        out.append(Case("averaged_loss", [("AveragedLoss", ["X"], ["L"], {})],
                        {"X": finite}, rtol=1e-6))
    if has_schema("Gather"):
        out.append(Case("gather", [("Gather", ["D", "I"], ["Y"], {})],
                        {"D": finite, "I": np.array([3, 0, 0, 2], np.int64)}))
    return out


CASES = _cases()


def _nets(case: Case):
    init = core.Net(f"{case.name}_init")
    for name, value in case.init:
        init.ConstantFill([], [name], shape=list(value.shape), value=float(value.flat[0]))
    net = core.Net(case.name)
    for op_type, inputs, outputs, kwargs in case.ops:
        getattr(net, op_type)(inputs, outputs, **kwargs)
    return init.Proto(), net.Proto()


def _ours(case: Case, init, net) -> dict:
    previous = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace("test_onnx_export", True)
    workspace.ResetWorkspace()
    try:
        workspace.RunNetOnce(init)
        for k, v in case.inputs.items():
            workspace.FeedBlob(k, v)
        workspace.RunNetOnce(net)
        return {o: workspace.FetchBlob(o) for o in net.op[-1].output}
    finally:
        workspace.SwitchWorkspace(previous)


def _ort(model, inputs: dict) -> dict:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, inputs), strict=True))


def _value_info(inputs: dict) -> dict:
    return {k: (v.dtype, v.shape) for k, v in inputs.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_onnxruntime_gives_our_outputs(case):
    init, net = _nets(case)
    ours = _ours(case, init, net)
    for opset in case.opsets:
        model = export_model(init, net, opset=opset, value_info=_value_info(case.inputs))
        onnx.checker.check_model(model, full_check=True)
        theirs = _ort(model, case.inputs)
        assert set(theirs) == set(ours)
        for name, value in ours.items():
            got = theirs[name]
            assert got.dtype == value.dtype and got.shape == value.shape, (opset, name)
            if case.rtol or case.atol:
                np.testing.assert_allclose(got, value, rtol=case.rtol, atol=case.atol,
                                           err_msg=f"opset {opset}")
            else:
                np.testing.assert_array_equal(got, value, err_msg=f"opset {opset}",
                                              strict=True)
                if opset >= case.signed_zeros_from:
                    zeros = value == 0
                    assert np.array_equal(np.signbit(got[zeros]), np.signbit(value[zeros])), \
                        f"opset {opset}: signed zeros differ"


def test_every_mapped_operator_that_is_registered_is_exported_by_a_case():
    covered = {op[0] for c in CASES for op in c.ops}
    registered = {t for t in mapped_types() if has_schema(t)}
    assert registered <= covered, sorted(registered - covered)


def test_clip_bounds_are_attributes_until_opset_10_and_inputs_from_11():
    case = CASES[0]
    init, net = _nets(case)
    (old,) = export_model(init, net, opset=10, value_info=_value_info(case.inputs)).graph.node
    assert len(old.input) == 1 and sorted(a.name for a in old.attribute) == ["max", "min"]
    new = export_model(init, net, opset=11, value_info=_value_info(case.inputs)).graph
    assert len(new.node[0].input) == 3 and not new.node[0].attribute
    bounds = {t.name: onnx.numpy_helper.to_array(t) for t in new.initializer}
    assert sorted(float(v) for v in bounds.values()) == [-1.0, 1.0]


def test_omitted_clip_bounds_are_the_dtype_limits():
    net = core.Net("n")
    net.Clip(["X"], ["Y"])
    graph = export_model(None, net.Proto(), opset=13,
                         value_info={"X": (np.dtype(F32), (3,))}).graph
    values = sorted(float(onnx.numpy_helper.to_array(t)) for t in graph.initializer)
    assert values == [float(np.finfo(F32).min), float(np.finfo(F32).max)]


def test_export_infers_shapes_and_never_runs_the_predict_net(monkeypatch):
    schema = get_schema("Cos")

    def refuse(*args, **kwargs):
        raise AssertionError("the predict net was run")

    monkeypatch.setattr(schema, "kernel", refuse)
    net = core.Net("n")
    net.Cos(["X"], ["Y"])
    net.CosineSimilarity(["Y", "X"], ["Z"])
    model = export_model(None, net.Proto(), value_info=parse_value_info({"X": "float32:5,2"}))
    (out,) = model.graph.output
    assert out.name == "Z"
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [5]


def test_an_unmapped_operator_is_named_with_the_mapped_ones():
    net = core.Net("n")
    net.Cos(["X"], ["Y"])
    net.SparseNormalize(["P", "I"], ["P"])
    with pytest.raises(OnnxExportError) as info:
        export_model(None, net.Proto(), value_info={"X": (np.dtype(F32), (2,))})
    message = str(info.value)
    assert "operator #1 SparseNormalize has no ONNX mapping" in message
    assert all(t in message for t in ("Clip", "Cos", "CosineSimilarity", "ThresholdedRelu"))


def test_integer_clip_before_opset_12_is_refused_naming_the_opset():
    net = core.Net("n")
    net.Clip(["X"], ["Y"], min=0)
    with pytest.raises(OnnxExportError, match=r"Clip of int8 needs opset >= 12"):
        export_model(None, net.Proto(), opset=11, value_info={"X": (np.dtype(np.int8), (2,))})


def test_missing_value_info_and_bad_opset_are_clear_errors():
    net = core.Net("n")
    net.Cos(["X"], ["Y"])
    with pytest.raises(OnnxExportError, match=r"--value-info X=float32"):
        export_model(None, net.Proto())
    with pytest.raises(OnnxExportError, match=r"--opset must be in \[9, 21\]; got 7"):
        export_model(None, net.Proto(), opset=7, value_info={"X": (np.dtype(F32), (2,))})
    with pytest.raises(OnnxExportError, match="NAME=dtype:shape"):
        parse_value_info({"X": "float32"})


@pytest.mark.skipif(not all(has_schema(t) for t in ("FC", "Relu", "Tanh", "XavierFill")),
                    reason="needs the dense training operators")
def test_a_brew_model_after_training_steps_exports_and_onnxruntime_agrees():
    """A ModelHelper/brew MLP, trained a few SGD steps in our runtime, exported with its
    trained parameters as initializers: onnxruntime gives our predictions."""
    from caffe2ops import brew, model_helper, optimizer

    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 5)).astype(F32)
    target = np.tanh(x @ rng.standard_normal((5, 2))).astype(F32)
    previous = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace("test_onnx_export_train", True)
    workspace.ResetWorkspace()
    try:
        model = model_helper.ModelHelper(name="mlp")
        hidden = brew.fc(model, "data", "hidden", dim_in=5, dim_out=8)
        hidden = brew.relu(model, hidden, "hidden_relu")
        pred = brew.fc(model, hidden, "pred_fc", dim_in=8, dim_out=2)
        pred = brew.tanh(model, pred, "pred")
        dist = model.net.SquaredL2Distance([pred, "target"], "dist")
        loss = model.net.AveragedLoss(dist, "loss")
        model.AddGradientOperators([loss])
        optimizer.build_sgd(model, base_learning_rate=0.1)
        workspace.FeedBlob("data", x)
        workspace.FeedBlob("target", target)
        workspace.RunNetOnce(model.param_init_net)
        workspace.CreateNet(model.net)
        losses = []
        for _ in range(5):
            workspace.RunNet(model.net)
            losses.append(float(workspace.FetchBlob("loss")))
        params = {str(p): workspace.FetchBlob(str(p)) for p in model.params}
    finally:
        workspace.ResetWorkspace()
        workspace.SwitchWorkspace(previous)
    assert losses[-1] < losses[0]
    init = core.Net("trained_init")
    for name, value in params.items():
        init.GivenTensorFill([], [name], values=value.ravel().tolist(), shape=list(value.shape))
    predict = core.Net("mlp_predict")
    forward = [op for op in model.net.Proto().op if op.type in ("FC", "Relu", "Tanh")]
    predict.Proto().op.extend(forward)
    predict.Proto().external_output.append("pred")
    model_proto = export_model(init.Proto(), predict.Proto(), opset=13,
                               value_info={"data": (np.dtype(F32), x.shape)})
    onnx.checker.check_model(model_proto, full_check=True)
    assert [n.op_type for n in model_proto.graph.node] == ["Gemm", "Relu", "Gemm", "Tanh"]
    # Our prediction with the trained parameters (the last step's "pred" predates its update).
    workspace.SwitchWorkspace("test_onnx_export_train", True)
    try:
        workspace.RunNetOnce(init.Proto())
        workspace.FeedBlob("data", x)
        workspace.RunNetOnce(predict.Proto())
        ours = workspace.FetchBlob("pred")
    finally:
        workspace.ResetWorkspace()
        workspace.SwitchWorkspace(previous)
    np.testing.assert_allclose(_ort(model_proto, {"data": x})["pred"], ours, rtol=1e-5,
                               atol=1e-6)
