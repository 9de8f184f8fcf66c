"""Generic tests driven by the operator table (``tests/optable.py``).

1. reference equality through the functional API and ``workspace.RunOperatorOnce``, both with the
   NumPy reference kernels forced and with the default (fast where wired) kernels;
2. finite-difference gradient checks through the runtime's gradient registry;
3. in-place rules (allowed pairs, rejected pairs, failing in-place ops leave blobs unchanged);
4. dtype preservation, and ``TypeError`` for element types an operator does not take;
5. error messages: ``caffe2ops.OperatorError`` subclasses naming operator and input/argument.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from optable import (
    BACKENDS,
    F16,
    F32,
    F64,
    TABLE,
    Sample,
    arr,
    assert_same,
    check_outputs,
    feed_inputs,
    gradient_check,
    proto_args,
    run_functional,
    run_runtime,
    run_via,
    uniform,
)
from optable_dense import DENSE_OPS

import caffe2ops as c2
from caffe2ops import core, workspace
from caffe2ops.errors import OperatorError, SchemaError
from caffe2ops.runtime.schema import registered_types

pytestmark = pytest.mark.usefixtures("fresh_workspace")


@pytest.fixture(params=BACKENDS)
def backend(request):
    ctx = c2.reference_kernels() if request.param == "reference" else contextlib.nullcontext()
    with ctx:
        yield request.param


def _dtype_id(d) -> str:
    return np.dtype(d).name


# --------------------------------------------------------------------------------------------
# (1) reference equality
# --------------------------------------------------------------------------------------------

REF_CASES = [
    pytest.param(e, np.dtype(d), via, id=f"{e.op}-{_dtype_id(d)}-{via}")
    for e in TABLE
    for d in e.dtypes
    for via in ("functional", "runtime")
    if via == "runtime" or e.functional is not None
]


@pytest.mark.parametrize("entry,dtype,via", REF_CASES)
def test_reference_equality(entry, dtype, via, backend):
    samples = entry.samples(dtype)
    assert samples, f"{entry.op} has no samples for {dtype}"
    for sample in samples:
        what = f"{entry.op}[{dtype}] via {via} ({backend}): {sample.desc}"
        args = sample.args if via == "functional" else proto_args(sample.args)
        expected = entry.reference(sample.inputs, args)
        got = run_via(entry, sample, via)
        check_outputs(entry, got, expected, Sample(sample.inputs, args, sample.desc), dtype,
                      what)


def test_table_covers_the_issue_operators():
    names = {e.op for e in TABLE} - DENSE_OPS
    assert names >= {
        "Clip", "ClipGradient", "ThresholdedRelu", "ThresholdedReluGradient", "Cos",
        "CosGradient", "CosineEmbeddingCriterion", "CosineEmbeddingCriterionGradient",
        "CosineSimilarity", "CosineSimilarityGradient", "SparseNormalize",
        "Float16SparseNormalize", "ConstantFill", "Sum", "Copy",
        # the operators Caffe2's gradient definitions emit (tests/optable_arith.py)
        "Add", "AddGradient", "Sub", "SubGradient", "Mul", "MulGradient", "Scale",
        "CopyOnDeviceLike", "Log", "SumReduceLike",
    }


def test_table_covers_the_dense_training_operators():
    assert DENSE_OPS == {
        "FC", "FCGradient", "Relu", "ReluGradient", "Sigmoid", "SigmoidGradient", "Tanh",
        "TanhGradient", "SquaredL2Distance", "SquaredL2DistanceGradient", "SumElements",
        "SumElementsGradient", "AveragedLoss", "AveragedLossGradient", "SumSqrElements", "Max",
        "MaxGradient", "EnsureCPUOutput", "CopyFromCPUInput", "GivenTensorFill",
        "GivenTensorIntFill", "GivenTensorInt64Fill", "GivenTensorBoolFill", "UniformFill",
        "GaussianFill", "XavierFill", "MSRAFill",
    }
    assert DENSE_OPS <= set(registered_types())


# Registered operators deliberately left out of the table, with the reason.
NOT_IN_TABLE = {
    # The Python operator runs user code (a registered Python function) and its gradient runs
    # the user's gradient function: there is no formula to write a reference from.
    "Python": "runs user code",
    "PythonGradient": "runs user code",
}


def test_table_covers_every_registered_operator():
    """Every registered operator type has a table entry (except NOT_IN_TABLE): registering an
    operator without an entry fails here."""
    table = [e.op for e in TABLE]
    registered = set(registered_types())
    assert len(table) == len(set(table)), sorted({op for op in table if table.count(op) > 1})
    missing = registered - set(table) - set(NOT_IN_TABLE)
    assert not missing, f"registered operators without a table entry: {sorted(missing)}"
    unknown = set(table) - registered
    assert not unknown, f"table entries for unregistered operators: {sorted(unknown)}"
    assert set(NOT_IN_TABLE) <= registered, sorted(set(NOT_IN_TABLE) - registered)
    assert not set(NOT_IN_TABLE) & set(table), sorted(set(NOT_IN_TABLE) & set(table))
    assert set(table) == registered - set(NOT_IN_TABLE)


def test_functional_and_runtime_agree_bitwise_for_float32(backend):
    """Both paths share kernels: float32 args survive the float32 proto field unchanged, so the
    two paths must give the same bytes (tolerance-compared ops included)."""
    for entry in TABLE:
        if entry.functional is None:
            continue
        for sample in entry.samples(F32):
            args = proto_args(sample.args)
            if args != sample.args:
                continue
            a = run_functional(entry, sample)
            b = run_runtime(entry, sample)
            for x, y in zip(a, b, strict=True):
                assert_same(x, y, f"{entry.op}: {sample.desc}")


# --------------------------------------------------------------------------------------------
# (2) finite-difference gradient checks through the runtime
# --------------------------------------------------------------------------------------------

GRAD_CASES = [
    pytest.param(e, d, gs, id=f"{e.op}-{_dtype_id(d)}-{k}")
    for e in TABLE
    if e.grad_samples is not None
    for d in (F64, F32)
    for k, gs in enumerate(e.grad_samples(d))
]


def _checker_settings(entry, dtype):
    if dtype == F64:
        return 1e-3, 1e-5
    if entry.op == "CosineSimilarity":
        return 1e-2, 1e-2  # Caffe2's distance_op_test settings
    return 0.05, 0.005  # Caffe2's assertGradientChecks defaults


@pytest.mark.parametrize("entry,dtype,gs", GRAD_CASES)
def test_gradient_finite_differences(entry, dtype, gs, backend):
    stepsize, threshold = _checker_settings(entry, dtype)
    results = gradient_check(
        entry.op, entry.input_names[: len(gs.inputs)], entry.output_names, gs.inputs, gs.args,
        gs.check, stepsize, threshold,
    )
    assert set(results) == set(gs.check)


def test_every_differentiable_seed_op_has_gradient_samples():
    for op in ("Clip", "ThresholdedRelu", "Cos", "CosineEmbeddingCriterion",
               "CosineSimilarity"):
        entry = next(e for e in TABLE if e.op == op)
        assert entry.grad_samples is not None and entry.grad_samples(F64), op
        assert entry.grad_samples(F32), op


@pytest.mark.parametrize("alpha", [-0.5, -1e-3, -2.0, 0.0, 0.7])
def test_thresholded_relu_gradient_registry_any_alpha(alpha, backend):
    """Through the registry the gradient is exactly 1[x > alpha]·dY, negative alpha included
    (Caffe2's dY·sign(Y) gave -dY on (alpha, 0) and 0 at x = 0)."""
    x = np.array([-2.5, -0.7, -0.5, -0.3, -1e-3, -1e-4, 0.0, -0.0, 0.2, 0.7, 1.5, np.nan])
    dy = np.arange(1.0, x.size + 1) * np.where(np.arange(x.size) % 2, -1.0, 1.0)
    net = core.Net("trelu_any_alpha")
    y = net.ThresholdedRelu(["x"], ["y"], alpha=alpha)
    net.AddGradientOperators({y: "dy"})
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("dy", dy)
    workspace.RunNetOnce(net)
    a = float(np.float32(alpha))
    assert_same(workspace.FetchBlob("x_grad"), np.where(x > a, dy, 0.0), f"alpha={alpha}")
    grad_op = [op for op in net.Proto().op if op.type == "ThresholdedReluGradient"]
    assert len(grad_op) == 1
    if alpha < 0:
        assert list(grad_op[0].input) == ["y", "dy", "x"]


def test_thresholded_relu_negative_alpha_in_place_cannot_be_differentiated():
    net = core.Net("trelu_inplace_neg")
    net.ThresholdedRelu(["x"], ["x"], alpha=-0.5)
    with pytest.raises(OperatorError, match="ThresholdedRelu.*'x'.*in place"):
        net.AddGradientOperators(["x"])


# --------------------------------------------------------------------------------------------
# (3) in-place rules
# --------------------------------------------------------------------------------------------

SEED_OPS = [e for e in TABLE if e.op not in ("ConstantFill", "Sum", "Copy")]


def _first_full_sample(entry, n_inputs=None):
    for s in entry.samples(F32):
        if n_inputs is None or len(s.inputs) == n_inputs:
            if all(np.asarray(x).size > 0 for x in s.inputs):
                return s
    raise AssertionError(f"{entry.op}: no non-empty float32 sample")


def _inplace_cases():
    cases = []
    for e in TABLE:
        if e.op == "ConstantFill":
            continue
        n_in = len(e.input_names) if e.op not in ("Sum", "SparseNormalize",
                                                  "Float16SparseNormalize",
                                                  "ThresholdedReluGradient") else 2
        for i in range(n_in):
            for j in range(len(e.output_names)):
                allowed = (i, j) in e.allow_inplace or (i, j) in e.enforce_inplace
                if e in SEED_OPS or allowed:
                    cases.append(pytest.param(e, i, j, allowed, id=f"{e.op}-{i}{j}"))
    return cases


@pytest.mark.parametrize("entry,i,j,allowed", _inplace_cases())
def test_inplace_pairs(entry, i, j, allowed, backend):
    n_in = 2 if entry.op in ("Sum", "SparseNormalize", "Float16SparseNormalize",
                             "ThresholdedReluGradient") else None
    sample = _first_full_sample(entry, n_in)
    expected = run_runtime(entry, sample)
    workspace.ResetWorkspace()
    names = list(entry.input_names[: len(sample.inputs)])
    outs = list(entry.output_names)
    outs[j] = names[i]
    if allowed:
        got = run_runtime(entry, sample, output_names=outs)
        for g, e in zip(got, expected, strict=True):
            assert_same(g, e, f"{entry.op} in place on ({i}, {j})")
        return
    feed_inputs(names, sample.inputs)
    arrays = [n for n in names if isinstance(workspace.FetchBlob(n), np.ndarray)]
    before = {n: workspace.FetchBlob(n).tobytes() for n in arrays}
    op = core.CreateOperator(entry.op, names, outs, **sample.args)
    with pytest.raises(SchemaError) as info:
        workspace.RunOperatorOnce(op)
    assert entry.op in str(info.value)
    assert names[i] in str(info.value)
    for n in arrays:
        assert workspace.FetchBlob(n).tobytes() == before[n], f"{n} changed"


def test_cos_in_place_is_rejected_naming_cos():
    workspace.FeedBlob("X", arr([0.5, 1.0], F32))
    with pytest.raises(OperatorError, match=r"^Cos\b.*place"):
        workspace.RunOperatorOnce(core.CreateOperator("Cos", ["X"], ["X"]))
    assert_same(workspace.FetchBlob("X"), arr([0.5, 1.0], F32))


@pytest.mark.parametrize("op_type", ["SparseNormalize", "Float16SparseNormalize"])
def test_sparse_normalize_output_must_be_param(op_type):
    p = arr([[3.0, 4.0], [0.3, 0.4]], F32)
    workspace.FeedBlob("param", p)
    workspace.FeedBlob("indices", np.array([0]))
    with pytest.raises(SchemaError, match=f"{op_type}.*'out'.*'param'"):
        workspace.RunOperatorOnce(core.CreateOperator(op_type, ["param", "indices"], ["out"]))
    assert not workspace.HasBlob("out")
    assert_same(workspace.FetchBlob("param"), p)


def test_functional_in_place_forms(backend):
    x = uniform(60, (3, 4), -2.0, 2.0, F32)
    expected = c2.clip(x, -1.0, 1.0)
    y = x.copy()
    assert c2.clip(y, -1.0, 1.0, out=y) is y
    assert_same(y, expected)
    y = x.copy()
    assert c2.thresholded_relu(y, 0.5, out=y) is y
    assert_same(y, c2.thresholded_relu(x, 0.5))
    dy = uniform(61, (3, 4), dtype=F32)
    g = dy.copy()
    assert c2.clip_gradient(expected, g, -1.0, 1.0, out=g) is g
    assert_same(g, c2.clip_gradient(expected, dy, -1.0, 1.0))
    g = dy.copy()
    assert c2.thresholded_relu_gradient(x, g, out=g) is g
    assert_same(g, c2.thresholded_relu_gradient(x, dy))
    p = uniform(62, (4, 3), -3.0, 3.0, F32)
    assert c2.sparse_normalize(p, np.array([1, 2])) is p


FAILING_INPLACE = [
    # (op, inputs {name: array}, input names, output names, args, exception type)
    pytest.param("SparseNormalize", {"param": arr([[3.0, 4.0], [6.0, 8.0]], F32),
                                     "indices": np.array([0, 2])},
                 ["param", "indices"], ["param"], {}, IndexError, id="SparseNormalize-index"),
    pytest.param("SparseNormalize", {"param": arr([[3.0, 4.0], [6.0, 8.0]], F32),
                                     "indices": np.array([1, -1], np.int32)},
                 ["param", "indices"], ["param"], {}, IndexError, id="SparseNormalize-negative"),
    pytest.param("SparseNormalize", {"param": arr([[3.0, 4.0], [6.0, 8.0]], F32),
                                     "indices": np.array([0.0])},
                 ["param", "indices"], ["param"], {}, TypeError, id="SparseNormalize-float-idx"),
    pytest.param("Float16SparseNormalize", {"param": arr([[3.0, 4.0], [6.0, 8.0]], F16),
                                            "indices": np.array([1, 7])},
                 ["param", "indices"], ["param"], {}, IndexError, id="Float16SparseNormalize"),
    pytest.param("Clip", {"X": arr([np.nan, -2.0, 0.5, 3.0], F32)}, ["X"], ["X"],
                 {"min": "low"}, TypeError, id="Clip-bad-arg-type"),
    pytest.param("Clip", {"X": arr([np.nan, -2.0, 0.5, 3.0], F32)}, ["X"], ["X"],
                 {"max": [1.0, 2.0]}, TypeError, id="Clip-list-arg"),
    pytest.param("Clip", {"X": np.array([True, False])}, ["X"], ["X"], {"min": 0.0},
                 TypeError, id="Clip-bool"),
    pytest.param("ThresholdedRelu", {"X": arr([-1.0, 2.0], F32)}, ["X"], ["X"],
                 {"alpha": "a"}, TypeError, id="ThresholdedRelu-bad-alpha"),
    pytest.param("ClipGradient", {"Y": arr([0.5, 2.0], F64), "dY": arr([1.0, -1.0], F32)},
                 ["Y", "dY"], ["dY"], {}, TypeError, id="ClipGradient-dtype"),
    pytest.param("ThresholdedReluGradient", {"Y": arr([0.5, 2.0, 1.0], F32),
                                             "dY": arr([1.0, -1.0], F32)},
                 ["Y", "dY"], ["dY"], {}, ValueError, id="ThresholdedReluGradient-count"),
    pytest.param("Sum", {"a": arr([1.0, 2.0], F32), "b": arr([1.0, 2.0], F16)}, ["a", "b"],
                 ["a"], {}, TypeError, id="Sum-dtype"),
    pytest.param("ClipTensorByScaling", {"x": arr([3.0, 4.0], F32),
                                         "val": arr([5.0, 5.0], F32)},
                 ["x", "val"], ["x"], {"threshold": 1.0}, ValueError,
                 id="ClipTensorByScaling-val-size"),
    pytest.param("EnsureClipped", {"param": arr([[3.0, -4.0], [5.0, 9.0]], F32),
                                   "indices": np.array([0, 2])},
                 ["param", "indices"], ["param"], {"max": 1.0}, IndexError,
                 id="EnsureClipped-index"),
    pytest.param("EnsureClipped", {"param": arr([[3.0, -4.0], [5.0, 9.0]], F32),
                                   "indices": np.array([0, 1]),
                                   "grad": arr([1.0, 2.0, 3.0], F32)},
                 ["param", "indices", "grad"], ["param"], {"max": 1.0}, ValueError,
                 id="EnsureClipped-grad"),
    pytest.param("Pow", {"X": arr([2.0, 3.0], F32), "E": arr([2.0, 3.0, 4.0], F32)},
                 ["X", "E"], ["X"], {}, ValueError, id="Pow-exponent-shape"),
    pytest.param("Div", {"A": np.array([4, 6], np.int32), "B": np.array([2, 0], np.int32)},
                 ["A", "B"], ["A"], {}, ValueError, id="Div-int-zero"),
    pytest.param("DivGradient", {"dC": arr([1.0, 2.0], F32), "A": arr([1.0, 2.0], F32),
                                 "B": arr([1.0, 2.0], F64), "C": arr([1.0, 1.0], F32)},
                 ["dC", "A", "B", "C"], ["dC", "dB"], {}, TypeError, id="DivGradient-dtype"),
]


@pytest.mark.parametrize("op_type,blobs,ins,outs,args,exc", FAILING_INPLACE)
def test_failing_inplace_op_leaves_blob_unchanged(op_type, blobs, ins, outs, args, exc,
                                                  backend):
    for name, x in blobs.items():
        workspace.FeedBlob(name, x)
    before = {n: workspace.FetchBlob(n).tobytes() for n in blobs}
    with pytest.raises(exc) as info:
        workspace.RunOperatorOnce(core.CreateOperator(op_type, ins, outs, **args))
    assert isinstance(info.value, OperatorError)
    assert op_type in str(info.value)
    for n in blobs:
        assert workspace.FetchBlob(n).tobytes() == before[n], f"blob {n} changed"


@pytest.mark.parametrize("n", [9, 100_001])
def test_out_partially_overlapping_an_input(n, backend):
    """``out`` may overlap an input other than element for element (``a[1:]`` -> ``a[:-1]``):
    the result must be as if the input had been copied first (NumPy's rule). Large n reaches
    the fast kernels' paths."""
    base = np.linspace(-3, 3, n).astype(np.float32)
    dy = np.linspace(1, 2, n - 1).astype(np.float32)
    cases = {
        "clip": lambda x, out: c2.clip(x, -1.0, 1.0, out=out),
        "thresholded_relu": lambda x, out: c2.thresholded_relu(x, 0.5, out=out),
        "cos": lambda x, out: c2.cos(x, out=out),
        "clip_gradient": lambda x, out: c2.clip_gradient(x, dy, -1.0, 1.0, out=out),
        "clip_gradient dY": lambda x, out: c2.clip_gradient(dy, x, -1.0, 1.5, out=out),
        "cos_gradient": lambda x, out: c2.cos_gradient(x, dy, out=out),
        "cos_gradient dY": lambda x, out: c2.cos_gradient(dy, x, out=out),
        "thresholded_relu_gradient": lambda x, out: c2.thresholded_relu_gradient(dy, x,
                                                                                 out=out),
    }
    for name, f in cases.items():
        for src, dst in ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None))):
            a = base.copy()
            expected = f(a[src].copy(), None)
            got = f(a[src], a[dst])
            assert_same(got, expected, f"{name} {src} -> {dst}")


