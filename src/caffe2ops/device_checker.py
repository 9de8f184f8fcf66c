"""Caffe2's device checker: the same operator on several devices must give the same outputs.

``DeviceChecker(threshold, device_options).CheckSimple(op, inputs, outputs_to_check)`` runs ``op``
once per device option in a scratch workspace and compares every device's outputs with the first
device's by ``np.allclose(x, y, atol=threshold, rtol=threshold)``, as Caffe2's
``caffe2/python/device_checker.py``. With only the CPU it still runs the operator, so a failing
operator fails the check.

>>> import numpy as np
>>> from caffe2ops import core
>>> from caffe2ops.proto import caffe2_pb2
>>> checker = DeviceChecker(0.01, [caffe2_pb2.DeviceOption()])
>>> checker.CheckSimple(core.CreateOperator("Cos", ["X"], ["Y"]), [np.zeros(3, np.float32)], [0])
True
"""

from __future__ import annotations

import copy
import logging

import numpy as np

from caffe2ops import workspace
from caffe2ops.core import InferOpBlobDevicesAsDict

_LOG = logging.getLogger("caffe2ops.device_checker")


class DeviceChecker:
    """``CheckSimple`` / ``CheckNet`` over ``device_options`` (see the module doc)."""

    def __init__(self, threshold: float, device_options) -> None:
        self._threshold = threshold
        self._device_options = list(device_options)

    def _compare(self, results, names) -> bool:
        success = True
        for i in range(1, len(results)):
            for j, name in enumerate(names):
                x, y = results[i][j], results[0][j]
                if not np.allclose(x, y, atol=self._threshold, rtol=self._threshold):
                    _LOG.error("device option %d differs from device option 0 on output %s: "
                               "max |x - y| = %s", i, name, np.max(np.abs(x - y)))
                    success = False
        return success

    def CheckSimple(self, op, inputs, outputs_to_check, input_device_options=None) -> bool:  # noqa: N802
        op = copy.deepcopy(op)
        old = workspace.CurrentWorkspace()
        results = []
        workspace.SwitchWorkspace("_device_check_", True)
        try:
            for device_option in self._device_options:
                op.device_option.CopyFrom(device_option)
                feed_options = input_device_options or InferOpBlobDevicesAsDict(op)[0]
                for name, value in zip(op.input, inputs, strict=False):
                    workspace.FeedBlob(name, np.array(value),
                                       feed_options.get(name, device_option))
                workspace.RunOperatorOnce(op)
                results.append([workspace.FetchBlob(op.output[k]) for k in outputs_to_check])
                workspace.ResetWorkspace()
        finally:
            workspace.ResetWorkspace()
            workspace.SwitchWorkspace(old)
        return self._compare(results, [op.output[k] for k in outputs_to_check])

    def CheckNet(self, net, inputs=None, blobs_to_check=None, ignore=None) -> bool:  # noqa: N802
        inputs, ignore = inputs or {}, set(ignore or ())
        if blobs_to_check is None:
            blobs_to_check = [b for op in net.op for b in op.output]
        blobs_to_check = [b for b in blobs_to_check if b not in ignore]
        old = workspace.CurrentWorkspace()
        results = []
        workspace.SwitchWorkspace("_device_check_", True)
        try:
            for device_option in self._device_options:
                for name, value in inputs.items():
                    workspace.FeedBlob(name, value, device_option)
                for op in net.op:
                    op.device_option.CopyFrom(device_option)
                workspace.RunNetOnce(net)
                results.append([workspace.FetchBlob(name) for name in blobs_to_check])
        finally:
            workspace.ResetWorkspace()
            workspace.SwitchWorkspace(old)
        return self._compare(results, blobs_to_check)
