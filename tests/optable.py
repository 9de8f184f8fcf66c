"""The operator table: one entry per operator, in the spirit of PyTorch's OpInfo.

Each :class:`OpEntry` holds, for one Caffe2 operator type:

* ``samples(dtype)``: sample inputs and arguments, including every edge case of the contract (§3)
  and of the peer-systems edge-case matrix (§8) that applies to the operator;
* ``reference(inputs, args)``: the expected outputs, written here from the contract's formulas
  with plain NumPy in float64 (the library's own reference kernels are never imported);
* ``grad_samples(dtype)``: inputs away from kinks for the finite-difference gradient checks;
* ``bad_inputs()``: inputs or arguments the operator must refuse, with the exception type and the
  fragments its message must contain (the operator type and the input or argument name);
* the in-place pairs Caffe2's schema allows, and the dtypes the operator accepts.

``tests/test_ops_table.py`` turns the table into generic tests; this module also provides the
helpers those tests and the other test files share (running an entry through the functional API
or ``workspace.RunOperatorOnce``, the comparison rules, and Caffe2's gradient checker).
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import caffe2ops as c2
from caffe2ops import core, workspace
from caffe2ops.gradient_checker import central_difference
from caffe2ops.proto import caffe2_pb2

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
FLOATS = (F16, F32, F64)
INTS = tuple(
    np.dtype(t)
    for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
)
BACKENDS = ("reference", "default")
EPS = 1e-12  # the contract's epsilon for CosineSimilarity (squared norms) and SparseNormalize


# --------------------------------------------------------------------------------------------
# Table records
# --------------------------------------------------------------------------------------------


@dataclass
class Sample:
    """Inputs (in the operator's input order) and operator arguments."""

    inputs: tuple
    args: dict = field(default_factory=dict)
    desc: str = ""


@dataclass
class BadInput:
    """Inputs or arguments that must be refused with ``exc`` and a message naming ``fragments``."""

    inputs: tuple
    args: dict
    exc: type
    fragments: tuple[str, ...]
    desc: str
    via: tuple[str, ...] = ("functional", "runtime")


@dataclass
class GradSample:
    """Inputs for a finite-difference check of the gradient of ``inputs[i]`` for i in ``check``."""

    inputs: tuple
    args: dict
    check: tuple[int, ...]
    desc: str = ""


@dataclass
class OpEntry:
    op: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    reference: Callable[[tuple, dict], tuple]
    samples: Callable[[np.dtype], list[Sample]]
    dtypes: tuple
    functional: Callable[[tuple, dict], tuple] | None = None
    exact: bool = True  # bit-exact (NaN positions, signed zeros) or within ``tol``
    tol: dict = field(default_factory=dict)  # dtype -> (rtol, atol), for exact=False
    bad_inputs: Callable[[], list[BadInput]] = lambda: []
    bad_dtypes: tuple = ()
    grad_samples: Callable[[np.dtype], list[GradSample]] | None = None
    allow_inplace: frozenset = frozenset()
    enforce_inplace: frozenset = frozenset()
    mutates: tuple[int, ...] = ()  # inputs the functional API updates in place
    compare: Callable | None = None  # custom comparison (got, expected, sample, dtype)
    # output blob names for given inputs, where the number of inputs selects a form of the
    # operator with other outputs (default: ``output_names``)
    outputs_for: Callable[[tuple], tuple[str, ...]] | None = None

    def __str__(self) -> str:
        return self.op


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def arr(values, dtype) -> np.ndarray:
    """``values`` as an array of ``dtype`` (float16 overflow to inf is intended, not warned)."""
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(values, dtype=np.float64).astype(dtype)


def rounded(value: float, dtype) -> float:
    """A float argument as the operator uses it: rounded to the input's dtype (contract §3)."""
    return float(arr(value, dtype))


def f64(x) -> np.ndarray:
    return np.asarray(x).astype(np.float64)


def finite_limits(dtype) -> tuple[float, float]:
    info = np.finfo(dtype)
    return float(info.min), float(info.max)


def special(dtype) -> np.ndarray:
    """NaN, ±inf, ±0, ±1, ±max, ±tiny, and some ordinary values, in ``dtype``."""
    info = np.finfo(dtype)
    return arr(
        [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -3.0,
         float(info.max), float(info.min), float(info.tiny), -float(info.tiny), 0.1, -0.75],
        dtype,
    )


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def uniform(seed: int, shape, lo=-1.0, hi=1.0, dtype=F32) -> np.ndarray:
    return arr(rng(seed).uniform(lo, hi, size=shape), dtype)


def away_from(x: np.ndarray, points: Sequence[float], margin: float, shift: float) -> np.ndarray:
    """Caffe2's kink avoidance: elements within ``margin`` of a point get ``+shift``, in turn."""
    x = x.copy()
    for p in points:
        x[np.abs(x.astype(np.float64) - p) < margin] += x.dtype.type(shift)
    return x


def _nonan_signbits(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind != "f":
        return np.zeros(a.shape, bool)
    return np.signbit(a) & ~np.isnan(a)


def assert_same(got: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    """Bit-exact up to NaN payloads: dtype, shape, values, NaN positions and signed zeros."""
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != {expected.dtype}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    np.testing.assert_array_equal(got, expected, err_msg=what, strict=True)
    np.testing.assert_array_equal(
        _nonan_signbits(got), _nonan_signbits(expected), err_msg=f"{what}: sign bits (±0)"
    )


def assert_close(got, expected, dtype, rtol, atol, what: str = "") -> None:
    """Within ``atol + rtol·|expected|`` of the float64 ``expected``; same NaN positions; the
    result's dtype is ``dtype``."""
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype} != {np.dtype(dtype)}"
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{what}: NaNs")
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(
            got.astype(np.float64), expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=what
        )


def check_outputs(entry: OpEntry, got: Sequence, expected: Sequence, sample: Sample, dtype,
                  what: str) -> None:
    assert len(got) == len(expected), f"{what}: {len(got)} outputs, expected {len(expected)}"
    if entry.compare is not None:
        entry.compare(got, expected, sample, dtype, what)
        return
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        label = f"{what} output {k}"
        if entry.exact:
            assert_same(g, e, label)
        else:
            rtol, atol = entry.tol[np.dtype(dtype)]
            assert_close(g, e, dtype, rtol, atol, label)


def copies(inputs: Sequence) -> tuple:
    return tuple(np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in inputs)


def run_functional(entry: OpEntry, sample: Sample) -> tuple:
    """Run through ``caffe2ops.<op>``; checks that inputs not updated in place stay unchanged."""
    inputs = copies(sample.inputs)
    before = copies(inputs)
    outputs = entry.functional(inputs, dict(sample.args))
    for i, (x, b) in enumerate(zip(inputs, before, strict=True)):
        if i not in entry.mutates and isinstance(x, np.ndarray):
            assert x.tobytes() == b.tobytes(), f"{entry.op}: functional call modified input {i}"
    return tuple(outputs)


def feed_inputs(names: Sequence[str], inputs: Sequence) -> None:
    """Feed each input as a blob; a Mutex is not a feedable value, so its blob is made by
    ``CreateMutex``, as in Caffe2."""
    from caffe2ops.ops.counters import Mutex

    for name, x in zip(names, inputs, strict=True):
        if isinstance(x, Mutex):
            workspace.RunOperatorOnce(core.CreateOperator("CreateMutex", [], [name]))
        else:
            workspace.FeedBlob(name, x)


def run_runtime(entry: OpEntry, sample: Sample, output_names: Sequence[str] | None = None) -> tuple:
    """Feed the inputs as blobs, ``workspace.RunOperatorOnce`` the operator, fetch its outputs."""
    names = entry.input_names[: len(sample.inputs)]
    feed_inputs(names, sample.inputs)
    default = entry.output_names if entry.outputs_for is None else entry.outputs_for(sample.inputs)
    outs = list(output_names or default)
    op = core.CreateOperator(entry.op, list(names), outs, **sample.args)
    assert workspace.RunOperatorOnce(op) is True
    return tuple(workspace.FetchBlob(n) for n in outs)


def proto_args(args: dict) -> dict:
    """Arguments as an operator created through the runtime sees them: Caffe2's ``Argument.f``
    is a float32 field, so a Python float reaches the operator as ``fl32(value)`` (ints stay)."""
    out = {}
    for key, value in args.items():
        if isinstance(value, float):
            value = float(arr(value, F32))
        out[key] = value
    return out


def run_via(entry: OpEntry, sample: Sample, via: str) -> tuple:
    return run_functional(entry, sample) if via == "functional" else run_runtime(entry, sample)


# --------------------------------------------------------------------------------------------
# Caffe2's gradient checker, through the runtime
# --------------------------------------------------------------------------------------------

_net_counter = itertools.count()


def _fresh(prefix: str) -> str:
    return f"{prefix}_{next(_net_counter)}"


def _fetch_gradient(grad, x: np.ndarray) -> np.ndarray:
    """A gradient blob, or a sparse ``GradientSlice`` made dense (rows added at the indices)."""
    if isinstance(grad, core.GradientSlice):
        idx = workspace.FetchBlob(str(grad.indices)).reshape(-1)
        values = workspace.FetchBlob(str(grad.values))
        dense = np.zeros_like(x)
        np.add.at(dense, idx, values.reshape((idx.size, *x.shape[1:])))
        return dense
    return workspace.FetchBlob(str(grad))


def gradient_check(
    op_type: str,
    input_names: Sequence[str],
    output_names: Sequence[str],
    inputs: Sequence[np.ndarray],
    args: dict,
    check: Sequence[int],
    stepsize: float,
    threshold: float,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Caffe2's ``GradientChecker``: loss ``½Σy²`` over the float outputs, so ``dL/dy = y``;
    analytic gradients from ``core.Net.AddGradientOperators`` (the gradient registry), numeric
    ones by central differences ``(L(x+h) - L(x-h)) / 2h`` (the library's
    ``central_difference``); ``np.isclose(atol=rtol=threshold)``.

    Returns ``{input index: (analytic, numeric)}``; raises AssertionError on a mismatch.
    """
    for name, x in zip(input_names, inputs, strict=True):
        workspace.FeedBlob(name, x)
    forward = core.Net(_fresh(f"fwd_{op_type}"))
    forward.Proto().op.append(core.CreateOperator(op_type, list(input_names),
                                                  list(output_names), **args))

    net = core.Net(_fresh(f"grad_{op_type}"))
    net.Proto().op.append(core.CreateOperator(op_type, list(input_names),
                                              list(output_names), **args))
    given = {}
    for y in output_names:
        net.Copy([y], [f"{y}_lossgrad"])  # dL/dy = y for L = ½Σy²
        given[y] = f"{y}_lossgrad"
    grad_map = net.AddGradientOperators(given)
    for i in check:
        assert input_names[i] in grad_map, f"{op_type}: no gradient for {input_names[i]}"
    workspace.RunNetOnce(net)
    analytic = {i: _fetch_gradient(grad_map[input_names[i]], inputs[i]) for i in check}

    def loss(name: str, value: np.ndarray) -> float:
        workspace.FeedBlob(name, value)
        workspace.RunNetOnce(forward)
        total = 0.0
        for y in output_names:
            v = workspace.FetchBlob(y).astype(np.float64)
            total += 0.5 * float(np.sum(v * v))
        return total

    results = {}
    for i in check:
        x = np.array(inputs[i], copy=True)
        numeric = central_difference(functools.partial(loss, input_names[i]), x, stepsize)
        workspace.FeedBlob(input_names[i], x)
        got = analytic[i]
        assert got.shape == x.shape and got.dtype == x.dtype, (
            f"{op_type}: gradient of input {i} has {got.shape} {got.dtype}, "
            f"input has {x.shape} {x.dtype}"
        )
        ok = np.isclose(got.astype(np.float64), numeric, atol=threshold, rtol=threshold)
        assert ok.all(), (
            f"{op_type}: gradient of input {i} ({input_names[i]}) differs from central "
            f"differences at {np.argwhere(~ok).tolist()}:\nanalytic {got.ravel()[~ok.ravel()]}\n"
            f"numeric  {numeric.ravel()[~ok.ravel()]}"
        )
        results[i] = (got, numeric)
    return results


# --------------------------------------------------------------------------------------------
# Clip / ClipGradient
# --------------------------------------------------------------------------------------------


def clip_bounds(dtype, args) -> tuple[Any, Any]:
    """The bounds the contract prescribes: omitted -> the dtype's finite lowest/max; float
    bounds rounded to the dtype. For integer dtypes the effective bounds are ``ceil(min)`` and
    ``floor(max)`` saturated to the dtype's range (the only integers inside ``[min, max]``)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        lo_default, hi_default = finite_limits(dtype)
        lo = lo_default if args.get("min") is None else rounded(args["min"], dtype)
        hi = hi_default if args.get("max") is None else rounded(args["max"], dtype)
        return lo, hi
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)
    if args.get("min") is not None:
        lo = min(max(math.ceil(args["min"]), int(info.min)), int(info.max))
    if args.get("max") is not None:
        hi = max(min(math.floor(args["max"]), int(info.max)), int(info.min))
    return lo, hi


def clip_ref(inputs, args):
    (x,) = inputs
    lo, hi = clip_bounds(x.dtype, args)
    if x.dtype.kind == "f":
        v = f64(x)
        m = np.where(v < lo, lo, v)  # m = x < lo ? lo : x
        y = np.where(hi < m, hi, m)  # y = hi < m ? hi : m
        return (y.astype(x.dtype),)
    v = x.astype(object)  # exact integer comparisons for every integer dtype
    m = np.where(v < lo, lo, v)
    y = np.where(hi < m, hi, m)
    return (y.astype(x.dtype),)


def clip_grad_ref(inputs, args):
    y, dy = inputs
    lo, hi = clip_bounds(y.dtype, args)
    if y.dtype.kind == "f":
        inside = (lo < f64(y)) & (f64(y) < hi)
        with np.errstate(invalid="ignore"):
            dx = f64(dy).reshape(y.shape) * inside  # dY·0 outside: ±0, NaN for ±inf/NaN dY
        return (dx.astype(y.dtype),)
    v = y.astype(object)
    inside = np.array((lo < v) & (v < hi), dtype=bool)
    return ((dy.reshape(y.shape) * inside).astype(y.dtype),)


def clip_samples(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = int(info.min), int(info.max)
        x = np.array([lo, lo + 1, -3 if lo < 0 else 0, 0, 1, 2, 3, 5, 7, 9, hi - 1, hi], dtype)
        return [
            Sample((x,), {"min": 2.0, "max": 7.0}, "float bounds"),
            Sample((x,), {"min": 2, "max": 7}, "int bounds"),
            Sample((x,), {}, "no bounds: identity"),
            Sample((x,), {"min": 3}, "min only"),
            Sample((x,), {"max": 3}, "max only"),
            Sample((x,), {"min": 7.0, "max": 2.0}, "min > max gives max"),
            Sample((x,), {"min": 2.5, "max": 8.5}, "fractional bounds round inward"),
            Sample((x,), {"min": -1e30, "max": 1e30}, "bounds beyond the dtype saturate"),
            Sample((x,), {"min": 1e30}, "min above the dtype's max"),
            Sample((np.zeros((0, 3), dtype),), {"min": 0, "max": 1}, "empty"),
        ]
    info = np.finfo(dtype)
    s = special(dtype)
    x = uniform(1, (3, 4, 5), -2.0, 2.0, dtype)
    return [
        Sample((x,), {"min": -1.0, "max": 1.0}, "random 3x4x5"),
        Sample((s,), {"min": -1.0, "max": 1.0}, "specials in [-1, 1]: NaN stays, ±inf clipped"),
        Sample((s,), {}, "no bounds: ±inf -> ±max, NaN stays"),
        Sample((s,), {"min": 0.0}, "min only; -0 ties with min=0 and stays -0"),
        Sample((s,), {"max": 0.0}, "max only; +0 and -0 tie with max=0 and keep their sign"),
        Sample((s,), {"max": -0.0}, "max=-0: +0 is not > -0, stays +0"),
        Sample((s,), {"min": 1.0, "max": -1.0}, "min > max gives max everywhere but NaN"),
        Sample((s,), {"min": 0, "max": 1}, "int arguments accepted"),
        Sample((s,), {"min": 0.1, "max": 0.3}, "bounds rounded to the dtype"),
        Sample((s,), {"min": float(info.min), "max": float(info.max)}, "explicit finite limits"),
        Sample((s,), {"min": -np.inf, "max": np.inf}, "infinite bounds"),
        Sample((s,), {"min": np.nan, "max": 0.5}, "NaN min is ignored (x < NaN is false)"),
        Sample((s,), {"min": -0.5, "max": np.nan}, "NaN max is ignored (NaN < m is false)"),
        Sample((s,), {"min": 1e300, "max": 1e301}, "huge bounds (inf in small dtypes)"),
        Sample((x[0, 0, 0].copy(),), {"min": 0.0, "max": 0.5}, "0-d"),
        Sample((np.zeros((0,), dtype),), {"min": 0.0, "max": 1.0}, "empty"),
        Sample((np.zeros((2, 0, 3), dtype),), {}, "empty 3-D"),
    ]


def clip_grad_samples(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        y = np.array([2, 3, 5, 7, 1, 0], dtype)
        dy = np.array([1, 2, 3, 4, 5, 6], dtype)
        return [
            Sample((y, dy), {"min": 2.0, "max": 7.0}, "on the bounds -> 0"),
            Sample((y, dy), {}, "no bounds"),
        ]
    lo_lim, hi_lim = finite_limits(dtype)
    y = arr([-1.0, -0.5, 0.0, 0.5, 1.0, np.nan, 0.25, -0.25, 1.0, -1.0, 0.999, -0.999], dtype)
    dy = arr([1.0, 2.0, -3.0, 4.0, -5.0, 6.0, np.inf, np.nan, -np.inf, -2.0, 1.5, -1.5], dtype)
    ybig = arr([hi_lim, lo_lim, 0.0, 1.0, np.nan, -2.0], dtype)
    dybig = arr([3.0, -3.0, 1.0, np.inf, 2.0, -1.0], dtype)
    x = uniform(2, (4, 5), -1.0, 1.0, dtype)
    return [
        Sample((y, dy), {"min": -1.0, "max": 1.0}, "strict: Y on a bound gets dY·0 (±0/NaN)"),
        Sample((y, dy), {"min": 0.0, "max": 0.5}, "mixed inside/outside"),
        Sample((y, dy), {"min": 1.0, "max": -1.0}, "min > max: nothing inside"),
        Sample((ybig, dybig), {}, "no bounds: Y = ±max gets 0"),
        Sample((x, uniform(3, (4, 5), dtype=dtype)), {"min": -0.5, "max": 0.5}, "random"),
        Sample((x, uniform(3, (20,), dtype=dtype)), {"min": -0.5, "max": 0.5},
               "dY with Y's element count but another shape"),
        Sample((np.zeros((0, 2), dtype), np.zeros((0, 2), dtype)), {}, "empty"),
        Sample((arr(0.5, dtype), arr(-2.0, dtype)), {"min": 0.0, "max": 1.0}, "0-d"),
    ]


def clip_functional(inputs, args):
    return (c2.clip(inputs[0], min=args.get("min"), max=args.get("max")),)


def clip_grad_functional(inputs, args):
    return (c2.clip_gradient(inputs[0], inputs[1], min=args.get("min"), max=args.get("max")),)


def clip_bad():
    x = arr([0.5, -2.0], F32)
    return [
        BadInput((np.array([True, False]),), {}, TypeError, ("Clip", "X", "bool"), "bool input"),
        BadInput((np.array([1 + 2j]),), {}, TypeError, ("Clip", "X"), "complex input"),
        BadInput((np.array(["a"]),), {}, TypeError, ("Clip", "X"), "string input"),
        BadInput((x,), {"min": "zero"}, TypeError, ("Clip", "min"), "string min"),
        BadInput((x,), {"max": [1.0, 2.0]}, TypeError, ("Clip", "max"), "list max"),
        BadInput((x,), {"min": True}, TypeError, ("Clip", "min"), "bool min",
                 via=("functional",)),
    ]


def clip_grad_bad():
    y = arr([0.5, -2.0], F32)
    return [
        BadInput((y, arr([1.0, 2.0], F64)), {}, TypeError, ("ClipGradient", "dY"),
                 "dY dtype differs from Y"),
        BadInput((y, arr([1.0, 2.0, 3.0], F32)), {}, ValueError, ("ClipGradient", "dY"),
                 "dY element count differs"),
        BadInput((np.array([True]), np.array([True])), {}, TypeError, ("ClipGradient", "Y"),
                 "bool Y"),
        BadInput((y, y), {"max": "one"}, TypeError, ("ClipGradient", "max"), "string max"),
    ]


def clip_grad_check_samples(dtype):
    if np.dtype(dtype) == F64:
        x = uniform(10, (3, 4), -1.0, 1.0, F64)
        x = away_from(x, [-0.4, 0.6], 0.05, 0.1)
        return [
            GradSample((x,), {"min": -0.4, "max": 0.6}, (0,), "random, away from bounds"),
            GradSample((away_from(uniform(11, (2, 3, 2), dtype=F64), [0.0], 0.05, 0.1),),
                       {"min": 0.0}, (0,), "min only"),
            GradSample((uniform(12, (5,), dtype=F64),), {}, (0,), "no bounds: identity"),
        ]
    # Caffe2's float32 settings (stepsize 0.05, threshold 0.005): keep 0.06 away from the kinks.
    x = arr([[-0.9, -0.3, 0.1], [0.45, 0.8, -0.6]], dtype)
    return [GradSample((x,), {"min": -0.5, "max": 0.6}, (0,), "float32, clear of the bounds")]


# --------------------------------------------------------------------------------------------
# ThresholdedRelu / ThresholdedReluGradient
# --------------------------------------------------------------------------------------------


def trelu_ref(inputs, args):
    (x,) = inputs
    alpha = rounded(args.get("alpha", 1.0), x.dtype)
    v = f64(x)
    return (np.where(v > alpha, v, 0.0).astype(x.dtype),)  # +0 where not x > alpha (NaN too)


def trelu_grad_ref(inputs, args):
    y, dy = inputs[:2]
    if len(inputs) == 3:
        keep = f64(inputs[2]) > rounded(args.get("alpha", 1.0), y.dtype)
    else:
        keep = f64(y) > 0
    return (np.where(keep, f64(dy).reshape(y.shape), 0.0).astype(y.dtype),)


def trelu_samples(dtype):
    s = special(dtype)
    x = uniform(4, (2, 3, 4), -2.5, 2.5, dtype)
    alpha_value = arr([-1.0, 1.0, 1.5, 2.0, 2.5, np.nan, -np.inf], dtype)
    return [
        Sample((x,), {}, "default alpha 1.0, pass-through branch taken"),
        Sample((x,), {"alpha": 0.3}, "alpha 0.3"),
        Sample((s,), {}, "specials: NaN -> +0, +inf kept, x == 1 -> 0"),
        Sample((s,), {"alpha": -1.0}, "negative alpha: -0.5, ±0 kept (no shift), -0 keeps sign"),
        Sample((s,), {"alpha": 0.0}, "alpha 0: ±0 -> +0"),
        Sample((s,), {"alpha": -np.inf}, "alpha -inf: everything but NaN/-inf kept"),
        Sample((s,), {"alpha": np.inf}, "alpha +inf: all +0"),
        Sample((alpha_value,), {"alpha": 2.0}, "x == alpha gives 0"),
        Sample((arr([0.1, 0.2, 0.3], dtype),), {"alpha": 0.1}, "alpha rounded to the dtype"),
        Sample((s,), {"alpha": 2}, "int alpha accepted"),
        Sample((np.zeros((0, 4), dtype),), {"alpha": 0.5}, "empty"),
        Sample((arr(3.0, dtype),), {"alpha": 2.0}, "0-d"),
    ]


def trelu_grad_samples(dtype):
    y = arr([0.0, -0.0, 1.5, 2.0, np.nan, -0.5, np.inf, 0.25], dtype)
    dy = arr([1.0, 2.0, -3.0, np.inf, 4.0, np.nan, -1.0, -np.inf], dtype)
    xs = arr([-0.2, 0.0, 1.5, 2.0, np.nan, -0.5, np.inf, -0.3], dtype)
    r = uniform(5, (3, 4), dtype=dtype)
    return [
        Sample((y, dy), {}, "Y > 0 -> dY, else +0 (even for NaN/inf dY)"),
        Sample((y, dy, xs), {"alpha": -0.4}, "with X: X > alpha -> dY (negative alpha)"),
        Sample((y, dy, xs), {"alpha": 1.5}, "with X: X == alpha -> +0"),
        Sample((r, uniform(6, (12,), dtype=dtype)), {}, "dY with Y's count, other shape"),
        Sample((np.zeros(0, dtype), np.zeros(0, dtype)), {}, "empty"),
        Sample((arr(0.5, dtype), arr(2.0, dtype), arr(-0.2, dtype)), {"alpha": -0.5}, "0-d"),
    ]


def trelu_functional(inputs, args):
    return (c2.thresholded_relu(inputs[0], **args),)


def trelu_grad_functional(inputs, args):
    if len(inputs) == 3:
        return (c2.thresholded_relu_gradient(inputs[0], inputs[1], x=inputs[2],
                                             alpha=args.get("alpha", 1.0)),)
    return (c2.thresholded_relu_gradient(inputs[0], inputs[1]),)


def trelu_bad():
    x = arr([0.5, 2.0], F32)
    return [
        BadInput((np.array([1, 2]),), {}, TypeError, ("ThresholdedRelu", "X", "int64"),
                 "integer input"),
        BadInput((np.array([True]),), {}, TypeError, ("ThresholdedRelu", "X"), "bool input"),
        BadInput((np.array([1j]),), {}, TypeError, ("ThresholdedRelu", "X"), "complex input"),
        BadInput((x,), {"alpha": "one"}, TypeError, ("ThresholdedRelu", "alpha"), "str alpha"),
        BadInput((x,), {"alpha": [1.0]}, TypeError, ("ThresholdedRelu", "alpha"), "list alpha"),
    ]


def trelu_grad_bad():
    y = arr([0.5, 2.0], F32)
    return [
        BadInput((y, arr([1.0], F32)), {}, ValueError, ("ThresholdedReluGradient", "dY"),
                 "dY count differs"),
        BadInput((y, arr([1.0, 2.0], F16)), {}, TypeError, ("ThresholdedReluGradient", "dY"),
                 "dY dtype differs"),
        BadInput((np.array([1, 2]), np.array([1, 2])), {}, TypeError,
                 ("ThresholdedReluGradient", "Y"), "integer Y"),
        BadInput((y, y, arr([1.0, 2.0, 3.0], F32)), {"alpha": -1.0}, ValueError,
                 ("ThresholdedReluGradient", "X"), "X shape differs"),
    ]


def trelu_grad_check_samples(dtype):
    if np.dtype(dtype) == F64:
        x = uniform(13, (3, 5), -1.0, 1.0, F64)
        return [
            GradSample((away_from(x, [0.3], 0.05, 0.1),), {"alpha": 0.3}, (0,), "alpha 0.3"),
            GradSample((away_from(x, [-0.4], 0.05, 0.1),), {"alpha": -0.4}, (0,),
                       "negative alpha: (alpha, 0) passes dY through"),
            GradSample((away_from(uniform(17, (2, 6), -2.0, 2.0, F64), [1.0], 0.05, 0.1),), {},
                       (0,), "default alpha 1"),
        ]
    x = arr([[-0.9, -0.3, 0.1], [0.45, 0.8, -0.6]], dtype)
    return [GradSample((x,), {"alpha": -0.45}, (0,), "float32, negative alpha")]


# --------------------------------------------------------------------------------------------
# Cos / CosGradient
# --------------------------------------------------------------------------------------------

COS_TOL = {F16: (1e-3, 1e-3), F32: (2.5e-7, 2.5e-7), F64: (4e-16, 4e-16)}


def cos_ref(inputs, args):
    with np.errstate(invalid="ignore"):
        return (np.cos(f64(inputs[0])),)


def cos_grad_ref(inputs, args):
    x, dy = inputs
    with np.errstate(invalid="ignore"):
        return (-f64(dy) * np.sin(f64(x)),)


def cos_samples(dtype):
    s = special(dtype)
    big = arr([1e4, -1e4, 12345.5, 3e4, 65504.0, 1e6, 1e30, 3.0e38], dtype)
    pis = arr(np.pi * np.arange(-8, 9) / 4, dtype)
    return [
        Sample((uniform(7, (3, 4, 5), -10.0, 10.0, dtype),), {}, "random in [-10, 10]"),
        Sample((s,), {}, "specials: ±inf/NaN -> NaN, ±0 -> 1"),
        Sample((big,), {}, "large arguments"),
        Sample((pis,), {}, "multiples of pi/4"),
        Sample((arr(0.25, dtype),), {}, "0-d"),
        Sample((np.zeros((0, 3), dtype),), {}, "empty"),
    ]


def cos_grad_samples(dtype):
    x = uniform(8, (4, 5), -10.0, 10.0, dtype)
    dy = uniform(9, (4, 5), -3.0, 3.0, dtype)
    xs = arr([0.0, -0.0, np.inf, np.nan, 1.0, np.pi / 2, -2.0], dtype)
    dys = arr([1.0, 1.0, 0.0, 1.0, np.inf, -2.0, np.nan], dtype)
    return [
        Sample((x, dy), {}, "random"),
        Sample((xs, dys), {}, "specials"),
        Sample((np.zeros(0, dtype), np.zeros(0, dtype)), {}, "empty"),
    ]


def cos_compare(got, expected, sample, dtype, what):
    """Cos and CosGradient are tolerance-defined (contract: within 2.5e-7 abs+rel of float64
    for float32), so the sign of an exact zero such as -dY·sin(-0) is not pinned; NaN
    positions are. CosGradient's -dY·fl(sin X) has two roundings: still within 2.5e-7."""
    rtol, atol = COS_TOL[np.dtype(dtype)]
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert_close(g, e, dtype, rtol, atol, f"{what} output {k}")


def cos_bad():
    return [
        BadInput((np.array([1, 2]),), {}, TypeError, ("Cos", "X", "int64"), "integer input"),
        BadInput((np.array([1, 2], np.int8),), {}, TypeError, ("Cos", "X"), "int8 input"),
        BadInput((np.array([True]),), {}, TypeError, ("Cos", "X"), "bool input"),
        BadInput((np.array([1j]),), {}, TypeError, ("Cos", "X"), "complex input"),
    ]


def cos_grad_bad():
    x = arr([0.5, 2.0], F32)
    return [
        BadInput((x, arr([[1.0, 2.0]], F32)), {}, ValueError, ("CosGradient", "dY"),
                 "dY shape differs"),
        BadInput((x, arr([1.0, 2.0], F64)), {}, TypeError, ("CosGradient", "dY"),
                 "dY dtype differs"),
        BadInput((np.array([1, 2]), np.array([1, 2])), {}, TypeError, ("CosGradient", "X"),
                 "integer X"),
    ]


def cos_grad_check_samples(dtype):
    if np.dtype(dtype) == F64:
        return [
            GradSample((uniform(14, (2, 3, 4), -3.0, 3.0, F64),), {}, (0,), "random"),
            GradSample((uniform(15, (1, 1), dtype=F64),), {}, (0,), "1x1"),
        ]
    # Caffe2's TestCos: X = rand - 0.5, CPU checker (stepsize 0.01, threshold 0.05) is looser
    # than the float32 default used here (stepsize 0.05, threshold 0.005).
    return [GradSample((uniform(16, (2, 3), -0.5, 0.5, dtype),), {}, (0,), "float32")]


# --------------------------------------------------------------------------------------------
# CosineEmbeddingCriterion (+Gradient)
# --------------------------------------------------------------------------------------------


def cec_ref(inputs, args):
    s, label = inputs
    margin = rounded(args.get("margin", 0.0), s.dtype)
    v = f64(s)
    lab = np.asarray(label).reshape(s.shape)
    with np.errstate(invalid="ignore"):
        d = v - margin
        dissimilar = np.where(d > 0, d, 0.0)  # max(0, S - margin): NaN and -0 give +0
        loss = np.where(lab == 1, 1.0 - v, dissimilar)
    return (loss.astype(s.dtype),)


def cec_grad_ref(inputs, args):
    s, label, dloss = inputs
    margin = rounded(args.get("margin", 0.0), s.dtype)
    v = f64(s)
    lab = np.asarray(label).reshape(s.shape)
    dl = f64(dloss).reshape(s.shape)
    with np.errstate(invalid="ignore"):
        ds = np.where(lab == 1, -dl, dl * (v >= margin))  # masked: dLoss·0 (±0, NaN for inf)
    return (ds.astype(s.dtype),)


def _labels(n, seed, dtype=np.int32):
    return rng(seed).choice(np.array([-1, 1]), size=n).astype(dtype)


def cec_samples(dtype):
    s = arr([0.9, 0.3, 0.25, -0.2, np.nan, np.nan, np.inf, -np.inf, 1.5, 0.0, -0.0, 0.25,
             np.inf, -np.inf], dtype)
    lab = np.array([1, -1, -1, -1, 1, -1, -1, -1, 1, -1, -1, 0, 1, 1], np.int32)
    odd = np.array([0, 2, -5, 7, 1, 100, -1, 3, 1, 0, 1, 2, -2, 1], np.int64)
    r = arr(rng(17).standard_normal(15), dtype)
    return [
        Sample((r, _labels(15, 18)), {"margin": 0.1}, "random, labels ±1"),
        Sample((s, lab), {"margin": 0.25}, "S == margin -> +0; NaN dissimilar -> +0"),
        Sample((s, lab), {}, "default margin 0: -0 and +0 give +0"),
        Sample((s, lab), {"margin": -0.5}, "negative margin"),
        Sample((s, odd), {"margin": 0.1}, "labels other than ±1 are dissimilar (int64)"),
        Sample((s, odd.astype(np.int8)), {"margin": 0}, "int8 labels, int margin"),
        Sample((r.reshape(3, 5), _labels(15, 19)), {"margin": 0.2},
               "S 3x5, label flat: same count is enough"),
        Sample((arr([1.2, -3.0], dtype), np.array([1, 1], np.int32)), {},
               "S > 1: 1 - S negative, no clamp"),
        Sample((arr([0.3], dtype), np.array([-1], np.int32)), {"margin": 0.3},
               "margin rounded to the dtype like S"),
        Sample((np.zeros(0, dtype), np.zeros(0, np.int32)), {}, "empty"),
        Sample((arr(0.75, dtype), np.array([-1], np.int32)), {"margin": 0.5},
               "0-d S with a one-element label"),
    ]


def cec_grad_samples(dtype):
    s = arr([0.9, 0.3, 0.25, -0.2, np.nan, np.nan, 0.5, 0.1, np.inf, 0.25], dtype)
    lab = np.array([1, -1, -1, -1, 1, 0, 3, -1, -1, 2], np.int32)
    dl = arr([2.0, -1.0, 3.0, -4.0, 5.0, -6.0, np.inf, np.inf, np.nan, -0.5], dtype)
    r = arr(rng(20).standard_normal(12), dtype)
    return [
        Sample((s, lab, dl), {"margin": 0.25}, "S == margin -> dLoss (non-strict)"),
        Sample((s, lab, dl), {}, "default margin"),
        Sample((r, _labels(12, 21), uniform(22, (12,), dtype=dtype)), {"margin": 0.1}, "random"),
        Sample((r.reshape(3, 4), _labels(12, 23, np.int64), uniform(24, (12,), dtype=dtype)),
               {"margin": -0.2}, "dLoss with S's count, other shape"),
        Sample((np.zeros(0, dtype), np.zeros(0, np.int32), np.zeros(0, dtype)), {}, "empty"),
    ]


def cec_functional(inputs, args):
    return (c2.cosine_embedding_criterion(inputs[0], inputs[1], **args),)


def cec_grad_functional(inputs, args):
    return (c2.cosine_embedding_criterion_gradient(inputs[0], inputs[1], inputs[2], **args),)


def cec_bad():
    s = arr([0.5, -0.5, 0.1], F32)
    op = "CosineEmbeddingCriterion"
    return [
        BadInput((s, np.array([1.0, -1.0, 1.0], np.float32)), {}, TypeError, (op, "label"),
                 "float label"),
        BadInput((s, np.array([1, -1], np.int32)), {}, ValueError, (op, "label"),
                 "label count differs"),
        BadInput((np.array([1, 2, 3]), np.array([1, -1, 1])), {}, TypeError, (op, "S"),
                 "integer S"),
        BadInput((s, np.array([1, -1, 1], np.int32)), {"margin": "m"}, TypeError,
                 (op, "margin"), "str margin"),
    ]


def cec_grad_bad():
    s = arr([0.5, -0.5, 0.1], F32)
    lab = np.array([1, -1, 1], np.int32)
    op = "CosineEmbeddingCriterionGradient"
    return [
        BadInput((s, lab, arr([1.0, 2.0], F32)), {}, ValueError, (op, "dLoss"),
                 "dLoss count differs"),
        BadInput((s, lab, arr([1.0, 2.0, 3.0], F64)), {}, TypeError, (op, "dLoss"),
                 "dLoss dtype differs"),
        BadInput((s, np.array([1, 1]), s), {}, ValueError, (op, "label"), "label count differs"),
    ]


def cec_grad_check_samples(dtype):
    n = 12
    s = arr(rng(25).standard_normal(n), dtype)
    margin = 0.2
    s = away_from(s, [margin], 0.1, 0.2)  # Caffe2's test: S[|S - margin| < 0.1] += 0.2
    return [GradSample((s, _labels(n, 26)), {"margin": margin}, (0,), "labels ±1"),
            GradSample((s, np.array([0, 2, -3, 1] * 3, np.int32)), {"margin": margin}, (0,),
                       "labels other than ±1")]


# --------------------------------------------------------------------------------------------
# CosineSimilarity (+Gradient)
# --------------------------------------------------------------------------------------------

SIM_TOL = {F16: (2e-3, 2e-3), F32: (2e-6, 1e-6), F64: (1e-13, 1e-14)}


def _rows(x):
    """Caffe2's rows: N = dim 0 (1 for 0-d), row length = product of the other dims."""
    x = f64(x)
    if x.ndim == 0:
        return x.reshape(1, 1)
    return x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))


def sim_ref(inputs, args):
    x, y = (_rows(v) for v in inputs)
    with np.errstate(invalid="ignore", over="ignore"):
        xx = np.sum(x * x, axis=1)
        yy = np.sum(y * y, axis=1)
        xy = np.sum(x * y, axis=1)
        return (xy / np.sqrt(np.maximum(xx, EPS) * np.maximum(yy, EPS)),)


def sim_grad_ref(inputs, args):
    x0, y0, dz = inputs
    x, y = _rows(x0), _rows(y0)
    dz = f64(dz)[:, None]
    xx = np.sum(x * x, axis=1)[:, None]
    yy = np.sum(y * y, axis=1)[:, None]
    xy = np.sum(x * y, axis=1)[:, None]
    xn = np.sqrt(np.maximum(xx, EPS))
    yn = np.sqrt(np.maximum(yy, EPS))
    xyn = xn * yn
    dx = (dz / xyn) * y - (dz * xy / (xn * xn * xyn)) * x
    dy = (dz / xyn) * x - (dz * xy / (yn * yn * xyn)) * y
    return (dx.reshape(x0.shape), dy.reshape(y0.shape))


def sim_samples(dtype):
    x = uniform(27, (4, 6), dtype=dtype)
    y = uniform(28, (4, 6), dtype=dtype)
    zero = arr([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 2.0]], dtype)
    other = arr([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-2.0, -4.0, -4.0]], dtype)
    tiny = arr([[1e-7, 0.0], [3e-7, 4e-7]], dtype)
    unit = arr([[1.0, 0.0], [0.0, 1.0]], dtype)
    spec_x = arr([[np.nan, 1.0], [np.inf, 1.0], [1.0, 1.0]], dtype)
    spec_y = arr([[1.0, 1.0], [1.0, 1.0], [-1.0, 1.0]], dtype)
    v1 = arr([0.5, -2.0, 0.0, 3.0, -0.25, 1e-7], dtype)
    w1 = arr([2.0, 3.0, 5.0, 0.0, -4.0, 1.0], dtype)
    return [
        Sample((x, y), {}, "random 4x6"),
        Sample((x, x), {}, "identical rows -> 1"),
        Sample((x, -x), {}, "opposite rows -> -1"),
        Sample((zero, other), {}, "zero rows -> 0 (squared norms clamped at 1e-12)"),
        Sample((tiny, unit), {}, "tiny rows: the clamp changes the result"),
        Sample((v1, w1), {}, "1-D: N rows of length 1 (element-wise sign)"),
        Sample((uniform(29, (3, 2, 4), dtype=dtype), uniform(30, (3, 2, 4), dtype=dtype)), {},
               "3-D: rows flattened"),
        Sample((spec_x, spec_y), {}, "NaN / inf in a row -> NaN"),
        Sample((np.zeros((0, 3), dtype), np.zeros((0, 3), dtype)), {}, "no rows"),
        Sample((np.zeros((2, 0), dtype), np.zeros((2, 0), dtype)), {}, "empty rows -> 0"),
        Sample((arr(-2.0, dtype), arr(0.5, dtype)), {}, "0-d: one row of length 1"),
    ]


