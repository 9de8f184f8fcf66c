"""Fillers (Caffe2 ``filler_op.{h,cc}``, ``given_tensor_fill_op.{h,cc}``).

The output shape follows Caffe2's ``FillerOp``: without an input it is ``shape`` (no
``extra_shape``, no ``input_as_shape``); with an input it is the input's shape, or with
``input_as_shape`` the values of a 1-D int64 input, then ``extra_shape`` appended (``shape`` must
then be absent). The size is checked against the allocation limit
(:func:`caffe2ops.ops._common.check_alloc_size`) before anything is allocated.

* ``GivenTensorFill(values, dtype=FLOAT)`` (``values`` through ``floats``; ``dtype`` one of FLOAT,
  DOUBLE, BOOL, INT16, INT32, INT64, the integer ones reading ``ints``), ``GivenTensorIntFill``
  (int32), ``GivenTensorInt64Fill``, ``GivenTensorBoolFill``: the values, whose count must equal
  the output's size.
* ``UniformFill(min=0, max=1)``: ``U[min, max)`` float32; ``min < max`` unless min and max come
  from the optional inputs 1 and 2 (1-element blobs; ``min > max`` then gives an empty dim 0).
* ``GaussianFill(mean=0, std=1)``: ``mean + std·N(0, 1)`` (as Caffe2, ``std = 0`` gives ``mean``).
* ``XavierFill``: ``U[-s, s)``, ``s = sqrt(3 / fan_in)``, ``fan_in = numel / dim 0``.
* ``MSRAFill``: ``N(0, s²)``, ``s = sqrt(2 / fan_out)``, ``fan_out = numel / dim 1``.

Random numbers come from Caffe2's generator: a Mersenne Twister (``std::mt19937``) seeded with
``DeviceOption.random_seed`` (a fresh seed from the OS without one), one per operator instance so a
net's filler continues its stream across runs, with libstdc++'s ``uniform_real_distribution<float>``
and ``normal_distribution<float>`` (Marsaglia's polar method, glibc's ``logf``) on top: with a
seed, the values are Caffe2's, bit for bit.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from caffe2ops.errors import OperatorTypeError, OperatorValueError
from caffe2ops.ops import _common as c
from caffe2ops.runtime.schema import NO_GRADIENT, Arg, OpSchema, register
from caffe2ops.runtime.tensor import TP

F32 = np.dtype(np.float32)
_f = np.float32
_TWO32 = _f(2.0**32)
_BELOW_ONE = np.nextafter(_f(1), _f(0))

GIVEN_DTYPES = {
    TP.FLOAT: np.dtype(np.float32), TP.DOUBLE: np.dtype(np.float64),
    TP.BOOL: np.dtype(np.bool_), TP.INT16: np.dtype(np.int16),
    TP.INT32: np.dtype(np.int32), TP.INT64: np.dtype(np.int64),
}


# glibc's logf (what libstdc++'s normal_distribution<float> calls through std::log): a 16-entry
# table of (1/c, log c) and a degree-3 polynomial in double, rounded once to float. Evaluating it
# here gives glibc's bits, which differ from a correctly rounded log in about 0.7% of inputs.
_LOGF_TABLE = np.array([[float.fromhex(a), float.fromhex(b)] for a, b in (
    ("0x1.661ec79f8f3bep+0", "-0x1.57bf7808caadep-2"),
    ("0x1.571ed4aaf883dp+0", "-0x1.2bef0a7c06ddbp-2"),
    ("0x1.49539f0f010b0p+0", "-0x1.01eae7f513a67p-2"),
    ("0x1.3c995b0b80385p+0", "-0x1.b31d8a68224e9p-3"),
    ("0x1.30d190c8864a5p+0", "-0x1.6574f0ac07758p-3"),
    ("0x1.25e227b0b8ea0p+0", "-0x1.1aa2bc79c8100p-3"),
    ("0x1.1bb4a4a1a343fp+0", "-0x1.a4e76ce8c0e5ep-4"),
    ("0x1.12358f08ae5bap+0", "-0x1.1973c5a611cccp-4"),
    ("0x1.0953f419900a7p+0", "-0x1.252f438e10c1ep-5"),
    ("0x1.0000000000000p+0", "0x0.0p+0"),
    ("0x1.e608cfd9a47acp-1", "0x1.aa5aa5df25984p-5"),
    ("0x1.ca4b31f026aa0p-1", "0x1.c5e53aa362eb4p-4"),
    ("0x1.b2036576afce6p-1", "0x1.526e57720db08p-3"),
    ("0x1.9c2d163a1aa2dp-1", "0x1.bc2860d224770p-3"),
    ("0x1.886e6037841edp-1", "0x1.1058bc8a07ee1p-2"),
    ("0x1.767dcf5534862p-1", "0x1.4043057b6ee09p-2"),
)])
_LN2 = float.fromhex("0x1.62e42fefa39efp-1")
_LOGF_POLY = tuple(float.fromhex(v) for v in ("-0x1.00ea348b88334p-2", "0x1.5575b0be00b6ap-2",
                                              "-0x1.ffffef20a4123p-2"))


def glibc_logf(x: np.ndarray) -> np.ndarray:
    """glibc's ``logf`` for positive normal float32 ``x`` (the polar method's ``r²``)."""
    ix = x.view(np.uint32).astype(np.int64)
    tmp = (ix - 0x3F330000) & 0xFFFFFFFF
    index = (tmp >> 19) & 15
    k = (tmp.astype(np.uint32).view(np.int32) >> 23).astype(np.float64)
    z = ((ix - (tmp & 0xFF800000)) & 0xFFFFFFFF).astype(np.uint32).view(F32).astype(np.float64)
    r = z * _LOGF_TABLE[index, 0] - 1.0
    y0 = _LOGF_TABLE[index, 1] + k * _LN2
    r2 = r * r
    y = _LOGF_POLY[1] * r + _LOGF_POLY[2]
    y = _LOGF_POLY[0] * r2 + y
    y = y * r2 + (y0 + r)
    return y.astype(F32)


class CaffeRandom:
    """Caffe2's CPU random numbers: ``std::mt19937(seed)`` under libstdc++'s float
    distributions. NumPy's legacy ``RandomState(seed)`` is the same Mersenne Twister with the
    same seeding, so its raw 32-bit stream is Caffe2's."""

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self.seed = int(seed) & 0xFFFFFFFF
        self._mt = np.random.RandomState(self.seed)
        self._lock = threading.Lock()

    def _canonical(self, n: int) -> np.ndarray:
        """``generate_canonical<float, 24>``: one 32-bit draw per value, ``fl(k) / 2³²``,
        values that round up to 1 replaced by the float below 1."""
        raw = self._mt.randint(0, 2**32, size=n, dtype=np.uint64)
        u = raw.astype(F32)
        u /= _TWO32
        np.minimum(u, _BELOW_ONE, out=u)
        return u

    def uniform(self, n: int, lo: float, hi: float) -> np.ndarray:
        """``n`` float32 values ``u·(hi − lo) + lo`` (``uniform_real_distribution<float>``)."""
        lo, hi = _f(lo), _f(hi)
        with self._lock, np.errstate(all="ignore"):
            u = self._canonical(n)
            u *= _f(hi - lo)
            u += lo
        return u

    def gaussian(self, n: int, mean: float, std: float) -> np.ndarray:
        """``n`` float32 values from ``normal_distribution<float>(mean, std)``: pairs of uniform
        draws in ``(-1, 1)²`` inside the unit circle, ``y·m`` then ``x·m`` with
        ``m = sqrt(-2·log(r²)/r²)``; an odd count leaves the last pair's second value unused."""
        out = np.empty(n, F32)
        done = 0
        with self._lock, np.errstate(all="ignore"):
            while done < n:
                pairs = (n - done + 1) // 2 * 13 // 10 + 8  # about 21.5% of pairs are rejected
                state = self._mt.get_state()
                u = self._canonical(2 * pairs).reshape(pairs, 2)
                xy = (2.0 * u.astype(np.float64) - 1.0).astype(F32)
                r2 = xy[:, 0] * xy[:, 0] + xy[:, 1] * xy[:, 1]
                accepted = np.flatnonzero((r2 <= _f(1)) & (r2 != _f(0)))
                need = (n - done + 1) // 2
                if accepted.size > need:
                    accepted = accepted[:need]
                    # Caffe2 draws no further: rewind to just after the last pair used.
                    self._mt.set_state(state)
                    self._canonical(2 * (int(accepted[-1]) + 1))
                x, y, r = xy[accepted, 0], xy[accepted, 1], r2[accepted]
                logs = glibc_logf(r)
                mult = np.sqrt((_f(-2) * logs) / r)
                values = np.empty(2 * x.size, F32)
                values[0::2] = y * mult
                values[1::2] = x * mult
                take = min(values.size, n - done)
                out[done:done + take] = values[:take]
                done += take
            out *= _f(std)
            out += _f(mean)
        return out


_RNGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_RNG_LOCK = threading.Lock()


def operator_random(op) -> CaffeRandom:
    """The generator of one operator instance, seeded from its ``DeviceOption.random_seed``."""
    with _RNG_LOCK:
        rng = _RNGS.get(op)
        if rng is None:
            option = op.definition.device_option
            seed = option.random_seed if option.HasField("random_seed") else None
            rng = _RNGS[op] = CaffeRandom(seed)
    return rng


def _random(seed: Any, generator: CaffeRandom | None) -> CaffeRandom:
    if generator is not None:
        if not isinstance(generator, CaffeRandom):
            raise OperatorTypeError("fillers: generator must be a caffe2ops CaffeRandom; got "
                                    f"{type(generator).__name__}")
        return generator
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise OperatorTypeError(f"fillers: seed must be an int; got {type(seed).__name__}")
    return CaffeRandom(seed)


# -- shapes ------------------------------------------------------------------------------------


def _shape_list(op: str, name: str, value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        raise OperatorTypeError(f"{op}: argument '{name}' must be a list of ints; got a scalar")
    try:
        dims = tuple(value)
    except TypeError:
        raise OperatorTypeError(f"{op}: argument '{name}' must be a list of ints; got "
                                f"{type(value).__name__}") from None
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int | np.integer):
            raise OperatorTypeError(f"{op}: argument '{name}' must be a list of ints; got "
                                    f"{dims!r}")
    return tuple(int(d) for d in dims)


