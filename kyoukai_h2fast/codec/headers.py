"""Request header validation (RFC 9113 §8.2, §8.3) and response field lists: the public selector.

The server runs ``h2`` with ``validate_inbound_headers=False`` and
``normalize_inbound_headers=False`` and calls :func:`validate_request_headers` /
:func:`validate_trailers` itself on each decoded block, in compiled code
(:mod:`kyoukai_h2fast._headers_c`, pure twin :mod:`kyoukai_h2fast.codec._headers_py`). A failure
raises :class:`~kyoukai_h2fast.errors.MalformedRequestError`, which the engine answers with
RST_STREAM PROTOCOL_ERROR (a *stream* error, RFC 9113 §8.1.1).

Rejected in a request block, as ``h2.utilities.validate_headers`` does (server side, request
flags), none lost:

* field names: empty; a byte in 0x00-0x20, 0x41-0x5a (upper case) or 0x7f-0xff; a colon
  anywhere but the first byte (§8.2.1);
* field values: NUL, CR or LF anywhere; a leading or trailing SP or HTAB (§8.2.1);
* connection-specific fields ``connection``, ``proxy-connection``, ``keep-alive``,
  ``transfer-encoding``, ``upgrade``, and ``te`` with any value but ``trailers`` (ASCII
  case-insensitive) (§8.2.2);
* pseudo-headers: duplicated, after a regular field, unknown, ``:status`` in a request (§8.3);
* missing ``:method``; missing ``:scheme`` or ``:path`` outside ordinary CONNECT; ``:scheme``
  or ``:path`` in an ordinary CONNECT (§8.5); ``:protocol`` without CONNECT (RFC 8441 §4);
* neither ``:authority`` nor ``host``; more than one ``host``; ``host`` != ``:authority``
  (§8.3.1); an empty ``:path``.

Also rejected, as ``h2.stream.H2Stream._initialize_content_length`` does (in both request and
trailer blocks): a ``content-length`` that is not ``1*DIGIT`` (RFC 9110 §8.6), and
``content-length`` fields that disagree.

Stricter than ``h2`` (each is a deliberate extra check):

* ``:path`` must start with ``/``, or be exactly ``*`` when ``:method`` is ``OPTIONS``
  (RFC 9113 §8.3.1: an ``http``/``https`` request target is origin-form or asterisk-form;
  ``h2`` accepts any non-empty value, e.g. an absolute URI or ``foo``, that a WSGI app would
  then see as ``PATH_INFO``);
* a ``content-length`` above ``sys.maxsize`` (2**63-1 on 64-bit) is rejected as too large
  (``h2`` would accept it; no body can have that length, and the compiled code keeps it in a
  ``Py_ssize_t``).

Trailers (:func:`validate_trailers`): no pseudo-header at all, the same name/value character
rules, no connection-specific fields, ``te`` only ``trailers``, the ``content-length`` syntax;
the host/``:authority``/``:path`` rules do not apply.

:func:`response_headers` turns a WSGI ``start_response(status, headers)`` into the field
list to send: ``(b":status", b"200")`` first, names lower-cased, latin-1 bytes, values stripped
of surrounding SP/HTAB (a peer must treat them as malformed, §8.2.1), connection-specific
fields and ``te`` dropped (§8.2.2); ValueError for what cannot be sent. It appends the fields
an origin server adds, unless the app gave them (any letter case; the app's win):

* ``date``: the current second as an IMF-fixdate (RFC 9110 §6.6.1, §5.6.7), e.g.
  ``Sun, 06 Nov 1994 08:49:37 GMT``, made once per second (:func:`http_date`);
* ``server``: ``kyoukai_h2fast/<version>`` (:data:`SERVER_FIELD`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._switch import select

_impl = select("headers")

__all__ = ["validate_request_headers", "validate_trailers", "response_headers", "http_date",
           "CONNECTION_SPECIFIC_FIELDS", "SERVER_FIELD"]

# Type checkers see the compiled module's stub (``_headers_c.pyi``); the pure twin has the same
# names and signatures (tests/quality/test_stubs.py).
if TYPE_CHECKING:
    from .._headers_c import (
        CONNECTION_SPECIFIC_FIELDS,
        SERVER_FIELD,
        http_date,
        response_headers,
        validate_request_headers,
        validate_trailers,
    )
else:  # the names of __all__, from the selected implementation
    globals().update({name: getattr(_impl, name) for name in __all__})
