"""SparseNormalize and its alias Float16SparseNormalize (Caffe2 ``sparse_normalize_op``).

In place on ``param`` (the output must be the param blob). For each *distinct* index i (rows are
slices along dim 0): ``n = ‖param[i]‖₂``; with ``use_max_norm`` a row with ``n <= norm`` is left
alone, otherwise ``param[i] *= norm / (n + 1e-12)``. Duplicate indices normalize a row once
(Caffe2 re-normalized it, differing in the last ulp). Indices out of range raise ``IndexError``
before anything is written. float16 params: norm and scale in float32, the row rounded once.
The optional third input (a gradient) is ignored, as in later Caffe2. No gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.errors import OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.ops._dispatch import CpuKernels
from caffe2ops.runtime.schema import SHOULD_NOT_DO_GRADIENT, Arg, OpSchema, register

KERNELS = CpuKernels("sparse_normalize")  # caffe2ops/kernels/cpu/sparse_normalize.py

OP = "SparseNormalize"
EPS = 1e-12


def _check_norm(op: str, norm: Any) -> float:
    norm = c.float_arg(op, "norm", norm)
    if not norm >= 0:
        raise OperatorValueError(f"{op}: argument 'norm' must be >= 0; got {norm}")
    return norm


def row_scales(sumsq: np.ndarray, dtype: np.dtype, norm: float, use_max: bool):
    """``(selected, scale)`` from the rows' float64 ``Σrow²``: which rows get scaled and their
    factors ``norm / (n + 1e-12)`` in the compute dtype (float32 for float16 params)."""
    ct = np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)
    n = np.sqrt(sumsq).astype(ct)
    limit = ct.type(norm)
    selected = ~(n <= limit) if use_max else np.ones(len(n), dtype=bool)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf rows: documented results
        scale = (limit / (n[selected] + ct.type(EPS))).astype(ct)
    return selected, scale


def sparse_normalize_reference(param: np.ndarray, rows: np.ndarray, norm: float, use_max: bool):
    """``rows`` are distinct, in range. Works on any strides (gathers and scatters rows)."""
    ct = np.dtype(np.float32) if param.dtype == np.float16 else param.dtype
    _, d = c.rows_view(param)
    block = param[rows].reshape(len(rows), d).astype(ct, copy=False)  # d may be 0
    sumsq = np.einsum("ij,ij->i", block, block, dtype=np.float64)
    selected, scale = row_scales(sumsq, param.dtype, norm, use_max)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = block[selected] * scale[:, None]
        param[rows[selected]] = scaled.astype(param.dtype).reshape(
            (int(selected.sum()), *param.shape[1:]))
    return param


def sparse_normalize(
    param: np.ndarray,
    indices: Any,
    norm: float = 1.0,
    use_max_norm: bool = True,
    grad: Any = None,
) -> np.ndarray:
    """Renormalize the rows ``param[indices]`` in place and return ``param``.

    ``n = ‖row‖₂``; with ``use_max_norm`` rows with ``n <= norm`` stay, others get
    ``row *= norm / (n + 1e-12)``; without it every indexed row is scaled to norm ``norm``.
    Each distinct index once; an index outside ``[0, rows)`` raises ``IndexError`` and leaves
    ``param`` untouched; ``norm < 0`` raises. ``grad`` is accepted and ignored (Caffe2 compat).

    >>> import numpy as np, caffe2ops as c2
    >>> w = np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]], dtype=np.float32)
    >>> c2.sparse_normalize(w, np.array([0, 1, 0]), norm=1.0)
    array([[0.6, 0.8],
           [0.3, 0.4],
           [6. , 8. ]], dtype=float32)
    >>> c2.sparse_normalize(w, np.array([1]), norm=2.0, use_max_norm=False)[1]
    array([1.2, 1.6], dtype=float32)
    """
    return _sparse_normalize(OP, param, indices, norm, use_max_norm)


def _sparse_normalize(op: str, param: Any, indices: Any, norm: Any, use_max_norm: Any):
    """:func:`sparse_normalize` with messages naming ``op`` (the alias when run as such)."""
    if not isinstance(param, np.ndarray):
        raise OperatorValueError(f"{op}: param must be a NumPy array (it is updated in place)")
    c.require_dtype(op, "input param", param, c.FLOAT_DTYPES, c.FLOAT_TEXT)
    if param.ndim == 0:
        raise OperatorValueError(f"{op}: input param must have at least one dimension (rows)")
    if not param.flags.writeable:
        raise OperatorValueError(f"{op}: input param is read-only (it is updated in place)")
    norm = _check_norm(op, norm)
    use_max_norm = c.bool_arg(op, "use_max_norm", use_max_norm)
    flat = c.row_indices(op, indices, param.shape[0])
    if flat.size == 0:
        return param
    kernel = KERNELS.get("sparse_normalize", param)
    if kernel is not None and param.ndim >= 1:
        n, d = c.rows_view(param)
        kernel(param.reshape(n, d), np.ascontiguousarray(flat), param.dtype.type(norm),
               use_max_norm)
        return param
    return sparse_normalize_reference(param, np.unique(flat), norm, use_max_norm)


def _run(op, inputs, outs):
    return [_sparse_normalize(op.type, inputs[0], inputs[1], op.args["norm"],
                              op.args["use_max_norm"])]


def _check_args(op_type: str, args: dict) -> None:
    _check_norm(op_type, args["norm"])


register(
    OpSchema(
        type=OP, kernel=_run, num_inputs=(2, 3), inputs=("param", "indices", "grad"),
        outputs=("output_param",),
        args=(
            Arg("use_max_norm", "bool", True, "true: cap the norm at `norm`; false: set it"),
            Arg("norm", "float", 1.0, "L2 norm of the rows"),
        ),
        enforce_inplace={(0, 0)}, infer=c.same_as_input(0), check_args=_check_args,
        gradient=SHOULD_NOT_DO_GRADIENT, doc=__doc__.split("\n\n")[1],
    ),
    "Float16SparseNormalize",
)
