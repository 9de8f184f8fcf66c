"""The project's own fuzz tests (contract §4): random nets with gradients, random bad inputs
through both APIs, protobuf bytes and text, threads and fork.

In ``make test`` each runs a few dozen examples (seconds in all). ``make fuzz MINUTES=5`` runs
this file over and over with ``CAFFE2OPS_FUZZ_EXAMPLES`` examples per test (and larger arrays)
until the time is up. The invariants: nothing but an ``OperatorError`` escapes; a failed call
leaves every blob (and every array it was given) bit-for-bit unchanged; the fast kernels and the
reference kernels agree; threads give single-threaded results; forked children work.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
from google.protobuf import text_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import caffe2ops as c2
from caffe2ops import OperatorError, clipping, core, workspace
from caffe2ops.proto import caffe2_pb2
from caffe2ops.runtime import limits
from caffe2ops.runtime.schema import get_schema, registered_types

EXAMPLES = int(os.environ.get("CAFFE2OPS_FUZZ_EXAMPLES", "25"))
LONG = EXAMPLES > 100  # make fuzz: larger arrays (the parallel and streaming kernel paths)
# In `make test` the examples are derandomized (the same every run, so CI cannot fail by
# chance); `make fuzz` draws new ones every round.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not LONG,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def _small_blob_limit():
    """Fuzzed fillers may ask for anything: keep what they can get small."""
    old = limits.get_max_blob_bytes()
    limits.set_max_blob_bytes(64 << 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown-argument warnings are expected here
        yield
    limits.set_max_blob_bytes(old)


def snapshot(blobs: dict) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in blobs.items()}


def same_blobs(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        w = b[k]
        if isinstance(v, np.ndarray):
            if not isinstance(w, np.ndarray) or v.dtype != w.dtype or v.shape != w.shape \
                    or v.tobytes() != w.tobytes():
                return False
        elif v is not w and v != w:
            return False
    return True


def blobs_now() -> dict:
    return workspace.current_blobs()


# ---------------------------------------------------------------- random nets with gradients

_UNARY = ["Clip", "Cos", "ThresholdedRelu", "Copy", "Pow"]


@st.composite
def nets(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n = draw(st.sampled_from([1, 3, 16] + ([70001] if LONG else [])))
    d = draw(st.sampled_from([1, 4]))
    feeds = {name: draw(st.integers(0, 2**32 - 1)) for name in ("X0", "X1")}
    ops: list[tuple] = []
    live = ["X0", "X1"]
    for k in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(_UNARY + ["Sum", "CosineSimilarity"]))
        if kind in ("Sum", "CosineSimilarity"):
            a, b = draw(st.sampled_from(live)), draw(st.sampled_from(live))
            if kind == "CosineSimilarity":
                ops.append((kind, [a, b], [f"Z{k}"], {}))
                continue  # its [N] output is not an input of later ops
            out = draw(st.sampled_from([f"B{k}", a]))
            ops.append((kind, [a, b], [out], {}))
        else:
            a = draw(st.sampled_from(live))
            inplace = kind in ("Clip", "ThresholdedRelu", "Pow") and draw(st.booleans())
            out = a if inplace else f"B{k}"
            args = {}
            if kind == "Clip":
                args = {"min": draw(st.sampled_from([-1.0, 0.0, 0.5])),
                        "max": draw(st.sampled_from([0.25, 1.0, 2.0]))}
            elif kind == "ThresholdedRelu":
                args = {"alpha": draw(st.sampled_from([-0.5, 0.0, 0.3, 1.0]))}
            elif kind == "Pow":
                args = {"exponent": draw(st.sampled_from([0.5, 1.0, 2.0, 3.0, -1.0]))}
            ops.append((kind, [a], [out], args))
        if out not in live:
            live.append(out)
    return dtype, (n, d), feeds, ops, live[-1]


def _build(dtype, shape, feeds, ops, loss):
    workspace.ResetWorkspace()
    for name, seed in feeds.items():
        x = np.random.default_rng(seed).uniform(-2, 2, shape).astype(dtype)
        workspace.FeedBlob(name, x)
    net = core.Net("fuzz")
    for kind, ins, outs, args in ops:
        getattr(net, kind)(ins, outs, **args)
    try:
        net.AddGradientOperators([loss])
    except OperatorError:
        pass  # e.g. an in-place op whose gradient cannot be recovered: refused, fine
    return net


@FUZZ
@given(nets())
def test_random_nets_with_gradients(spec):
    dtype, shape, feeds, ops, loss = spec
    results = []
    for reference in (False, True):
        net = _build(dtype, shape, feeds, ops, loss)
        ctx = c2.reference_kernels() if reference else contextlib.nullcontext()
        with ctx:
            try:
                workspace.RunNetOnce(net)
                results.append(snapshot(blobs_now()))
            except OperatorError as exc:
                results.append(type(exc))
    fast, ref = results
    assert type(fast) is type(ref), (fast, ref)
    if isinstance(fast, dict):
        assert fast.keys() == ref.keys()
        tol = 1e-4 if dtype == np.float32 else 1e-10
        for k in fast:
            np.testing.assert_allclose(fast[k], ref[k], rtol=tol, atol=tol, equal_nan=True,
                                       err_msg=k)


# --------------------------------------------------------- random bad OperatorDefs (Caffe2 API)

_POOL = {
    "F32": lambda: np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4),
    "F64": lambda: np.linspace(-3, 3, 12).reshape(3, 4),
    "F16": lambda: np.linspace(-3, 3, 6, dtype=np.float16),
    "I64": lambda: np.array([0, 2, 1], np.int64),
    "I32": lambda: np.array([5, -1], np.int32),
    "BIG": lambda: np.array([2**40], np.int64),
    "U8": lambda: np.arange(6, dtype=np.uint8),
    "E": lambda: np.zeros((0, 4), np.float32),
    "S0": lambda: np.float32(2.5) * np.ones((), np.float32),
    "STR": lambda: b"text",
    "ONE": lambda: np.ones(1, np.float32),
}
_NAMES = [*_POOL, "MISSING"]
_ARG_VALUES = st.one_of(
    st.integers(-3, 3), st.sampled_from([2**31, 2**62, -(2**63), 0, 1]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.lists(st.integers(-2, 5), max_size=4), st.lists(st.floats(-2, 5), max_size=3),
    st.booleans(),
)


@st.composite
def operator_defs(draw):
    types = registered_types()
    op_type = draw(st.sampled_from(types + ["NoSuchOp", "clip"]))
    inputs = draw(st.lists(st.sampled_from(_NAMES), max_size=4))
    outputs = draw(st.lists(st.sampled_from(_NAMES + ["OUT", "OUT2"]), max_size=3))
    try:
        arg_names = [a.name for a in get_schema(op_type).args]
    except OperatorError:
        arg_names = []
    op = caffe2_pb2.OperatorDef(type=op_type, input=inputs, output=outputs)
    for name in draw(st.lists(st.sampled_from(arg_names + ["mn", "order", "xyz"]), max_size=4)):
        arg = op.arg.add()
        arg.name = name
        value = draw(_ARG_VALUES)
        if isinstance(value, bool | int):
            arg.i = int(value) if -(2**63) <= value < 2**63 else 0
        elif isinstance(value, float):
            arg.f = value
        elif isinstance(value, str):
            arg.s = value.encode()
        elif value and all(isinstance(v, int) for v in value):
            arg.ints.extend(value)
        else:
            arg.floats.extend(value)
        if draw(st.integers(0, 9)) == 0:
            arg.f = 1.0  # a second value field
    if draw(st.booleans()):
        op.engine = draw(st.sampled_from(["", "CUDNN", "FUZZ_ENGINE"]))
    if draw(st.integers(0, 5)) == 0:
        op.is_gradient_op = True
    return op


def _feed_pool():
    workspace.ResetWorkspace()
    for name, make in _POOL.items():
        workspace.FeedBlob(name, make())


def _run_and_check(call):
    """``call()`` may succeed or raise OperatorError; failing, it leaves every blob unchanged."""
    before = snapshot(blobs_now())
    try:
        call()
    except OperatorError:
        assert same_blobs(before, blobs_now()), "a failed operator changed the workspace"
        return False
    return True


@FUZZ
@given(operator_defs())
def test_random_operator_defs_fail_cleanly(op):
    _feed_pool()
    _run_and_check(lambda: workspace.RunOperatorOnce(op))
    _feed_pool()
    _run_and_check(lambda: workspace.RunOperatorOnce(op.SerializeToString()))


@FUZZ
@given(st.lists(operator_defs(), min_size=1, max_size=4), st.booleans())
def test_random_net_defs_fail_cleanly(ops, create):
    _feed_pool()
    net = caffe2_pb2.NetDef(name="fuzz_net", op=ops)
    if create:
        if _run_and_check(lambda: workspace.CreateNet(net, overwrite=True)):
            try:
                workspace.RunNet("fuzz_net")
            except OperatorError:
                pass
    else:
        try:
            workspace.RunNetOnce(net)
        except OperatorError:
            pass


# ------------------------------------------------------------------ protobuf bytes and text


@st.composite
def mutated_bytes(draw):
    ops = [caffe2_pb2.OperatorDef(type="Clip", input=["F32"], output=["OUT"]),
           caffe2_pb2.OperatorDef(type="ConstantFill", output=["C"])]
    ops[0].arg.add(name="min", f=0.0)
    ops[1].arg.add(name="shape", ints=[2, 3])
    data = bytearray(caffe2_pb2.NetDef(name="n", op=ops).SerializeToString())
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[i] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[i:i + draw(st.integers(1, 8))]
        elif action == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=6))
        else:
            data += data[i:]
    return bytes(data)


@FUZZ
@given(mutated_bytes())
def test_hostile_protobuf_bytes(data):
    _feed_pool()
    _run_and_check(lambda: workspace.RunNetOnce(data))
    _run_and_check(lambda: workspace.RunOperatorOnce(data))


@FUZZ
@given(st.data())
def test_hostile_protobuf_text(data):
    net = caffe2_pb2.NetDef(name="t")
    op = net.op.add(type="ThresholdedRelu", input=["F32"], output=["OUT"])
    op.arg.add(name="alpha", f=0.5)
    text = bytearray(text_format.MessageToString(net).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text) - 1))
        text[i:i + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=3))
    try:
        parsed = text_format.Parse(text.decode("utf-8", "replace"), caffe2_pb2.NetDef())
    except text_format.ParseError:
        return  # protobuf's own refusal
    _feed_pool()
    _run_and_check(lambda: workspace.RunNetOnce(parsed))


# ------------------------------------------------------------- functional API and toolkit

_ARRAYS = st.sampled_from([
    np.linspace(-2, 2, 6, dtype=np.float32), np.linspace(-2, 2, 6).reshape(2, 3),
    np.linspace(-2, 2, 8, dtype=np.float16), np.arange(6, dtype=np.int64),
    np.array([0, 1], np.int32), np.array([5, -1], np.int64), np.zeros((0, 3)),
    np.float64(1.5) * np.ones(()), np.array([True, False]), np.array([1 + 2j]),
    np.array(["a", "b"]), np.array([object()]), np.linspace(0, 1, 12)[::2],
    np.full(3, np.nan, np.float32), np.full(3, np.inf),
])
_VALUES = st.one_of(
    _ARRAYS, st.sampled_from([None, 0, 1, -1, 1.5, 2, float("nan"), float("inf"), 10**400,
                              True, False, "x", "0.5", [1, 2], np.int64(2), np.float32(0.5),
                              np.bool_(True), b"1", {"a": 1}]),
)
_FUNCTIONS = [getattr(c2, n) for n in c2.__all__ if inspect.isfunction(getattr(c2, n))
              and n not in ("reference_kernels", "set_num_threads", "get_num_threads")]


def _draw_call(data, fn, first=None):
    """Arguments for ``fn`` following its signature: every required parameter, each optional
    one half of the time; arrays are copied so that a failed call can be checked."""
    args, kwargs = [], {}
    for k, (name, par) in enumerate(inspect.signature(fn).parameters.items()):
        if k == 0 and first is not None:
            args.append(first)
            continue
        if par.kind is inspect.Parameter.VAR_POSITIONAL:  # *xs: zero to three more values
            for i in range(data.draw(st.integers(0, 3), label=f"number of {name}")):
                value = data.draw(_VALUES, label=f"{name}[{i}]")
                args.append(value.copy() if isinstance(value, np.ndarray) else value)
            continue
        if par.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        required = par.default is inspect.Parameter.empty
        if not required and not data.draw(st.booleans(), label=f"give {name}"):
            continue
        value = data.draw(_VALUES, label=name)
        value = value.copy() if isinstance(value, np.ndarray) else value
        if par.kind is inspect.Parameter.KEYWORD_ONLY or (not required and data.draw(
                st.booleans(), label=f"{name} by keyword")):
            kwargs[name] = value
        elif par.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and not kwargs:
            args.append(value)
        else:
            kwargs[name] = value
    return args, kwargs


@FUZZ
@given(st.sampled_from(_FUNCTIONS), st.data())
def test_functional_api_with_random_arguments(fn, data):
    args, kwargs = _draw_call(data, fn)
    given_arrays = [a for a in [*args, *kwargs.values()] if isinstance(a, np.ndarray)]
    before = [a.copy() for a in given_arrays]
    with np.errstate(all="raise"):  # a stray NumPy warning must not become the result
        try:
            fn(*args, **kwargs)
        except OperatorError:
            for a, b in zip(given_arrays, before, strict=True):
                assert a.tobytes() == b.tobytes(), f"{fn.__name__} failed but wrote an array"


_TOOLKIT = [clipping.clip_by_value, clipping.clip_by_norm, clipping.clip_by_global_norm,
            clipping.adaptive_grad_clip, clipping.per_sample_clip]


@FUZZ
@given(st.sampled_from(_TOOLKIT), st.lists(_ARRAYS, max_size=3), st.booleans(), st.data())
def test_toolkit_with_random_arguments(fn, arrays, alias, data):
    arrays = [a.copy() for a in arrays]
    if alias and arrays:
        arrays.append(arrays[0])
    args, kwargs = _draw_call(data, fn, first=arrays)
    if "ord" in kwargs or data.draw(st.booleans()):
        kwargs.setdefault("ord", data.draw(st.sampled_from([1, 2, "inf", np.inf, 3, "2"])))
    if fn.__name__ == "clip_by_norm" and data.draw(st.booleans()):
        kwargs["axis"] = data.draw(st.sampled_from([0, 1, -1, (0,), (0, 1), 1.5, "0", None]))
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        return
    before = [a.copy() for a in arrays]
    with np.errstate(all="raise"):
        try:
            fn(*args, **kwargs)
        except OperatorError:
            for a, b in zip(arrays, before, strict=True):
                assert a.tobytes() == b.tobytes(), f"{fn.__name__} failed but wrote an array"


# -------------------------------------------------------------------------- threads and fork


def test_threads_give_single_threaded_results():
    rng = np.random.default_rng(0)
    n = 70001 if LONG else 4099
    xs = [rng.uniform(-3, 3, n).astype(np.float32) for _ in range(6)]
    calls = [
        lambda x: c2.clip(x, -1.0, 1.0),
        lambda x: c2.cos(x),
        lambda x: c2.thresholded_relu(x, 0.5),
        lambda x: c2.cos_gradient(x, x),
        lambda x: clipping.clip_by_global_norm([x, x[::-1].copy()], 1.0)[0][0],
        lambda x: c2.sparse_normalize(x.reshape(-1, 1)[: n // 7 * 7].reshape(-1, 7).copy(),
                                      np.arange(0, n // 7, 3)),
    ]
    expected = [[f(x).tobytes() for x in xs] for f in calls]
    errors = []

    def worker(seed: int):
        order = np.random.default_rng(seed).permutation(len(calls) * len(xs))
        for k in order:
            f, i = divmod(int(k), len(xs))
            if calls[f](xs[i]).tobytes() != expected[f][i]:
                errors.append((f, i))

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors


@pytest.mark.skipif(not os.environ.get("CAFFE2OPS_HEAVY_TESTS"),
                    reason="make test-heavy: inside the full suite the script ran past 420 s twice "
                    "on 2026-12-02 (alone: 40 s); under investigation")
def test_fork_while_other_threads_run_kernels(tmp_path):
    script = tmp_path / "fork_threads.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing as mp, random, sys, threading, time
        import numpy as np
        import caffe2ops as c2

        def child(q):
            x = np.linspace(-3, 3, 1 << 18).astype(np.float32)
            q.put(c2.clip(x, -1.0, 1.0).tobytes() == np.clip(x, -1, 1).tobytes())

        def busy(stop):
            x = np.linspace(-3, 3, 1 << 18).astype(np.float32)
            while not stop.is_set():
                c2.cos(x)
                c2.clip(x, 0.0, 1.0)

        if __name__ == "__main__":
            stop = threading.Event()
            workers = [threading.Thread(target=busy, args=(stop,)) for _ in range(2)]
            c2.clip(np.ones(3, np.float32), 0.0, 1.0)  # loading starts in the background
            for t in workers:
                t.start()
            ctx = mp.get_context("fork")
            for _ in range(2):
                time.sleep(random.uniform(0, 0.3))
                q = ctx.Queue()
                p = ctx.Process(target=child, args=(q,))
                p.start()
                p.join(60)
                if p.is_alive():
                    p.kill()
                    sys.exit("child hung")
                assert p.exitcode == 0, p.exitcode
                assert q.get(timeout=5)
            stop.set()
            for t in workers:
                t.join()
            print("ok")
    """))
    # A cold Numba cache makes the load long, so the forks land while it is in progress (this
    # hung 2 of 3 runs before the fork handlers were ordered after logging's). One cold run
    # takes 40-120 s on the 2-core machine (it compiles while two threads keep both cores
    # busy); `make test-heavy` runs three.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    for _ in range(3 if os.environ.get("CAFFE2OPS_HEAVY_TESTS") else 1):
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=420, env=env)
        assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
        assert out.stdout.strip() == "ok"
        shutil.rmtree(tmp_path / "numba-cache", ignore_errors=True)


def test_fork_during_loading_when_the_loader_needs_the_logging_lock(tmp_path):
    """numba's import takes logging's lock; logging's fork handler holds it during a fork. If
    that handler ran before ours (which waits for the loader), the fork deadlocked."""
    script = tmp_path / "fork_logging.py"
    script.write_text(textwrap.dedent("""
        import os, threading, time
        import caffe2ops.kernels as kernels
        import logging  # first imported here unless caffe2ops imported it before its handler

        holding = threading.Event()

        def loader():  # what the kernel loader does while numba imports
            with kernels._LOAD_LOCK:
                holding.set()
                time.sleep(0.5)
                logging.getLogger("caffe2ops-test")

        t = threading.Thread(target=loader)
        t.start()
        holding.wait()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        t.join()
        print("ok")
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.strip() == "ok"
