"""Kernel dispatch: fast kernels where they apply, reference kernels elsewhere and while loading."""

import subprocess
import sys
import textwrap

import numpy as np

import caffe2ops as c2
from caffe2ops.ops import _dispatch


def test_fast_kernel_chosen_for_contiguous_float32_and_float64():
    for dtype in (np.float32, np.float64):
        x = np.zeros(10, dtype)
        assert _dispatch.fast("clip", x, x) is not None
        assert _dispatch.fast("cos", x, x) is not None


def test_reference_kernel_for_float16_strided_and_inside_reference_kernels():
    assert _dispatch.fast("clip", np.zeros(4, np.float16)) is None
    assert _dispatch.fast("cos", np.zeros(8, np.float32)[::2]) is None
    assert _dispatch.fast("clip", np.zeros(4, np.int8)) is not None  # Clip takes integers
    assert _dispatch.fast("cos", np.zeros(4, np.int8)) is None
    with c2.reference_kernels():
        assert _dispatch.fast("clip", np.zeros(4, np.float32)) is None
    assert _dispatch.fast("clip", np.zeros(4, np.float32)) is not None


def test_first_call_runs_reference_kernel_while_numba_loads_in_background():
    code = textwrap.dedent("""
        import numpy as np
        import caffe2ops as c2
        from caffe2ops import kernels
        x = np.array([-2.0, 0.5, 3.0], dtype=np.float32)
        y = c2.clip(x, -1.0, 1.0)
        assert kernels.loaded_module() is None, "first call waited for the kernels"
        assert kernels.load() is True
        assert kernels.loaded_module() is not None
        z = c2.clip(x, -1.0, 1.0)
        assert y.tobytes() == z.tobytes() == np.array([-1, 0.5, 1], np.float32).tobytes()
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
