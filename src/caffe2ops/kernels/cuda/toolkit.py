"""``clip_by_global_norm`` on the GPU: CuPy arrays or torch CUDA tensors (zero-copy through
DLPack) in, the same kind out.

One fused norm pass (every array's partial sums into one buffer, one combining launch: no host
synchronisation between arrays), one read of the per-array norms to the host (the stats need
them), the factor computed there with the CPU toolkit's own formula (``combine``, ``max_norm /
n``), then one scale pass. ``nonfinite="propagate"`` (the default) and ``"raise"`` are supported;
``"skip"`` and ``"zero"`` raise (no CUDA path yet).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from caffe2ops.clipping._common import (
    ClipStats,
    check_max_norm,
    check_nonfinite,
    combine,
    norm_dtype,
    ord_code,
)
from caffe2ops.errors import OperatorValueError
from caffe2ops.kernels.cuda import elementwise as ew
from caffe2ops.kernels.cuda import reductions as red
from caffe2ops.kernels.cuda._launch import empty, is_device_array, to_host

_ORD = {1: 1.0, 2: 2.0, 0: float("inf")}
FN = "clip_by_global_norm"


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and getattr(x, "is_cuda", False)


def is_gpu_input(arrays: Any) -> bool:
    """Whether ``arrays`` (one, a list/tuple or a dict) holds GPU arrays or CUDA tensors."""
    values = arrays.values() if isinstance(arrays, dict) else (
        arrays if isinstance(arrays, list | tuple) else [arrays])
    return any(is_device_array(v) or _is_torch(v) for v in values)


def clip_by_global_norm(arrays: Any, max_norm: float, ord: Any = 2,
                        nonfinite: str = "propagate", inplace: bool = False):
    limit = check_max_norm(FN, max_norm)
    code = ord_code(FN, ord)
    check_nonfinite(FN, nonfinite)
    if nonfinite not in ("propagate", "raise"):
        raise OperatorValueError(f"{FN}: nonfinite={nonfinite!r} has no CUDA path yet; use "
                                 "'propagate' or 'raise'")
    if isinstance(arrays, dict):
        keys, values, kind = list(arrays), list(arrays.values()), "dict"
    elif isinstance(arrays, list | tuple):
        keys, values, kind = None, list(arrays), type(arrays)
    else:
        keys, values, kind = None, [arrays], "single"
    torch_in = [_is_torch(v) for v in values]
    if any(torch_in):
        import cupy

        items = [cupy.from_dlpack(v.detach()) if t else v
                 for v, t in zip(values, torch_in, strict=True)]
    else:
        items = values
    for k, a in enumerate(items):
        if not is_device_array(a):
            raise OperatorValueError(f"{FN}: array {k} is not on the GPU while others are")
        if np.dtype(a.dtype).kind != "f":
            raise OperatorValueError(f"{FN}: array {k} must be a float array; got {a.dtype}")
    ndt = norm_dtype(items)
    norms = to_host(red.norms(items, _ORD[code])) if items else np.zeros(0)
    if nonfinite == "raise":
        bad = np.flatnonzero(~np.isfinite(norms))
        if bad.size:
            raise OperatorValueError(f"{FN}: array {int(bad[0])} has a NaN or infinite entry")
    total = ndt.type(combine(norms, code))
    if not np.isfinite(total):
        factor = float("nan")
    elif total > limit:
        factor = limit / float(total)
    else:
        factor = 1.0
    outs = []
    for a in items:
        out = a if inplace else empty(a.shape, a.dtype)
        if factor == 1.0:
            outs.append(a if inplace else ew.copy(a, out))
        else:
            outs.append(ew.scale(a, factor, out))
    if any(torch_in):
        import torch

        outs = [torch.from_dlpack(o) if t else o for o, t in zip(outs, torch_in, strict=True)]
        if inplace:
            outs = values
    stats = ClipStats(total_norm=total, scale=ndt.type(factor),
                      num_clipped=len(items) if factor != 1.0 else 0, nonfinite=False,
                      norms=_per_array(norms.astype(ndt), kind, keys))
    if kind == "single":
        return outs[0], stats
    if kind == "dict":
        return dict(zip(keys, outs, strict=True)), stats
    return kind(outs), stats


def _per_array(vec: np.ndarray, kind: Any, keys: list | None) -> Any:
    """As the CPU toolkit: a scalar for one array, a dict for a dict, else the vector."""
    if kind == "single":
        return vec[0]
    if kind == "dict":
        return dict(zip(keys, vec, strict=True))
    return vec
