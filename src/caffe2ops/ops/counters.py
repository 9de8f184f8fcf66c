"""Iteration counters and the learning-rate schedule: Iter, CreateMutex, AtomicIter, LearningRate.

Iter(iter) -> iter: adds 1 in place to a one-element int64 counter (without an input, the
first run creates it at 0 and increments it to 1, as Caffe2's legacy form). CreateMutex() ->
mutex: a blob holding a :class:`Mutex` (a Python object, not an array). AtomicIter(mutex, iter)
-> iter: Iter under the mutex (what Caffe2's optimizers emit). No gradients.

LearningRate(iter, base_lr, policy, ...) -> a 0-d float32 ``base_lr * f(iter)`` computed in
float32 as Caffe2: fixed ``1``; step ``gamma^floor(iter/stepsize)``; exp ``gamma^iter``; inv
``(1 + gamma*iter)^(-power)``; multistep ``gamma^(number of stepsizes <= iter)`` (later Caffe2;
1.5.0 rejects it).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from caffe2ops.errors import OperatorTypeError, OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.runtime.schema import NO_GRADIENT, SHOULD_NOT_DO_GRADIENT, Arg, OpSchema, register

ITER = "Iter"
ATOMIC = "AtomicIter"
MUTEX = "CreateMutex"
LR = "LearningRate"
POLICIES = ("fixed", "step", "exp", "inv", "multistep")
F32 = np.float32


class Mutex:
    """The object a CreateMutex blob holds (Caffe2's ``std::unique_ptr<std::mutex>``)."""

    __slots__ = ("lock",)

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return "<caffe2ops Mutex>"


def _counter(op: str, counter: Any) -> np.ndarray:
    if not isinstance(counter, np.ndarray):
        raise OperatorTypeError(f"{op}: input iter must be an int64 array (updated in place); "
                                f"got {type(counter).__name__}")
    if counter.dtype != np.int64:
        raise OperatorTypeError(f"{op}: input iter must be int64; got {counter.dtype}")
    if counter.size != 1:
        raise OperatorValueError(f"{op}: input iter must have one element; got shape "
                                 f"{counter.shape}")
    if not counter.flags.writeable:
        raise OperatorValueError(f"{op}: input iter is read-only (it is updated in place)")
    return counter


def _increment(op: str, counter: np.ndarray) -> np.ndarray:
    flat = counter.reshape(-1)
    if flat[0] == np.iinfo(np.int64).max:
        raise OperatorValueError(f"{op}: input iter is at the int64 maximum; adding 1 would "
                                 f"overflow")
    flat[0] += 1
    return counter


def iter_(counter: np.ndarray) -> np.ndarray:
    """Add 1 to the one-element int64 ``counter`` in place and return it (``c2.iter``).

    >>> import numpy as np, caffe2ops as c2
    >>> it = np.zeros(1, np.int64)
    >>> c2.iter(it), it
    (array([1]), array([1]))
    """
    return _increment(ITER, _counter(ITER, counter))


def create_mutex() -> Mutex:
    """A new :class:`Mutex` (what a CreateMutex blob holds).

    >>> import caffe2ops as c2
    >>> c2.create_mutex()
    <caffe2ops Mutex>
    """
    return Mutex()


def _mutex(op: str, mutex: Any) -> Mutex:
    if isinstance(mutex, np.ndarray) and mutex.dtype == object and mutex.size == 1:
        mutex = mutex.reshape(-1)[0]  # FeedBlob wraps objects in a 0-d object array
    if not isinstance(mutex, Mutex):
        raise OperatorTypeError(f"{op}: input mutex must be a mutex (from CreateMutex); got "
                                f"{type(mutex).__name__}")
    return mutex


def atomic_iter(mutex: Mutex, counter: np.ndarray) -> np.ndarray:
    """:func:`iter_` holding ``mutex`` (safe from several threads at once).

    >>> import numpy as np, caffe2ops as c2
    >>> c2.atomic_iter(c2.create_mutex(), np.array([41], np.int64))
    array([42])
    """
    mutex = _mutex(ATOMIC, mutex)
    counter = _counter(ATOMIC, counter)
    with mutex.lock:
        return _increment(ATOMIC, counter)


def _policy_args(op: str, policy: Any, kw: dict) -> None:
    if not isinstance(policy, str):
        raise OperatorTypeError(f"{op}: argument 'policy' must be a string; got "
                                f"{type(policy).__name__}")
    if policy not in POLICIES:
        raise OperatorValueError(f"{op}: unknown learning rate policy {policy!r} (supported: "
                                 f"{', '.join(POLICIES)})")
    if policy == "step":
        step = kw.get("stepsize")
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or step <= 0:
            raise OperatorValueError(f"{op}: policy 'step' needs argument 'stepsize', an int > 0;"
                                     f" got {step!r}")
    if policy == "multistep":
        steps = kw.get("stepsizes")
        if not steps or any(isinstance(s, bool) or not isinstance(s, int | np.integer)
                            for s in steps):
            raise OperatorValueError(f"{op}: policy 'multistep' needs argument 'stepsizes', a "
                                     f"non-empty list of ints; got {steps!r}")
    for name in ("gamma", "power"):
        c.float_arg(op, name, kw.get(name, 1.0))


def _libm_powf():
    """The C library's ``powf``, which Caffe2's ``std::pow(float, float)`` calls; NumPy's float32
    power can take another (SIMD) path, e.g. with AVX-512, that differs from it by an ulp."""
    import ctypes
    import ctypes.util

    try:
        fn = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6").powf
    except (OSError, AttributeError, TypeError):
        return None
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_float, ctypes.c_float]
    return fn


