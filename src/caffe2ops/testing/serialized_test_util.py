"""Caffe2's ``serialized_test_util``: operator tests checked against stored results.

``@given(...)`` (use it instead of hypothesis' ``given``) first runs the test once with seed 0 and
one example, with serialization on, then runs the ordinary hypothesis test. During the serialized
run, :meth:`SerializedTestCase.assertReferenceChecks` also compares with (or, when generating,
writes) ``<dir>/operator_test/<test file>.<test method>.zip``. The zip holds, as in Caffe2:

* ``op.pb`` — the serialized ``OperatorDef``;
* ``inout.npz`` — ``inputs`` and ``outputs`` (object arrays of arrays) and ``device_type``;
* ``grad_0.pb``, ``grad_1.pb``, ... — the gradient ``OperatorDef``\\ s from the registry.

Comparing: if today's inputs equal the stored ones, today's outputs and gradient ops are compared
with the stored ones; otherwise the stored op runs on the stored inputs and that is compared.
Outputs within ``atol``/``rtol`` (the reference check's threshold), gradient ops field for field
(arguments sorted by name). A missing zip fails the test (nothing to compare with).

The directory is ``CAFFE2OPS_SERIALIZED_DIR`` if set, else this package's ``data`` folder;
``testWithArgs()`` gives Caffe2's command line (``-G`` generate, ``-O DIR``, ``-D`` disable).
``inout.npz`` is read with ``allow_pickle=True`` (the format stores object arrays): read only
zips you trust, such as the ones shipped with Caffe2.
"""

from __future__ import annotations

import argparse
import inspect
import io
import os
import pickle
import pickletools
import sys
import threading
import zipfile

import hypothesis as hy
import numpy as np

from caffe2ops.gradient_checker import getGradientForOp
from caffe2ops.proto import caffe2_pb2
from caffe2ops.testing import hypothesis_test_util as hu

operator_test_type = "operator_test"
TOP_DIR = os.path.dirname(os.path.realpath(__file__))
DATA_SUFFIX = "data"
DATA_DIR = os.environ.get("CAFFE2OPS_SERIALIZED_DIR") or os.path.join(TOP_DIR, DATA_SUFFIX)
_output_context = threading.local()


def given(*given_args, **given_kwargs):
    """hypothesis' ``given``, preceded by one serialized run with seed 0 (see the module doc)."""

    def wrapper(f):
        hyp_func = hy.given(*given_args, **given_kwargs)(f)
        fixed_seed_func = hy.seed(0)(
            hy.settings(max_examples=1)(hy.given(*given_args, **given_kwargs)(f))
        )

        def func(self, *args, **kwargs):
            self.should_serialize = True
            try:
                fixed_seed_func(self, *args, **kwargs)
            finally:
                self.should_serialize = False
            hyp_func(self, *args, **kwargs)

        func.__name__ = getattr(f, "__name__", "test")
        func.__doc__ = f.__doc__
        return func

    return wrapper


def _gradient_or_none(op_proto) -> list:
    try:
        grad_ops, _ = getGradientForOp(op_proto)
        return grad_ops
    except Exception:  # no gradient (or one that may not be requested): nothing to compare
        return []


def _object_array(items) -> np.ndarray:
    """A 1-D object array of ``items`` (jagged lists of arrays survive ``np.savez``)."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def _portable_pickle(value) -> bytes:
    """``pickle.dumps(value, protocol=2)`` naming NumPy's modules as NumPy 1.x did.

    NumPy 2 pickles arrays through ``numpy._core``, which the NumPy of Caffe2 1.5.0 (1.18)
    cannot import; its ``numpy.core`` names still load under NumPy 2. Only the GLOBAL opcodes
    are rewritten (located with :mod:`pickletools`), never array data.
    """
    data = pickle.dumps(value, protocol=2)
    out, start = [], 0
    for opcode, arg, pos in pickletools.genops(data):
        if opcode.name == "GLOBAL" and arg.split(" ")[0].startswith("numpy._core"):
            module, name = arg.split(" ", 1)
            out.append(data[start:pos])
            out.append(b"c" + ("numpy.core" + module[len("numpy._core"):]).encode() + b"\n"
                       + name.encode() + b"\n")
            start = pos + 1 + len(module) + 1 + len(name) + 1
    out.append(data[start:])
    return b"".join(out)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    if array.dtype != object:
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue()
    header = {"descr": "|O", "fortran_order": False, "shape": array.shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    buffer.write(_portable_pickle(array))
    return buffer.getvalue()


def _npz_bytes(**arrays) -> bytes:
    """What ``np.savez_compressed`` writes, readable by NumPy 1.18 and 2.x alike."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for key, value in arrays.items():
            z.writestr(key + ".npy", _npy_bytes(np.asarray(value)))
    return buffer.getvalue()


def write_zip(path: str, op, inputs, outputs, grad_ops, device_type: int) -> None:
    """Write one serialized test in Caffe2's zip format (readable by Caffe2 1.5.0's NumPy)."""
    npz = _npz_bytes(inputs=_object_array(inputs), outputs=_object_array(outputs),
                     device_type=np.array(int(device_type)))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("op.pb", op.SerializeToString())
        z.writestr("inout.npz", npz)
        for i, grad in enumerate(grad_ops):
            z.writestr(f"grad_{i}.pb", grad.SerializeToString())


