"""Run the CUDA kernel tests under numba-cuda's simulator, in a subprocess.

``NUMBA_ENABLE_CUDASIM`` must be set before numba is imported and replaces numba.cuda for the
whole process, so the simulator tests (tests/cuda_simulator/) run in their own Python process
and the rest of this test run keeps the real CPU kernels. Skipped, with the reason, where
numba-cuda is not installed (``pip install -e '.[test]'`` installs it).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                    reason="numba-cuda is not installed: the CUDA kernels' simulator tests "
                           "need it (pip install numba-cuda, or the project's [test] extra)")
def test_cuda_kernels_under_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, str(HERE)] + [env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "--rootdir", str(HERE.parent), str(HERE / "cuda_simulator")],
        env=env, capture_output=True, text=True, timeout=300, cwd=str(HERE.parent),
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1], \
        proc.stdout[-2000:]
