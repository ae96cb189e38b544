"""WSGI environ construction (PEP 3333) for HTTP/2 requests: the public selector.

Two halves:

* :func:`make_base_environ` (pure Python, here, once per connection): the constants
  ``wsgi.version`` ``(1, 0)``, ``wsgi.url_scheme`` (``"https"`` on TLS, else ``"http"``: from
  the connection, never from the client's ``:scheme``), ``wsgi.errors``,
  ``wsgi.multithread``, ``wsgi.multiprocess`` (True when more than one process serves the
  app: ``--workers N``, gunicorn ``-w N``), ``wsgi.run_once`` False,
  ``wsgi.input_terminated`` True, ``wsgi.file_wrapper``
  (:class:`~kyoukai_h2fast.wsgi.filewrapper.FileWrapper`, PEP 3333's optional extension: large
  blocks, the file always closed), ``SCRIPT_NAME`` ``""``, ``SERVER_PROTOCOL`` ``"HTTP/2"``,
  ``REMOTE_ADDR``/``REMOTE_PORT`` (str) of the peer, and the socket's ``SERVER_NAME``/
  ``SERVER_PORT`` as defaults.
* :func:`build_environ` (compiled :mod:`kyoukai_h2fast._environ_c`, pure twin
  :mod:`kyoukai_h2fast.wsgi._environ_py`, once per request) copies that base and adds, from the
  request field list already checked by
  :func:`kyoukai_h2fast.codec.headers.validate_request_headers`:

  - ``REQUEST_METHOD``: ``:method``, latin-1.
  - ``PATH_INFO``: ``:path`` before the first ``?``, percent-decoded to bytes, then decoded
    latin-1 (PEP 3333's "bytes as latin-1" str, as werkzeug and gunicorn do; ``%2F`` becomes
    ``/``; a ``%`` without two hex digits stays as it is).
  - ``QUERY_STRING``: after the first ``?``, not decoded (``""`` when none).
  - ``RAW_URI`` and ``REQUEST_URI``: ``:path`` as received. Without ``:path`` (ordinary
    CONNECT) these four keys are ``""``.
  - ``SERVER_NAME``/``SERVER_PORT``: from ``:authority`` (else ``host``): ``host``,
    ``host:port``, ``[v6]`` or ``[v6]:port`` (brackets removed from the name, as a socket
    address has none); without a port, 443 for ``https`` and 80 for ``http``
    (``wsgi.url_scheme``). No authority, or one with an empty host part: the socket's values.
  - ``HTTP_HOST``: the ``host`` field, or ``:authority`` when there is no ``host`` field.
  - ``CONTENT_TYPE``, ``CONTENT_LENGTH``: without the ``HTTP_`` prefix (content-length once:
    validation made every copy equal).
  - Every other regular field as ``HTTP_`` + the name upper-cased, ``-`` -> ``_``; repeated
    fields joined with ``", "``; ``cookie`` crumbs (split by the client, RFC 9113 §8.2.3)
    joined with ``"; "``. Values decoded latin-1.
  - Fields whose name contains ``_`` are dropped: ``X_Forwarded_For`` would otherwise land on
    the same key as ``X-Forwarded-For`` and could spoof what a proxy set (nginx and waitress
    do the same).
  - ``wsgi.input``: the request body stream given by the caller.

  Not copied: ``:scheme`` and ``:protocol``; no non-standard keys (no stream id).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._switch import select
from .filewrapper import FileWrapper

_impl = select("environ")

# Type checkers see the compiled module's stub (``_environ_c.pyi``); the pure twin has the same
# names and signatures (tests/quality/test_stubs.py).
if TYPE_CHECKING:
    from .._environ_c import build_environ
else:
    build_environ = _impl.build_environ

__all__ = ["make_base_environ", "build_environ"]


def _host_port(address: object) -> tuple[str, str] | None:
    """(host, port) strings of a socket address tuple (IPv4 or IPv6), else None."""
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[0]), str(address[1])
    return None


def make_base_environ(*, url_scheme: str, server_addr: object, peer_addr: object,
                      multithread: bool, errors: Any,
                      multiprocess: bool = False) -> dict[str, Any]:
    """The per-connection environ constants that :func:`build_environ` copies per request.

    ``server_addr``/``peer_addr`` are socket addresses (``getsockname()``/``getpeername()``
    tuples, IPv4 or IPv6), or None (or a Unix socket path): then ``REMOTE_ADDR`` and
    ``REMOTE_PORT`` are ``""``, and ``SERVER_NAME`` is ``"localhost"`` with the scheme's
    default port (a request always brings ``:authority`` or ``host``, which overrides them).
    """
    if url_scheme not in ("http", "https"):
        raise ValueError(f"url_scheme must be 'http' or 'https', not {url_scheme!r}")
    server = _host_port(server_addr) or ("localhost", "443" if url_scheme == "https" else "80")
    peer = _host_port(peer_addr) or ("", "")
    return {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url_scheme,
        "wsgi.errors": errors,
        "wsgi.multithread": bool(multithread),
        "wsgi.multiprocess": bool(multiprocess),
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
        "SCRIPT_NAME": "",
        "SERVER_PROTOCOL": "HTTP/2",
        "SERVER_NAME": server[0],
        "SERVER_PORT": server[1],
        "REMOTE_ADDR": peer[0],
        "REMOTE_PORT": peer[1],
    }