def sim_grad_samples(dtype):
    x = uniform(31, (3, 5), dtype=dtype)
    y = uniform(32, (3, 5), dtype=dtype)
    dz = uniform(33, (3,), dtype=dtype)
    zero = arr([[0.0, 0.0], [1.0, 2.0]], dtype)
    other = arr([[1.0, -1.0], [0.5, 0.5]], dtype)
    return [
        Sample((x, y, dz), {}, "random"),
        Sample((uniform(34, (2, 3, 2), dtype=dtype), uniform(35, (2, 3, 2), dtype=dtype),
                uniform(36, (2,), dtype=dtype)), {}, "3-D"),
        Sample((zero, other, arr([1.0, -2.0], dtype)), {}, "zero row"),
        Sample((arr([0.5, -2.0, 3.0], dtype), arr([1.0, 1.0, -0.5], dtype),
                arr([1.0, 2.0, 3.0], dtype)), {}, "1-D (gradient ~0)"),
        Sample((np.zeros((0, 2), dtype), np.zeros((0, 2), dtype), np.zeros(0, dtype)), {},
               "no rows"),
        Sample((arr(-2.0, dtype), arr(0.5, dtype), arr([1.5], dtype)), {}, "0-d"),
    ]


def sim_grad_compare(got, expected, sample, dtype, what):
    # The two terms of each formula nearly cancel when X ∥ Y, so the error is relative to the
    # size of the terms (each at most |dZ|/min(‖x‖, ‖y‖)), not of the result: per row,
    # |got - expected| <= atol·max(1, |dZ|/min(‖x‖, ‖y‖)) + rtol·|expected|.
    rtol, atol = SIM_TOL[np.dtype(dtype)]
    x, y, dz = (f64(v) for v in sample.inputs)
    xr, yr = _rows(x), _rows(y)
    xn = np.sqrt(np.maximum(np.sum(xr * xr, axis=1), EPS))
    yn = np.sqrt(np.maximum(np.sum(yr * yr, axis=1), EPS))
    row_atol = atol * np.maximum(1.0, np.abs(dz) / np.minimum(xn, yn))
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        label = f"{what} output {k}"
        g = np.asarray(g)
        assert g.dtype == np.dtype(dtype) and g.shape == e.shape, label
        # A value beyond the dtype's range must round to ±inf (float16: 7e5 -> inf).
        overflow = np.isinf(arr(e, dtype)) & np.isfinite(e)
        np.testing.assert_array_equal(g[overflow], arr(e, dtype)[overflow], err_msg=label)
        e = np.where(overflow, 0.0, e)
        g = np.where(overflow, 0.0, g.astype(np.float64))
        err = np.abs(_rows(g) - _rows(e))
        bound = row_atol[:, None] + rtol * np.abs(_rows(e))
        assert np.all(err <= bound), f"{label}: max excess {np.max(err - bound)}\n{g}\n{e}"