def filler_shape(op: str, args: dict, inputs: list) -> tuple[int, ...]:
    """Caffe2's ``FillerOp`` shape rules (module doc)."""
    shape = _shape_list(op, "shape", args.get("shape"))
    extra = _shape_list(op, "extra_shape", args.get("extra_shape"))
    as_shape = args.get("input_as_shape") or False
    if not isinstance(as_shape, bool):
        raise OperatorTypeError(f"{op}: argument 'input_as_shape' must be a bool; got "
                                f"{type(as_shape).__name__}")
    if not inputs:
        if extra:
            raise OperatorValueError(f"{op}: argument 'extra_shape' needs an input (there is "
                                     "none)")
        if as_shape:
            raise OperatorValueError(f"{op}: argument 'input_as_shape' needs an input (there "
                                     "is none)")
        return shape
    if shape:
        raise OperatorValueError(f"{op}: argument 'shape' cannot be set when an input gives "
                                 "the shape")
    source = c.array(op, "input 0", inputs[0])
    if as_shape:
        if source.ndim != 1 or source.dtype not in c.INDEX_DTYPES or source.size == 0:
            raise OperatorValueError(
                f"{op}: with input_as_shape, input 0 must be a non-empty 1-D int64 (or int32) "
                f"tensor; got shape {source.shape} dtype {source.dtype}"
            )
        base = tuple(int(v) for v in source)
    else:
        base = tuple(source.shape)
    return base + extra


def _sized(op: str, shape: tuple, dtype) -> int:
    return c.check_alloc_size(op, shape, dtype)


# -- given tensors -----------------------------------------------------------------------------


def given_tensor_fill(values: Any, shape: Any = None, dtype: Any = np.float32) -> np.ndarray:
    """An array of ``shape`` (default 0-d) holding ``values`` (count must equal the size),
    converted to ``dtype`` as Caffe2's GivenTensor*Fill did (float values through float32).

    >>> import caffe2ops as c2
    >>> c2.given_tensor_fill([1.5, 2.0, -1.0, 0.1], shape=[2, 2])
    array([[ 1.5,  2. ],
           [-1. ,  0.1]], dtype=float32)
    """
    try:
        dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        raise OperatorTypeError(
            f"GivenTensorFill: dtype must be a NumPy dtype; got {type(dtype).__name__}"
        ) from None
    if dtype not in GIVEN_DTYPES.values():
        raise OperatorTypeError(f"GivenTensorFill: dtype {dtype} is not one of "
                                f"{sorted(str(d) for d in GIVEN_DTYPES.values())}")
    shape = _shape_list("GivenTensorFill", "shape", shape)
    return _given("GivenTensorFill", values, shape, dtype, None)


