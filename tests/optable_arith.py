"""Table entries (see optable.py) for the operators Caffe2's gradient definitions emit: Add, Sub,
Mul and their gradients, Scale, CopyOnDeviceLike. References are written from the formulas
(Caffe2's elementwise_*_op): forward in the dtype; Add/Sub gradients summed in float64 and
rounded once; Mul's gradient, where an input was broadcast, accumulated from +0 in the dtype in
the order of C's elements (Caffe2's loop)."""

from __future__ import annotations

import numpy as np
from optable import (
    F32,
    F64,
    FLOATS,
    BadInput,
    GradSample,
    OpEntry,
    Sample,
    arr,
    copy_compare,
    copy_ref,
    copy_samples,
    rounded,
    special,
    uniform,
)

from caffe2ops.errors import SchemaError
from caffe2ops.ops.elementwise import binary, binary_gradient, scale

INT32, INT64 = np.dtype(np.int32), np.dtype(np.int64)
BINARY_DTYPES = FLOATS + (INT32, INT64)
_UFUNC = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}


def legacy_view(a_shape, b_shape, axis):
    """B's shape for NumPy broadcasting under Caffe2's legacy rule (test-side formula)."""
    if int(np.prod(b_shape)) == 1:
        return ()
    if axis == -1:
        axis = len(a_shape) - len(b_shape)
    return (1,) * axis + tuple(b_shape) + (1,) * (len(a_shape) - axis - len(b_shape))


def _b_view(a, b, args):
    return b.reshape(legacy_view(a.shape, b.shape, args.get("axis", -1))) \
        if args.get("broadcast") else b


def binary_ref(op):
    def ref(inputs, args):
        a, b = inputs
        with np.errstate(all="ignore"):
            return (_UFUNC[op](a, _b_view(a, b, args)),)
    return ref


def _values(dtype, seed, shape):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return np.random.default_rng(seed).integers(-50, 50, size=shape).astype(dtype)
    return uniform(seed, shape, -3.0, 3.0, dtype)


def binary_samples(dtype):
    dtype = np.dtype(dtype)
    a = _values(dtype, 60, (2, 3))
    samples = [
        Sample((a, _values(dtype, 61, (2, 3))), {}, "same shape"),
        Sample((a, _values(dtype, 62, (3,))), {}, "NumPy broadcast of a row"),
        Sample((_values(dtype, 63, (2, 1)), _values(dtype, 64, (1, 3))), {},
               "NumPy broadcast both ways"),
        Sample((a, _values(dtype, 65, (2,))), {"broadcast": 1, "axis": 0},
               "legacy broadcast, axis 0"),
        Sample((_values(dtype, 66, (2, 3, 4)), _values(dtype, 67, (3, 4))), {"broadcast": 1},
               "legacy broadcast, trailing"),
        Sample((a, _values(dtype, 68, (1,))), {"broadcast": 1}, "legacy scalar B"),
        Sample((np.zeros((0, 3), dtype), np.zeros((0, 3), dtype)), {}, "empty"),
    ]
    if dtype.kind == "f":
        s = special(dtype)
        samples.append(Sample((s, s[::-1].copy()), {}, "specials: inf-inf, 0*inf, -0, max"))
    else:
        info = np.iinfo(dtype)
        samples.append(Sample((np.array([info.max, info.min, 7], dtype),
                               np.array([1, -1, -7], dtype)), {}, "wraps around"))
    return samples


def binary_bad(op):
    def bad():
        a = arr([[1.0, 2.0, 3.0]], F32)
        return [
            BadInput((a, arr([1.0, 2.0], F32)), {}, ValueError, (op, "cannot be broadcast"),
                     "shapes do not broadcast"),
            BadInput((a, arr([1.0, 2.0, 3.0], F64)), {}, TypeError, (op, "input B"),
                     "dtype differs"),
            BadInput((a, arr([1.0, 2.0], F32)), {"broadcast": 1}, ValueError,
                     (op, "broadcast dimension mismatch"), "legacy broadcast mismatch"),
        ]
    return bad


def _accumulate(terms, shape, dtype):
    """out[j] += terms[i] over C's elements in C order, from +0, one dtype rounding per add."""
    out = np.zeros(int(np.prod(shape)), dtype)
    index = np.broadcast_to(np.arange(out.size).reshape(shape), terms.shape).reshape(-1)
    for i, t in zip(index, terms.reshape(-1), strict=True):
        with np.errstate(all="ignore"):
            out[i] = dtype.type(out[i] + t)
    return out.reshape(shape)


def _sum_to(g, shape):
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


def binary_grad_ref(op):
    def ref(inputs, args):
        dc, a, b = inputs
        bv = _b_view(a, b, args)
        view = bv.shape
        dtype = dc.dtype
        if op == "Mul":
            with np.errstate(all="ignore"):
                if a.shape == b.shape:
                    return dc * bv, dc * a
                return (_accumulate(dc * bv, a.shape, dtype),
                        _accumulate(dc * a, view, dtype).reshape(b.shape))
        wide = dc.astype(np.float64) if dtype.kind == "f" else dc
        da = _sum_to(wide, a.shape).astype(dtype)
        db = _sum_to(wide, view).astype(dtype).reshape(b.shape)
        with np.errstate(all="ignore"):
            return (da, -db if op == "Sub" else db)
    return ref


