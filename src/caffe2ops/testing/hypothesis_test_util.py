"""Caffe2's ``hypothesis_test_util``: property-based operator tests.

:class:`HypothesisTestCase` asserts properties of an operator over generated inputs:

* ``assertReferenceChecks(gc, op, inputs, reference)`` runs ``op`` and compares each output with
  ``reference(*inputs)`` by ``assert_allclose(atol=threshold, rtol=threshold)`` (default 1e-4);
* ``assertGradientChecks(gc, op, inputs, i, outputs_with_grads)`` compares the gradient
  operators' result for input ``i`` with central differences (``caffe2ops.gradient_checker``;
  Caffe2's defaults ``stepsize=0.05``, ``threshold=0.005``);
* ``assertDeviceChecks(dc, op, inputs, outputs)``: the same outputs on every device option
  (``threshold=0.01``);
* ``assertValidationChecks(gc, op, inputs, validator)``: ``validator`` sees inputs and outputs.

Strategies: :func:`dims`, :func:`arrays`, :func:`tensor`, :func:`tensors`, :func:`tensor1d`, ...;
device options: ``gcs`` (CPU, plus CUDA where a GPU and CuPy exist), ``gcs_cpu_only``,
``gcs_gpu_only``. Importing the module registers Caffe2's hypothesis profiles ``dev`` (10
examples, the default), ``sandcastle`` (100, derandomized; chosen when ``SANDCASTLE=1``) and
``debug`` (1000) and loads the one named by ``CAFFE2_HYPOTHESIS_PROFILE``, as Caffe2 did.

Two adaptations to today's hypothesis, neither loosening a check: float elements are rounded to
the array's dtype before hypothesis sees them (hypothesis ≥ 5 refuses ``st.floats()`` for float32
arrays, older versions rounded silently), and the profiles set ``deadline=None`` (Caffe2's
hypothesis had no per-example deadline).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os

import hypothesis
import hypothesis.extra.numpy
import hypothesis.strategies as st
import numpy as np

from caffe2ops import core, workspace
from caffe2ops.device_checker import DeviceChecker
from caffe2ops.gradient_checker import GradientChecker
from caffe2ops.proto import caffe2_pb2
from caffe2ops.testing import test_util


def is_sandcastle() -> bool:
    return os.getenv("SANDCASTLE") == "1" or os.getenv("TW_JOB_USER") == "sandcastle"


def is_travis() -> bool:
    return "TRAVIS" in os.environ


_TOO_SLOW = [hypothesis.HealthCheck.too_slow]
hypothesis.settings.register_profile(
    "sandcastle",
    hypothesis.settings(derandomize=True, suppress_health_check=_TOO_SLOW, database=None,
                        max_examples=100, deadline=None,
                        verbosity=hypothesis.Verbosity.verbose),
)
hypothesis.settings.register_profile(
    "dev",
    hypothesis.settings(suppress_health_check=_TOO_SLOW, database=None, max_examples=10,
                        deadline=None, verbosity=hypothesis.Verbosity.verbose),
)
hypothesis.settings.register_profile(
    "debug",
    hypothesis.settings(suppress_health_check=_TOO_SLOW, database=None, max_examples=1000,
                        deadline=None, verbosity=hypothesis.Verbosity.verbose),
)
hypothesis.settings.load_profile(
    "sandcastle" if is_sandcastle() else os.getenv("CAFFE2_HYPOTHESIS_PROFILE", "dev")
)


# ---- strategies --------------------------------------------------------------------------------


def dims(min_value: int = 1, max_value: int = 5):
    """One dimension's length."""
    return st.integers(min_value=min_value, max_value=max_value)