def _given(op: str, values: Any, shape: tuple, dtype: np.dtype, out) -> np.ndarray:
    numel = _sized(op, shape, dtype)
    if values is None:
        raise OperatorValueError(f"{op}: argument 'values' is required")
    try:
        vals = np.asarray(values)
    except Exception:
        raise OperatorTypeError(f"{op}: argument 'values' must be a list of numbers") from None
    if vals.ndim > 1 or (vals.size and vals.dtype.kind not in "biuf"):
        raise OperatorTypeError(f"{op}: argument 'values' must be a flat list of numbers; got "
                                f"{vals.dtype} shape {vals.shape}")
    vals = vals.reshape(-1)
    if vals.size != numel:
        raise OperatorValueError(f"{op}: argument 'values' has {vals.size} values but the output "
                                 f"shape {shape} has {numel} elements")
    if dtype.kind == "f" and vals.dtype.kind == "f":
        vals = vals.astype(F32)  # Argument.floats is a float32 field
    elif dtype.kind in "iu" and vals.dtype.kind == "f":
        if not np.all(np.isfinite(vals)) or not np.all(vals == np.round(vals)):
            raise OperatorTypeError(f"{op}: argument 'values' must be integers for {dtype}")
    if dtype.kind in "iu" and vals.size:
        info = np.iinfo(dtype)
        lo, hi = vals.min(), vals.max()
        if lo < info.min or hi > info.max:
            raise OperatorValueError(f"{op}: argument 'values' has values outside {dtype}'s "
                                     f"range [{info.min}, {info.max}]")
    y = out if out is not None else np.empty(shape, dtype)
    with np.errstate(all="ignore"):
        np.copyto(y, vals.reshape(shape), casting="unsafe")
    return y


def _given_values(op_type: str, op_obj, dtype: np.dtype):
    """``values`` from the field Caffe2 read for ``dtype``: ``ints`` for the integer and bool
    dtypes (kept exact), ``floats`` otherwise; values in the other field are refused."""
    field = "ints" if dtype.kind in "biu" else "floats"
    for arg in op_obj.definition.arg:
        if arg.name == "values":
            values = list(getattr(arg, field))
            other = arg.floats if field == "ints" else arg.ints
            if not values and len(other):
                raise OperatorTypeError(
                    f"{op_type}: argument 'values' must be given as {field} for dtype {dtype} "
                    f"(Caffe2 reads Argument.{field}); they are in the other field"
                )
            return values
    return None


def _given_runner(op_type: str, fixed: np.dtype | None):
    def run(op, inputs, outs):
        if fixed is not None:
            dtype = fixed
        else:
            code = op.args["dtype"]
            if code is None:
                code = TP.FLOAT
            if code not in GIVEN_DTYPES:
                raise OperatorTypeError(
                    f"{op_type}: argument 'dtype' {code} is not supported (FLOAT, DOUBLE, "
                    "BOOL, INT16, INT32 or INT64)"
                )
            dtype = GIVEN_DTYPES[code]
        values = _given_values(op_type, op, dtype)
        shape = filler_shape(op_type, op.args, inputs)
        return [_given(op_type, values, shape, dtype, c.reusable(outs[0], shape, dtype))]

    return run


# -- random fillers ----------------------------------------------------------------------------


def _float_arg(op: str, name: str, value: Any) -> np.float32:
    return _f(c.float_arg(op, name, value))


def _check_range(op: str, lo: np.float32, hi: np.float32) -> None:
    if not lo < hi:
        raise OperatorValueError(f"{op}: argument 'max' ({hi}) must be greater than 'min' ({lo})")


def uniform_fill(shape: Any, min: float = 0.0, max: float = 1.0, *, seed: int | None = None,
                 generator: CaffeRandom | None = None) -> np.ndarray:
    """float32 ``U[min, max)`` of ``shape`` (``min < max``); ``seed`` gives Caffe2's values for
    ``DeviceOption(random_seed=seed)``; ``generator`` (a :class:`CaffeRandom`) continues a stream.

    >>> import caffe2ops as c2
    >>> c2.uniform_fill([3], -1.0, 3.0, seed=5)
    array([-0.11202729, -0.77927953,  2.4829292 ], dtype=float32)
    """
    shape = _shape_list("UniformFill", "shape", shape)
    lo, hi = _float_arg("UniformFill", "min", min), _float_arg("UniformFill", "max", max)
    _check_range("UniformFill", lo, hi)
    n = _sized("UniformFill", shape, F32)
    return _random(seed, generator).uniform(n, lo, hi).reshape(shape)


