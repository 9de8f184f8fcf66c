"""Our side of the parity harness: start the real-Caffe2 worker once and talk to it.

``Caffe2Worker`` runs ``caffe2_worker.py`` with ``.venv-caffe2``'s Python 3.8 (see that file for
the protocol). Arrays go over the pipe as ``.npy`` bytes; messages as protobuf bytes, decoded
here into :mod:`caffe2ops.proto.caffe2_pb2` messages (same field numbers as Caffe2's).
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from caffe2ops.proto import caffe2_pb2

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("caffe2_worker.py")


def venv_python() -> Path:
    """``.venv-caffe2``'s interpreter (``CAFFE2_PYTHON`` overrides)."""
    return Path(os.environ.get("CAFFE2_PYTHON", ROOT / ".venv-caffe2" / "bin" / "python"))


class Caffe2Error(RuntimeError):
    """Real Caffe2 refused a request; the message is Caffe2's."""


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        arr = np.asarray(value)
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=arr.dtype == object)
        return ("__ndarray__", buf.getvalue())
    if hasattr(value, "SerializeToString"):
        return value.SerializeToString()
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, tuple) and value and value[0] == "__ndarray__":
        return np.load(io.BytesIO(value[1]), allow_pickle=True)
    if isinstance(value, tuple) and value and value[0] == "__proto__":
        return getattr(caffe2_pb2, value[1]).FromString(value[2])
    if isinstance(value, tuple) and value and value[0] == "__slice__":
        from caffe2ops.core import GradientSlice

        return GradientSlice(value[1], value[2])
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class Caffe2Worker:
    """One real-Caffe2 process, reused for every request of a test session."""

    def __init__(self, python: Path | None = None) -> None:
        python = Path(python or venv_python())
        if not python.exists():
            raise FileNotFoundError(
                f"{python} not found: run `make parity` (it creates .venv-caffe2 with Python 3.8 "
                "and torch==1.5.0, which contains Caffe2)"
            )
        env = dict(os.environ, GLOG_minloglevel="3", PYTHONPATH="")
        self._proc = subprocess.Popen(
            [str(python), "-u", str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=sys.stderr if os.environ.get("PARITY_WORKER_STDERR") else subprocess.DEVNULL,
            env=env, cwd="/",
        )
        self.request("ping")

    def request(self, cmd: str, **fields: Any) -> dict:
        data = pickle.dumps(dict(_encode(fields), cmd=cmd), protocol=4)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(struct.pack(">I", len(data)) + data)
        self._proc.stdin.flush()
        head = self._proc.stdout.read(4)
        if len(head) < 4:
            raise RuntimeError(f"the Caffe2 worker died (exit code {self._proc.poll()})")
        (size,) = struct.unpack(">I", head)
        reply = _decode(pickle.loads(self._proc.stdout.read(size)))
        if not reply.pop("ok"):
            raise Caffe2Error(reply["error"])
        return reply

    # Convenience forms of the commands --------------------------------------------------------

    def run_ops(self, ops, feeds: dict, fetch) -> dict[str, np.ndarray]:
        """Reset, feed, run each OperatorDef once, fetch."""
        ops = [ops] if hasattr(ops, "SerializeToString") else list(ops)
        return self.request("run_ops", ops=ops, feeds=feeds, fetch=list(fetch))["outputs"]

    def run_nets(self, net, feeds: dict, fetch, init=None, iters: int = 1,
                 fetch_every=()) -> dict:
        """Reset, feed, run ``init`` once, create ``net``, run it ``iters`` times."""
        reply = self.request("run_nets", init=init, net=net, feeds=feeds, fetch=list(fetch),
                             iters=iters, fetch_every=list(fetch_every))
        return reply

    def run_cases(self, cases) -> list[dict]:
        """Many ``run_ops`` in one round trip: ``cases`` is a list of ``(ops, feeds, fetch)``;
        each result is ``{"outputs": {name: array}}`` or ``{"error": Caffe2's message}``."""
        payload = [{"ops": [ops] if hasattr(ops, "SerializeToString") else list(ops),
                    "feeds": feeds, "fetch": list(fetch)} for ops, feeds, fetch in cases]
        return self.request("run_cases", cases=payload)["results"]

    def gradient(self, op, g_output) -> tuple[list, list]:
        """Caffe2's ``GetGradientForOp``: the gradient OperatorDefs and the input gradients."""
        reply = self.request("gradient", op=op, g_output=list(g_output))
        return [caffe2_pb2.OperatorDef.FromString(b) for b in reply["ops"]], reply["g_input"]

    def exec(self, code: str, **feeds: Any) -> Any:
        """Run Python source inside the Caffe2 process; returns what it put in ``result``."""
        return self.request("exec", code=code, feeds=feeds)["result"]

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                data = pickle.dumps({"cmd": "quit"}, protocol=4)
                assert self._proc.stdin is not None
                self._proc.stdin.write(struct.pack(">I", len(data)) + data)
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except Exception:
                self._proc.kill()
