"""caffe2ops.dask: the operators and the toolkit on Dask arrays, against the in-process results.

Most tests run on a ``dask.distributed.LocalCluster`` of 2 worker processes (1 thread each) on
127.0.0.1, shared by the module and closed at its end; a few run on the synchronous scheduler.
"""

import os
import signal
import time

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import caffe2ops as c2  # noqa: E402
import caffe2ops.dask as c2d  # noqa: E402
from caffe2ops import OperatorError, clipping  # noqa: E402

WORKER_MEMORY = 320 * 2**20


@pytest.fixture(scope="module")
def client(request):
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0", memory_limit=WORKER_MEMORY, silence_logs=40,
    )
    cl = distributed.Client(cluster)

    def close():
        cl.close()
        cluster.close()

    request.addfinalizer(close)
    assert all(c2d.load_kernels_on_workers(cl).values())
    return cl


def _rng(seed=0):
    return np.random.default_rng(seed)


def _chunked(x, chunks):
    return da.from_array(x, chunks=chunks)


# ---------------------------------------------------------------------------- element-wise


def _elementwise_cases():
    rng = _rng(1)
    x = (rng.standard_normal((40, 6)) * 2).astype(np.float32)
    y = np.clip(x, -1, 1)
    dy = rng.standard_normal((40, 6)).astype(np.float32)
    label = rng.choice([-1, 1], size=(40, 6)).astype(np.int32)
    relu = c2.thresholded_relu(x, 0.5)
    return [
        ("clip", lambda m: m.clip(X, -1, 1), {"X": x}),
        ("clip_gradient", lambda m: m.clip_gradient(Y, DY, -1, 1), {"Y": y, "DY": dy}),
        ("thresholded_relu", lambda m: m.thresholded_relu(X, 0.5), {"X": x}),
        ("thresholded_relu_gradient", lambda m: m.thresholded_relu_gradient(Y, DY),
         {"Y": relu, "DY": dy}),
        ("thresholded_relu_gradient_x",
         lambda m: m.thresholded_relu_gradient(Y, DY, x=X, alpha=-0.5),
         {"Y": c2.thresholded_relu(x, -0.5), "DY": dy, "X": x}),
        ("cos", lambda m: m.cos(X), {"X": x}),
        ("cos_gradient", lambda m: m.cos_gradient(X, DY), {"X": x, "DY": dy}),
        ("cosine_embedding_criterion", lambda m: m.cosine_embedding_criterion(X, L, 0.1),
         {"X": x, "L": label}),
        ("cosine_embedding_criterion_gradient",
         lambda m: m.cosine_embedding_criterion_gradient(X, L, DY, 0.1),
         {"X": x, "L": label, "DY": dy}),
        ("clip_tensor_by_scaling", lambda m: m.clip_tensor_by_scaling(X, 50.0, 7.0, 2.0),
         {"X": x}),
        ("ensure_clipped", lambda m: m.ensure_clipped(X, -0.5, 0.5), {"X": x}),
        ("lp_norm_2", lambda m: m.lp_norm(X), {"X": x}),
        ("lp_norm_1_average", lambda m: m.lp_norm(X, p=1, average=True), {"X": x}),
        ("lp_norm_gradient", lambda m: m.lp_norm_gradient(X, np.array([0.3], np.float32),
                                                          p=2, average=True), {"X": x}),
        ("cosine_similarity", lambda m: m.cosine_similarity(X, DY), {"X": x, "DY": dy}),
        ("cosine_similarity_gradient_dx",
         lambda m: m.cosine_similarity_gradient(X, DY, Z)[0],
         {"X": x, "DY": dy, "Z": rng.standard_normal(40).astype(np.float32)}),
        ("cosine_similarity_gradient_dy",
         lambda m: m.cosine_similarity_gradient(X, DY, Z)[1],
         {"X": x, "DY": dy, "Z": rng.standard_normal(40).astype(np.float32)}),
    ]


CASES = _elementwise_cases()


