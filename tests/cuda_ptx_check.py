"""Compile every CUDA kernel the simulator tests launch to PTX for a real GPU (no GPU needed).

The simulator runs kernels as Python, so it never type-checks them for the device. This script
(``make cuda-ptx``; needs numba-cuda with NVVM, e.g. ``pip install 'numba-cuda[cu12]'``):

1. runs the simulator test suite in a subprocess that records every launch (kernel, compute
   type, argument types) to a JSON file;
2. compiles each distinct (kernel, argument types) with ``numba.cuda.compile_ptx`` for
   compute capability 9.0 (H100/H200) in a process without the simulator, and reports failures.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def _describe(value):
    import numpy as np

    if hasattr(value, "dtype") and hasattr(value, "shape") and hasattr(value, "copy_to_host"):
        strides = getattr(value, "strides", None)
        layout = "C"
        if strides is not None and value.size > 1:
            layout = "C" if value._ary.flags.c_contiguous else "A"
        return ["array", str(value.dtype), len(value.shape), layout]
    if isinstance(value, bool | np.bool_):
        return ["bool"]
    if isinstance(value, np.generic):
        return ["scalar", str(value.dtype)]
    if isinstance(value, int):
        return ["scalar", "int64"]
    if isinstance(value, float):
        return ["scalar", "float64"]
    if value is None:
        return ["none"]
    return ["unknown", type(value).__name__]


def install_recorder(path: str) -> None:
    """Called inside the simulator process (from conftest-free plugin below)."""
    from numba.cuda.simulator import kernel as simkernel

    records = set()
    original = simkernel.FakeCUDAKernel.__call__

    def call(self, *args):
        if self._device:  # device functions are compiled with the kernels that call them
            return original(self, *args)
        fn = self.fn
        closure = {}
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
            v = cell.cell_contents
            if type(v).__module__.startswith("numba.core.types"):
                closure[name] = str(v)
        records.add(json.dumps([fn.__module__, fn.__qualname__, closure,
                                [_describe(a) for a in args]]))
        return original(self, *args)

    simkernel.FakeCUDAKernel.__call__ = call
    import atexit

    atexit.register(lambda: Path(path).write_text(json.dumps(sorted(records))))


def _numba_type(desc):
    import numpy as np
    from numba import from_dtype, types

    kind = desc[0]
    if kind == "array":
        return types.Array(from_dtype(np.dtype(desc[1])), desc[2], desc[3])
    if kind == "bool":
        return types.boolean
    if kind == "scalar":
        return from_dtype(np.dtype(desc[1]))
    raise TypeError(f"cannot rebuild argument type {desc}")


def _find_kernel(module_name: str, qualname: str, closure: dict, args: list):
    import inspect

    from numba import types

    module = importlib.import_module(module_name)
    parts = qualname.split(".<locals>.")
    if len(parts) == 1:
        return getattr(module, qualname)
    factory = getattr(module, parts[0])
    ct = next((getattr(types, v) for v in closure.values()), None)
    if ct is None and inspect.signature(factory).parameters:  # a factory whose kernel ignores ct
        ct = types.float64 if any("float64" in a for a in args) else types.float32
    made = factory(ct) if ct is not None else factory()
    candidates = made.values() if isinstance(made, dict) else (
        made if isinstance(made, tuple) else (made,))
    for k in candidates:
        if k.py_func.__qualname__ == qualname:
            return k
    raise LookupError(qualname)


def compile_all(records_path: str) -> int:
    from types import SimpleNamespace

    from numba import cuda
    from numba.cuda import dispatcher

    # Device functions ask the current device for its compute capability when the kernel that
    # calls them compiles; without a GPU, answer for the target (H100/H200, cc 9.0).
    dispatcher.get_current_device = lambda: SimpleNamespace(compute_capability=(9, 0))

    records = [json.loads(r) for r in json.loads(Path(records_path).read_text())]
    failures = 0
    for module_name, qualname, closure, args in records:
        try:
            kernel = _find_kernel(module_name, qualname, closure, args)
            sig = tuple(_numba_type(a) for a in args)
            cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
        except Exception as exc:  # report every failure, then fail
            failures += 1
            print(f"FAIL {qualname} {closure} {args}: {type(exc).__name__}: "
                  f"{str(exc).splitlines()[0][:300]}")
    print(f"{len(records) - failures} of {len(records)} kernel signatures compiled to PTX "
          "(cc 9.0)")
    return 1 if failures else 0


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "launches.json")
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", CAFFE2OPS_RECORD_LAUNCHES=path)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(HERE.parent / "src"), str(HERE), env.get("PYTHONPATH", "")])
        code = ("import sys, cuda_ptx_check, pytest; "
                "cuda_ptx_check.install_recorder(sys.argv[1]); "
                "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:warnings', "
                "sys.argv[2]]))")
        proc = subprocess.run([sys.executable, "-c", code, path, str(HERE / "cuda_simulator")],
                              env=env, cwd=str(HERE.parent))
        if proc.returncode != 0:
            print("the simulator tests failed; fix them first")
            return proc.returncode
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
        env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "src"), str(HERE)])
        return subprocess.run([sys.executable, "-c",
                               "import sys, cuda_ptx_check; "
                               "sys.exit(cuda_ptx_check.compile_all(sys.argv[1]))", path],
                              env=env, cwd=str(HERE.parent)).returncode


if __name__ == "__main__":
    sys.exit(main())