def read_zip(path: str) -> dict:
    """``{"op", "inputs", "outputs", "device_type", "grad_ops"}`` of one serialized test."""
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        op = caffe2_pb2.OperatorDef.FromString(z.read("op.pb"))
        loaded = np.load(io.BytesIO(z.read("inout.npz")), encoding="bytes", allow_pickle=True)
        grad_ops, i = [], 0
        while f"grad_{i}.pb" in names:
            grad_ops.append(caffe2_pb2.OperatorDef.FromString(z.read(f"grad_{i}.pb")))
            i += 1
        return {
            "op": op,
            "inputs": loaded["inputs"].tolist(),
            "outputs": loaded["outputs"].tolist(),
            "device_type": int(loaded["device_type"]),
            "grad_ops": grad_ops,
        }


class SerializedTestCase(hu.HypothesisTestCase):
    should_serialize = False

    def get_output_dir(self) -> str:
        output_dir = os.path.join(getattr(_output_context, "output_dir", DATA_DIR),
                                  operator_test_type)
        if os.path.exists(output_dir):
            return output_dir
        package = "/".join(__name__.split(".")[:-1])
        return os.path.join(os.getcwd(), package, DATA_SUFFIX, operator_test_type)

    def get_output_filename(self) -> str:
        test_file = os.path.basename(inspect.getfile(self.__class__)).split(".")[0]
        return test_file + "." + self.id().split(".")[-1]

    def serialize_test(self, inputs, outputs, grad_ops, op, device_option) -> None:
        path = os.path.join(self.get_output_dir(), self.get_output_filename() + ".zip")
        write_zip(path, op, inputs, outputs, grad_ops, int(device_option.device_type))

    def compare_test(self, inputs, outputs, grad_ops, atol=1e-7, rtol=1e-7) -> None:
        path = os.path.join(self.get_output_dir(), self.get_output_filename() + ".zip")
        if not os.path.exists(path):
            self.fail(f"serialized test {path} does not exist: generate it with -G "
                      "(testWithArgs) or set CAFFE2OPS_SERIALIZED_DIR")
        stored = read_zip(path)
        inputs_equal = all(np.array_equal(x, y)
                           for x, y in zip(inputs, stored["inputs"], strict=False))
        if not inputs_equal:
            device_option = caffe2_pb2.DeviceOption(device_type=stored["device_type"])
            outputs = hu.runOpOnInput(device_option, stored["op"], stored["inputs"])
            grad_ops = _gradient_or_none(stored["op"])
        for x, y in zip(outputs, stored["outputs"], strict=False):
            np.testing.assert_allclose(x, y, atol=atol, rtol=rtol)
        for i, grad in enumerate(grad_ops):
            self.assertLess(i, len(stored["grad_ops"]),
                            f"gradient op {i} ({grad.type}) is not in the serialized test")
            self._assertSameOps(stored["grad_ops"][i], grad)

    def _assertSameOps(self, op1, op2) -> None:  # noqa: N802
        first, second = caffe2_pb2.OperatorDef(), caffe2_pb2.OperatorDef()
        first.CopyFrom(op1)
        second.CopyFrom(op2)
        first.arg.sort(key=lambda arg: arg.name)
        second.arg.sort(key=lambda arg: arg.name)
        self.assertEqual(first, second)

    def assertSerializedOperatorChecks(  # noqa: N802
        self, inputs, outputs, gradient_operator, op, device_option, atol=1e-7, rtol=1e-7,
    ) -> None:
        if not self.should_serialize:
            return
        if getattr(_output_context, "should_generate_output", False):
            self.serialize_test(inputs, outputs, gradient_operator, op, device_option)
        else:
            self.compare_test(inputs, outputs, gradient_operator, atol, rtol)

    def assertReferenceChecks(  # noqa: N802
        self, device_option, op, inputs, reference, input_device_options=None, threshold=1e-4,
        output_to_grad=None, grad_reference=None, atol=None, outputs_to_check=None,
        ensure_outputs_are_inferred=False,
    ):
        outs = super().assertReferenceChecks(
            device_option, op, inputs, reference, input_device_options, threshold,
            output_to_grad, grad_reference, atol, outputs_to_check, ensure_outputs_are_inferred,
        )
        if not getattr(_output_context, "disable_serialized_check", False):
            grad_ops = _gradient_or_none(op)
            self.assertSerializedOperatorChecks(
                inputs, outs, grad_ops, op, device_option,
                threshold if atol is None else atol, threshold,
            )
        return outs


def set_output_context(*, output_dir=None, generate=None, disable=None) -> None:
    """Set this thread's serialized-test options (what ``testWithArgs`` parses)."""
    if output_dir is not None:
        _output_context.output_dir = output_dir
    if generate is not None:
        _output_context.should_generate_output = generate
    if disable is not None:
        _output_context.disable_serialized_check = disable


def testWithArgs() -> None:  # noqa: N802
    parser = argparse.ArgumentParser()
    parser.add_argument("-G", "--generate-serialized", action="store_true", dest="generate",
                        help="generate output files (default=false, compares to current files)")
    parser.add_argument("-O", "--output", default=DATA_DIR,
                        help="output directory (default: %(default)s)")
    parser.add_argument("-D", "--disable-serialized_check", action="store_true", dest="disable",
                        help="disable checking serialized tests")
    parser.add_argument("-C", "--disable-gen-coverage", action="store_true",
                        dest="disable_coverage", help="accepted; caffe2ops writes no coverage")
    parser.add_argument("unittest_args", nargs="*")
    args = parser.parse_args()
    sys.argv[1:] = args.unittest_args
    set_output_context(output_dir=args.output, generate=args.generate, disable=args.disable)
    import unittest

    unittest.main()
