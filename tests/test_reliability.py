"""Reliability (contract §4, issue 7): no crash, no silent wrong answer, fork- and thread-safe,
every bad input a clear error. One section per point of the issue."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import caffe2ops as c2
from caffe2ops import OperatorError, clipping, core, kernels, workspace
from caffe2ops.kernels import cpu

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, timeout: float = 120, env: dict | None = None):
    """Run ``code`` in a fresh interpreter; returns the CompletedProcess."""
    import os

    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=full_env)


# ------------------------------------------------------------------ 1. validated = what is read


class _MutatesAfterCheck(np.ndarray):
    """Index array that rewrites its first element right after it was range-checked (what a
    second thread can do between the check and the kernel)."""

    new_value = 5_000_000_000

    def max(self, *args, **kwargs):  # the range check reads min() then max()
        result = np.ndarray.max(np.asarray(self), *args, **kwargs)
        np.asarray(self).reshape(-1)[0] = self.new_value
        return result


def test_sparse_normalize_reads_the_indices_it_checked():
    code = """
        import numpy as np, caffe2ops as c2
        from caffe2ops import kernels
        from tests.test_reliability import _MutatesAfterCheck
        assert kernels.load()
        for dtype in (np.float32, np.float64):
            param = np.full((4, 3), 2.0, dtype)
            idx = np.array([0, 1], np.int64).view(_MutatesAfterCheck)
            c2.sparse_normalize(param, idx, norm=1.0)
            assert np.allclose(np.linalg.norm(param[:2], axis=1), 1.0), param
            assert (param[2:] == 2.0).all(), param
        print("ok")
    """
    out = run_python(code, env={"PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"})
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.strip() == "ok"


def test_sparse_ensure_clipped_reads_the_indices_it_checked():
    class ToLastRow(_MutatesAfterCheck):
        new_value = -1

    param = np.full((4, 2), 9.0)
    idx = np.array([0, 0], np.int64).view(ToLastRow)
    c2.ensure_clipped(param, -1, 1, indices=idx)
    assert (param[0] == 1).all() and (param[1:] == 9).all(), param


def test_sparse_normalize_with_a_racing_writer_thread_does_not_crash():
    code = """
        import threading, time, numpy as np, caffe2ops as c2
        from caffe2ops import kernels, OperatorError
        assert kernels.load()
        param = np.ones((64, 8), np.float32)
        idx = np.zeros(1, np.int64)
        stop = time.monotonic() + 0.5
        def flip():
            while time.monotonic() < stop:
                idx[0] = 5_000_000_000
                idx[0] = 3
        t = threading.Thread(target=flip)
        t.start()
        n = 0
        while time.monotonic() < stop:
            try:
                c2.sparse_normalize(param, idx)
            except OperatorError:
                pass
            n += 1
        t.join()
        print("ok", n)
    """
    out = run_python(code)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.startswith("ok")


# ------------------------------------------------------------------------------------ 2. fork

_FORK_CHILD = """
import multiprocessing as mp, sys, time
import numpy as np

def work(q):
    import caffe2ops as c2
    from caffe2ops import kernels
    x = np.linspace(-3, 3, 1 << 20).astype(np.float32)
    y = c2.clip(x, -1.0, 1.0)                       # large: the parallel kernels
    ok = kernels.load()
    z = c2.clip(x, -1.0, 1.0)
    c = c2.cos(x)
    from caffe2ops import clipping
    g, _ = clipping.clip_by_global_norm([x, x[::-1].copy()], 1.0)   # the toolkit's thread pool
    gn = float(np.sqrt(2 * np.sum(x.astype(np.float64) ** 2)))
    q.put((bool(ok), y.tobytes() == z.tobytes() == np.clip(x, -1, 1).tobytes(),
           float(np.abs(c - np.cos(x.astype(np.float64))).max()),
           abs(float(g[0][-1]) - float(x[-1]) / gn) < 1e-6))

