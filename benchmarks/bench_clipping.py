"""Global-norm clipping of many arrays: caffe2ops.clipping against torch.nn.utils.clip_grad_norm_.

Data: 200 float32 arrays of mixed sizes, like a model's gradients (100 weight matrices with sides
drawn from 32..512 and 100 bias vectors), about 6.5 million elements (26 MB) in all, seed 0.
Every timed call really clips (``max_norm`` is half the true norm): before each call the arrays are
restored from a master copy, untimed, for every contender alike, last array first, as a backward
pass produces gradients (so the first arrays are the most recently written, as in training).
Both sides work in place (``inplace=True`` / PyTorch's in-place ``_foreach_mul_``), with the same
thread count (``numba.set_num_threads`` and ``torch.set_num_threads``). Times are medians of
``repeat`` calls, taken in steady-state blocks per contender (see :func:`_block_medians`).

Run standalone: ``python benchmarks/bench_clipping.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np


def make_gradients(n: int = 200, seed: int = 0) -> list[np.ndarray]:
    """``n`` float32 arrays: alternately a (a, b) weight matrix and its (b,) bias vector."""
    rng = np.random.default_rng(seed)
    dims = [32, 64, 128, 256, 384, 512]
    shapes: list[tuple[int, ...]] = []
    while len(shapes) < n:
        a, b = int(rng.choice(dims)), int(rng.choice(dims))
        shapes += [(a, b), (b,)]
    return [rng.standard_normal(s, dtype=np.float32) for s in shapes[:n]]


def _block_medians(contenders: dict, warmup: int, repeat: int) -> dict[str, float]:
    """Median milliseconds of each ``name -> (fn, restore)``, measured in steady state.

    Each contender runs in blocks (``max(warmup, 3)`` untimed calls, then timed ones), as a training
    loop calls it: straight after the other library, the write-back of that library's 25 MB of
    dirty cache lines costs either side 20-50%. Two blocks each, in the order A B C then C B A, so
    a drift in background load hits every contender alike. ``repeat`` timed calls in all.
    """
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    half = (repeat + 1) // 2
    for order in (names, names[::-1]):
        for name in order:
            fn, restore = contenders[name]
            for _ in range(max(warmup, 3)):
                restore()
                fn()
            for _ in range(half):
                restore()
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def main(repeat: int = 15, warmup: int = 3, threads: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """Time the contenders, print a Markdown table and return the numbers (milliseconds)."""
    import numba
    import torch
    from torch.nn.utils import clip_grad_norm_

    from caffe2ops.clipping import clip_by_global_norm

    master = make_gradients()
    numel = sum(a.size for a in master)
    total = float(np.sqrt(sum(np.dot(a.ravel().astype(np.float64), a.ravel()) for a in master)))
    max_norm = 0.5 * total
    ours = [a.copy() for a in master]
    grads = [torch.from_numpy(a.copy()) for a in master]
    params = []
    for g in grads:
        p = torch.nn.Parameter(torch.empty_like(g))
        p.grad = g
        params.append(p)

    def restore_ours() -> None:
        for dst, src in zip(reversed(ours), reversed(master), strict=True):
            np.copyto(dst, src)

    def restore_torch() -> None:
        with torch.no_grad():
            for g, src in zip(reversed(grads), reversed(master), strict=True):
                g.copy_(torch.from_numpy(src))

    # Agreement check (torch adds 1e-6 to the norm, hence the tolerance).
    restore_ours()
    restore_torch()
    _, stats = clip_by_global_norm(ours, max_norm, inplace=True)
    tn = clip_grad_norm_(params, max_norm, foreach=True)
    assert abs(float(stats.total_norm) - float(tn)) <= 1e-5 * float(tn)
    for a, g in zip(ours, grads, strict=True):
        np.testing.assert_allclose(a, g.numpy(), rtol=2e-6, atol=1e-9)

    saved = (numba.get_num_threads(), torch.get_num_threads())
    most = min(os.cpu_count() or 1, numba.config.NUMBA_NUM_THREADS)
    threads = tuple(t for t in threads if t <= most)
    results: dict[str, Any] = {
        "arrays": len(master),
        "elements": numel,
        "dtype": "float32",
        "repeat": repeat,
        "rows": [],
    }
    try:
        for t in threads:
            numba.set_num_threads(t)
            torch.set_num_threads(t)
            row = {"threads": t}
            row.update(
                _block_medians(
                    {
                        "caffe2ops_ms": (
                            lambda: clip_by_global_norm(ours, max_norm, inplace=True),
                            restore_ours,
                        ),
                        "torch_foreach_ms": (
                            lambda: clip_grad_norm_(params, max_norm, foreach=True),
                            restore_torch,
                        ),
                        "torch_loop_ms": (
                            lambda: clip_grad_norm_(params, max_norm, foreach=False),
                            restore_torch,
                        ),
                    },
                    warmup,
                    repeat,
                )
            )
            row["speedup_vs_foreach"] = row["torch_foreach_ms"] / row["caffe2ops_ms"]
            results["rows"].append(row)
    finally:
        numba.set_num_threads(saved[0])
        torch.set_num_threads(saved[1])

    print(
        f"Global-norm clipping (L2, in place), {len(master)} float32 arrays, {numel:,} elements "
        f"({numel * 4 / 2**20:.1f} MiB), median of {repeat} runs, ms:\n"
    )
    print(
        "| threads | caffe2ops clip_by_global_norm | torch clip_grad_norm_ foreach=True "
        "| torch foreach=False | speed-up vs foreach |"
    )
    print("|---:|---:|---:|---:|---:|")
    for r in results["rows"]:
        print(
            f"| {r['threads']} | {r['caffe2ops_ms']:.3f} | {r['torch_foreach_ms']:.3f} "
            f"| {r['torch_loop_ms']:.3f} | {r['speedup_vs_foreach']:.2f}x |"
        )
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    main(repeat=args.repeat, warmup=args.warmup)
