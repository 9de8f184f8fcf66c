"""The current device and name scopes (``core.DeviceScope`` / ``core.NameScope`` set them)."""

from __future__ import annotations

import threading

_state = threading.local()


def device_stack() -> list:
    stack = getattr(_state, "devices", None)
    if stack is None:
        stack = _state.devices = []
    return stack


def current_device():
    """The innermost ``DeviceScope``'s DeviceOption, or None."""
    stack = device_stack()
    return stack[-1] if stack else None


def name_prefix() -> str:
    """The current name scope as a prefix ending in '/', or ''."""
    return getattr(_state, "prefix", "")


def set_name_prefix(prefix: str) -> None:
    _state.prefix = prefix
