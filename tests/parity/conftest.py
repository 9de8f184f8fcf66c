"""Fixtures of the parity suite (``make parity``): one real-Caffe2 worker per session; at the end
the session writes tests/parity/RESULTS.md from what the tests recorded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: optable, optable_arith

from harness import Caffe2Worker  # noqa: E402
from record import RECORDER  # noqa: E402

# Runs inside .venv-caffe2 (Python 3.8, real Caffe2), never in this interpreter.
collect_ignore = ["caffe2_worker.py"]


@pytest.fixture(scope="session")
def caffe2():
    worker = Caffe2Worker()
    yield worker
    worker.close()


def pytest_sessionfinish(session, exitstatus):
    """RESULTS.md from a run that compared operators (not from a run of one unrelated test)."""
    if RECORDER.rows and not session.config.option.collectonly:
        RECORDER.write()