def test_failing_functional_in_place_leaves_array_unchanged(backend):
    p = arr([[3.0, 4.0], [6.0, 8.0], [0.1, 0.2]], F32)
    before = p.tobytes()
    with pytest.raises(IndexError, match="SparseNormalize.*indices"):
        c2.sparse_normalize(p, np.array([0, 1, 3]))
    assert p.tobytes() == before
    with pytest.raises(ValueError, match="SparseNormalize.*norm"):
        c2.sparse_normalize(p, np.array([0]), norm=-0.5)
    assert p.tobytes() == before
    x = arr([np.nan, -2.0, 0.5, 3.0], F32)
    before = x.tobytes()
    with pytest.raises(TypeError, match="Clip.*min"):
        c2.clip(x, min="low", out=x)
    assert x.tobytes() == before


# --------------------------------------------------------------------------------------------
# (4) dtypes
# --------------------------------------------------------------------------------------------

DTYPE_CASES = [
    pytest.param(e, np.dtype(d), id=f"{e.op}-{_dtype_id(d)}")
    for e in TABLE
    if e.op not in ("ConstantFill", "CreateMutex")  # CreateMutex's output is not an array
    for d in e.dtypes
]


@pytest.mark.parametrize("entry,dtype", DTYPE_CASES)
def test_dtype_preserved(entry, dtype, backend):
    for sample in entry.samples(dtype):
        for via in ("functional", "runtime"):
            if via == "functional" and entry.functional is None:
                continue
            for k, out in enumerate(run_via(entry, sample, via)):
                assert isinstance(out, np.ndarray)
                assert out.dtype == dtype, f"{entry.op} {via} output {k}: {out.dtype}"


