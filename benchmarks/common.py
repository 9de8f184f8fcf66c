"""Helpers shared by the benchmark scripts: timing, thread control, tables, compile times."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def set_threads(n: int) -> None:
    """Use ``n`` threads in the caffe2ops kernels and in PyTorch."""
    from caffe2ops import kernels

    kernels.set_num_threads(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # pragma: no cover
        pass


def max_threads() -> int:
    from caffe2ops import kernels

    return kernels.get_max_threads()


def timeit(fn: Callable[[], object], repeat: int = 7, warmup: int = 2,
           min_sample: float = 2e-3, setup: Callable[[], object] | None = None) -> float:
    """Median seconds per call over ``repeat`` samples, after ``warmup`` untimed calls.

    A sample runs ``fn`` enough times to last about ``min_sample`` seconds (small inputs);
    with ``setup`` (run untimed before every call) each sample is one call.
    """
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    if setup is not None:
        samples = []
        for _ in range(repeat):
            setup()
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples)
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    number = max(1, min(10000, int(min_sample / one)))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples)


def timeit_many(fns: dict[str, Callable[[], object]], repeat: int = 7, warmup: int = 2,
                min_sample: float = 2e-3,
                setup: Callable[[], object] | None = None) -> dict[str, float]:
    """Like :func:`timeit` for several functions, their samples interleaved (A B C A B C ...)
    so that a slow spell of a noisy machine hits all of them alike. With ``setup`` (run untimed
    before every sample, e.g. a cache flush) every sample is a single call."""
    number = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        fn()
        one = max(time.perf_counter() - t0, 1e-7)
        number[name] = 1 if setup else max(1, min(10000, int(min_sample / one)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            k = number[name]
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - t0) / k)
    return {name: statistics.median(v) for name, v in samples.items()}


def cache_flusher(min_bytes: int = 64 << 20, idle_s: float = 0.02) -> Callable[[], object]:
    """A function that evicts the CPU caches by reading a buffer 1.5x the last-level cache,
    then sleeps ``idle_s`` so that the thread pools of the call before (PyTorch's OpenMP
    threads spin for milliseconds after a parallel region) are idle when the timed call starts:
    without it, on 2 cores, whichever contender ran right after PyTorch shared the CPUs with
    its spinning threads (measured: Clip 1e7 at 2 threads 3.5-3.7 ms right after PyTorch,
    3.0 ms after the pause)."""
    import time

    import numpy as np

    from caffe2ops.kernels import cpu

    size = max(min_bytes, int(1.5 * (cpu.llc_bytes() or (32 << 20))))
    buf = np.ones(size // 4, np.float32)

    def flush() -> None:
        np.add(buf, 1, out=buf)  # read and write every line of a buffer 1.5x the LLC
        time.sleep(idle_s)

    return flush


def fmt(v: float | None, spec: str = ".2f") -> str:
    return "–" if v is None else format(v, spec)


def fmt_time(t: float | None) -> str:
    """Seconds as µs/ms text."""
    if t is None:
        return "–"
    if t < 1e-3:
        return f"{t * 1e6:.1f} µs"
    return f"{t * 1e3:.2f} ms"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


_COMPILE_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from caffe2ops.kernels import cpu
t1 = time.perf_counter()
cpu.load()
t2 = time.perf_counter()
cpu.chunk_length(1, 1)       # first cached function: numba's typing/target context set-up
t3 = time.perf_counter()
per_op = cpu.preload(dtypes=[np.dtype(d) for d in sys.argv[1].split(",")])
print(json.dumps({"import_caffe2ops_kernels_s": t1 - t0, "import_numba_and_module_s": t2 - t1,
                  "numba_context_init_s": t3 - t2, "per_op_s": per_op}))
"""


def compile_times(dtypes: str = "float32") -> dict[str, Any]:
    """First-call costs in fresh processes: cold (empty NUMBA_CACHE_DIR) then warm (same dir).

    Each per-operator figure loads (or compiles) both the serial and the parallel kernel.
    """
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="c2k-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "src")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT, dtypes], env=env,
                                  capture_output=True, text=True, check=True)
            data = json.loads(proc.stdout.strip().splitlines()[-1])
            data["process_wall_s"] = time.perf_counter() - t0
            result[label] = data
    return result


#: Inside the real-Caffe2 process (``tests/parity/harness.py``'s ``exec``, which provides
#: ``workspace``, ``np`` and ``feeds``): create ``net`` once, run it once untimed, then time
#: ``feeds['block']`` runs of it; the times come back as ``result['times']``.
CAFFE2_TIME_NET = """
import time
workspace.CreateNet(net)
workspace.RunNet(net.Proto().name)
times = []
for _ in range(int(feeds['block'][0])):
    t0 = time.perf_counter()
    workspace.RunNet(net.Proto().name)
    times.append(time.perf_counter() - t0)
result = {'times': np.array(times)}
"""
