"""CUDA placement. Blobs on ``DeviceOption(CUDA, i)`` are CuPy arrays; without CuPy or a GPU
every CUDA request raises a clear error instead of silently running on the CPU."""

from __future__ import annotations

from typing import Any

from caffe2ops.errors import OperatorError


def cupy_or_raise(what: str):
    try:
        import cupy
    except ImportError:
        raise OperatorError(
            f"{what}: DeviceOption(CUDA) needs CuPy (pip install 'caffe2ops[cuda]'), "
            "which is not installed"
        ) from None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise OperatorError(f"{what}: DeviceOption(CUDA) but no CUDA device is visible")
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        raise OperatorError(f"{what}: DeviceOption(CUDA) but CUDA is unavailable: {exc}") from None
    return cupy


def run_cuda(op, inputs, outs) -> list[Any]:
    cupy_or_raise(op.type)
    raise OperatorError(
        f"{op.type}: this version of caffe2ops has no CUDA kernels yet; run it with "
        "DeviceOption(CPU)"
    )