def gaussian_fill(shape: Any, mean: float = 0.0, std: float = 1.0, *, seed: int | None = None,
                  generator: CaffeRandom | None = None) -> np.ndarray:
    """float32 ``mean + std·N(0, 1)`` of ``shape``, Caffe2's polar-method stream.

    >>> import caffe2ops as c2
    >>> c2.gaussian_fill([2], 1.0, 2.0, seed=5)
    array([1.1992873, 1.2229882], dtype=float32)
    """
    shape = _shape_list("GaussianFill", "shape", shape)
    mean, std = _float_arg("GaussianFill", "mean", mean), _float_arg("GaussianFill", "std", std)
    n = _sized("GaussianFill", shape, F32)
    return _random(seed, generator).gaussian(n, mean, std).reshape(shape)


def _fan_scale(op: str, shape: tuple, dim: int, numerator: float) -> np.float32:
    if len(shape) <= dim:
        raise OperatorValueError(f"{op}: the output shape {shape} needs at least {dim + 1} "
                                 "dimensions")
    if shape[dim] == 0:
        return _f(0)
    fan = (int(np.prod(shape, dtype=np.int64)) // shape[dim])
    if fan == 0:
        return _f(0)
    return np.sqrt(_f(numerator) / _f(fan))


def xavier_fill(shape: Any, *, seed: int | None = None,
                generator: CaffeRandom | None = None) -> np.ndarray:
    """float32 ``U[-s, s)``, ``s = sqrt(3 / fan_in)``, ``fan_in = numel / shape[0]``.

    >>> import caffe2ops as c2
    >>> c2.xavier_fill([2, 3], seed=1).shape
    (2, 3)
    """
    shape = _shape_list("XavierFill", "shape", shape)
    n = _sized("XavierFill", shape, F32)
    return _xavier("XavierFill", shape, n, _random(seed, generator))


def msra_fill(shape: Any, *, seed: int | None = None,
              generator: CaffeRandom | None = None) -> np.ndarray:
    """float32 ``N(0, s²)``, ``s = sqrt(2 / fan_out)``, ``fan_out = numel / shape[1]``.

    >>> import caffe2ops as c2
    >>> c2.msra_fill([4, 2], seed=1).shape
    (4, 2)
    """
    shape = _shape_list("MSRAFill", "shape", shape)
    n = _sized("MSRAFill", shape, F32)
    return _msra("MSRAFill", shape, n, _random(seed, generator))


def _xavier(op, shape, n, rng):
    s = _fan_scale(op, shape, 0, 3.0)
    if n == 0:
        return np.empty(shape, F32)
    return rng.uniform(n, -s, s).reshape(shape)


def _msra(op, shape, n, rng):
    s = _fan_scale(op, shape, 1, 2.0)
    if n == 0:
        return np.empty(shape, F32)
    if not s > 0:
        return np.zeros(shape, F32)
    return rng.gaussian(n, 0.0, s).reshape(shape)


def _scalar_blob(op: str, what: str, x: Any) -> np.float32:
    x = c.array(op, what, x)
    if x.size != 1:
        raise OperatorValueError(f"{op}: {what} must hold exactly 1 element; got {x.size}")
    if x.dtype != F32:
        raise OperatorTypeError(f"{op}: {what} must be float32; got {x.dtype}")
    return _f(x.reshape(-1)[0])


def _run_uniform(op, inputs, outs):
    shape = filler_shape("UniformFill", op.args, inputs[:1])
    if len(inputs) == 3:
        lo = _scalar_blob("UniformFill", "input 1 (min)", inputs[1])
        hi = _scalar_blob("UniformFill", "input 2 (max)", inputs[2])
        if lo > hi:
            shape = (0,) + tuple(shape[1:]) if shape else (0,)
            return [np.empty(shape, F32)]
    else:
        lo = _float_arg("UniformFill", "min", op.args["min"])
        hi = _float_arg("UniformFill", "max", op.args["max"])
        _check_range("UniformFill", lo, hi)
    n = _sized("UniformFill", shape, F32)
    return [operator_random(op).uniform(n, lo, hi).reshape(shape)]


def _run_gaussian(op, inputs, outs):
    shape = filler_shape("GaussianFill", op.args, inputs)
    mean = _float_arg("GaussianFill", "mean", op.args["mean"])
    std = _float_arg("GaussianFill", "std", op.args["std"])
    n = _sized("GaussianFill", shape, F32)
    return [operator_random(op).gaussian(n, mean, std).reshape(shape)]


def _run_fan(op_type, body):
    def run(op, inputs, outs):
        shape = filler_shape(op_type, op.args, inputs)
        n = _sized(op_type, shape, F32)
        return [body(op_type, shape, n, operator_random(op))]

    return run


def _check_uniform_args(op_type, args):
    if args["min"] is not None and args["max"] is not None:
        _float_arg(op_type, "min", args["min"])
        _float_arg(op_type, "max", args["max"])


def _infer_fill(dtype_of):
    def infer(inputs, args):
        dtype = dtype_of(args)
        if not inputs:
            return [(tuple(args.get("shape") or ()), dtype)]
        if args.get("input_as_shape"):
            return [None]
        return [(tuple(inputs[0][0]) + tuple(args.get("extra_shape") or ()), dtype)]

    return infer


def _given_dtype(args):
    code = args.get("dtype")
    return GIVEN_DTYPES.get(TP.FLOAT if code is None else code, F32)


_SHAPE_ARGS = (
    Arg("shape", "ints", None, "output shape when there is no input"),
    Arg("extra_shape", "ints", None, "dimensions appended to the input's shape"),
    Arg("input_as_shape", "bool", False, "input 0 (1-D int64) holds the shape"),
)


def _register_given(op_type: str, fixed: np.dtype | None, values_kind: str) -> None:
    args = (Arg("values", values_kind, None, "the elements (required)"),) + _SHAPE_ARGS
    if fixed is None:
        args += (Arg("dtype", "int", None, "TensorProto.DataType of the output (FLOAT)"),)
    register(OpSchema(
        type=op_type, kernel=_given_runner(op_type, fixed), num_inputs=(0, 1),
        inputs=("input",), outputs=("output",), args=args,
        infer=_infer_fill(lambda a: fixed if fixed is not None else _given_dtype(a)),
        gradient=NO_GRADIENT, doc=f"Fill with the given values ({fixed or 'dtype'}).",
    ))


_register_given("GivenTensorFill", None, "floats")
_register_given("GivenTensorIntFill", np.dtype(np.int32), "ints")
_register_given("GivenTensorInt64Fill", np.dtype(np.int64), "ints")
_register_given("GivenTensorBoolFill", np.dtype(np.bool_), "ints")

_F32_INFER = _infer_fill(lambda a: F32)

register(OpSchema(
    type="UniformFill", kernel=_run_uniform, num_inputs=(0, 3), inputs=("shape", "min", "max"),
    outputs=("output",),
    args=_SHAPE_ARGS + (Arg("min", "float", 0.0, "lower bound (inclusive)"),
                        Arg("max", "float", 1.0, "upper bound (exclusive)")),
    infer=_F32_INFER, gradient=NO_GRADIENT, doc="Fill with U[min, max) float32 values.",
))
register(OpSchema(
    type="GaussianFill", kernel=_run_gaussian, num_inputs=(0, 1), inputs=("input",),
    outputs=("output",),
    args=_SHAPE_ARGS + (Arg("mean", "float", 0.0, "mean"),
                        Arg("std", "float", 1.0, "standard deviation")),
    infer=_F32_INFER, gradient=NO_GRADIENT, doc="Fill with N(mean, std^2) float32 values.",
))
register(OpSchema(
    type="XavierFill", kernel=_run_fan("XavierFill", _xavier), num_inputs=(0, 1),
    inputs=("input",), outputs=("output",), args=_SHAPE_ARGS, infer=_F32_INFER,
    gradient=NO_GRADIENT, doc="Fill with U[-s, s), s = sqrt(3 / (numel / dim 0)).",
))
register(OpSchema(
    type="MSRAFill", kernel=_run_fan("MSRAFill", _msra), num_inputs=(0, 1), inputs=("input",),
    outputs=("output",), args=_SHAPE_ARGS, infer=_F32_INFER, gradient=NO_GRADIENT,
    doc="Fill with N(0, s^2), s = sqrt(2 / (numel / dim 1)).",
))
