"""Listening sockets (kyoukai_h2fast.server.listener): every address a host resolves to is bound
once, and with port 0 on one port for all of them, in the single process as in the supervisor
(one socket set-up for both); a failure leaves no socket open."""
from __future__ import annotations

import asyncio
import os
import socket

import pytest

from kyoukai_h2fast.process.supervisor import bind_sockets
from kyoukai_h2fast.server.listener import Listener, listening_sockets

#: Two loopback addresses (and the first again): what a host with two addresses resolves to.
TWO_ADDRESSES = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0)),
                 (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", 0)),
                 (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_listener_binds_every_address_once_on_one_port():
    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def getaddrinfo(*args, **kwargs):
            return TWO_ADDRESSES

        loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]
        listener = Listener(loop, asyncio.Protocol, None)
        await listener.bind("two-addresses.invalid", 0)
        try:
            names = [sock.getsockname() for sock in listener.sockets]
            assert sorted(host for host, _ in names) == ["127.0.0.1", "127.0.0.2"], names
            assert len({port for _, port in names}) == 1, names
            assert all(not sock.getblocking() for sock in listener.sockets)
            for host, port in names:  # both accept connections
                _, writer = await asyncio.open_connection(host, port)
                writer.close()
        finally:
            listener.close()

    asyncio.run(main())


def test_the_supervisor_binds_the_same_way_inheritable():
    sockets = bind_sockets("127.0.0.1", 0)
    try:
        assert len(sockets) == 1 and sockets[0].get_inheritable()
        assert sockets[0].getsockname()[1] != 0
    finally:
        for sock in sockets:
            sock.close()


def test_a_failed_bind_closes_what_it_opened():
    unroutable = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", 0))  # TEST-NET-1
    before = _open_fds()
    with pytest.raises(OSError):
        listening_sockets([TWO_ADDRESSES[0], unroutable], 0)
    assert _open_fds() == before


@pytest.mark.parametrize("drain", [True, False], ids=["drain-on-close", "plain-close"])
def test_a_socket_of_its_own_is_drained_on_close_not_reset(drain):
    """``drain_on_close`` (gunicorn --reuse-port: the socket is this worker's alone): a
    connection waiting in the accept queue when the listener closes is accepted and handed
    to the protocol factory; without it (a shared socket, whose other holders accept from
    it) close() leaves it, and closing the last holder resets it."""
    made: list[asyncio.BaseProtocol] = []

    class Recorder(asyncio.Protocol):
        def connection_made(self, transport) -> None:
            made.append(self)
            transport.write(b"served")
            transport.close()

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        listener = Listener(loop, Recorder, None)
        listener.drain_on_close = drain
        listener.adopt(bind_sockets("127.0.0.1", 0))
        port = listener.port
        client = socket.create_connection(("127.0.0.1", port), timeout=5)  # queued: the
        listener.close()  # loop has not run since, so the listener did not accept it yet
        await listener.wait_closed()
        await asyncio.sleep(0.05)
        try:
            return client.recv(100)
        except ConnectionResetError:
            return b"reset"
        finally:
            client.close()

    reply = asyncio.run(main())
    assert (reply, len(made)) == ((b"served", 1) if drain else (b"reset", 0))
