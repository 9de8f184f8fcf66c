"""Helpers for a ``dask.distributed`` client."""

from __future__ import annotations

from typing import Any

__all__ = ["load_kernels_on_workers"]


def _load() -> bool:
    from caffe2ops import kernels

    return kernels.load()


def load_kernels_on_workers(client: Any) -> dict[str, bool]:
    """Load the fast kernels in every worker of ``client`` now (blocks; worker -> loaded).

    Without it each worker loads them on a background thread at its first task and runs the
    reference kernels (same bits) meanwhile; call it before timing anything.
    """
    return client.run(_load)