def sim_functional(inputs, args):
    return (c2.cosine_similarity(inputs[0], inputs[1]),)


def sim_grad_functional(inputs, args):
    return tuple(c2.cosine_similarity_gradient(inputs[0], inputs[1], inputs[2]))


def sim_bad():
    x = arr([[1.0, 2.0], [3.0, 4.0]], F32)
    return [
        BadInput((x, arr([[1.0, 2.0]], F32)), {}, ValueError, ("CosineSimilarity", "Y"),
                 "Y shape differs"),
        BadInput((x, x.astype(F64)), {}, TypeError, ("CosineSimilarity", "Y"),
                 "Y dtype differs"),
        BadInput((np.ones((2, 2), np.int32), np.ones((2, 2), np.int32)), {}, TypeError,
                 ("CosineSimilarity", "X"), "integer X"),
    ]


def sim_grad_bad():
    x = arr([[1.0, 2.0], [3.0, 4.0]], F32)
    return [
        BadInput((x, x, arr([1.0, 2.0, 3.0], F32)), {}, ValueError,
                 ("CosineSimilarityGradient", "dZ"), "dZ length differs"),
        BadInput((x, x, arr([1.0, 2.0], F64)), {}, TypeError,
                 ("CosineSimilarityGradient", "dZ"), "dZ dtype differs"),
        BadInput((x, arr([1.0, 2.0], F32), arr([1.0, 2.0], F32)), {}, ValueError,
                 ("CosineSimilarityGradient", "Y"), "Y shape differs"),
    ]


