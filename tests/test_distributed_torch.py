"""The split clipping API across two torch.distributed (gloo) processes on 127.0.0.1.

Rank r holds row shard r of two weight matrices (sharded) and a full copy of a bias and a
scalar gain (replicated). Each rank computes ``partial_norms`` (replicated arrays counted once),
``all_reduce`` sums (or maxes) the partials, ``combine_norms`` gives the total and ``apply_clip``
scales its shards; the parent compares with ``clip_by_global_norm`` on the gathered arrays.
"""

import socket
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

from caffe2ops import clipping  # noqa: E402

WORLD = 2
MAX_NORM = 0.5
ORDS = (2, 1, float("inf"))


def _full(dtype):
    rng = np.random.default_rng(12)
    return {
        "w1": rng.standard_normal((8, 5)).astype(dtype),
        "w2": rng.standard_normal((6, 3)).astype(dtype),
        "bias": rng.standard_normal(5).astype(dtype),
        "gain": np.array([1.5], dtype),
    }


REPLICATED = {"bias", "gain"}


def _shard(full, rank):
    out = {}
    for name, a in full.items():
        out[name] = a if name in REPLICATED else np.array_split(a, WORLD)[rank]
    return out


def _worker(rank, port, outdir):
    import datetime
    import os

    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's own connections on loopback too
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD, timeout=datetime.timedelta(seconds=60))
    try:
        results = {}
        for dtype in (np.float32, np.float16):
            for ord in ORDS:
                local = _shard(_full(dtype), rank)
                part = clipping.partial_norms(local, ord,
                                              replicated=lambda name, a: name in REPLICATED,
                                              rank=rank)
                t = torch.from_numpy(part)
                op = dist.ReduceOp.MAX if ord == float("inf") else dist.ReduceOp.SUM
                dist.all_reduce(t, op=op)
                total = clipping.combine_norms(t.numpy(), ord)
                out, stats = clipping.apply_clip(local, total, MAX_NORM)
                key = f"{np.dtype(dtype).name}-{ord}"
                results[f"{key}-total"] = np.array(total)
                for name, a in out.items():
                    results[f"{key}-{name}"] = a
        np.savez(Path(outdir) / f"rank{rank}.npz", **results)
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("torch_dist")
    ctx = torch.multiprocessing.start_processes(
        _worker, args=(_free_port(), str(outdir)), nprocs=WORLD, join=False,
        start_method="spawn",
    )
    deadline = time.monotonic() + 120
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail("the torch.distributed workers did not finish within 120 s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
                p.join(5)
    return [dict(np.load(outdir / f"rank{r}.npz")) for r in range(WORLD)]


@pytest.mark.parametrize("ord", ORDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_sharded_and_replicated_equal_clip_by_global_norm(rank_results, dtype, ord):
    full = _full(dtype)
    ref, ref_stats = clipping.clip_by_global_norm(full, MAX_NORM, ord=ord)
    key = f"{np.dtype(dtype).name}-{ord}"
    totals = [r[f"{key}-total"] for r in rank_results]
    assert totals[0] == totals[1]  # every rank found the same norm
    total = totals[0]
    assert total.dtype == ref_stats.total_norm.dtype
    np.testing.assert_allclose(total, ref_stats.total_norm, rtol=4 * np.finfo(total.dtype).eps)
    assert ref_stats.num_clipped == len(full)  # the data really clips
    # Counting the replicated arrays on both ranks would give another, larger norm.
    doubled = clipping.combine_norms(
        [clipping.partial_norms(_shard(full, r), ord) for r in range(WORLD)], ord)
    if ord != float("inf"):
        assert doubled > total * (1 + 1e-3)
    same, _ = clipping.apply_clip(full, ref_stats.total_norm.dtype.type(total), MAX_NORM)
    for name in full:
        parts = [r[f"{key}-{name}"] for r in rank_results]
        if name in REPLICATED:
            np.testing.assert_array_equal(parts[0], parts[1])
            got = parts[0]
        else:
            got = np.concatenate(parts)
        np.testing.assert_array_equal(got, same[name])  # the in-process scaling, bit for bit
        if total == ref_stats.total_norm:
            np.testing.assert_array_equal(got, ref[name])
