"""Bursts of connections opened at once, one request each, for tests of how worker processes
share the load: the answers (the pids of the serving processes, from
``tests.served_apps.pid:app``) in connection order."""
from __future__ import annotations

from tests.helpers.h2client import H2Client
from tests.helpers.http1raw import H1Raw, request

__all__ = ["burst_h2", "burst_http11"]


def burst_h2(port: int, count: int = 40) -> list[int]:
    """``count`` HTTP/2 connections opened at once, then one request on each."""
    clients = [H2Client("127.0.0.1", port, timeout=30) for _ in range(count)]
    try:
        sids = [c.request("/") for c in clients]
        return [int(c.response(sid)[1]) for c, sid in zip(clients, sids, strict=True)]
    finally:
        for c in clients:
            c.close()


def burst_http11(port: int, count: int = 40) -> list[int]:
    """``count`` HTTP/1.1 connections opened at once, then one request on each."""
    clients = [H1Raw(port, timeout=30) for _ in range(count)]
    try:
        for c in clients:
            c.send(request("GET", "/"))
        return [int(c.reply().body) for c in clients]
    finally:
        for c in clients:
            c.close()