def sim_grad_check_samples(dtype):
    if np.dtype(dtype) == F64:
        return [
            GradSample((uniform(37, (3, 5), dtype=F64), uniform(38, (3, 5), dtype=F64)), {},
                       (0, 1), "random 3x5"),
            GradSample((uniform(39, (2, 2, 3), dtype=F64), uniform(40, (2, 2, 3), dtype=F64)),
                       {}, (0, 1), "3-D"),
            GradSample((away_from(uniform(41, (4,), dtype=F64), [0.0], 0.05, 0.1),
                        away_from(uniform(42, (4,), dtype=F64), [0.0], 0.05, 0.1)), {}, (0, 1),
                       "1-D: gradient 0 away from 0"),
        ]
    # Caffe2's distance_op_test: n in [1, 3], dim in [4, 16], stepsize 1e-2, threshold 1e-2.
    return [GradSample((uniform(43, (2, 6), dtype=dtype), uniform(44, (2, 6), dtype=dtype)),
                       {}, (0, 1), "float32, Caffe2's settings")]


# --------------------------------------------------------------------------------------------
# SparseNormalize / Float16SparseNormalize
# --------------------------------------------------------------------------------------------

# atol: two subnormal steps (a float16 row scaled into the subnormal range keeps only
# absolute precision).
SN_TOL = {F16: (2e-3, 2.0**-23), F32: (1e-6, 2.0**-148), F64: (1e-14, 0.0)}