_POWF = _libm_powf()


def _powf(x: np.float32, y: np.float32) -> np.float32:
    if _POWF is None:
        return np.power(x, y)
    return F32(_POWF(x, y))


def _multiplier(policy: str, it: int, gamma: np.float32, power: np.float32, stepsize: int,
                stepsizes) -> np.float32:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if policy == "fixed":
            return F32(1)
        if policy == "step":
            return _powf(gamma, F32(it // stepsize))
        if policy == "exp":
            return _powf(gamma, F32(it))
        if policy == "inv":
            return _powf(F32(1) + gamma * F32(it), -power)
        passed = sum(1 for s in stepsizes if it >= s)
        return _powf(gamma, F32(passed))


def learning_rate(iteration: Any, base_lr: float, policy: str, gamma: float = 1.0,
                  power: float = 1.0, stepsize: int | None = None,
                  stepsizes: list | None = None) -> np.ndarray:
    """``base_lr * multiplier(iter)`` as a 0-d float32 array (float32 arithmetic, as Caffe2).

    >>> import numpy as np, caffe2ops as c2
    >>> it = np.array([10], np.int64)
    >>> c2.learning_rate(it, -0.1, "step", gamma=0.5, stepsize=4)
    array(-0.025, dtype=float32)
    >>> c2.learning_rate(it, 0.2, "fixed")
    array(0.2, dtype=float32)
    """
    kw = {"gamma": gamma, "power": power, "stepsize": stepsize, "stepsizes": stepsizes}
    _policy_args(LR, policy, kw)
    base = c.float_arg(LR, "base_lr", base_lr)
    it = c.array(LR, "input iter", iteration)
    if it.dtype != np.int64 or it.size != 1:
        raise OperatorTypeError(f"{LR}: input iter must be a one-element int64 tensor; got "
                                f"{it.dtype} of shape {it.shape}")
    m = _multiplier(policy, int(it.reshape(-1)[0]), F32(gamma), F32(power), stepsize or 1,
                    stepsizes or ())
    with np.errstate(over="ignore", invalid="ignore"):
        return np.array(F32(base) * F32(m), dtype=F32)


def _run_iter(op, inputs, outs):
    if not inputs:
        counter = outs[0]
        if not (isinstance(counter, np.ndarray) and counter.dtype == np.int64
                and counter.size == 1):
            counter = np.zeros(1, np.int64)
        return [iter_(counter)]
    return [iter_(inputs[0])]


def _run_mutex(op, inputs, outs):
    return [create_mutex()]


def _run_atomic(op, inputs, outs):
    return [atomic_iter(inputs[0], inputs[1])]


def _run_lr(op, inputs, outs):
    a = op.args
    if a["base_lr"] is None or a["policy"] is None:
        raise OperatorValueError(f"{LR}: arguments 'base_lr' and 'policy' are required")
    return [learning_rate(inputs[0], a["base_lr"], a["policy"], a["gamma"], a["power"],
                          a["stepsize"], a["stepsizes"])]


def _check_lr(op_type: str, args: dict) -> None:
    if args["policy"] is not None:
        _policy_args(op_type, args["policy"], args)


register(OpSchema(
    type=ITER, kernel=_run_iter, num_inputs=(0, 1), inputs=("iter",), outputs=("iter",),
    enforce_inplace={(0, 0)}, infer=lambda i, a: [((1,), np.dtype(np.int64))],
    gradient=NO_GRADIENT, doc=__doc__.split("\n\n")[1],
))
register(OpSchema(
    type=MUTEX, kernel=_run_mutex, num_inputs=(0, 0), outputs=("mutex_ptr",),
    infer=lambda i, a: [None], gradient=SHOULD_NOT_DO_GRADIENT,
    doc="A blob holding a new mutex (a Python object).",
))
register(OpSchema(
    type=ATOMIC, kernel=_run_atomic, num_inputs=(2, 2), inputs=("mutex", "iter"),
    outputs=("iter",), enforce_inplace={(1, 0)},
    infer=lambda i, a: [((1,), np.dtype(np.int64))], gradient=NO_GRADIENT,
    doc="Iter under the mutex (Caffe2's optimizers' iteration counter).",
))
register(OpSchema(
    type=LR, kernel=_run_lr, num_inputs=(1, 1), inputs=("input",), outputs=("output",),
    args=(
        Arg("base_lr", "float", None, "(required) base learning rate"),
        Arg("policy", "string", None, "(required) fixed, step, exp, inv or multistep"),
        Arg("power", "float", 1.0, "inv policy's power"),
        Arg("gamma", "float", 1.0, "decay factor"),
        Arg("stepsize", "int", None, "step policy's step (iterations)"),
        Arg("stepsizes", "ints", None, "multistep policy's steps"),
        Arg("max_iter", "int", -1, "accepted for Caffe2 compatibility"),
    ),
    check_args=_check_lr, infer=lambda i, a: [((), np.dtype(np.float32))], gradient=NO_GRADIENT,
    doc=__doc__.split("\n\n")[2],
))
