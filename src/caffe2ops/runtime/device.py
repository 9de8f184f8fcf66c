"""CUDA placement. Blobs on ``DeviceOption(CUDA, i)`` are CuPy arrays on GPU i; operators with
that device option run their CUDA runners (``caffe2ops.kernels.cuda``). Without CuPy or a GPU
every CUDA request raises a clear error instead of silently running on the CPU.

Under numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``, the CI mode for testing the CUDA
kernels without a GPU) device blobs are the simulator's device arrays instead of CuPy arrays;
``gpu_count()`` stays 0 there, since no GPU exists.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from caffe2ops.errors import OperatorError


def simulator() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def cupy_or_raise(what: str):
    try:
        import cupy
    except ImportError:
        raise OperatorError(
            f"{what}: DeviceOption(CUDA) needs CuPy (pip install 'caffe2ops[cuda12]' or "
            "'caffe2ops[cuda13]'), which is not installed"
        ) from None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise OperatorError(f"{what}: DeviceOption(CUDA) but no CUDA device is visible")
    except cupy.cuda.runtime.CUDARuntimeError as exc:
        raise OperatorError(f"{what}: DeviceOption(CUDA) but CUDA is unavailable: {exc}") from None
    return cupy


def gpu_count() -> int:
    """The number of visible CUDA devices CuPy can use (0 without CuPy, a driver or a GPU)."""
    if simulator():
        return 0
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no CuPy, no driver, no device: no GPU support
        return 0


def on_device(what: str, device_id: int):
    """A context that makes GPU ``device_id`` current (nothing under the simulator)."""
    if simulator():
        return contextlib.nullcontext()
    cupy = cupy_or_raise(what)
    if not 0 <= device_id < cupy.cuda.runtime.getDeviceCount():
        raise OperatorError(f"{what}: DeviceOption(CUDA, {device_id}) but only "
                            f"{cupy.cuda.runtime.getDeviceCount()} CUDA device(s) are visible")
    return cupy.cuda.Device(device_id)


def to_device(what: str, array: Any, device_id: int) -> Any:
    """A copy of host ``array`` on GPU ``device_id``."""
    import numpy as np

    host = np.array(array, copy=True)
    if simulator():
        from numba import cuda

        return cuda.to_device(np.require(host, requirements="C"))
    cupy = cupy_or_raise(what)
    with on_device(what, device_id):
        return cupy.array(host, copy=True)


def is_device_array(x: Any) -> bool:
    return hasattr(x, "__cuda_array_interface__") or type(x).__name__ == "FakeCUDAArray"


def to_host(x: Any) -> Any:
    """A NumPy copy of a device array."""
    if hasattr(x, "get"):
        return x.get()
    return x.copy_to_host()


