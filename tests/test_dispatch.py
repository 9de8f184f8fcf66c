"""Kernel dispatch: fast kernels where they apply, reference kernels elsewhere and while loading."""

import subprocess
import sys
import textwrap

import numpy as np

import caffe2ops as c2
from caffe2ops.ops._dispatch import CpuKernels


def test_fast_kernel_chosen_for_contiguous_float32_and_float64():
    for dtype in (np.float32, np.float64):
        x = np.zeros(10, dtype)
        assert CpuKernels("clip").get("clip", x, x) is not None
        assert CpuKernels("cos").get("cos", x, x) is not None


def test_reference_kernel_for_float16_strided_and_inside_reference_kernels():
    assert CpuKernels("clip").get("clip", np.zeros(4, np.float16)) is None
    assert CpuKernels("cos").get("cos", np.zeros(8, np.float32)[::2]) is None
    assert CpuKernels("clip").get("clip", np.zeros(4, np.int8)) is not None  # Clip takes integers
    assert CpuKernels("cos").get("cos", np.zeros(4, np.int8)) is None
    with c2.reference_kernels():
        assert CpuKernels("clip").get("clip", np.zeros(4, np.float32)) is None
    assert CpuKernels("clip").get("clip", np.zeros(4, np.float32)) is not None


def test_every_family_names_its_kernel_module_and_entry_points_exist():
    import importlib
    import pkgutil

    import caffe2ops.ops
    from caffe2ops import kernels
    from caffe2ops.kernels import cpu

    assert kernels.load()
    declared = set()
    for info in pkgutil.iter_modules(caffe2ops.ops.__path__):
        mod = importlib.import_module(f"caffe2ops.ops.{info.name}")
        k = getattr(mod, "KERNELS", None)
        if isinstance(k, CpuKernels):
            declared.add(k.family)
            assert cpu.family(k.family).__name__ == f"caffe2ops.kernels.cpu.{k.family}"
    assert declared - set(cpu.SHARED_MODULES) == set(cpu.FAMILIES)
    x = np.zeros(4, np.float32)
    try:
        CpuKernels("clip").get("clip_typo", x)
    except AttributeError as e:
        assert "clip_typo" in str(e)
    else:
        raise AssertionError("an unknown entry point name must raise")


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


def test_unaligned_arrays_run_the_fast_kernels_with_the_same_bits():
    # e.g. arrays unpickled out of band (Dask); the declared-signature kernels (cos,
    # activations) take possibly unaligned arrays
    from caffe2ops import kernels

    assert kernels.load()
    x = (np.random.default_rng(3).standard_normal(5000) * 40).astype(np.float32)
    raw = np.zeros(x.nbytes + 1, np.uint8)
    xu = raw[1:].view(np.float32)
    xu[:] = x
    assert not xu.flags.aligned
    assert CpuKernels("cos").get("cos", xu, xu) is not None
    for fn in (c2.cos, c2.relu, c2.sigmoid, c2.tanh, c2.clip):
        assert np.array_equal(fn(xu).view(np.uint32), fn(x).view(np.uint32)), fn.__name__