def check(ctx_name):
    ctx = mp.get_context(ctx_name)
    q = ctx.Queue()
    p = ctx.Process(target=work, args=(q,))
    p.start()
    p.join(60)
    if p.is_alive():
        p.kill()
        sys.exit(f"{ctx_name} child hung (deadlock)")
    if p.exitcode != 0:
        sys.exit(f"{ctx_name} child died with exit code {p.exitcode}")
    loaded, same, err, clipped = q.get(timeout=5)
    assert loaded, "the child never got the fast kernels"
    assert same and err < 1e-6 and clipped, (same, err, clipped)
"""


@pytest.mark.parametrize("when", ["before", "during", "after", "spawn"])
def test_fork_before_during_and_after_loading_and_spawn(when, tmp_path):
    code = _FORK_CHILD + textwrap.dedent(f"""
        def main(when):
            import caffe2ops as c2
            from caffe2ops import kernels
            big = np.ones(1 << 20, np.float32)
            if when == "before":
                check("fork")
            elif when == "during":
                for _ in range(3):  # the first call starts the background loader; fork at once
                    c2.clip(np.ones(3, np.float32), 0.0, 1.0)
                    check("fork")
            elif when == "after":
                assert kernels.load()
                c2.set_num_threads(kernels.get_max_threads())
                c2.clip(big, 0.0, 1.0)
                c2.cos(big)
                check("fork")
                check("fork")
            else:
                assert kernels.load()
                c2.clip(big, 0.0, 1.0)
                check("spawn")
            c2.clip(big, 0.0, 1.0)  # the parent still works
            print("ok")

        if __name__ == "__main__":
            main({when!r})
    """)
    script = tmp_path / "fork_check.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, (out.returncode, out.stdout[-500:], out.stderr[-2000:])
    assert out.stdout.strip().endswith("ok")


def test_workqueue_layer_is_fork_safe_and_serialises_launches(tmp_path):
    """numba's workqueue (the layer without TBB, here chosen through the environment) aborts
    the process on concurrent launches unless the kernels serialise them."""
    script = tmp_path / "workqueue_check.py"
    script.write_text(_FORK_CHILD + textwrap.dedent("""
        import threading
        if __name__ == "__main__":
            from caffe2ops import kernels
            import caffe2ops as c2
            assert kernels.load()
            assert kernels.threading_layer() == "workqueue", kernels.threading_layer()
            x = np.linspace(-3, 3, 1 << 18).astype(np.float32)
            want = np.clip(x, -1, 1).tobytes()
            bad = []
            def hammer():
                for _ in range(20):
                    if c2.clip(x, -1.0, 1.0).tobytes() != want:
                        bad.append(1)
                    c2.cos(x)
            threads = [threading.Thread(target=hammer) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not bad
            check("fork")
            print("ok")
    """))
    import os

    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=180, env=env)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.strip() == "ok"


def test_threading_layer_is_fork_safe():
    assert kernels.load()
    import numba

    c2.cos(np.ones(1 << 17, np.float32))  # make sure the thread pool was launched
    assert numba.threading_layer() in ("tbb", "workqueue"), numba.threading_layer()


@pytest.mark.parametrize("first", ["cpu.launch", "cpu.clip", "cpu.norms"])
def test_threading_layer_is_fork_safe_whatever_touches_the_kernels_first(first):
    # compiling a parallel kernel starts numba's thread pool; touching the shared helpers or a
    # family before kernels.load() once let numba pick "omp" (not fork-safe)
    code = (f"from caffe2ops.kernels import cpu; {first}; import numba; "
            "print(numba.threading_layer())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() in ("tbb", "workqueue"), out.stdout


# --------------------------------------------------------------------- 3. overlapping out=

_OUT_CASES = {
    "clip": lambda x, out: c2.clip(x, 2, 7, out=out),
    "ensure_clipped": lambda x, out: c2.ensure_clipped(x, 2, 7, out=out),
    "thresholded_relu": lambda x, out: c2.thresholded_relu(x, 3.0, out=out),
    "cos": lambda x, out: c2.cos(x, out=out),
    "clip_tensor_by_scaling": lambda x, out: c2.clip_tensor_by_scaling(x, 100.0, 1.0, out=out),
    "clip_gradient": lambda x, out: c2.clip_gradient(x, x + 1, 2, 7, out=out),
    "thresholded_relu_gradient": lambda x, out: c2.thresholded_relu_gradient(x, x + 1, out=out),
    "cos_gradient": lambda x, out: c2.cos_gradient(x, x + 1, out=out),
    "lp_norm_gradient": lambda x, out: c2.lp_norm_gradient(x, x[:1].copy(), out=out),
}


@pytest.mark.parametrize("n", [10, 70001])
@pytest.mark.parametrize("name", sorted(_OUT_CASES))
@pytest.mark.parametrize("shift", [1, -1])
def test_out_overlapping_the_input_partially(name, n, shift):
    fn = _OUT_CASES[name]
    a = np.arange(n, dtype=np.float32)
    src, dst = (a[:-1], a[1:]) if shift == 1 else (a[1:], a[:-1])
    expected = fn(src.copy(), None)
    try:
        got = fn(src, dst)
    except OperatorError:
        return  # a clear refusal is fine
    assert got is dst
    np.testing.assert_array_equal(dst, expected)


def test_ensure_clipped_forward_overlap_from_the_issue():
    a = np.arange(10.0)
    c2.ensure_clipped(a[:-1], 2, 7, out=a[1:])
    assert a[1:].tolist() == [2, 2, 2, 3, 4, 5, 6, 7, 7]


# --------------------------------------------------------------------- 4. same array twice


def test_global_norm_inplace_with_the_same_array_twice_scales_it_once():
    a = np.array([3.0, 4.0])
    out, stats = clipping.clip_by_global_norm([a, a], 1.0, inplace=True)
    np.testing.assert_allclose(a, [3 / np.sqrt(50), 4 / np.sqrt(50)])
    assert out[0] is a and out[1] is a
    assert stats.total_norm == pytest.approx(np.sqrt(50))


def test_clip_by_norm_and_others_inplace_with_the_same_array_twice():
    c = np.array([3.0, 4.0])
    clipping.clip_by_norm([c, c], 1.0, inplace=True)
    np.testing.assert_allclose(c, [0.6, 0.8])
    g = np.array([[3.0, 0.1], [4.0, 0.1]])
    expected, _ = clipping.adaptive_grad_clip(g, np.ones((2, 2)), 0.5)
    clipping.adaptive_grad_clip([g, g], [np.ones((2, 2))] * 2, 0.5, inplace=True)
    np.testing.assert_array_equal(g, expected)


def test_inplace_with_partially_overlapping_views_is_refused_untouched():
    a = np.arange(1.0, 7.0)
    before = a.copy()
    for call in (
        lambda: clipping.clip_by_global_norm([a[:4], a[2:]], 1.0, inplace=True),
        lambda: clipping.clip_by_norm([a[:4], a[2:]], 1.0, inplace=True),
        lambda: clipping.clip_by_value([a[:4], a[2:]], 0, 2, inplace=True),
    ):
        with pytest.raises(OperatorError, match="overlap"):
            call()
        assert a.tobytes() == before.tobytes()
    # interleaved views do not share elements: allowed
    b = np.array([3.0, 30.0, 4.0, 40.0])
    clipping.clip_by_norm([b[::2], b[1::2]], 1.0, inplace=True)
    np.testing.assert_allclose(b[::2], [0.6, 0.8])


# ----------------------------------------------------------------------- 5. in-place Pow


def _inplace_pow_gradient(exponent: float) -> np.ndarray:
    workspace.ResetWorkspace()
    workspace.FeedBlob("X", np.array([-2.0, 3.0]))
    net = core.Net("pow_inplace")
    net.Copy(["X"], ["B"])
    net.Pow(["B"], ["B"], exponent=exponent)
    grads = net.AddGradientOperators(["B"])
    workspace.RunNetOnce(net)
    return workspace.FetchBlob(str(grads["X"]))


def test_inplace_pow_gradient_is_refused():
    """Caffe2's gradient def for an in-place Pow reads Y as if it were X (wrong sign, NaN): the
    backward pass refuses it for every exponent; out of place it is right."""
    for exponent in (2.0, -2.0, 3.0, 1.0, -1.0):
        with pytest.raises(OperatorError, match="overwritten in place"):
            _inplace_pow_gradient(exponent)
    workspace.ResetWorkspace()
    workspace.FeedBlob("X", np.array([-2.0, 3.0]))
    net = core.Net("pow_out_of_place")
    net.Pow(["X"], ["B"], exponent=3.0)
    grads = net.AddGradientOperators(["B"])
    workspace.RunNetOnce(net)
    np.testing.assert_allclose(workspace.FetchBlob(str(grads["X"])), [12.0, 27.0])


# ------------------------------------------------------------------- 6. integer Clip bounds


def test_integer_clip_bounds_are_exact_and_saturate():
    big = 2**53 + 1
    assert c2.clip(np.array([big]), max=big)[0] == big
    assert c2.clip(np.array([big + 2]), min=big + 1)[0] == big + 2
    assert c2.clip(np.array([5], np.int64), min=2**63)[0] == 2**63 - 1
    assert c2.clip(np.array([5], np.int64), max=-(2**70))[0] == -(2**63)
    assert c2.clip(np.array([5], np.uint64), max=2**64 + 5)[0] == 5
    assert c2.clip(np.array([5], np.int8), min=10**400)[0] == 127
    assert c2.clip(np.array([5.0]), min=10**400)[0] == np.finfo(np.float64).max
    assert c2.clip(np.array([5.0], np.float32), max=-(10**400))[0] == -np.inf
    assert c2.ensure_clipped(np.array([big]), max=big)[0] == big
    y, _ = clipping.clip_by_value(np.array([1, 2**62], np.int64), None, 1e30)
    assert y.tolist() == [1, 2**62]
    y, _ = clipping.clip_by_value(np.array([1, 2**62], np.int64), -1e30, 10**400)
    assert y.tolist() == [1, 2**62]
    y, _ = clipping.clip_by_value(np.array([big]), None, big)
    assert y[0] == big
    y, _ = clipping.clip_by_value(np.array([1.0]), 10**400, None)
    assert y[0] == np.inf
    x = np.array([3.0, 4.0])
    assert c2.clip_tensor_by_scaling(x, 10**400, 1.0).tolist() == [0.0, 0.0]


def test_integer_clip_bound_through_an_operator_def_is_exact():
    workspace.ResetWorkspace()
    big = 2**53 + 1
    workspace.FeedBlob("X", np.array([big + 8]))
    workspace.RunOperatorOnce(core.CreateOperator("Clip", ["X"], ["Y"], max=big))
    assert workspace.FetchBlob("Y")[0] == big


# -------------------------------------------------------------- 7. errors name the operator


@pytest.mark.parametrize("shape", [[2**40, 2**40], [2**20, 2**20, 2**10], [2**62, 4]])
def test_constant_fill_checks_the_size_before_allocating(shape):
    workspace.ResetWorkspace()
    op = core.CreateOperator("ConstantFill", [], ["Y"], shape=shape, value=1.0)
    with pytest.raises(OperatorError, match="ConstantFill"):
        workspace.RunOperatorOnce(op)
    assert not workspace.HasBlob("Y")


def test_constant_fill_limit_is_configurable():
    from caffe2ops.runtime import limits

    workspace.ResetWorkspace()
    op = core.CreateOperator("ConstantFill", [], ["Y"], shape=[1000], value=1.0)
    old = limits.get_max_blob_bytes()
    limits.set_max_blob_bytes(1000)
    try:
        with pytest.raises(OperatorError, match="4000 bytes"):
            workspace.RunOperatorOnce(op)
    finally:
        limits.set_max_blob_bytes(old)
    workspace.RunOperatorOnce(op)
    assert workspace.FetchBlob("Y").shape == (1000,)
    out = run_python("""
        from caffe2ops.runtime import limits
        print(limits.get_max_blob_bytes())
    """, env={"CAFFE2OPS_MAX_BLOB_BYTES": "12345"})
    assert out.stdout.strip() == "12345", out.stderr


def test_hostile_bytes_raise_operator_errors():
    for call in (workspace.RunOperatorOnce, workspace.RunNetOnce, workspace.CreateNet):
        with pytest.raises(OperatorError, match="parse"):
            call(b"\xff\xff")


def test_toolkit_errors_are_operator_errors():
    out, stats = clipping.per_sample_clip([np.zeros((0, 3))], 1.0)
    assert out[0].shape == (3,) and (out[0] == 0).all() and stats.total_norm.shape == (0,)
    with pytest.raises(OperatorError, match="axis"):
        clipping.clip_by_norm(np.ones((2, 2)), 1.0, axis=1.5)
    with pytest.raises(OperatorError, match="axis"):
        clipping.adaptive_grad_clip(np.ones((2, 2)), np.ones((2, 2)), 1.0, axis=[0.5])


# ------------------------------------------------------------- 8. arguments are type-checked


def test_functional_boolean_arguments_take_bools_only():
    w = np.array([[3.0, 4.0]])
    with pytest.raises(OperatorError, match="use_max_norm"):
        c2.sparse_normalize(w, np.array([0]), use_max_norm="False")
    assert (w == [[3.0, 4.0]]).all()
    with pytest.raises(OperatorError, match="average"):
        c2.lp_norm(np.ones(3), average="no")
    with pytest.raises(OperatorError, match="average"):
        c2.lp_norm(np.ones(3), average=np.array([1, 0]))
    with pytest.raises(OperatorError, match="average"):
        c2.lp_norm_gradient(np.ones(3), np.ones(1), average="yes")
    assert c2.lp_norm(np.ones(4), average=np.bool_(True))[0] == 1.0
    c2.sparse_normalize(w, np.array([0]), use_max_norm=np.False_)
    np.testing.assert_allclose(np.linalg.norm(w), 1.0)


def test_toolkit_arguments_are_type_checked():
    x = [np.array([3.0, 4.0])]
    for kwargs in ({"max_norm": "0.5"}, {"max_norm": True}, {"max_norm": 1.0, "ord": True},
                   {"max_norm": 1.0, "ord": "2"}):
        with pytest.raises(OperatorError):
            clipping.clip_by_global_norm(x, **kwargs)
    with pytest.raises(OperatorError):
        clipping.clip_by_norm(x, 1.0, axis="0")
    with pytest.raises(OperatorError):
        clipping.clip_by_norm(x, 1.0, axis=True)
    with pytest.raises(OperatorError):
        clipping.clip_by_value(x, "0", None)
    with pytest.raises(OperatorError):
        clipping.clip_by_global_norm(x, 1.0, inplace="yes")
    out, st = clipping.clip_by_global_norm(x, np.float32(1.0), ord=np.int64(2))
    assert float(st.total_norm) == 5.0
    out, st = clipping.clip_by_norm(x, np.int64(1), ord=np.float64(np.inf), axis=np.int64(0))
    np.testing.assert_allclose(out[0], [0.75, 1.0])


def test_argument_with_conflicting_fields_is_an_error():
    workspace.ResetWorkspace()
    workspace.FeedBlob("X", np.array([-2.0, 3.0], np.float32))
    op = core.CreateOperator("Clip", ["X"], ["Y"])
    arg = op.arg.add()
    arg.name, arg.f, arg.i = "min", 0.5, 1
    with pytest.raises(OperatorError, match="min"):
        workspace.RunOperatorOnce(op)


def test_boolean_argument_through_an_operator_def_must_be_0_or_1():
    workspace.ResetWorkspace()
    workspace.FeedBlob("W", np.array([[3.0, 4.0]], np.float32))
    workspace.FeedBlob("I", np.array([0], np.int64))
    op = core.CreateOperator("SparseNormalize", ["W", "I"], ["W"], use_max_norm=5)
    with pytest.raises(OperatorError, match="use_max_norm"):
        workspace.RunOperatorOnce(op)
    op = core.CreateOperator("SparseNormalize", ["W", "I"], ["W"], use_max_norm=0)
    workspace.RunOperatorOnce(op)
    np.testing.assert_allclose(np.linalg.norm(workspace.FetchBlob("W")), 1.0, rtol=1e-6)


# ------------------------------------------------------------------------- 9. thread controls


def test_thread_controls_with_a_half_imported_numba():
    code = """
        import sys, types
        sys.modules["numba"] = types.ModuleType("numba")  # what a loader mid-import leaves
        from caffe2ops import kernels
        assert kernels.get_max_threads() >= 1
        kernels.set_num_threads(1)
        assert kernels.get_num_threads() == 1
        print("ok")
    """
    out = run_python(code)
    assert out.returncode == 0, out.stderr[-2000:]


def test_thread_controls_work_while_the_kernels_load():
    code = """
        import numpy as np, caffe2ops as c2
        from caffe2ops import kernels
        c2.clip(np.ones(3, np.float32), 0.0, 1.0)   # starts the background loader
        n = 0
        while n < 50000:
            c2.set_num_threads(c2.get_num_threads())
            kernels.get_max_threads()
            n += 1
        assert kernels.load()
        print("ok")
    """
    out = run_python(code)
    assert out.returncode == 0, out.stderr[-2000:]


def test_reference_kernels_is_thread_local():
    from caffe2ops.ops._dispatch import CpuKernels

    x = np.zeros(8, np.float32)
    inside, entered, release = [], threading.Event(), threading.Event()

    def worker():
        with c2.reference_kernels():
            inside.append(CpuKernels("clip").get("clip", x, x))
            entered.set()
            release.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    assert entered.wait(10)
    try:
        kernel = CpuKernels("clip").get("clip", x, x)
        assert kernel is not None, "another thread's reference_kernels() leaked"
    finally:
        release.set()
        t.join()
    assert inside == [None]


# --------------------------------------------------------------------- 10. silent mistakes


def _run_clip(**kwargs):
    workspace.ResetWorkspace()
    workspace.FeedBlob("X", np.array([-2.0, 3.0], np.float32))
    op = core.CreateOperator("Clip", ["X"], ["Y"], **kwargs)
    workspace.RunOperatorOnce(op)
    return workspace.FetchBlob("Y")


def test_misspelled_argument_warns_with_the_closest_names(monkeypatch):
    monkeypatch.delenv("CAFFE2OPS_STRICT_ARGS", raising=False)
    with pytest.warns(UserWarning, match=r"Clip: unknown argument 'mn'.*'min'"):
        _run_clip(mn=0.0)


def test_misspelled_argument_raises_in_strict_mode(monkeypatch):
    monkeypatch.setenv("CAFFE2OPS_STRICT_ARGS", "1")
    with pytest.raises(OperatorError, match=r"unknown argument 'mn'.*'min'"):
        _run_clip(mn=0.0)
    monkeypatch.delenv("CAFFE2OPS_STRICT_ARGS")
    from caffe2ops.runtime.args import strict_args

    with strict_args(), pytest.raises(OperatorError, match="mx"):
        _run_clip(mx=1.0)


def test_generic_caffe2_arguments_and_gradient_ops_do_not_warn(monkeypatch):
    monkeypatch.setenv("CAFFE2OPS_STRICT_ARGS", "1")
    _run_clip(min=0.0, order="NCHW", use_cudnn=True, cudnn_exhaustive_search=False,
              ws_nbytes_limit=1 << 20, exhaustive_search=False)
    workspace.ResetWorkspace()
    workspace.FeedBlob("X", np.array([0.3, 3.0], np.float32))
    net = core.Net("grad_args")
    net.Cos(["X"], ["C"])
    net.ThresholdedRelu(["C"], ["Y"], alpha=0.5)
    net.AddGradientOperators(["Y"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        workspace.RunNetOnce(net)


def test_unknown_engine_warns_once():
    import uuid

    engine = f"NO_SUCH_ENGINE_{uuid.uuid4().hex[:8]}"
    with pytest.warns(UserWarning, match=engine) as rec:
        _run_clip(min=0.0, engine=engine)
        _run_clip(min=0.0, engine=engine)
    assert sum(engine in str(w.message) for w in rec) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run_clip(min=0.0, engine="CUDNN")


def test_feed_blob_refuses_non_numeric_objects():
    workspace.ResetWorkspace()
    for bad in (object(), np.array([object(), object()]), [1, object()], {"a": 1}):
        with pytest.raises(OperatorError, match="FeedBlob"):
            workspace.FeedBlob("O", bad)
        assert not workspace.HasBlob("O")
    workspace.FeedBlob("S", np.array([b"ab", b"c"], dtype=object))
    assert workspace.FetchBlob("S").tolist() == [b"ab", b"c"]
    workspace.FeedBlob("T", np.array(["x", "yz"]))
    workspace.FeedBlob("U", "text")


def test_create_net_refuses_a_missing_input_blob():
    workspace.ResetWorkspace()
    net = core.Net("missing_input")
    net.Clip(["X"], ["Y"], min=0.0)
    with pytest.raises(OperatorError, match="'X'"):
        workspace.CreateNet(net)
    net2 = core.Net("external_missing")
    net2.AddExternalInput("Z")
    net2.Cos(["Z"], ["W"])
    with pytest.raises(OperatorError, match="'Z'"):
        workspace.CreateNet(net2)
    workspace.CreateNet(net, input_blobs=["X"])  # Caffe2: input_blobs creates them
    assert workspace.HasBlob("X")
    net3 = core.Net("produced_earlier")
    net3.ConstantFill([], ["A"], shape=[2], value=1.0)
    net3.Cos(["A"], ["B"])
    workspace.CreateNet(net3)
    workspace.RunNet(net3.Name())
    np.testing.assert_allclose(workspace.FetchBlob("B"), np.cos([1.0, 1.0]), rtol=1e-6)


# ------------------------------------------------------------------------ 11. loader races


def test_concurrent_loading_keeps_the_parallel_thresholds():
    saved = (cpu.PAR_MIN, cpu.cos.PAR_MIN_COS, cpu.cos.PAR_MIN_COS64,
             cpu.cosine_similarity.PAR_MIN_ROWS)
    errors = []

    def hammer():
        try:
            for _ in range(5):
                cpu.preload(["clip", "cos"], dtypes=(np.float32,))
                assert kernels.load()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert (cpu.PAR_MIN, cpu.cos.PAR_MIN_COS, cpu.cos.PAR_MIN_COS64,
            cpu.cosine_similarity.PAR_MIN_ROWS) == saved


def test_load_is_public_blocking_and_idempotent():
    code = """
        import numpy as np, caffe2ops as c2
        from caffe2ops import kernels
        from caffe2ops.kernels import cpu
        assert kernels.load() is True
        assert kernels.load() is True
        assert cpu.PAR_MIN == 1 << 20, cpu.PAR_MIN
        from caffe2ops.ops._dispatch import CpuKernels
        assert CpuKernels("clip").get("clip", np.zeros(4, np.float32)) is not None
        print("ok")
    """
    out = run_python(code)
    assert out.returncode == 0, out.stderr[-2000:]


# ------------------------------------------------------------------------------- 12. docs


def test_readme_says_the_current_workspace_is_process_wide():
    text = (ROOT / "README.md").read_text()
    assert "process-wide" in text and "workspace.C.Workspace()" in text