def test_every_operator_equals_in_process(client):
    expected = [call(_Namespace(c2, data)) for _, call, data in CASES]
    lazy = [call(_Namespace(c2d, {k: _chunked(v, (7, 4) if v.ndim == 2 else 7)
                                  for k, v in data.items()})) for _, call, data in CASES]
    got = client.gather(client.compute(lazy))  # one round trip for all of them
    differ = [name for (name, _, _), g, e in zip(CASES, got, expected, strict=True)
              if not (g.dtype == e.dtype and g.shape == e.shape
                      and np.array_equal(g, e, equal_nan=True))]
    assert not differ, f"not bit-identical to the in-process call: {differ}"
    assert len(CASES) == 17


class _Namespace:
    """``m.clip(X, ...)`` with ``X`` etc. bound to the case's inputs, for either module."""

    def __init__(self, module, data):
        self.module, self.data = module, data

    def __getattr__(self, name):
        fn = getattr(self.module, name)

        def call(*args, **kwargs):
            return fn(*[self._arg(a) for a in args],
                      **{k: self._arg(v) for k, v in kwargs.items()})
        return call

    def _arg(self, a):
        return self.data[a.name] if isinstance(a, _Name) else a


class _Name:
    def __init__(self, name):
        self.name = name


X, Y, DY, L, Z = _Name("X"), _Name("Y"), _Name("DY"), _Name("L"), _Name("Z")


def test_lazy_val_from_lp_norm():
    x = _rng(2).standard_normal((30, 4)).astype(np.float32)
    dx = _chunked(x, (8, 4))
    got = c2d.clip_tensor_by_scaling(dx, c2d.lp_norm(dx), 3.0).compute(scheduler="sync")
    np.testing.assert_array_equal(got, c2.clip_tensor_by_scaling(x, c2.lp_norm(x), 3.0))


def test_checks_raise_before_a_graph_exists():
    x = _chunked(np.ones((4, 2), np.float32), 2)
    with pytest.raises(OperatorError, match="Clip"):
        c2d.clip(x.astype(np.complex64), 0, 1)
    with pytest.raises(OperatorError, match="shape"):
        c2d.clip_gradient(x, _chunked(np.ones((4, 3), np.float32), 2))
    with pytest.raises(OperatorError, match="LpNorm.*'p'"):
        c2d.lp_norm(x, p=3)
    with pytest.raises(IndexError, match="indices"):
        c2d.sparse_normalize(x, np.array([0, 4]))
    with pytest.raises(OperatorError, match="norm"):
        c2d.sparse_normalize(x, np.array([0]), norm=-1.0)


# -------------------------------------------------------------------------------- tables


def _table(rows=50, cols=8, seed=3, dtype=np.float32):
    return (_rng(seed).standard_normal((rows, cols)) * 0.8).astype(dtype)


def test_sparse_normalize_routes_indices_and_passes_untouched_chunks(client):
    w = _table()
    idx = np.array([3, 48, 3, 11, 12, 49, 0], np.int64)
    table = _chunked(w, (10, 8))
    out = c2d.sparse_normalize(table, idx, norm=0.9)
    layer = dict(out.dask.layers[out.name])
    untouched = [i for i in range(5) if not ((idx >= 10 * i) & (idx < 10 * i + 10)).any()]
    assert untouched == [2, 3]
    for i in untouched:  # aliases of the input's blocks, not tasks
        v = layer[(out.name, i, 0)]
        assert getattr(v, "target", v) in ((table.name, i, 0),) or str(table.name) in repr(v)
    got = client.compute(out).result()
    np.testing.assert_array_equal(got, c2.sparse_normalize(w.copy(), idx, norm=0.9))


