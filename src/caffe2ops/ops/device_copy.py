"""EnsureCPUOutput and CopyFromCPUInput (Caffe2 ``ensure_cpu_output_op``, ``copy_op``).

On the CPU both copy their input, whatever its dtype (Caffe2 emitted them around operators whose
inputs or outputs must live on the CPU, e.g. the optimizers' ``max_gradient_norm`` path).
EnsureCPUOutput has no gradient; Caffe2 registered none for CopyFromCPUInput either, so asking for
one raises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorError, OperatorTypeError
from caffe2ops.ops import _common as c
from caffe2ops.runtime.schema import NO_GRADIENT, OpSchema, register


def _copy(op: str, x: Any, out: Any = None) -> np.ndarray:
    x = c.array(op, "input", x)
    if x.dtype == object and not all(isinstance(v, bytes | str) for v in x.flat):
        raise OperatorTypeError(
            f"{op}: input must be a numeric or string tensor; got an object array holding "
            "other Python objects"
        )
    if out is None or out is x:
        return np.array(x, copy=True)
    np.copyto(out, x)
    return out


def ensure_cpu_output(x: Any) -> np.ndarray:
    """A copy of ``x`` on the CPU (a NumPy array).

    >>> import numpy as np, caffe2ops as c2
    >>> c2.ensure_cpu_output(np.array([1, 2], np.int64))
    array([1, 2])
    """
    return _copy("EnsureCPUOutput", x)


def _runner(op_type: str):
    def run(op, inputs, outs):
        x = c.array(op_type, "input", inputs[0])
        return [_copy(op_type, x, c.reusable(outs[0], x.shape, x.dtype))]

    return run


def _no_gradient_registered(ctx):
    raise OperatorError(f"{ctx.def_.type}: Caffe2 registers no gradient for this operator")


register(OpSchema(
    type="EnsureCPUOutput", kernel=_runner("EnsureCPUOutput"), inputs=("input",),
    outputs=("output",), infer=c.same_as_input(0), gradient=NO_GRADIENT,
    doc="Copy the input to a CPU output.",
))
register(OpSchema(
    type="CopyFromCPUInput", kernel=_runner("CopyFromCPUInput"), inputs=("input",),
    outputs=("output",), infer=c.same_as_input(0), gradient=_no_gradient_registered,
    doc="Copy a CPU input to the operator's device (the CPU here).",
))