def sn_ref(inputs, args):
    param, indices = inputs[:2]
    norm = float(args.get("norm", 1.0))
    use_max = bool(args.get("use_max_norm", True))
    p = f64(param).copy()
    rows = p.reshape(p.shape[0], int(np.prod(p.shape[1:], dtype=np.int64)))  # a view of p
    for i in np.unique(np.asarray(indices).reshape(-1)):  # each distinct index once
        with np.errstate(invalid="ignore", over="ignore"):
            n = math.sqrt(float(np.sum(rows[i] * rows[i])))
            if use_max and n <= norm:
                continue
            rows[i] = rows[i] * (norm / (n + EPS))
    return (p,)


def sn_compare(got, expected, sample, dtype, what):
    (g,) = got
    (e,) = expected
    param = sample.inputs[0]
    rtol, atol = SN_TOL[np.dtype(dtype)]
    assert_close(g, e, dtype, rtol, atol, what)
    # Rows the reference leaves alone must stay bit-identical (not merely close).
    unchanged = (f64(param) == e) | (np.isnan(e) & np.isnan(f64(param)))
    same = np.all(_rows(unchanged), axis=1)
    assert_same(g[same], param[same], f"{what}: untouched rows")
    # Signed zeros survive the scaling (0·s keeps the sign).
    zero = e == 0
    np.testing.assert_array_equal(np.signbit(g[zero]), np.signbit(e[zero]),
                                  err_msg=f"{what}: signs of zeros")


