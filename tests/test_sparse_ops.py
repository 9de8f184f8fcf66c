"""Sparse lookups and optimizers beyond the table: fast kernels against the reference kernels
for every thread count (bit for bit), duplicates, errors before writes, GradientSlice in nets."""

from __future__ import annotations

import numpy as np
import pytest

import caffe2ops as c2
from caffe2ops import core, workspace
from caffe2ops.errors import OperatorError
from caffe2ops.kernels import cpu, get_max_threads, get_num_threads

F32 = np.float32


@pytest.fixture(autouse=True)
def kernels_loaded():
    from caffe2ops import kernels

    assert kernels.load()
    saved = get_num_threads()
    yield
    c2.set_num_threads(saved)


def _data(seed, rows=2000, d=19, k=3000, dtype=F32):
    r = np.random.RandomState(seed)
    table = r.standard_normal((rows, d)).astype(dtype)
    idx = r.randint(0, rows, size=k).astype(np.int64)  # many duplicates
    lengths = np.bincount(r.randint(0, 400, size=k), minlength=400).astype(np.int32)
    return r, table, idx, lengths


def _all_ways(fn):
    """fn() with the reference kernels, and with the fast kernels on 1 and on all threads."""
    with c2.reference_kernels():
        ref = fn()
    outs = []
    for nt in sorted({1, get_max_threads()}):
        c2.set_num_threads(nt)
        outs.append(fn())
    return ref, outs


def _same(a, b, what):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,),
                    strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape, what
        assert x.tobytes() == y.tobytes(), f"{what}: {np.count_nonzero(x != y)} differ"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_lengths_kernels_match_reference_for_any_thread_count(dtype):
    r, table, idx, lengths = _data(1, dtype=dtype)
    w = r.standard_normal(idx.size).astype(dtype)
    dy = r.standard_normal((lengths.size, table.shape[1])).astype(dtype)
    cases = {
        "sum": lambda: c2.sparse_lengths_sum(table, idx, lengths),
        "mean": lambda: c2.sparse_lengths_mean(table, idx, lengths),
        "weighted": lambda: c2.sparse_lengths_weighted_sum(table, w, idx, lengths),
        "grad": lambda: c2.sparse_lengths_sum_gradient(dy, lengths, idx),
        "mean grad": lambda: c2.sparse_lengths_mean_gradient(dy, lengths, idx),
        "weighted grad": lambda: c2.sparse_lengths_weighted_sum_gradient(w, dy, lengths, idx),
    }
    # the parallel path runs
    assert idx.size * table.shape[1] >= cpu.sparse_lengths.PAR_MIN_SPARSE
    for name, fn in cases.items():
        ref, outs = _all_ways(fn)
        for out in outs:
            _same(out, ref, name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 19, 64])
