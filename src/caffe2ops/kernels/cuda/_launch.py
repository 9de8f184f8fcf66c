"""Launch shapes, device arrays and the compute dtypes shared by the CUDA kernels.

Under the simulator every thread is a Python thread, so blocks are small and few (the
grid-stride loops still run more than once per thread on the tests' inputs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import config, cuda, float32, float64

SIMULATOR = bool(config.ENABLE_CUDASIM)
THREADS = 16 if SIMULATOR else 256  # threads per block (element-wise, reductions)
ROW_THREADS = 8 if SIMULATOR else 128  # threads per block for one row
MAX_BLOCKS = 3 if SIMULATOR else 132 * 32
REDUCE_BLOCKS = 3 if SIMULATOR else 1024  # fixed: the reduction order never depends on n


def blocks(n: int) -> int:
    return max(1, min(MAX_BLOCKS, (n + THREADS - 1) // THREADS))


def compute_type(dtype: np.dtype):
    """float16 (and bfloat16) compute in float32; float64 in float64."""
    return float64 if np.dtype(dtype) == np.float64 else float32


def compute_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def is_device_array(x: Any) -> bool:
    """A GPU array (``__cuda_array_interface__``) or, under the simulator, its device array."""
    if hasattr(x, "__cuda_array_interface__"):
        return True
    if not SIMULATOR:
        return False
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    return isinstance(x, FakeCUDAArray)


def _cupy():
    if SIMULATOR:
        return None
    import cupy

    return cupy


def empty(shape: tuple, dtype: Any) -> Any:
    """A new device array: CuPy on a GPU (current device), a simulator array under the simulator."""
    cupy = _cupy()
    if cupy is None:
        return cuda.device_array(shape, np.dtype(dtype))
    return cupy.empty(shape, dtype)


def zeros(shape: tuple, dtype: Any) -> Any:
    cupy = _cupy()
    if cupy is None:
        return cuda.to_device(np.zeros(shape, dtype))
    return cupy.zeros(shape, dtype)


def to_device(x: np.ndarray) -> Any:
    cupy = _cupy()
    if cupy is None:
        return cuda.to_device(np.require(x, requirements="C"))
    return cupy.asarray(x)


def to_host(x: Any) -> np.ndarray:
    if hasattr(x, "get"):
        return x.get()
    return x.copy_to_host()


def flat(x: Any) -> Any:
    """A 1-D view of a C-contiguous device array."""
    return x.reshape((x.size,))


def rows2d(x: Any, rows: int) -> Any:
    return x.reshape((rows, x.size // rows if rows else 0))


def contiguous(op: str, what: str, x: Any) -> Any:
    from caffe2ops.errors import OperatorValueError

    cai = getattr(x, "__cuda_array_interface__", None)
    if cai is not None and cai.get("strides") is not None:
        expect = np.empty(x.shape, x.dtype).strides
        if tuple(cai["strides"]) != expect and x.size > 1:
            raise OperatorValueError(f"{op}: {what} must be a C-contiguous GPU array")
    return x


# Products that feed an addition are rounded on their own (``__nv_fmul_rn``/``__nv_dmul_rn``):
# NVVM contracts ``a*b + c`` into one fused multiply-add by default, which rounds once and would
# differ from the CPU reference's two roundings. The simulator computes with NumPy scalars (no
# contraction; its libdevice stand-ins are not usable), so there a plain product is the same.
if SIMULATOR:
    @cuda.jit(device=True)
    def mul32(a, b):
        return a * b

    mul64 = mul32
else:
    from numba.cuda import libdevice

    @cuda.jit(device=True)
    def mul32(a, b):
        return libdevice.fmul_rn(a, b)

    @cuda.jit(device=True)
    def mul64(a, b):
        return libdevice.dmul_rn(a, b)


def rounded_mul(ct):
    """The separately rounded product for compute type ``ct``."""
    return mul64 if ct is float64 else mul32