@pytest.mark.parametrize("chunks", [(10, 8), (10, 3)])
def test_sparse_normalize_inplace_updates_the_chunks_where_they_are(chunks):
    w = _table()
    idx = np.array([3, 48, 3, 11, 12, 49, 0], np.int64)
    expected = c2.sparse_normalize(w.copy(), idx, norm=0.9)

    def views_of(source):  # a Dask array whose blocks are views of ``source`` itself
        r, c = chunks
        dsk = {("views", i, j): source[r * i:r * i + r, c * j:c * j + c]
               for i in range(-(-source.shape[0] // r)) for j in range(-(-source.shape[1] // c))}
        return da.Array(dsk, "views", chunks=da.core.normalize_chunks(chunks, source.shape),
                        dtype=source.dtype)

    source = w.copy()
    table = views_of(source)
    out = c2d.sparse_normalize(table, idx, norm=0.9, inplace=True)
    np.testing.assert_array_equal(out.compute(scheduler="synchronous"), expected)
    np.testing.assert_array_equal(source, expected)  # written through: no chunk was copied
    copied = w.copy()
    c2d.sparse_normalize(views_of(copied), idx, norm=0.9).compute(scheduler="synchronous")
    np.testing.assert_array_equal(copied, w)  # the default leaves the input alone
    with pytest.raises(TypeError, match="'inplace' must be a bool"):
        c2d.sparse_normalize(table, idx, inplace=1)


def test_inplace_on_a_persisted_table_matches_in_process(client):
    w = _table(seed=9)
    idx = np.array([1, 7, 7, 33, 49], np.int64)
    table = _chunked(w, (10, 8)).persist()
    out = c2d.sparse_normalize(table, idx, norm=0.5, inplace=True).persist()
    np.testing.assert_array_equal(client.compute(out).result(),
                                  c2.sparse_normalize(w.copy(), idx, norm=0.5))
    clipped = c2d.ensure_clipped(out, -0.1, 0.1, indices=idx, inplace=True)
    np.testing.assert_array_equal(
        client.compute(clipped).result(),
        c2.ensure_clipped(c2.sparse_normalize(w.copy(), idx, norm=0.5), -0.1, 0.1, indices=idx))


@pytest.mark.parametrize("use_max_norm", [True, False])
def test_sparse_normalize_column_sharded(client, use_max_norm):
    # Multiples of 1/8 below 4: every float64 sum of squares is exact, in any order.
    w = (_rng(4).integers(-32, 32, (40, 12)) / 8).astype(np.float32)
    idx = np.array([1, 5, 5, 22, 39], np.int32)
    out = c2d.sparse_normalize(_chunked(w, (8, 5)), idx, 2.0, use_max_norm)
    np.testing.assert_array_equal(client.compute(out).result(),
                                  c2.sparse_normalize(w.copy(), idx, 2.0, use_max_norm))


@pytest.mark.parametrize("chunks", [(7, 8), (7, 3)])
def test_sparse_ensure_clipped(client, chunks):
    w = _table(seed=5) * 3
    idx = np.array([0, 6, 7, 7, 30, 49])
    out = c2d.ensure_clipped(_chunked(w, chunks), -1, 1.5, indices=idx)
    np.testing.assert_array_equal(client.compute(out).result(),
                                  c2.ensure_clipped(w.copy(), -1, 1.5, indices=idx))


# ------------------------------------------------------------------------------- toolkit


def _grads(dtype=np.float32, seed=6):
    rng = _rng(seed)
    return {"w": rng.standard_normal((30, 7)).astype(dtype),
            "b": rng.standard_normal(7).astype(dtype),
            "v": rng.standard_normal((5, 4, 3)).astype(dtype)}


def _lazy(grads):
    return {k: _chunked(v, 4) for k, v in grads.items()}


def test_clip_by_global_norm_one_graph(client):
    cases = [(dt, ord) for dt in (np.float32, np.float64, np.float16)
             for ord in (1, 2, float("inf"))]
    lazy = [c2d.clip_by_global_norm(_lazy(_grads(dt)), 0.7, ord=ord) for dt, ord in cases]
    fields = [(out, st.total_norm, st.num_clipped, st.nonfinite, st.norms) for out, st in lazy]
    for (dt, ord), (out, total, num, bad, norms) in zip(
            cases, dask.compute(*fields, scheduler=client), strict=True):  # one round trip
        _check_global(_grads(dt), ord, out, c2.clipping.ClipStats(total, None, num, bad, norms))


def _check_global(grads, ord, got, st):
    ref, ref_st = clipping.clip_by_global_norm(grads, 0.7, ord=ord)
    total = ref_st.total_norm.dtype.type(st.total_norm)
    assert total.dtype == ref_st.total_norm.dtype
    np.testing.assert_allclose(total, ref_st.total_norm, rtol=4 * np.finfo(total.dtype).eps)
    assert int(st.num_clipped) == ref_st.num_clipped == 3 and not bool(st.nonfinite)
    for k in grads:
        np.testing.assert_allclose(st.norms[k], ref_st.norms[k],
                                   rtol=4 * np.finfo(total.dtype).eps)
    # The scale pass is the in-process one, bit for bit, for the norm Dask found; where the
    # norms agree exactly (these seeds), the outputs equal clip_by_global_norm's.
    same, _ = clipping.apply_clip(grads, total, 0.7)
    for k in grads:
        np.testing.assert_array_equal(got[k], same[k])
        if total == ref_st.total_norm:
            np.testing.assert_array_equal(got[k], ref[k])


@pytest.mark.parametrize("mode", ["propagate", "skip", "zero"])
def test_clip_by_global_norm_nonfinite(mode):
    grads = _grads(np.float64)
    grads["w"][3, 2] = np.nan
    grads["v"][0, 1, 1] = -np.inf
    out, stats = c2d.clip_by_global_norm(_lazy(grads), 0.7, nonfinite=mode)
    got, st = c2d.compute(out, stats, scheduler="sync")
    ref, ref_st = clipping.clip_by_global_norm(grads, 0.7, nonfinite=mode)
    assert st.nonfinite and ref_st.nonfinite
    np.testing.assert_allclose(st.total_norm, ref_st.total_norm, rtol=1e-15)
    for k in grads:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-15)


def test_clip_by_global_norm_raise_names_the_array():
    grads = _grads(np.float64)
    grads["b"][1] = np.inf
    out, stats = c2d.clip_by_global_norm(_lazy(grads), 0.7, nonfinite="raise")
    with pytest.raises(OperatorError, match="array 'b'"):
        c2d.compute(out, stats, scheduler="sync")


def test_clip_by_norm(client):
    grads = [_grads()["v"] * 3, _grads(seed=7)["v"]]
    axes = [None, 1, (0, 2)]
    lazy = [c2d.clip_by_norm([_chunked(g, 2) for g in grads], 1.5, axis=ax) for ax in axes]
    fields = [(out, st.total_norm, st.num_clipped) for out, st in lazy]
    for axis, (got, total, num) in zip(axes, dask.compute(*fields, scheduler=client),
                                       strict=True):
        ref, ref_st = clipping.clip_by_norm(grads, 1.5, axis=axis)
        assert int(num) == ref_st.num_clipped > 0
        for a, b in zip(got, ref, strict=True):
            if axis is None:  # the norm went through a tree: equal to its rounding
                np.testing.assert_allclose(a, b, rtol=1e-6)
            else:  # whole slices per block: the in-process call itself
                np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(total, ref_st.total_norm, rtol=1e-14)


def test_clip_by_value(client):
    grads = _grads()
    out, stats = c2d.clip_by_value(_lazy(grads), -0.5, 0.25)
    got, st = c2d.compute(out, stats, scheduler=client)
    ref, ref_st = clipping.clip_by_value(grads, -0.5, 0.25)
    for k in grads:
        np.testing.assert_array_equal(got[k], ref[k])
    assert st.num_clipped == ref_st.num_clipped
    np.testing.assert_allclose(st.total_norm, ref_st.total_norm, rtol=1e-14)


# ------------------------------------------------------------------------- fault tolerance


def test_worker_killed_mid_computation_still_gives_the_right_table(client):
    w = _table(rows=200, cols=16, seed=8)
    idx = _rng(9).integers(0, 200, 150)

    def slow_source(block):  # pickled by value: a source that takes a while per chunk
        time.sleep(0.15)
        return block

    table = _chunked(w, (10, 16)).map_blocks(slow_source, dtype=w.dtype)
    future = client.compute(c2d.sparse_normalize(table, idx, norm=0.5))
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 20
    while not any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert not future.done(), "the computation ended before a worker could be killed"
    victim = next(iter(pids.values()))
    os.kill(victim, signal.SIGKILL)
    got = future.result(timeout=60)
    np.testing.assert_array_equal(got, c2.sparse_normalize(w.copy(), idx, norm=0.5))
    client.wait_for_workers(2, timeout=30)
    assert victim not in client.run(os.getpid).values()


# --------------------------------------------------------------------- larger than memory

HEAVY = pytest.mark.skipif(not os.environ.get("CAFFE2OPS_HEAVY_TESTS"),
                           reason="heavy: set CAFFE2OPS_HEAVY_TESTS=1 (make test-heavy)")


@pytest.fixture
def light_client(request):
    """2 workers of 128 MiB each that run the reference kernels: without Numba and LLVM a
    worker starts at ~80 MB, so a table larger than its limit stays small enough for the
    default test run. Spilling and pausing are off: only the table's chunks use memory."""
    with dask.config.set({"distributed.worker.memory.pause": False,
                          "distributed.worker.memory.target": False,
                          "distributed.worker.memory.spill": False}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address="127.0.0.1:0", memory_limit=128 * 2**20, silence_logs=40,
        )
    cl = distributed.Client(cluster)

    def close():
        cl.close()
        cluster.close()

    request.addfinalizer(close)

    class ReferenceKernels(distributed.WorkerPlugin):  # local: pickled by value
        """Run the NumPy reference kernels (same bits) and never import Numba."""

        def setup(self, worker):
            import caffe2ops.kernels

            caffe2ops.kernels.disable()  # process-wide: tasks run on the worker's threads

    cl.register_plugin(ReferenceKernels())
    assert not any(cl.run(lambda: "numba" in __import__("sys").modules).values())
    return cl


def _peak_rss() -> int:
    """This process's peak resident set (VmHWM; unlike ru_maxrss it starts afresh at exec, so
    it does not count the parent that forked the worker)."""
    with open("/proc/self/status") as f:
        line = next(ln for ln in f if ln.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _normalize_through_zarr(client, path, rows, step, limit):
    """Write a random table to zarr on the workers, SparseNormalize it from there into a second
    store, check no worker restarted or passed ``limit``, compare chunks with the operator."""
    zarr = pytest.importorskip("zarr")
    cols = 64
    assert rows * cols * 4 > limit
    src_path, dst_path = str(path / "src.zarr"), str(path / "dst.zarr")
    source = da.random.default_rng(10).random((rows, cols), dtype=np.float32,
                                              chunks=(step, cols))
    da.to_zarr(source, src_path, compute=False).compute(scheduler=client)
    idx = _rng(11).integers(0, rows, rows // 7)
    pids = client.run(os.getpid)
    out = c2d.sparse_normalize(da.from_zarr(src_path), idx, norm=1.0)
    da.to_zarr(out, dst_path, compute=False).compute(scheduler=client)
    assert client.run(os.getpid) == pids, "a worker was restarted (memory limit?)"
    peaks = client.run(_peak_rss)
    assert max(peaks.values()) < limit, peaks
    src, dst = zarr.open_array(src_path, mode="r"), zarr.open_array(dst_path, mode="r")
    assert dst.shape == (rows, cols)
    for start in range(0, rows, step * 5):  # every fifth chunk, against the in-process op
        local = idx[(idx >= start) & (idx < start + step)] - start
        expected = c2.sparse_normalize(src[start:start + step], local, norm=1.0)
        np.testing.assert_array_equal(dst[start:start + step], expected)


def test_table_larger_than_worker_memory_via_zarr(light_client, tmp_path):
    # 143 MB of float32 (> 128 MiB per worker) in 6.4 MB chunks.
    _normalize_through_zarr(light_client, tmp_path, 560_000, 25_000, 128 * 2**20)


@HEAVY
def test_table_larger_than_fast_worker_memory_via_zarr(client, tmp_path):
    # 358 MB (> 320 MiB per worker, whose fast kernels take ~190 MB) in 12.8 MB chunks.
    _normalize_through_zarr(client, tmp_path, 1_400_000, 50_000, WORKER_MEMORY)


@pytest.mark.parametrize("count", [5, 3000])  # sorted (rows > 16 x indices) and masked routing
def test_routing_groups_distinct_rows_by_chunk(count):
    from caffe2ops.dask._tables import _route

    table = da.zeros((10_000, 2), chunks=(1_000, 2))
    idx = _rng(11).integers(0, 10_000, count)
    routed = _route("SparseNormalize", table, idx)
    distinct = np.unique(idx)
    assert sorted(routed) == sorted(set((distinct // 1_000).tolist()))
    for chunk, rows in routed.items():
        assert rows.dtype == np.int64
        np.testing.assert_array_equal(rows + 1_000 * chunk,
                                      distinct[distinct // 1_000 == chunk])
