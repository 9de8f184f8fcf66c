"""Caffe2's ``test_util``: the base ``TestCase`` and small blob helpers.

``TestCase.setUpClass`` calls ``workspace.GlobalInit`` with Caffe2's test flags and clears the
engine preferences; ``setUp`` gives each test a fresh ``self.ws`` (a ``C.Workspace`` of its own)
and empties the current workspace, ``tearDown`` empties it again. Tests marked
:func:`caffe2_flaky` run only when ``CAFFE2_RUN_FLAKY_TESTS=1`` (and then only they run).
"""

from __future__ import annotations

import os
import unittest
import warnings

import numpy as np

from caffe2ops import core, workspace


def rand_array(*dims) -> np.ndarray:
    """Uniform in [-0.5, 0.5), float32, of shape ``dims`` (a 0-d array for no dims)."""
    return np.array(np.random.rand(*dims) - 0.5).astype(np.float32)


def randBlob(name, type, *dims, **kwargs) -> None:  # noqa: N802, A002 - Caffe2's names
    offset = kwargs.get("offset", 0.0)
    workspace.FeedBlob(name, np.random.rand(*dims).astype(type) + offset)


def randBlobFloat32(name, *dims, **kwargs) -> None:  # noqa: N802
    randBlob(name, np.float32, *dims, **kwargs)


def randBlobsFloat32(names, *dims, **kwargs) -> None:  # noqa: N802
    for name in names:
        randBlobFloat32(name, *dims, **kwargs)


def numOps(net) -> int:  # noqa: N802
    return len(net.Proto().op)


def str_compare(a, b, encoding: str = "utf8") -> bool:
    if isinstance(a, bytes):
        a = a.decode(encoding)
    if isinstance(b, bytes):
        b = b.decode(encoding)
    return a == b


def get_default_test_flags() -> list[str]:
    return [
        "caffe2",
        "--caffe2_log_level=0",
        "--caffe2_cpu_allocator_do_zero_fill=0",
        "--caffe2_cpu_allocator_do_junk_fill=1",
    ]


def caffe2_flaky(test_method):
    """Mark a test as flaky (see the module doc); apply it as the outermost decorator."""
    test_method.__caffe2_flaky__ = True
    return test_method


def is_flaky_test_mode() -> bool:
    return os.getenv("CAFFE2_RUN_FLAKY_TESTS", "0") == "1"


class TestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        with warnings.catch_warnings():  # the allocator flags mean nothing here; say so once
            warnings.simplefilter("ignore")
            workspace.GlobalInit(get_default_test_flags())
        core.SetEnginePref({}, {})

    def setUp(self) -> None:
        test_method = getattr(self, self._testMethodName)
        is_flaky_test = getattr(test_method, "__caffe2_flaky__", False)
        if is_flaky_test_mode() and not is_flaky_test:
            raise unittest.SkipTest("Non-flaky tests are skipped in flaky test mode")
        if not is_flaky_test_mode() and is_flaky_test:
            raise unittest.SkipTest("Flaky tests are skipped in regular test mode")
        self.ws = workspace.C.Workspace()
        workspace.ResetWorkspace()

    def tearDown(self) -> None:
        workspace.ResetWorkspace()
