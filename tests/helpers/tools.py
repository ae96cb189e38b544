"""The real client tools the tests drive (curl, nghttp, h2load): found, or the test fails."""
from __future__ import annotations

import shutil
import time

import pytest

__all__ = ["require_tool"]


def require_tool(name: str) -> str:
    """Path of a real client tool; a missing one fails the test (CI installs them)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt-get install -y nghttp2-client curl)")
    return path


def wait_until(condition, timeout: float = 30.0, what: str = "") -> None:
    """Poll ``condition()`` every 50 ms until it is true; AssertionError naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
