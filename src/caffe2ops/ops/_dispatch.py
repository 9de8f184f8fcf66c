"""Choose the kernel: by array kind (NumPy -> CPU, a GPU array -> CUDA), then the fused Numba one
where it applies, else the NumPy reference.

Each ``ops/<family>.py`` names its CPU kernel module in one line, ``KERNELS = CpuKernels("clip")``
(``caffe2ops/kernels/cpu/clip.py``), and asks it for an entry point with the arrays it would
read and write: ``KERNELS.get("clip", x, y)`` is that module's ``clip`` when every array is
C-contiguous with a dtype the module lists for it (``DTYPES``; float32/float64 by default), else
None. An unknown entry point name raises AttributeError (a typo cannot silently fall back).
Anything else, and everything inside ``reference_kernels()`` (per thread), runs the reference
kernel. Both give the
same bits (Cos/Sin within the contract's tolerance), which the table-driven tests check.

Numba costs ~0.3 s to import, so the first call that could use a fast kernel starts loading it on
a background thread and runs the reference kernel meanwhile: no call waits for the compiler.
``caffe2ops.kernels.load()`` loads them now (benchmarks use it to time the fast path only).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from caffe2ops import kernels
from caffe2ops.proto import caffe2_pb2
from caffe2ops.runtime.schema import register_device_runner


class _Reference(threading.local):
    on = False


_reference = _Reference()


_FLOATS = frozenset(np.dtype(t) for t in (np.float32, np.float64))


class CpuKernels:
    """The CPU kernel module of one operator family (``caffe2ops.kernels.cpu.<family>``)."""

    __slots__ = ("family", "_module")

    def __init__(self, family: str) -> None:
        self.family = family
        self._module: Any = None

    def get(self, name: str, *arrays: np.ndarray) -> Callable | None:
        """Entry point ``name`` if the kernels have loaded and suit ``arrays``, else None."""
        if _reference.on:
            return None
        mod = self._module
        if mod is None:
            package = kernels.loaded_module()
            if package is None:
                return None
            mod = self._module = package.family(self.family)
        fn = getattr(mod, name)
        dtypes = getattr(mod, "DTYPES", {}).get(name, _FLOATS)
        for a in arrays:
            if not a.flags.c_contiguous or a.dtype not in dtypes:
                return None
        return fn


@contextlib.contextmanager
def reference_kernels() -> Iterator[None]:
    """Run every operator with its NumPy reference kernel inside this block (this thread only;
    other threads keep their own setting)."""
    old = _reference.on
    _reference.on = True
    try:
        yield
    finally:
        _reference.on = old


# -- by device: a net's CUDA operators, and by array kind: GPU arrays in a functional call -----


def run_on_cuda(op: Any, inputs: list, outs: list) -> list:
    """Run ``op`` (an Operator with a CUDA device option) with its CUDA runner, on its device."""
    from caffe2ops.kernels import cuda
    from caffe2ops.runtime.device import on_device

    with on_device(op.type, op.definition.device_option.device_id):
        return cuda.load().run(op, inputs, outs)


register_device_runner(caffe2_pb2.CUDA, run_on_cuda)

def _is_device_array(x: Any) -> bool:
    from caffe2ops.runtime.device import is_device_array

    return is_device_array(x)


class _FunctionalOp:
    """What a CUDA runner reads of an operator: its type and parsed arguments."""

    __slots__ = ("type", "args")

    def __init__(self, op_type: str, args: dict) -> None:
        self.type = op_type
        self.args = args


def by_array_kind(fn: Callable, name: str) -> Callable:
    """``fn`` for NumPy inputs; with a GPU array among the inputs, the CUDA runner of the same
    operator, on that array's device (CuPy in, CuPy out)."""
    import functools
    import inspect

    from caffe2ops.kernels.cuda.functional import SPECS

    op_type, input_names, arg_names, outputs, result = SPECS[name]
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def dispatch(*args: Any, **kwargs: Any):
        if (args and type(args[0]) is np.ndarray) or not any(
                _is_device_array(v) for v in (*args, *kwargs.values())):
            return fn(*args, **kwargs)
        return _run_on_device(signature.bind(*args, **kwargs))

    def _run_on_device(bound):
        from caffe2ops.kernels.cuda import table
        from caffe2ops.runtime.schema import get_schema

        bound.apply_defaults()
        values = bound.arguments
        inputs = []
        for p in input_names:
            if p.startswith("*"):
                inputs.extend(values[p[1:]])
            else:
                inputs.append(values[p])
        while inputs and inputs[-1] is None:
            inputs.pop()
        op_args = {a.name: a.default for a in get_schema(op_type).args}
        op_args.update({p: values[p] for p in arg_names})
        n_out = outputs if isinstance(outputs, int) else (
            outputs[1] if values[outputs[0]] else outputs[2])
        out = values.get("out")
        outs = list(out) if isinstance(out, tuple | list) else [out]
        outs = (outs + [None] * n_out)[:n_out]
        first = next(v for v in inputs if _is_device_array(v))
        context = getattr(first, "device", None)
        with context if hasattr(context, "__enter__") else contextlib.nullcontext():
            got = table.run(_FunctionalOp(op_type, op_args), inputs, outs)
        for given, g in zip(outs, got, strict=False):
            if given is not None and given is not g:
                from caffe2ops.errors import OperatorValueError

                raise OperatorValueError(
                    f"{op_type}: out must be a GPU array of the result's shape and dtype that "
                    "does not overlap an input the kernel still reads")
        if result == "one":
            return got[0]
        if result == "fc_gradient":
            return (got[0], got[1], got[2] if len(got) == 3 else None)
        return tuple(got)

    dispatch.__wrapped_cpu__ = fn
    return dispatch