def sn_samples(dtype):
    p = uniform(45, (6, 4), -2.0, 2.0, dtype)
    idx = np.array([0, 2, 5], np.int64)
    special_rows = arr([[3.0, 4.0], [0.0, -0.0], [np.nan, 1.0], [np.inf, 1.0], [0.6, 0.0],
                        [-30.0, 40.0], [1.0, 0.0]], dtype)
    every = np.arange(7, dtype=np.int32)
    p3 = uniform(46, (4, 2, 3), -1.5, 1.5, dtype)
    return [
        Sample((p, idx), {}, "max norm 1 (default)"),
        Sample((p, idx.astype(np.int32)), {"norm": 2.5, "use_max_norm": True}, "int32 indices"),
        Sample((p, idx), {"norm": 0.75, "use_max_norm": False}, "constant norm"),
        Sample((p, np.array([3, 0, 3, 3, 0], np.int64)), {"norm": 1.0},
               "duplicate indices normalize once"),
        Sample((p, np.array([3, 0, 3, 3, 0], np.int64)), {"norm": 0.5, "use_max_norm": False},
               "duplicates, constant norm"),
        Sample((special_rows, every), {"norm": 5.0},
               "norm == limit skipped; zero row skipped; NaN row -> NaN; inf row -> 0/NaN"),
        Sample((special_rows, every), {"norm": 2.0, "use_max_norm": False},
               "constant norm: zero row stays ±0"),
        Sample((special_rows, every), {"norm": 0.0, "use_max_norm": False}, "norm 0 zeroes"),
        Sample((special_rows, every), {"norm": 0, "use_max_norm": True},
               "norm 0 (int) with max norm"),
        Sample((p3, np.array([1, 3], np.int64)), {"norm": 0.5}, "3-D: rows flattened"),
        Sample((arr([3.0, -0.5, -7.0, 0.25], dtype), np.array([0, 1, 2], np.int64)),
               {"norm": 1.0}, "1-D: each element a row, clipped to |x| <= norm"),
        Sample((p, np.array([[0, 1], [4, 1]], np.int64)), {"norm": 0.9},
               "2-D indices are flattened"),
        Sample((p, np.zeros(0, np.int64)), {}, "no indices: unchanged"),
        Sample((p, idx, uniform(47, (3, 4), dtype=dtype)), {"norm": 1.2},
               "optional grad input ignored"),
        Sample((np.zeros((0, 3), dtype), np.zeros(0, np.int64)), {}, "no rows, no indices"),
        Sample((np.zeros((3, 0), dtype), np.array([0, 2, 2], np.int64)),
               {"use_max_norm": False}, "empty rows"),
    ]


