"""One request on a new connection, made as a conforming client makes it, for tests of
servers that are stopping or being replaced (reloads, restarts).

A server shutting down gracefully may tell a client that a request was *not processed* and
can be sent again (RFC 9113 §6.8: a GOAWAY whose last stream id is below the request's
stream, or RST_STREAM(REFUSED_STREAM), §8.7; a connection closed before the request could be
sent at all). Clients retry those requests on a new connection (httpx/httpcore, browsers and
nghttp2 do); :func:`fetch` does too, and counts the retries. Anything else that goes wrong is
an error: a request the server took and then dropped is a lost request.
"""
from __future__ import annotations

from hyperframe.frame import GoAwayFrame

from tests.helpers.h2client import H2Client
from tests.helpers.http1raw import H1Raw, request

__all__ = ["Unprocessed", "fetch", "fetch_once"]

REFUSED_STREAM = 0x7


class Unprocessed(Exception):
    """The server said (or showed) it did not process the request: safe to send again."""


def fetch_once(port: int, http2: bool, path: str = "/", ca: str | None = None,
               timeout: float = 30.0) -> str:
    """GET ``path`` on a new connection; the body of a 200 response. Raises
    :class:`Unprocessed` when the request may be retried, AssertionError otherwise."""
    if http2:
        try:
            client = H2Client("127.0.0.1", port, tls_ca=ca, timeout=timeout)
        except ConnectionRefusedError:  # nothing listening: a gap, never retried
            raise
        except ConnectionError as e:  # closed before our preface could be sent
            raise Unprocessed(repr(e)) from None
        with client as c:
            try:
                sid = c.request(path)
            except OSError as e:  # closed (after a GOAWAY) before the request went out
                raise Unprocessed(repr(e)) from None
            try:
                c.wait_for(lambda ev: c.stream_ended(sid) or c.stream_reset(sid) is not None
                           or c.closed, timeout)
            except OSError:  # (a write of the client's after the server closed)
                pass
            if c.stream_ended(sid):
                headers = c.headers(sid)
                assert headers.get(":status") == "200", headers
                return c.body(sid).decode()
            goaways = [f for f in c.frames if isinstance(f, GoAwayFrame)]
            if any(f.last_stream_id < sid for f in goaways) or \
                    c.rst_codes(sid) == [REFUSED_STREAM]:
                raise Unprocessed(f"GOAWAY {[(f.last_stream_id, f.error_code) for f in goaways]}"
                                  f", resets {c.rst_codes(sid)}")
            raise AssertionError(f"stream {sid} lost: resets {c.rst_codes(sid)}, goaways "
                                 f"{[(f.last_stream_id, f.error_code) for f in goaways]}")
    with H1Raw(port, tls_ca=ca, alpn=["http/1.1"] if ca else None, timeout=timeout) as c:
        try:
            c.send(request("GET", path, headers=[("Connection", "close")]))
        except OSError as e:  # closed before the request could be sent
            raise Unprocessed(repr(e)) from None
        reply = c.reply()
        assert reply.status == 200, reply
        return reply.body.decode()


def fetch(port: int, http2: bool, path: str = "/", ca: str | None = None,
          retried: list | None = None, attempts: int = 3) -> str:
    """:func:`fetch_once`, sent again when the server did not process it (each reason is
    appended to ``retried``)."""
    for attempt in range(attempts):
        try:
            return fetch_once(port, http2, path, ca)
        except Unprocessed as e:
            if retried is not None:
                retried.append(str(e))
            if attempt == attempts - 1:
                raise AssertionError(f"not processed {attempts} times: {e}") from None
    raise AssertionError("unreachable")
