"""Caffe2's test helpers (issue 8 §4): ``caffe2ops.testing.hypothesis_test_util`` and
``serialized_test_util``, tested by use on our operators and by deliberately wrong references,
gradients and stored results, which must fail."""

from __future__ import annotations

import io
import os
import unittest
import zipfile

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from caffe2ops import core, workspace
from caffe2ops.proto import caffe2_pb2
from caffe2ops.testing import hypothesis_test_util as hu
from caffe2ops.testing import serialized_test_util as serial

# ---- the helpers used as Caffe2 tests use them ---------------------------------------------------


class TestClipAndFriends(hu.HypothesisTestCase):  # collected by pytest as a unittest case
    @settings(max_examples=5)
    @given(X=hu.tensor(min_dim=1, max_dim=3), inplace=st.booleans(), **hu.gcs)
    def test_clip(self, X, inplace, gc, dc):
        X[np.abs(X - 0.5) < 0.05] += 0.1
        X[np.abs(X + 0.5) < 0.05] += 0.1
        op = core.CreateOperator("Clip", ["X"], ["X" if inplace else "Y"], min=-0.5, max=0.5)
        self.assertReferenceChecks(gc, op, [X], lambda X: (np.clip(X, -0.5, 0.5),))
        self.assertDeviceChecks(dc, op, [X], [0])
        self.assertGradientChecks(gc, op, [X], 0, [0])

    @settings(max_examples=5)
    @given(inputs=hu.tensors(n=2, min_dim=2, max_dim=2, elements=st.floats(0.1, 1.0)),
           **hu.gcs_cpu_only)
    def test_cosine_similarity(self, inputs, gc, dc):
        X, Y = inputs
        op = core.CreateOperator("CosineSimilarity", ["X", "Y"], ["Z"])

        def reference(X, Y):
            dot = np.sum(X * Y, axis=1)
            return (dot / np.sqrt(np.maximum(np.sum(X * X, 1), 1e-12)
                                  * np.maximum(np.sum(Y * Y, 1), 1e-12)),)

        self.assertReferenceChecks(gc, op, [X, Y], reference)
        self.assertGradientChecks(gc, op, [X, Y], 0, [0], stepsize=1e-2, threshold=1e-2)

    @settings(max_examples=3)
    @given(X=hu.arrays(dims=[4], elements=st.floats(0.1, 1.0)), **hu.gcs_cpu_only)
    def test_cos_validation(self, X, gc, dc):
        op = core.CreateOperator("Cos", ["X"], ["Y"])

        def validator(X, Y):
            np.testing.assert_allclose(Y, np.cos(X), rtol=1e-6)

        self.assertValidationChecks(gc, op, [X], validator)

    def test_grad_reference(self):
        X = np.array([0.3, 1.2, -0.7], np.float32)
        op = core.CreateOperator("Cos", ["X"], ["Y"])
        self.assertReferenceChecks(
            hu.cpu_do, op, [X], lambda X: (np.cos(X),), output_to_grad="Y",
            grad_reference=lambda dY, outputs, inputs: (-dY * np.sin(inputs[0]),),
        )

    def test_run_op_raises(self):
        op = core.CreateOperator("Clip", ["X"], ["Y"])
        self.assertRunOpRaises(hu.cpu_do, op, [np.array(["a"], object)], exception=TypeError)


def _run_case(case: type, name: str) -> unittest.TestResult:
    result = unittest.TestResult()
    case(name).run(result)
    return result


# ---- wrong references and wrong gradients must fail ----------------------------------------------


class WrongOnPurpose(hu.HypothesisTestCase):
    __test__ = False  # run by the tests below, which expect its failures
    def test_wrong_reference(self):
        X = np.array([0.25, -0.75], np.float32)
        op = core.CreateOperator("Cos", ["X"], ["Y"])
        # off by 2e-4, twice the default threshold (1e-4)
        self.assertReferenceChecks(hu.cpu_do, op, [X], lambda X: (np.cos(X) + 2e-4,))

    def test_reference_off_within_threshold(self):
        X = np.array([0.25, -0.75], np.float32)
        op = core.CreateOperator("Cos", ["X"], ["Y"])
        self.assertReferenceChecks(hu.cpu_do, op, [X], lambda X: (np.cos(X) + 5e-5,))

    def test_reference_not_a_tuple(self):
        op = core.CreateOperator("Cos", ["X"], ["Y"])
        self.assertReferenceChecks(hu.cpu_do, op, [np.zeros(2, np.float32)], lambda X: np.cos(X))

    def test_wrong_gradient(self):
        X = np.array([0.3, 1.1, -0.4], np.float32)
        op = core.CreateOperator("Python", ["X"], ["Y"], token=_WRONG_TOKEN)
        self.assertGradientChecks(hu.cpu_do, op, [X], 0, [0])

    def test_slightly_wrong_gradient(self):
        # dY·cos(x)·1.02: a 2 % error (0.01), outside Caffe2's atol + rtol·|grad| = 0.0075
        X = np.array([0.8, 0.7], np.float32)  # dL/dx = sin·cos ≈ 0.5 here
        op = core.CreateOperator("Python", ["X"], ["Y"], token=_SLIGHT_TOKEN)
        self.assertGradientChecks(hu.cpu_do, op, [X], 0, [0])

    def test_wrong_grad_reference(self):
        X = np.array([0.3, 1.2], np.float32)
        op = core.CreateOperator("Cos", ["X"], ["Y"])
        self.assertReferenceChecks(
            hu.cpu_do, op, [X], lambda X: (np.cos(X),), output_to_grad="Y",
            grad_reference=lambda dY, outputs, inputs: (dY * np.sin(inputs[0]),),
        )


