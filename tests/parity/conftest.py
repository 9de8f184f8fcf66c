"""Fixtures of the parity suite (``make parity``): one real-Caffe2 worker per session."""

from __future__ import annotations

import pytest
from harness import Caffe2Worker

# Runs inside .venv-caffe2 (Python 3.8, real Caffe2), never in this interpreter.
collect_ignore = ["caffe2_worker.py"]


@pytest.fixture(scope="session")
def caffe2():
    worker = Caffe2Worker()
    yield worker
    worker.close()