def test_constant_fill_float_input_keeps_dtype():
    for d in (F16, F32, F64):
        workspace.FeedBlob("x", np.zeros((2, 3), d))
        workspace.RunOperatorOnce(core.CreateOperator("ConstantFill", ["x"], ["y"], value=1.0))
        y = workspace.FetchBlob("y")
        assert y.dtype == d and y.shape == (2, 3) and np.all(y == 1)


def _bad_dtype_cases():
    out = []
    for e in TABLE:
        for d in e.bad_dtypes:
            for via in ("functional", "runtime"):
                if via == "functional" and e.functional is None:
                    continue
                out.append(pytest.param(e, np.dtype(d), via, id=f"{e.op}-{np.dtype(d)}-{via}"))
    return out


@pytest.mark.parametrize("entry,dtype,via", _bad_dtype_cases())
def test_bad_dtype_raises_type_error(entry, dtype, via, backend):
    sample = _first_full_sample(entry)
    first = next(i for i, x in enumerate(sample.inputs) if np.asarray(x).dtype.kind == "f")
    inputs = list(sample.inputs)
    for i, x in enumerate(inputs):
        if np.asarray(x).dtype.kind == "f":
            inputs[i] = np.where(np.isfinite(x), x, 0).astype(dtype)
    bad = Sample(tuple(inputs), sample.args, sample.desc)
    with pytest.raises(TypeError) as info:
        run_via(entry, bad, via)
    assert isinstance(info.value, OperatorError)
    msg = str(info.value)
    assert entry.op in msg
    assert entry.input_names[first] in msg or f"input {first}" in msg
    assert str(dtype) in msg