def _sin_forward(inputs, outputs):
    outputs[0].feed(np.sin(inputs[0].data))


def _wrong_backward(inputs, outputs):  # X, Y, dY -> dX; the sign is wrong
    outputs[0].feed(-inputs[2].data * np.cos(inputs[0].data))


def _slightly_wrong_backward(inputs, outputs):
    outputs[0].feed(1.02 * inputs[2].data * np.cos(inputs[0].data))


_WRONG_TOKEN = core.CreatePythonOperator(_sin_forward, ["X"], ["Y"],
                                         grad_f=_wrong_backward).arg[0].s.decode()
_SLIGHT_TOKEN = core.CreatePythonOperator(_sin_forward, ["X"], ["Y"],
                                          grad_f=_slightly_wrong_backward).arg[0].s.decode()


@pytest.mark.parametrize("name", ["test_wrong_reference", "test_wrong_gradient",
                                  "test_slightly_wrong_gradient", "test_wrong_grad_reference"])
def test_wrong_references_and_gradients_fail(name):
    result = _run_case(WrongOnPurpose, name)
    assert len(result.failures) == 1 and not result.errors, result.errors


def test_reference_within_threshold_passes_and_non_tuple_reference_errors():
    assert _run_case(WrongOnPurpose, "test_reference_off_within_threshold").wasSuccessful()
    result = _run_case(WrongOnPurpose, "test_reference_not_a_tuple")
    assert len(result.errors) == 1 and "wrong reference implementation" in result.errors[0][1]


def test_explicit_wrong_gradient_ops_fail_the_check():
    class Doubled(hu.HypothesisTestCase):
        def test(self):
            op = core.CreateOperator("Cos", ["X"], ["Y"])
            grad_ops = [core.CreateOperator("CosGradient", ["X", "Y_grad"], ["tmp"]),
                        core.CreateOperator("Sum", ["tmp", "tmp"], ["X_grad"])]
            self.assertGradientChecks(hu.cpu_do, op, [np.array([0.4, 1.0], np.float32)], 0, [0],
                                      grad_ops=grad_ops)

    result = _run_case(Doubled, "test")
    assert len(result.failures) == 1
    assert "Gradient check failed for input X" in result.failures[0][1]


# ---- strategies, device options, profiles --------------------------------------------------------


@settings(max_examples=20)
@given(X=hu.tensor(min_dim=2, max_dim=3, dtype=np.float16), n=hu.dims(2, 3))
def test_strategies_shapes_dtypes_and_ranges(X, n):
    assert X.dtype == np.float16 and 2 <= X.ndim <= 3 and all(1 <= d <= 5 for d in X.shape)
    assert np.all(np.abs(X) <= 1.0)
    assert 2 <= n <= 3


@settings(max_examples=10)
@given(pair=hu.tensors(n=2, dtype=np.float32), ints=hu.arrays([3], dtype=np.int64))
def test_tensors_share_a_shape_and_ints_are_non_negative(pair, ints):
    assert len(pair) == 2 and pair[0].shape == pair[1].shape
    assert ints.dtype == np.int64 and np.all(ints >= 0)


@settings(max_examples=3)
@given(**hu.gcs_cpu_only)
def test_gcs_cpu_only(gc, dc):
    assert gc == hu.cpu_do and dc == [hu.cpu_do]


def test_device_options():
    assert hu.cpu_do.device_type == caffe2_pb2.CPU and hu.gpu_do.device_type == caffe2_pb2.CUDA
    expected = [hu.cpu_do] + ([hu.cuda_do] if workspace.has_cuda_support else [])
    assert hu.device_options == expected
    assert hu.expanded_device_options[0] == hu.cpu_do
    assert len(hu.expanded_device_options) == 1 + workspace.NumGpuDevices()