def elements_of_type(dtype=np.float32, filter_=None):
    """Caffe2's default elements: floats in [-1, 1], non-negative ints, booleans."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        elems = st.floats(min_value=-1.0, max_value=1.0)
    elif dtype == np.int32:
        elems = st.integers(min_value=0, max_value=2**31 - 1)
    elif dtype == np.int64:
        elems = st.integers(min_value=0, max_value=2**63 - 1)
    elif dtype == np.bool_:
        elems = st.booleans()
    else:
        raise ValueError("Unexpected dtype without elements provided")
    return elems if filter_ is None else elems.filter(filter_)


def _round_to(dtype: np.dtype):
    def rounded(value):
        with np.errstate(over="ignore"):
            return float(np.asarray(value, dtype=np.float64).astype(dtype))

    return rounded


def arrays(dims, dtype=np.float32, elements=None):
    """Arrays of shape ``dims`` (a list, or a strategy of shapes) and ``dtype``."""
    dtype = np.dtype(dtype)
    if elements is None:
        elements = elements_of_type(dtype)
    if dtype.kind == "f":
        elements = elements.map(_round_to(dtype))
    return hypothesis.extra.numpy.arrays(dtype, dims, elements=elements)


def tensor(min_dim=1, max_dim=4, dtype=np.float32, elements=None, **kwargs):
    """An array with ``min_dim``..``max_dim`` dimensions, each of :func:`dims` ``(**kwargs)``."""
    dims_ = st.lists(dims(**kwargs), min_size=min_dim, max_size=max_dim)
    return dims_.flatmap(lambda shape: arrays(shape, dtype, elements))


def tensor1d(min_len=1, max_len=64, dtype=np.float32, elements=None):
    return tensor(1, 1, dtype, elements, min_value=min_len, max_value=max_len)


def tensors(n, min_dim=1, max_dim=4, dtype=np.float32, elements=None, **kwargs):
    """A list of ``n`` arrays of one shape."""
    dims_ = st.lists(dims(**kwargs), min_size=min_dim, max_size=max_dim)
    return dims_.flatmap(
        lambda shape: st.lists(arrays(shape, dtype, elements), min_size=n, max_size=n)
    )


def tensors1d(n, min_len=1, max_len=64, dtype=np.float32, elements=None):
    return tensors(n, 1, 1, dtype, elements, min_value=min_len, max_value=max_len)


def segment_ids(size, is_sorted):
    if size == 0:
        return st.just(np.empty(shape=[0], dtype=np.int32))
    if is_sorted:
        return arrays([size], dtype=np.int32, elements=st.booleans()).map(
            lambda x: np.cumsum(x, dtype=np.int32) - x[0]
        )
    return arrays([size], dtype=np.int32, elements=st.integers(min_value=0, max_value=2 * size))


def lengths(size, min_segments=None, max_segments=None, **kwargs):
    """Segment lengths (possibly 0) summing to ``size``."""
    min_segments = 0 if min_segments is None else min_segments
    max_segments = size if max_segments is None else max_segments
    assert 0 <= min_segments <= max_segments
    if size == 0 and max_segments == 0:
        return st.just(np.empty(shape=[0], dtype=np.int32))
    assert max_segments > 0, "size is not 0, need at least one segment"
    return (
        st.integers(min_value=max(min_segments - 1, 0), max_value=max_segments - 1)
        .flatmap(lambda borders: hypothesis.extra.numpy.arrays(
            np.int32, borders, elements=st.integers(min_value=0, max_value=size)))
        .map(lambda x: np.append(x, np.array([0, size], dtype=np.int32)))
        .map(sorted)
        .map(np.diff)
    )


def segmented_tensor(min_dim=1, max_dim=4, dtype=np.float32, is_sorted=True, elements=None,
                     segment_generator=segment_ids, allow_empty=False, **kwargs):
    gen_empty = st.booleans() if allow_empty else st.just(False)
    data_dims_ = st.lists(dims(**kwargs), min_size=min_dim, max_size=max_dim)
    data_dims_ = st.tuples(gen_empty, data_dims_).map(
        lambda pair: ([0] if pair[0] else []) + pair[1]
    )
    return data_dims_.flatmap(lambda data_dims: st.tuples(
        arrays(data_dims, dtype, elements),
        segment_generator(data_dims[0], is_sorted=is_sorted),
    ))


def lengths_tensor(min_segments=None, max_segments=None, *args, **kwargs):
    gen = functools.partial(lengths, min_segments=min_segments, max_segments=max_segments)
    return segmented_tensor(*args, segment_generator=gen, **kwargs)


def sparse_segmented_tensor(min_dim=1, max_dim=4, dtype=np.float32, is_sorted=True,
                            elements=None, allow_empty=False, segment_generator=segment_ids,
                            itype=np.int64, **kwargs):
    gen_empty = st.booleans() if allow_empty else st.just(False)
    data_dims_ = st.lists(dims(**kwargs), min_size=min_dim, max_size=max_dim)
    all_dims_ = st.tuples(gen_empty, data_dims_).flatmap(lambda pair: st.tuples(
        st.just(pair[1]),
        st.integers(min_value=1, max_value=pair[1][0]) if not pair[0] else st.just(0),
    ))
    return all_dims_.flatmap(lambda d: st.tuples(
        arrays(d[0], dtype, elements),
        arrays(d[1], dtype=itype, elements=st.integers(min_value=0, max_value=d[0][0] - 1)),
        segment_generator(d[1], is_sorted=is_sorted),
    ))


def sparse_lengths_tensor(**kwargs):
    return sparse_segmented_tensor(segment_generator=lengths, **kwargs)


# ---- device options ----------------------------------------------------------------------------

cpu_do = caffe2_pb2.DeviceOption()
cuda_do = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.CUDA)
hip_do = caffe2_pb2.DeviceOption(device_type=getattr(caffe2_pb2, "HIP", 6))
gpu_do = caffe2_pb2.DeviceOption(device_type=workspace.GpuDeviceType)
_device_options_no_hip = [cpu_do] + ([cuda_do] if workspace.has_cuda_support else [])
device_options = _device_options_no_hip + ([hip_do] if workspace.has_hip_support else [])
expanded_device_options = [cpu_do] + [
    caffe2_pb2.DeviceOption(device_type=workspace.GpuDeviceType, device_id=i)
    for i in range(workspace.NumGpuDevices())
]


def device_checker_device_options():
    return st.just(device_options)


def gradient_checker_device_option():
    return st.sampled_from(device_options)


gcs = dict(gc=gradient_checker_device_option(), dc=device_checker_device_options())
gcs_cpu_only = dict(gc=st.sampled_from([cpu_do]), dc=st.just([cpu_do]))
gcs_cuda_only = dict(gc=st.sampled_from([cuda_do]), dc=st.just([cuda_do]))
gcs_gpu_only = dict(gc=st.sampled_from([gpu_do]), dc=st.just([gpu_do]))
gcs_no_hip = dict(gc=st.sampled_from(_device_options_no_hip), dc=st.just(_device_options_no_hip))


@contextlib.contextmanager
def temp_workspace(name="temp_ws"):
    """Run the block in workspace ``name``, emptied afterwards; switch back."""
    old_ws_name = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace(name, True)
    try:
        yield
    finally:
        workspace.ResetWorkspace()
        workspace.SwitchWorkspace(old_ws_name)


def _feed_inputs(op, inputs, device_option, input_device_options) -> None:
    feed_options = input_device_options or core.InferOpBlobDevicesAsDict(op)[0]
    for name, value in zip(op.input, inputs, strict=False):
        workspace.FeedBlob(name, value, device_option=feed_options.get(name, device_option))


def _on_device(op, device_option):
    op = copy.deepcopy(op)
    op.device_option.CopyFrom(device_option)
    return op


def runOpBenchmark(device_option, op, inputs, input_device_options=None, iterations=10):  # noqa: N802
    """``workspace.BenchmarkNet``'s timing list for ``op`` alone on ``inputs``."""
    op = _on_device(op, device_option)
    net = caffe2_pb2.NetDef(name=op.name or "test")
    net.op.extend([op])
    with temp_workspace():
        _feed_inputs(op, inputs, device_option, input_device_options)
        workspace.CreateNet(net)
        return workspace.BenchmarkNet(net.name, 1, iterations, True)