def test_float16_runs_float16_arithmetic_not_a_silent_upcast():
    x = arr([1.0, 65504.0, -65504.0, np.inf], F16)
    assert_same(c2.clip(x), arr([1.0, 65504.0, -65504.0, 65504.0], F16))
    # alpha 0.1 rounds to float16(0.1) = 0.0999755859375: x = 0.1 (the same float16) is not >
    y = c2.thresholded_relu(arr([0.1, 0.10009765625], F16), alpha=0.1)
    assert_same(y, arr([0.0, 0.10009765625], F16))


# --------------------------------------------------------------------------------------------
# (5) errors
# --------------------------------------------------------------------------------------------

BAD_CASES = [
    pytest.param(e, b, via, id=f"{e.op}-{b.desc}-{via}")
    for e in TABLE
    for b in e.bad_inputs()
    for via in b.via
    if via == "runtime" or e.functional is not None
]


@pytest.mark.parametrize("entry,bad,via", BAD_CASES)
def test_bad_inputs_raise_naming_operator_and_input(entry, bad, via, backend):
    sample = Sample(bad.inputs, bad.args, bad.desc)
    with pytest.raises(bad.exc) as info:
        run_via(entry, sample, via)
    assert isinstance(info.value, OperatorError), type(info.value).__mro__
    msg = str(info.value)
    for fragment in bad.fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"