def sn_functional(inputs, args):
    param, indices = inputs[:2]
    grad = inputs[2] if len(inputs) > 2 else None
    out = c2.sparse_normalize(param, indices, grad=grad, **args)
    assert out is param, "sparse_normalize must return param itself (in place)"
    return (out,)


def sn_bad():
    p = arr([[3.0, 4.0], [0.3, 0.4]], F32)
    op = "SparseNormalize"
    return [
        BadInput((p, np.array([0, 2], np.int64)), {}, IndexError, (op, "indices", "2"),
                 "index == rows"),
        BadInput((p, np.array([-1], np.int32)), {}, IndexError, (op, "indices", "-1"),
                 "negative index"),
        BadInput((p, np.array([0.0, 1.0])), {}, TypeError, (op, "indices"), "float indices"),
        BadInput((p, np.array([0], np.int16)), {}, TypeError, (op, "indices"), "int16 indices"),
        BadInput((p, np.array([0])), {"norm": -1.0}, ValueError, (op, "norm"), "negative norm"),
        BadInput((p, np.array([0])), {"norm": "big"}, TypeError, (op, "norm"), "str norm"),
        BadInput((np.ones((2, 2), np.int32), np.array([0])), {}, TypeError, (op, "param"),
                 "integer param"),
        BadInput((arr(1.0, F32), np.array([0])), {}, ValueError, (op, "param"), "0-d param"),
        BadInput((p, np.array([0])), {"use_max_norm": "yes"}, TypeError, (op, "use_max_norm"),
                 "str use_max_norm", via=("runtime",)),
    ]


# --------------------------------------------------------------------------------------------
# Helper operators: ConstantFill, Sum, Copy
# --------------------------------------------------------------------------------------------

TP = caffe2_pb2.TensorProto
_TP_DTYPES = {TP.FLOAT: F32, TP.DOUBLE: F64, TP.FLOAT16: F16, TP.INT32: np.dtype(np.int32),
              TP.INT64: np.dtype(np.int64), TP.BOOL: np.dtype(bool)}


def fill_ref(inputs, args):
    value = args.get("value", 0.0)
    if "dtype" in args:
        dtype = _TP_DTYPES[args["dtype"]]
    elif isinstance(value, int):
        dtype = np.dtype(np.int64)  # Caffe2 infers INT64 from an int value
    elif inputs and inputs[0].dtype.kind == "f":
        dtype = inputs[0].dtype  # caffe2ops: a float fill keeps a float input's dtype
    else:
        dtype = F32
    if inputs:
        if args.get("input_as_shape"):
            shape = tuple(int(v) for v in inputs[0])
        else:
            shape = inputs[0].shape + tuple(args.get("extra_shape", ()))
    else:
        shape = tuple(args.get("shape", ()))
    return (np.full(shape, value, dtype=dtype),)


def fill_samples(dtype):
    x = uniform(48, (2, 3), dtype=dtype)
    return [
        Sample((), {"shape": [2, 3], "value": 1.5}, "shape argument, float -> float32"),
        Sample((), {"shape": [4], "value": 7}, "int value -> int64"),
        Sample((), {"shape": [2, 2], "value": 2.0, "dtype": TP.DOUBLE}, "dtype DOUBLE"),
        Sample((), {"shape": [3], "value": 1, "dtype": TP.INT32}, "dtype INT32"),
        Sample((), {"shape": [3], "value": 0.5, "dtype": TP.FLOAT16}, "dtype FLOAT16"),
        Sample((), {"value": 3.0}, "no shape: a scalar"),
        Sample((), {"shape": [0, 2], "value": 1.0}, "empty"),
        Sample((x,), {"value": 1.0}, "shape of the input (autogen gradient), dtype kept"),
        Sample((x,), {"value": -2.5, "extra_shape": [2]}, "extra_shape appended"),
        Sample((np.array([2, 1], np.int64),), {"value": 4.0, "input_as_shape": 1},
               "input_as_shape"),
    ]


def fill_bad():
    return [
        BadInput((), {"shape": [2, -1], "value": 1.0}, ValueError, ("ConstantFill", "shape"),
                 "negative dimension", via=("runtime",)),
        BadInput((), {"shape": [2], "value": 1.0, "dtype": 99}, TypeError,
                 ("ConstantFill", "dtype"), "unknown dtype", via=("runtime",)),
        BadInput((), {"shape": "2x3", "value": 1.0}, TypeError, ("ConstantFill", "shape"),
                 "string shape", via=("runtime",)),
        BadInput((), {"shape": [2], "value": "one"}, TypeError, ("ConstantFill", "value"),
                 "string value", via=("runtime",)),
        BadInput((arr([[2.0, 1.0]], F32),), {"value": 1.0, "input_as_shape": 1}, ValueError,
                 ("ConstantFill", "input"), "input_as_shape with a 2-D float input",
                 via=("runtime",)),
    ]


def sum_ref(inputs, args):
    dtype = inputs[0].dtype
    if dtype.kind in "iu":
        acc = inputs[0].astype(object)
        info = np.iinfo(dtype)
        span = int(info.max) - int(info.min) + 1
        for x in inputs[1:]:
            acc = acc + x.astype(object)
            acc = (acc - int(info.min)) % span + int(info.min)  # wraps like the dtype
        return (acc.astype(dtype),)
    acc = f64(inputs[0])
    with np.errstate(invalid="ignore", over="ignore"):
        for x in inputs[1:]:  # left to right, rounded to the dtype after every addition
            acc = f64((acc + f64(x)).astype(dtype))
    return (acc.astype(dtype),)