def runOpOnInput(device_option, op, inputs, input_device_options=None):  # noqa: N802
    """The outputs of ``op`` run once on ``inputs`` in a temporary workspace."""
    op = _on_device(op, device_option)
    with temp_workspace():
        if len(op.input) > len(inputs):
            raise ValueError(
                f"must supply an input for each input on the op: {op.input} vs {inputs}"
            )
        _feed_inputs(op, inputs, device_option, input_device_options)
        workspace.RunOperatorOnce(op)
        return [workspace.FetchBlob(name) for name in op.output]


_TP = caffe2_pb2.TensorProto
_CHECKED_TYPES = {np.dtype(np.float64): _TP.DOUBLE, np.dtype(np.float32): _TP.FLOAT,
                  np.dtype(np.int32): _TP.INT32, np.dtype(np.int64): _TP.INT64}


class HypothesisTestCase(test_util.TestCase):
    """``unittest.TestCase`` with Caffe2's operator checks (see the module doc)."""

    def assertDeviceChecks(  # noqa: N802
        self, device_options, op, inputs, outputs_to_check, input_device_options=None,
        threshold=0.01,
    ):
        checker = DeviceChecker(threshold, device_options=device_options)
        self.assertTrue(checker.CheckSimple(op, inputs, outputs_to_check, input_device_options))

    def assertGradientChecks(  # noqa: N802
        self, device_option, op, inputs, outputs_to_check, outputs_with_grads, grad_ops=None,
        threshold=0.005, stepsize=0.05, input_device_options=None,
    ):
        checker = GradientChecker(
            stepsize=stepsize, threshold=threshold, device_option=device_option,
            workspace_name=str(device_option), input_device_options=input_device_options,
        )
        res, grad, grad_estimated = checker.CheckSimple(
            op, inputs, outputs_to_check, outputs_with_grads, grad_ops=grad_ops,
            input_device_options=input_device_options,
        )
        self.assertEqual(grad.shape, grad_estimated.shape)
        if not res:
            bad = np.flatnonzero(~np.isclose(grad, grad_estimated, atol=threshold,
                                             rtol=threshold))
            detail = "; [index, gradient, estimate]: " + str(
                np.vstack([bad, grad.flat[bad], grad_estimated.flat[bad]]).T[:10].tolist())
        else:
            detail = ""
        self.assertTrue(res, "Gradient check failed for input " + str(op.input[outputs_to_check])
                        + detail)

    def _assertGradReferenceChecks(  # noqa: N802
        self, op, inputs, ref_outputs, output_to_grad, grad_reference, threshold=1e-4,
    ):
        grad_blob_name = output_to_grad + "_grad"
        grad_ops, grad_map = core.GradientRegistry.GetBackwardPass(
            [op], {output_to_grad: grad_blob_name}
        )
        output_grad = workspace.FetchBlob(output_to_grad)
        grad_ref_outputs = grad_reference(output_grad, ref_outputs, inputs)
        workspace.FeedBlob(grad_blob_name, workspace.FetchBlob(output_to_grad))
        workspace.RunOperatorsOnce(grad_ops)
        self.assertEqual(len(grad_ref_outputs), len(inputs))
        for name, ref in zip(op.input, grad_ref_outputs, strict=False):
            grad_names = grad_map.get(name)
            if not grad_names:
                self.assertIsNone(ref)
                continue
            if isinstance(grad_names, core.GradientSlice):
                ref_vals, ref_indices = ref
                val_name = grad_names.values
            else:
                ref_vals, ref_indices, val_name = ref, None, grad_names
            vals = workspace.FetchBlob(str(val_name))
            np.testing.assert_allclose(
                vals, ref_vals, atol=threshold, rtol=threshold,
                err_msg=f"Gradient {val_name} (x) is not matching the reference (y)",
            )
            if ref_indices is not None:
                indices = workspace.FetchBlob(str(grad_names.indices))
                np.testing.assert_allclose(indices, ref_indices, atol=1e-4, rtol=1e-4)

    def _assertInferTensorChecks(  # noqa: N802
        self, name, shapes, types, output, ensure_output_is_inferred=False,
    ):
        self.assertTrue(not ensure_output_is_inferred or name in shapes,
                        f"Shape for {name} was not inferred")
        if name not in shapes:
            return
        output = workspace.FetchBlob(name)
        if isinstance(output, np.ndarray):
            correct_type = _CHECKED_TYPES.get(output.dtype, f"unknown {output.dtype}")
        else:
            correct_type = str(type(output))
        try:
            np.testing.assert_array_equal(
                np.array(shapes[name]).astype(np.int32), np.array(output.shape).astype(np.int32),
                err_msg=f"Shape {name} mismatch: {shapes[name]} vs. {output.shape}",
            )
            # Caffe2 compared the inferred type only for INT32 outputs (its T16121392).
            if correct_type != _TP.INT32:
                return
            np.testing.assert_equal(
                types[name], correct_type,
                err_msg=f"Type {name} mismatch: {types[name]} vs. {correct_type}",
            )
        except AssertionError as e:
            # Caffe2 only logged shape-inference mismatches unless asked to fail on them.
            logging.warning(str(e))
            if os.getenv("CAFFE2_ASSERT_SHAPEINFERENCE") == "1":
                raise

    def assertReferenceChecks(  # noqa: N802
        self, device_option, op, inputs, reference, input_device_options=None, threshold=1e-4,
        output_to_grad=None, grad_reference=None, atol=None, outputs_to_check=None,
        ensure_outputs_are_inferred=False,
    ):
        """Outputs of ``op`` equal ``reference(*inputs)`` within ``threshold``; returns them."""
        op = _on_device(op, device_option)
        with temp_workspace():
            if len(op.input) > len(inputs):
                raise ValueError(
                    f"must supply an input for each input on the op: {op.input} vs {inputs}"
                )
            _feed_inputs(op, inputs, device_option, input_device_options)
            net = core.Net("opnet")
            net.Proto().op.extend([op])
            test_shape_inference = False
            try:
                shapes, types = workspace.InferShapesAndTypes([net])
                test_shape_inference = True
            except RuntimeError as e:
                logging.warning(str(e))
                if os.getenv("CAFFE2_ASSERT_SHAPEINFERENCE") == "1":
                    raise
            workspace.RunNetOnce(net)
            reference_outputs = reference(*inputs)
            if not isinstance(reference_outputs, tuple | list):
                raise RuntimeError(
                    "You are providing a wrong reference implementation. A proper one should "
                    "return a tuple/list of numpy arrays."
                )
            if not outputs_to_check:
                self.assertEqual(len(reference_outputs), len(op.output))
                outputs_to_check = list(range(len(op.output)))
            outs = []
            for output_index, ref in zip(outputs_to_check, reference_outputs, strict=False):
                output_blob_name = op.output[output_index]
                output = workspace.FetchBlob(output_blob_name)
                if output.dtype.kind in ("S", "O"):
                    np.testing.assert_array_equal(output, ref)
                else:
                    if atol is None:
                        atol = threshold
                    np.testing.assert_allclose(
                        output, ref, atol=atol, rtol=threshold,
                        err_msg=f"Output {output_blob_name} is not matching the reference",
                    )
                if test_shape_inference:
                    self._assertInferTensorChecks(
                        output_blob_name, shapes, types, output,
                        ensure_output_is_inferred=ensure_outputs_are_inferred,
                    )
                outs.append(output)
            if grad_reference is not None:
                assert output_to_grad is not None, (
                    "If grad_reference is set, output_to_grad has to be set as well"
                )
                with core.DeviceScope(device_option):
                    self._assertGradReferenceChecks(
                        op, inputs, reference_outputs, output_to_grad, grad_reference,
                        threshold=threshold,
                    )
            return outs

    def assertValidationChecks(  # noqa: N802
        self, device_option, op, inputs, validator, input_device_options=None, as_kwargs=True,
        init_net=None,
    ):
        """Run ``op`` and call ``validator(**{blob: value})`` (or ``(inputs=, outputs=)``)."""
        if as_kwargs:
            assert len(set(list(op.input) + list(op.output))) == \
                len(op.input) + len(op.output), "in-place ops are not supported in as_kwargs mode"
        op = _on_device(op, device_option)
        with temp_workspace():
            _feed_inputs(op, inputs, device_option, input_device_options)
            if init_net:
                workspace.RunNetOnce(init_net)
            workspace.RunOperatorOnce(op)
            outputs = [workspace.FetchBlob(n) for n in op.output]
            if as_kwargs:
                validator(**dict(zip(list(op.input) + list(op.output), list(inputs) + outputs,
                                     strict=False)))
            else:
                validator(inputs=inputs, outputs=outputs)

    def assertRunOpRaises(  # noqa: N802
        self, device_option, op, inputs, input_device_options=None, exception=(Exception,),
        regexp=None,
    ):
        op = _on_device(op, device_option)
        with temp_workspace():
            _feed_inputs(op, inputs, device_option, input_device_options)
            if regexp is None:
                self.assertRaises(exception, workspace.RunOperatorOnce, op)
            else:
                self.assertRaisesRegex(exception, regexp, workspace.RunOperatorOnce, op)
