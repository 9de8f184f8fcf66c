"""Real-GPU tests: the CUDA kernels on CuPy arrays against the CPU reference kernels, the
functional API (CuPy in, CuPy out, same device) and DeviceOption(CUDA) nets.

Skipped, with the reason, without CuPy or a visible GPU, and under the simulator (where
tests/cuda_simulator/ checks the same cases on simulated device arrays). ``make gpu-check``
runs this file on a GPU machine.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from cuda_cases import case_params, check_case


def _gpu_skip_reason() -> str | None:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "the numba-cuda simulator is on: real-GPU tests need a real GPU"
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'caffe2ops[cuda12]' or '[cuda13]')"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver
        return f"CUDA is unavailable: {exc}"
    if count < 1:
        return "no CUDA device is visible"
    try:
        import numba_cuda  # noqa: F401
    except ImportError:
        return "numba-cuda is not installed"
    return None


REASON = _gpu_skip_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no GPU: {REASON}")


def _cupy():
    import cupy

    return cupy


@pytest.mark.parametrize("case,dtype", case_params(pytest))
def test_gpu_kernel_matches_reference(case, dtype):
    from caffe2ops.kernels.cuda import table

    cupy = _cupy()
    check_case(case, dtype, table.run, cupy.asarray, cupy.asnumpy)


def test_functional_cupy_in_cupy_out_same_device():
    import caffe2ops as c2

    cupy = _cupy()
    x = np.linspace(-3, 3, 1001, dtype=np.float32)
    for device_id in range(min(2, cupy.cuda.runtime.getDeviceCount())):
        with cupy.cuda.Device(device_id):
            xd = cupy.asarray(x)
        y = c2.clip(xd, -1, 1)
        assert isinstance(y, cupy.ndarray) and y.device.id == device_id
        np.testing.assert_array_equal(cupy.asnumpy(y), c2.clip(x, -1, 1))
        z = c2.cos(xd)
        assert isinstance(z, cupy.ndarray) and z.device.id == device_id
        np.testing.assert_allclose(cupy.asnumpy(z), c2.cos(x), atol=2.5e-7, rtol=2.5e-7)


def test_reductions_deterministic_on_gpu():
    import caffe2ops as c2

    cupy = _cupy()
    x = cupy.asarray(np.random.default_rng(0).standard_normal(10_000_000).astype(np.float32))
    first = cupy.asnumpy(c2.lp_norm(x, 2))
    for _ in range(3):
        assert cupy.asnumpy(c2.lp_norm(x, 2)).tobytes() == first.tobytes()


def test_cuda_net_forward_backward_matches_cpu():
    from caffe2ops import core, workspace
    from caffe2ops.proto import caffe2_pb2

    cupy = _cupy()
    cuda0 = core.DeviceOption(caffe2_pb2.CUDA, 0)
    rng = np.random.default_rng(0)
    blobs = {"x": rng.standard_normal((64, 32)), "w": rng.standard_normal((16, 32)),
             "b": rng.standard_normal(16), "label": rng.standard_normal((64, 16))}
    results = []
    for option in (None, cuda0):
        workspace.ResetWorkspace()
        for name, value in blobs.items():
            workspace.FeedBlob(name, value.astype(np.float32), option)
        net = core.Net("gpu_mlp")
        net.FC(["x", "w", "b"], "h")
        net.Tanh("h", "t")
        net.SquaredL2Distance(["t", "label"], "d")
        net.AveragedLoss("d", "loss")
        net.AddGradientOperators(["loss"])
        if option is not None:
            net.RunAllOnGPU(0)
        workspace.RunNetOnce(net)
        results.append({n: workspace.FetchBlob(n) for n in ("loss", "w_grad", "b_grad")})
    assert workspace.NumGpuDevices() >= 1 and workspace.has_gpu_support
    for name in results[0]:
        assert type(results[1][name]) is np.ndarray
        np.testing.assert_allclose(results[1][name], results[0][name], rtol=1e-4, atol=1e-5)
    assert cupy is not None