def binary_grad_samples(dtype):
    out = []
    for k, s in enumerate(binary_samples(dtype)):
        a, b = s.inputs
        c_shape = a.shape if s.args.get("broadcast") else np.broadcast_shapes(a.shape, b.shape)
        dc = _values(dtype, 70 + k, c_shape)
        if np.dtype(dtype).kind == "f" and dc.size:
            dc.reshape(-1)[0] = -0.0  # -0 terms: +0 once accumulated
        out.append(Sample((dc, a, b), s.args, f"gradient: {s.desc}"))
    return out


def binary_grad_bad(op):
    def bad():
        a = arr([[1.0, 2.0, 3.0]], F32)
        return [
            BadInput((arr([1.0, 2.0], F32), a, a), {}, ValueError, (op, "input dC"),
                     "dC has the wrong shape"),
            BadInput((a, a, arr([1.0, 2.0, 3.0], F64)), {}, TypeError, (op, "input B"),
                     "dtype differs"),
        ]
    return bad


def binary_grad_check(op):
    def samples(dtype):
        if np.dtype(dtype) != F64:
            return []
        a, b = uniform(80, (2, 3), 0.5, 2.0, F64), uniform(81, (3,), 0.5, 2.0, F64)
        return [GradSample((a, b), {}, (0, 1), f"{op} with a broadcast row"),
                GradSample((a, uniform(82, (2,), 0.5, 2.0, F64)), {"broadcast": 1, "axis": 0},
                           (0, 1), f"{op} legacy broadcast")]
    return samples


def scale_ref(inputs, args):
    (x,) = inputs
    with np.errstate(all="ignore"):
        return (x * x.dtype.type(rounded(args.get("scale", 1.0), x.dtype)),)


def scale_samples(dtype):
    s = special(dtype)
    return [
        Sample((s,), {"scale": 2.0}, "specials doubled: max overflows to inf"),
        Sample((s,), {"scale": -0.5}, "negative scale: signs flip, -0"),
        Sample((s,), {"scale": 0.0}, "zero scale: inf*0 = NaN"),
        Sample((s,), {}, "default scale 1"),
        Sample((uniform(83, (2, 3), dtype=dtype),), {"scale": 0.1}, "0.1 rounded to the dtype"),
        Sample((np.zeros((0, 2), dtype),), {"scale": 3.0}, "empty"),
    ]


def scale_bad():
    return [BadInput((arr([1.0], F32),), {"scale": "two"}, TypeError, ("Scale", "scale"),
                     "string scale", via=("runtime",))]


def scale_grad_check(dtype):
    if np.dtype(dtype) != F64:
        return []
    return [GradSample((uniform(84, (2, 3), dtype=F64),), {"scale": -1.5}, (0,), "Scale")]


def like_samples(dtype):
    return [Sample((x, np.zeros(1, np.float32)), s.args, s.desc)
            for s in copy_samples(dtype) for x in s.inputs[:1]]


def like_ref(inputs, args):
    return copy_ref(inputs[:1], args)


def _functional(op):
    return lambda i, a: (binary(op, i[0], i[1], broadcast=bool(a.get("broadcast", False)),
                                axis=a.get("axis", -1)),)


def _grad_functional(op):
    return lambda i, a: binary_gradient(op, i[0], i[1], i[2],
                                        broadcast=bool(a.get("broadcast", False)),
                                        axis=a.get("axis", -1))


ENTRIES: list[OpEntry] = []
for _op in ("Add", "Sub", "Mul"):
    ENTRIES.append(OpEntry(
        _op, ("A", "B"), ("C",), binary_ref(_op), binary_samples, BINARY_DTYPES,
        _functional(_op), bad_inputs=binary_bad(_op), bad_dtypes=(np.bool_, np.complex64),
        grad_samples=binary_grad_check(_op), allow_inplace=frozenset({(0, 0), (1, 0)}),
    ))
    ENTRIES.append(OpEntry(
        f"{_op}Gradient", ("dC", "A", "B"), ("dA", "dB"), binary_grad_ref(_op),
        binary_grad_samples, BINARY_DTYPES, _grad_functional(_op),
        bad_inputs=binary_grad_bad(f"{_op}Gradient"), bad_dtypes=(np.bool_, np.complex64),
        allow_inplace=frozenset({(0, 0), (0, 1)}),
    ))
ENTRIES += [
    OpEntry(
        "Scale", ("X",), ("Y",), scale_ref, scale_samples, FLOATS,
        lambda i, a: (scale(i[0], a.get("scale", 1.0)),), bad_inputs=scale_bad,
        bad_dtypes=(np.bool_, np.complex64), grad_samples=scale_grad_check,
        allow_inplace=frozenset({(0, 0)}),
    ),
    OpEntry(
        "CopyOnDeviceLike", ("X", "like"), ("Y",), like_ref, like_samples,
        FLOATS + (np.dtype(np.int32), np.dtype(np.uint8), np.dtype(bool)),
        compare=copy_compare,
        bad_inputs=lambda: [BadInput((arr([1.0], F32),), {}, SchemaError,
                                     ("CopyOnDeviceLike", "2"), "one input only",
                                     via=("runtime",))],
    ),
]