def test_every_seed_op_has_bad_inputs():
    for e in TABLE:
        # CreateMutex: no inputs or arguments; CopyFromCPUInput copies any blob FeedBlob accepts
        if e.op not in ("Copy", "StopGradient", "CreateMutex", "CopyFromCPUInput"):
            assert e.bad_inputs(), e.op


def test_unknown_operator_type_is_named_with_suggestions():
    workspace.FeedBlob("X", arr([1.0], F32))
    with pytest.raises(OperatorError) as info:
        workspace.RunOperatorOnce(core.CreateOperator("Clipp", ["X"], ["Y"]))
    msg = str(info.value)
    assert "'Clipp'" in msg and "Clip" in msg.split("'Clipp'", 1)[1]
    with pytest.raises(KeyError):  # also a KeyError, like a failed registry lookup
        workspace.RunOperatorOnce(core.CreateOperator("ThresholdRelu", ["X"], ["Y"]))
    with pytest.raises(OperatorError, match="ThresholdedRelu"):
        workspace.RunOperatorOnce(core.CreateOperator("ThresholdRelu", ["X"], ["Y"]))
    with pytest.raises(OperatorError, match="CosineSimilarity"):
        workspace.RunOperatorOnce(core.CreateOperator("CosineSimilarty", ["X"], ["Y"]))


