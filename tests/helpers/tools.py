"""The real client tools the tests drive (curl, nghttp, h2load): found, or the test fails."""
from __future__ import annotations

import shutil

import pytest

__all__ = ["require_tool"]


def require_tool(name: str) -> str:
    """Path of a real client tool; a missing one fails the test (CI installs them)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt-get install -y nghttp2-client curl)")
    return path