@pytest.mark.parametrize("ci", [False, True])
@pytest.mark.parametrize("profile, loaded", [("", "dev"), ("debug", "debug")])
def test_caffe2_profiles_chosen_by_caffe2_hypothesis_profile(profile, loaded, ci):
    """This suite's conftest re-registers the profile names, so look in a fresh process.

    Like Caffe2's, ``dev`` and ``debug`` inherit what Hypothesis's own default is: derandomized
    when Hypothesis sees a CI environment (it loads its ``ci`` profile), random otherwise.
    """
    import subprocess
    import sys

    from hypothesis._settings import _CI_VARS

    code = (
        "import caffe2ops.testing.hypothesis_test_util, hypothesis\n"
        "for name in ('dev', 'sandcastle', 'debug', None):\n"
        "    s = hypothesis.settings.get_profile(name) if name else hypothesis.settings()\n"
        "    print(name, s.max_examples, s.derandomize, s.verbosity.name, s.database)\n"
    )
    env = {k: v for k, v in os.environ.items()
           if k not in ("CAFFE2_HYPOTHESIS_PROFILE", "SANDCASTLE", "TW_JOB_USER", *_CI_VARS)}
    if ci:
        env["CI"] = "true"
    if profile:
        env["CAFFE2_HYPOTHESIS_PROFILE"] = profile
    lines = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    caffe2 = {"dev": f"10 {ci} verbose None", "sandcastle": "100 True verbose None",
              "debug": f"1000 {ci} verbose None"}
    assert lines == [f"{name} {values}" for name, values in caffe2.items()] + [
        f"None {caffe2[loaded]}"]


# ---- serialized tests --------------------------------------------------------------------------


_SERIAL_X = np.array([-1.0, -0.2, 0.3, 0.9], np.float32)


class SerializedClip(serial.SerializedTestCase):
    __test__ = False  # run below, against a zip written to a temporary folder

    @serial.given(X=st.just(_SERIAL_X), **hu.gcs_cpu_only)
    def test_clip(self, X, gc, dc):
        op = core.CreateOperator("Clip", ["X"], ["Y"], min=-0.5, max=0.5)
        self.assertReferenceChecks(gc, op, [X], lambda X: (np.clip(X, -0.5, 0.5),))


def _failed_once(result: unittest.TestResult, fragment: str) -> bool:
    return len(result.failures) == 1 and not result.errors and fragment in result.failures[0][1]


def test_serialized_round_trip_and_tampered_zips(tmp_path):
    serial.set_output_context(output_dir=str(tmp_path), generate=True)
    try:
        (tmp_path / "operator_test").mkdir()
        assert _run_case(SerializedClip, "test_clip").wasSuccessful()
        path = tmp_path / "operator_test" / "test_caffe2_test_helpers.test_clip.zip"
        stored = serial.read_zip(str(path))
        assert stored["op"].type == "Clip" and stored["device_type"] == caffe2_pb2.CPU
        assert [g.type for g in stored["grad_ops"]] == ["ClipGradient"]
        np.testing.assert_array_equal(stored["inputs"][0], _SERIAL_X)
        np.testing.assert_array_equal(stored["outputs"][0], np.clip(_SERIAL_X, -0.5, 0.5))

        with zipfile.ZipFile(path) as z, zipfile.ZipFile(io.BytesIO(z.read("inout.npz"))) as npz:
            assert sorted(npz.namelist()) == ["device_type.npy", "inputs.npy", "outputs.npy"]
            for member in ("inputs.npy", "outputs.npy"):  # NumPy 1.18 (Caffe2's) can load them
                assert b"numpy._core" not in npz.read(member)
                assert b"numpy.core.multiarray" in npz.read(member)

        serial.set_output_context(generate=False)
        assert _run_case(SerializedClip, "test_clip").wasSuccessful()  # compares with the zip

        def rewrite(inputs, outputs, grad_ops):
            serial.write_zip(str(path), stored["op"], inputs, outputs, grad_ops, 0)
            return _run_case(SerializedClip, "test_clip")

        ops = stored["grad_ops"]
        assert _failed_once(rewrite([_SERIAL_X], [np.clip(_SERIAL_X, -0.5, 0.5) + 1e-3], ops),
                            "Not equal to tolerance")
        wrong_grad = caffe2_pb2.OperatorDef()
        wrong_grad.CopyFrom(ops[0])
        wrong_grad.input[0] = "X"
        assert _failed_once(rewrite([_SERIAL_X], stored["outputs"], [wrong_grad]), "!=")
        # other stored inputs: the stored op runs on them and must give the stored outputs
        other = np.array([2.0, -3.0], np.float32)
        assert rewrite([other], [np.array([0.5, -0.5], np.float32)], ops).wasSuccessful()
        assert _failed_once(rewrite([other], [other], ops), "Not equal to tolerance")
        path.unlink()
        assert _failed_once(_run_case(SerializedClip, "test_clip"), "does not exist")
    finally:
        serial.set_output_context(output_dir=serial.DATA_DIR, generate=False)


def test_gradient_check_of_an_operator_in_place_on_another_input():
    """Sum(A, B) -> A checked for B: A must be fed again before every finite difference."""

    class InPlace(hu.HypothesisTestCase):
        def test(self):
            op = core.CreateOperator("Sum", ["A", "B"], ["A"])
            A, B = np.array([0.5, -1.0], np.float32), np.array([0.25, 2.0], np.float32)
            self.assertGradientChecks(hu.cpu_do, op, [A, B], 1, [0])

    assert _run_case(InPlace, "test").wasSuccessful()
