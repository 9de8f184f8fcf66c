"""The parity cases: every sample of tests/optable.py (every dtype an entry lists), plus cases
for the clipping-family operators that live outside the table. Float arguments travel as
Argument.f (Caffe2 refused ints for float arguments; that departure has its own test)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from optable import TABLE, special, uniform

from caffe2ops.runtime.schema import get_schema, registered_types

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


@dataclass
class Case:
    op: str
    inputs: tuple
    input_names: tuple
    output_names: tuple
    args: dict = field(default_factory=dict)
    desc: str = ""


def float_args(op: str, args: dict) -> dict:
    """Int values of float-kind arguments as floats (Caffe2 reads Argument.f only)."""
    schema = get_schema(op)
    out = {}
    for key, value in args.items():
        spec = schema.arg_map.get(key)
        if spec is not None and spec.kind == "float" and isinstance(value, int) \
                and not isinstance(value, bool):
            value = float(value)
        out[key] = value
    return out


#: Table samples Caffe2 cannot run: C's INT_MIN / -1 traps (SIGFPE kills Caffe2; we wrap).
NOT_RUNNABLE_IN_CAFFE2 = ("INT_MIN / -1",)


def _table_cases() -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}
    for entry in TABLE:
        for dtype in entry.dtypes:
            for s in entry.samples(dtype):
                if any(marker in s.desc for marker in NOT_RUNNABLE_IN_CAFFE2):
                    continue
                outs = entry.output_names if entry.outputs_for is None else \
                    entry.outputs_for(s.inputs)
                out.setdefault(entry.op, []).append(Case(
                    entry.op, tuple(s.inputs), tuple(entry.input_names[: len(s.inputs)]),
                    tuple(outs), float_args(entry.op, s.args),
                    f"{np.dtype(dtype).name}: {s.desc}"))
    return out


def _extra_cases() -> dict[str, list[Case]]:
    out: dict[str, list[Case]] = {}

    def add(op, inputs, ins, outs, args=None, desc=""):
        out.setdefault(op, []).append(Case(op, tuple(inputs), tuple(ins), tuple(outs),
                                           float_args(op, args or {}), desc))

    for dtype in (F16, F32, F64):
        s = special(dtype)
        x = uniform(90, (3, 4), dtype=dtype)
        pos = uniform(91, (3, 4), 0.1, 4.0, dtype)
        name = dtype.name
        for val in (0.5, 3.0, np.inf, np.nan):
            add("ClipTensorByScaling", [x, np.array([val], dtype)], ["X", "val"], ["Y"],
                {"threshold": 1.0}, f"{name}: val {val}")
        add("ClipTensorByScaling", [x, np.array([4.0], dtype), np.array([0.5], dtype)],
            ["X", "val", "extra"], ["Y"], {"threshold": 1.5}, f"{name}: additional_threshold")
        add("ClipTensorByScaling", [np.zeros((0, 2), dtype), np.array([4.0], dtype)],
            ["X", "val"], ["Y"], {"threshold": 1.0}, f"{name}: empty")
        add("EnsureClipped", [s], ["P"], ["P"], {"min": -1.0, "max": 2.0}, f"{name}: dense")
        add("EnsureClipped", [s], ["P"], ["P"], {"min": 1.0, "max": -1.0}, f"{name}: min > max")
        add("EnsureClipped", [x, np.array([2, 0, 2], np.int64), x[[2, 0, 2]]],
            ["P", "I", "G"], ["P"], {"min": -0.3, "max": 0.3}, f"{name}: sparse, duplicates")
        for p in (1, 2):
            for average in (0, 1):
                for xin, d in ((s, "specials"), (x, "random"), (np.zeros(0, dtype), "empty")):
                    add("LpNorm", [xin], ["X"], ["N"], {"p": p, "average": average},
                        f"{name}: p={p} average={average} {d}")
                    add("LpNormGradient", [xin, np.array([1.5], dtype)], ["X", "dN"], ["dX"],
                        {"p": p, "average": average}, f"{name}: p={p} average={average} {d}")
        for e in (0.5, 2.0, -1.0, 3.0, 1.5, 0.0):
            add("Pow", [s], ["X"], ["Y"], {"exponent": e}, f"{name}: specials ^ {e}")
            add("Pow", [pos], ["X"], ["Y"], {"exponent": e}, f"{name}: random ^ {e}")
        add("Pow", [pos, uniform(92, (3, 4), -2.0, 2.0, dtype)], ["X", "E"], ["Y"], {},
            f"{name}: exponent tensor")
        add("Pow", [pos, np.array([1.5], dtype)], ["X", "E"], ["Y"], {"broadcast": 1},
            f"{name}: exponent scalar, broadcast")
        b = uniform(93, (3, 4), 0.5, 2.0, dtype)
        add("Div", [x, b], ["A", "B"], ["C"], {}, f"{name}: same shape")
        add("Div", [s, s[::-1].copy()], ["A", "B"], ["C"], {}, f"{name}: specials")
        add("Div", [x, b[0]], ["A", "B"], ["C"], {}, f"{name}: NumPy broadcast")
        add("Div", [x, b[:, 0].copy()], ["A", "B"], ["C"], {"broadcast": 1, "axis": 0},
            f"{name}: legacy broadcast axis 0")
        dc = uniform(94, (3, 4), dtype=dtype)
        c_full = (x / b).astype(dtype)
        add("DivGradient", [dc, x, b, c_full], ["dC", "A", "B", "C"], ["dA", "dB"], {},
            f"{name}: (dC, A, B, C)")
        add("DivGradient", [b, c_full, dc], ["B", "C", "dC"], ["dA", "dB"], {},
            f"{name}: legacy (B, C, dC)")
        c_row = (x / b[0]).astype(dtype)
        add("DivGradient", [dc, x, b[0].copy(), c_row], ["dC", "A", "B", "C"], ["dA", "dB"], {},
            f"{name}: NumPy broadcast, dB summed")
        c_col = (x / b[:, :1]).astype(dtype)
        add("DivGradient", [dc, x, b[:, 0].copy(), c_col], ["dC", "A", "B", "C"],
            ["dA", "dB"], {"broadcast": 1, "axis": 0}, f"{name}: legacy broadcast, dB summed")
        add("DivGradient", [b[:, 0].copy(), c_col, dc], ["B", "C", "dC"], ["dA", "dB"],
            {"broadcast": 1, "axis": 0}, f"{name}: legacy inputs and broadcast")
    for dtype in (np.dtype(np.int32), np.dtype(np.int64)):  # Caffe2's integer Div (no zeros:
        # a zero divisor crashed Caffe2 with SIGFPE, so it cannot be sent to the worker)
        name = dtype.name
        a = np.array([[7, -7, 7, -7, 0, 5], [100, -101, 3, 1, -1, 2**20]], dtype)
        b = np.array([[2, 2, -2, -2, 3, 1], [7, 7, -3, 5, 2, -3]], dtype)
        add("Div", [a, b], ["A", "B"], ["C"], {}, f"{name}: truncation toward zero")
        add("Div", [a, b[0].copy()], ["A", "B"], ["C"], {}, f"{name}: NumPy broadcast")
        add("Div", [a, b[:, 0].copy()], ["A", "B"], ["C"], {"broadcast": 1, "axis": 0},
            f"{name}: legacy broadcast")
        q = (np.trunc(a / b)).astype(dtype)
        dc = np.ones_like(a) * 9
        add("DivGradient", [dc, a, b, q], ["dC", "A", "B", "C"], ["dA", "dB"], {},
            f"{name}: (dC, A, B, C)")
        add("DivGradient", [b, q, dc], ["B", "C", "dC"], ["dA", "dB"], {}, f"{name}: legacy")
    return out


def all_cases() -> dict[str, list[Case]]:
    cases = _table_cases()
    for op, extra in _extra_cases().items():
        cases.setdefault(op, []).extend(extra)
    return cases


CASES = all_cases()
# Registered operators with no Caffe2 counterpart to compare against.
NOT_IN_CAFFE2 = {"PowGradient": "ours only: Caffe2's Pow gradient is a sequence of ops",
                 "Python": "runs a user's function (tests/test_caffe2_api.py, caffe2-suite)",
                 "PythonGradient": "runs a user's function (tests/test_caffe2_api.py)"}


def _own_parity_files() -> frozenset[str]:
    """Families whose forward, gradient numbers and gradient defs are compared in their own
    parity files (test_dense_ops.py, test_sparse_ops.py) with their own bounds."""
    from optable_dense import ENTRIES as DENSE
    from optable_sparse import ENTRIES as SPARSE

    return frozenset(e.op for e in (*DENSE, *SPARSE))


OWN_FILES = _own_parity_files()


def operators() -> list[str]:
    return [op for op in registered_types() if op not in NOT_IN_CAFFE2 and op not in OWN_FILES]