def sum_samples(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        a = np.array([1, 2, int(info.max), 0], dtype)
        b = np.array([3, 4, 1, 5], dtype)
        return [Sample((a, b), {}, "wraps around"), Sample((a,), {}, "one input")]
    a = uniform(49, (3, 4), dtype=dtype)
    b = uniform(50, (3, 4), dtype=dtype)
    c = uniform(51, (3, 4), dtype=dtype)
    s = special(dtype)
    big = float(np.finfo(dtype).max)
    # against special(): nan, inf, -inf, 0, -0, 1, -1, .5, -.5, 2, -3, max, min, tiny, ...
    t = arr([1.0, -np.inf, -np.inf, -0.0, -0.0, 1e-3, np.nan, 2.0, 0.0, 0.0, 0.0, big, -big,
             -float(np.finfo(dtype).tiny), 1.0, 1.0, 1.0], dtype)
    return [
        Sample((a,), {}, "one input: a copy"),
        Sample((a, b), {}, "two inputs"),
        Sample((a, b, c), {}, "three inputs, left to right"),
        Sample((s, t), {}, "specials: inf + -inf = NaN, -0 + -0 = -0, overflow to inf"),
        Sample((np.zeros((0, 2), dtype), np.zeros((0, 2), dtype)), {}, "empty"),
    ]


def sum_bad():
    a = arr([1.0, 2.0], F32)
    return [
        BadInput((a, arr([1.0, 2.0], F64)), {}, TypeError, ("Sum", "input 1"),
                 "dtype differs", via=("runtime",)),
        BadInput((a, arr([1.0, 2.0, 3.0], F32)), {}, ValueError, ("Sum", "input 1"),
                 "shape differs", via=("runtime",)),
        BadInput((np.array([True]),), {}, TypeError, ("Sum", "input 0"), "bool input",
                 via=("runtime",)),
    ]


def copy_ref(inputs, args):
    return (np.array(inputs[0], copy=True),)


def copy_samples(dtype):
    s = special(dtype) if np.dtype(dtype).kind == "f" else np.arange(5).astype(dtype)
    return [
        Sample((s,), {}, "specials"),
        Sample((s.reshape(1, -1)[:, ::2].copy(),), {}, "2-D"),
        Sample((np.zeros((0, 3), dtype),), {}, "empty"),
    ]


def copy_compare(got, expected, sample, dtype, what):
    (g,) = got
    (e,) = expected
    assert g.dtype == e.dtype and g.shape == e.shape, what
    assert g.tobytes() == e.tobytes(), f"{what}: Copy must be bit-identical (NaN payloads too)"


def grad_identity_samples(op_type):
    def samples(dtype):
        if np.dtype(dtype) != F64:
            return []
        xs = [uniform(52 + k, (2, 3), dtype=F64) for k in range(3 if op_type == "Sum" else 1)]
        return [GradSample(tuple(xs), {}, tuple(range(len(xs))), "identity gradient")]

    return samples


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------

TABLE: list[OpEntry] = [
    OpEntry(
        "Clip", ("X",), ("Y",), clip_ref, clip_samples, FLOATS + INTS, clip_functional,
        bad_inputs=clip_bad, bad_dtypes=(np.bool_, np.complex64, np.complex128, np.longdouble),
        grad_samples=clip_grad_check_samples, allow_inplace=frozenset({(0, 0)}),
    ),
    OpEntry(
        "ClipGradient", ("Y", "dY"), ("dX",), clip_grad_ref, clip_grad_samples,
        FLOATS + (np.dtype(np.int32), np.dtype(np.uint8)), clip_grad_functional,
        bad_inputs=clip_grad_bad, bad_dtypes=(np.bool_, np.complex64),
        allow_inplace=frozenset({(1, 0)}),
    ),
    OpEntry(
        "ThresholdedRelu", ("X",), ("Y",), trelu_ref, trelu_samples, FLOATS, trelu_functional,
        bad_inputs=trelu_bad, bad_dtypes=(np.bool_, np.int8, np.int32, np.int64, np.uint8,
                                          np.complex128),
        grad_samples=trelu_grad_check_samples, allow_inplace=frozenset({(0, 0)}),
    ),
    OpEntry(
        "ThresholdedReluGradient", ("Y", "dY", "X"), ("dX",), trelu_grad_ref,
        trelu_grad_samples, FLOATS, trelu_grad_functional, bad_inputs=trelu_grad_bad,
        bad_dtypes=(np.bool_, np.int32, np.complex64), allow_inplace=frozenset({(1, 0)}),
    ),
    OpEntry(
        "Cos", ("X",), ("Y",), cos_ref, cos_samples, FLOATS, lambda i, a: (c2.cos(i[0]),),
        exact=False, tol=COS_TOL, compare=cos_compare, bad_inputs=cos_bad,
        bad_dtypes=(np.bool_, np.int8, np.int32, np.int64, np.uint8, np.complex64,
                    np.complex128, np.longdouble),
        grad_samples=cos_grad_check_samples,
    ),
    OpEntry(
        "CosGradient", ("X", "dY"), ("dX",), cos_grad_ref, cos_grad_samples, FLOATS,
        lambda i, a: (c2.cos_gradient(i[0], i[1]),), exact=False, tol=COS_TOL,
        compare=cos_compare, bad_inputs=cos_grad_bad,
        bad_dtypes=(np.bool_, np.int32, np.complex64),
    ),
    OpEntry(
        "CosineEmbeddingCriterion", ("S", "label"), ("loss",), cec_ref, cec_samples, FLOATS,
        cec_functional, bad_inputs=cec_bad, bad_dtypes=(np.bool_, np.int32, np.complex64),
        grad_samples=cec_grad_check_samples,
    ),
    OpEntry(
        "CosineEmbeddingCriterionGradient", ("S", "label", "dLoss"), ("dS",), cec_grad_ref,
        cec_grad_samples, FLOATS, cec_grad_functional, bad_inputs=cec_grad_bad,
        bad_dtypes=(np.bool_, np.int64, np.complex64),
    ),
    OpEntry(
        "CosineSimilarity", ("X", "Y"), ("Z",), sim_ref, sim_samples, FLOATS, sim_functional,
        exact=False, tol=SIM_TOL, bad_inputs=sim_bad,
        bad_dtypes=(np.bool_, np.int32, np.complex64), grad_samples=sim_grad_check_samples,
    ),
    OpEntry(
        "CosineSimilarityGradient", ("X", "Y", "dZ"), ("dX", "dY"), sim_grad_ref,
        sim_grad_samples, FLOATS, sim_grad_functional, exact=False, tol=SIM_TOL,
        compare=sim_grad_compare, bad_inputs=sim_grad_bad,
        bad_dtypes=(np.bool_, np.int32, np.complex64),
    ),
    OpEntry(
        "SparseNormalize", ("param", "indices", "grad"), ("param",), sn_ref, sn_samples, FLOATS,
        sn_functional, exact=False, tol=SN_TOL, compare=sn_compare, bad_inputs=sn_bad,
        bad_dtypes=(np.bool_, np.int32, np.complex64), enforce_inplace=frozenset({(0, 0)}),
        mutates=(0,),
    ),
    OpEntry(
        "Float16SparseNormalize", ("param", "indices", "grad"), ("param",), sn_ref,
        sn_samples, FLOATS, None, exact=False, tol=SN_TOL, compare=sn_compare,
        bad_inputs=lambda: [
            BadInput(b.inputs, b.args, b.exc,
                     tuple("Float16SparseNormalize" if f == "SparseNormalize" else f
                           for f in b.fragments), b.desc, via=("runtime",))
            for b in sn_bad()
        ],
        bad_dtypes=(np.bool_, np.int32), enforce_inplace=frozenset({(0, 0)}),
    ),
    OpEntry(
        "ConstantFill", ("shape_source",), ("output",), fill_ref, fill_samples, FLOATS,
        bad_inputs=fill_bad,
    ),
    OpEntry(
        "Sum", ("data_0", "data_1", "data_2"), ("sum",), sum_ref, sum_samples,
        FLOATS + (np.dtype(np.int8), np.dtype(np.int32), np.dtype(np.int64)),
        bad_inputs=sum_bad, bad_dtypes=(np.bool_, np.complex64),
        grad_samples=grad_identity_samples("Sum"), allow_inplace=frozenset({(0, 0)}),
    ),
    OpEntry(
        "Copy", ("input",), ("output",), copy_ref, copy_samples,
        FLOATS + (np.dtype(np.int32), np.dtype(np.uint8), np.dtype(bool)),
        compare=copy_compare, grad_samples=grad_identity_samples("Copy"),
    ),
    OpEntry(
        "StopGradient", ("input",), ("output",), copy_ref, copy_samples,
        FLOATS + (np.dtype(np.int32), np.dtype(np.uint8), np.dtype(bool)),
        compare=copy_compare, allow_inplace=frozenset({(0, 0)}),
    ),
]

BY_NAME = {e.op: e for e in TABLE}

from optable_arith import ENTRIES as _ARITH  # noqa: E402

TABLE += _ARITH
BY_NAME.update({e.op: e for e in _ARITH})

from optable_dense import ENTRIES as _DENSE  # noqa: E402

TABLE += _DENSE
BY_NAME.update({e.op: e for e in _DENSE})

from optable_sparse import ENTRIES as _SPARSE  # noqa: E402

TABLE += _SPARSE
BY_NAME.update({e.op: e for e in _SPARSE})

from optable_clipping import ENTRIES as _CLIPPING  # noqa: E402

TABLE += _CLIPPING
BY_NAME.update({e.op: e for e in _CLIPPING})
