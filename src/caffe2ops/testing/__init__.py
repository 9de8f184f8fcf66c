"""Caffe2's operator-test helpers for caffe2ops.

* :mod:`caffe2ops.testing.hypothesis_test_util` — ``HypothesisTestCase`` (reference, gradient,
  device and validation checks), the strategies (``tensor``, ``tensors``, ``arrays``, ``dims``),
  the device options (``gcs``, ``gcs_cpu_only``, ``gcs_gpu_only``) and Caffe2's hypothesis profiles;
* :mod:`caffe2ops.testing.serialized_test_util` — ``SerializedTestCase`` and ``given``, reading and
  writing Caffe2's serialized-test ``.zip`` files;
* :mod:`caffe2ops.testing.test_util` — Caffe2's base ``TestCase``.

A Caffe2 operator test ports by changing ``caffe2.python`` to ``caffe2ops.testing`` in these
imports (or runs unchanged under :mod:`caffe2ops.compat`).
"""