def test_sparse_optimizer_kernels_match_reference_with_duplicates(dtype, d):
    r, table, idx, _ = _data(2, d=d, dtype=dtype)
    grad = r.standard_normal((idx.size, d)).astype(dtype)
    lr = np.array([-0.05], dtype)
    it = np.array([4], np.int64)
    mom = np.abs(r.standard_normal(table.shape)).astype(dtype)
    row_mom = np.abs(r.standard_normal(table.shape[0])).astype(dtype)

    def run(update):
        state = [table.copy(), mom.copy(), row_mom.copy(), (mom * 0.5).copy()]
        update(state)
        return tuple(state)

    cases = {
        "SparseAdagrad": lambda s: c2.sparse_adagrad(s[0], s[1], idx, grad, lr),
        "RowWiseSparseAdagrad": lambda s: c2.rowwise_sparse_adagrad(s[0], s[2], idx, grad, lr),
        "SparseAdam": lambda s: c2.sparse_adam(s[0], s[1], s[3], idx, grad, lr, it),
    }
    for name, update in cases.items():
        ref, outs = _all_ways(lambda update=update: run(update))
        for out in outs:
            _same(out, ref, name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scatter_and_weighted_sum_kernels_match_reference(dtype):
    """ScatterWeightedSum and SparseToDense (the ordered row scatter, duplicates included) and
    WeightedSum (2 and 3 pairs, in place, above the parallel threshold) bit for bit; IEEE
    specials in the data."""
    r, table, idx, _ = _data(4, d=19, dtype=dtype)
    table.reshape(-1)[::97] = np.nan
    table.reshape(-1)[5::101] = -0.0
    x1 = r.standard_normal((idx.size, 19)).astype(dtype)
    x1.reshape(-1)[::89] = np.inf
    w = [np.array([v], dtype) for v in (1.0, -0.3, 0.7)]
    n = cpu.PAR_MIN + 4099
    big = [r.standard_normal(n).astype(dtype) for _ in range(3)]
    big[0][::1013] = -0.0
    big[1][::997] = np.nan

    def in_place():
        y = big[0].copy()
        return c2.weighted_sum(y, w[1], big[1], w[2], out=y)

    cases = {
        "ScatterWeightedSum w0=1": lambda: c2.scatter_weighted_sum(table.copy(), w[0], idx, x1,
                                                                   w[1]),
        "ScatterWeightedSum two pairs": lambda: c2.scatter_weighted_sum(
            table.copy(), w[2], idx, x1, w[1], x1[::-1].copy(), w[2]),
        "SparseToDense": lambda: c2.sparse_to_dense(idx, x1, table),
        "WeightedSum 2": lambda: c2.weighted_sum(big[0], w[1], big[1], w[2]),
        "WeightedSum 3": lambda: c2.weighted_sum(big[0], w[1], big[1], w[2], big[2], w[0]),
        "WeightedSum in place": in_place,
        "WeightedSum small": lambda: c2.weighted_sum(table, w[2], table[::-1].copy(), w[1]),
    }
    for name, fn in cases.items():
        ref, outs = _all_ways(fn)
        for out in outs:
            _same(out, ref, name)


def test_sparse_adagrad_duplicates_apply_in_order():
    p = np.ones((3, 1), F32)
    h = np.zeros((3, 1), F32)
    g = np.array([[2.0], [1.0]], F32)
    c2.sparse_adagrad(p, h, np.array([1, 1]), g, np.array([-1.0], F32), epsilon=0.0)
    # first h = 4, p = 1 - 2/2 = 0; then h = 5, p = 0 - 1/sqrt(5)
    assert h[1, 0] == 5 and p[1, 0] == F32(0) - F32(1) / np.sqrt(F32(5))
    assert p[0, 0] == 1 and p[2, 0] == 1


@pytest.mark.parametrize("update", [
    lambda p, h, i, g: c2.sparse_adagrad(p, h, i, g, np.array([-1.0], F32)),
    lambda p, h, i, g: c2.rowwise_sparse_adagrad(p, h[:, 0].copy(), i, g,
                                                 np.array([-1.0], F32)),
    lambda p, h, i, g: c2.sparse_adam(p, h, h.copy(), i, g, np.array([-1.0], F32),
                                      np.array([0], np.int64)),
])
def test_failed_sparse_update_leaves_param_untouched(update):
    p = np.arange(8, dtype=F32).reshape(4, 2)
    h = np.ones((4, 2), F32)
    before = p.tobytes(), h.tobytes()
    with pytest.raises(IndexError):
        update(p, h, np.array([0, 4]), np.ones((2, 2), F32))
    assert (p.tobytes(), h.tobytes()) == before


def test_indices_are_copied_before_the_check():
    """The kernel indexes with the checked copy: a read-only, strided index view works and the
    caller's array is never written."""
    r, table, idx, lengths = _data(3)
    view = np.repeat(idx, 2)[::2]
    view.flags.writeable = False
    out = c2.sparse_lengths_sum(table, view, lengths)
    _same(out, c2.sparse_lengths_sum(table, idx, lengths), "strided indices")


def test_two_sparse_contributions_raise_clearly():
    net = core.Net("two_sparse")
    y = net.SparseLengthsSum(["emb", "idx", "len"], ["y"])
    g = net.Gather(["emb", "idx"], ["rows"])
    with pytest.raises(OperatorError, match="emb.*sparse"):
        net.AddGradientOperators([y, g])


def test_gradient_slice_through_a_net_updates_with_sparse_adagrad():
    r, table, idx, _ = _data(5, rows=50, d=3, k=40)
    lengths = np.full(10, 4, np.int32)
    workspace.ResetWorkspace()
    for name, v in {"emb": table, "idx": idx, "len": lengths,
                    "mom": np.zeros_like(table), "lr": np.array([-0.1], F32)}.items():
        workspace.FeedBlob(name, v)
    net = core.Net("sls_adagrad")
    y = net.SparseLengthsSum(["emb", "idx", "len"], ["y"])
    grad = net.AddGradientOperators([y])["emb"]
    assert isinstance(grad, core.GradientSlice)
    net.SparseAdagrad(["emb", "mom", grad.indices, grad.values, "lr"], ["emb", "mom"])
    workspace.RunNetOnce(net)
    p, h = table.copy(), np.zeros_like(table)
    c2.sparse_adagrad(p, h, idx, np.ones((idx.size, 3), F32), np.array([-0.1], F32))
    _same(workspace.FetchBlob("emb"), p, "emb")
    _same(workspace.FetchBlob("mom"), h, "mom")


def test_adagrad_optional_outputs_and_new_blobs():
    r = np.random.RandomState(6)
    p, h, g = (r.standard_normal((3, 4)).astype(F32) for _ in range(3))
    h = np.abs(h)
    workspace.ResetWorkspace()
    for name, v in {"p": p, "h": h, "g": g, "lr": np.array([-0.1], F32)}.items():
        workspace.FeedBlob(name, v)
    workspace.RunOperatorOnce(core.CreateOperator("Adagrad", ["p", "h", "g", "lr"],
                                                  ["p2", "h2", "elr", "upd"]))
    _same(workspace.FetchBlob("p"), p, "input param untouched (new output blob)")
    h2 = h + g * g
    elr = F32(-0.1) / (np.sqrt(h2) + F32(1e-5))
    _same(workspace.FetchBlob("h2"), h2, "moment")
    _same(workspace.FetchBlob("elr"), elr, "effective lr")
    _same(workspace.FetchBlob("upd"), elr * g, "update")
    _same(workspace.FetchBlob("p2"), p + elr * g, "param")


def test_atomic_iter_from_threads():
    import threading

    mutex = c2.create_mutex()
    counter = np.zeros(1, np.int64)

    def work():
        for _ in range(500):
            c2.atomic_iter(mutex, counter)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter[0] == 2000


def test_every_sparse_family_operator_has_a_table_entry():
    import importlib

    from optable import TABLE  # (it appends optable_sparse.ENTRIES)

    from caffe2ops.runtime.schema import registered_types

    families = [importlib.import_module(f"caffe2ops.ops.{m}")
                for m in ("gather", "sparse_lengths", "counters", "optimizers")]
    from caffe2ops.runtime.schema import get_schema

    ours = {t for t in registered_types()
            if any(get_schema(t).kernel.__module__ == f.__name__ for f in families)}
    assert len(ours) == 21
    assert ours <= {e.op for e in TABLE}