def test_net_method_of_unknown_operator_suggests_names():
    net = core.Net("unknown_method")
    with pytest.raises(AttributeError, match="SparseNormalise.*SparseNormalize"):
        net.SparseNormalise(["p", "i"], ["p"])


def test_fetch_missing_blob_names_it():
    with pytest.raises(OperatorError, match="'no_such_blob'") as info:
        workspace.FetchBlob("no_such_blob")
    assert isinstance(info.value, KeyError)


def test_missing_input_blob_is_named():
    with pytest.raises(OperatorError, match="Cos.*'ghost'"):
        workspace.RunOperatorOnce(core.CreateOperator("Cos", ["ghost"], ["y"]))
    assert not workspace.HasBlob("y")


@pytest.mark.parametrize(
    "op_type,ins,outs",
    [("Clip", ["X", "X2"], ["Y"]), ("Cos", ["X"], ["Y", "Z"]),
     ("CosineSimilarity", ["X"], ["Z"]), ("SparseNormalize", ["P"], ["P"]),
     ("CosineEmbeddingCriterionGradient", ["S", "L"], ["dS"])],
)
def test_wrong_input_or_output_count_is_a_schema_error(op_type, ins, outs):
    for name in set(ins):
        workspace.FeedBlob(name, arr([0.5, 0.25], F32))
    with pytest.raises(SchemaError, match=f"^{op_type}: expects"):
        workspace.RunOperatorOnce(core.CreateOperator(op_type, ins, outs))


def test_functional_error_type_for_wrong_out():
    x = arr([1.0, 2.0], F32)
    with pytest.raises(ValueError, match="Clip.*out"):
        c2.clip(x, out=np.empty(3, F32))
    with pytest.raises(ValueError, match="Cos.*out"):
        c2.cos(x, out=np.empty(2, F64))
