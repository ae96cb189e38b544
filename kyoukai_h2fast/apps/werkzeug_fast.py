"""A werkzeug ``Response`` turned into status, header list and body chunks, fast and exactly.

Kyoukai-style handlers return werkzeug ``Response`` objects, and the server used to run them
as WSGI apps (``response(environ, start_response)``), which builds a ``Headers`` copy, scans it,
wraps the body in a ``ClosingIterator`` and encodes it lazily: several microseconds per request
for what is, almost always, "this status, these headers, this list of bytes".
:func:`wsgi_parts` gives exactly what ``Response.get_wsgi_response`` would (the same status
string, the same header list in the same order, the same body bytes) without that work, for
the cases where that is certain:

* the response's class does not override any method of the WSGI path (checked once per class);
* its body is a list or tuple of ``bytes`` (what ``Response(b"...")``/``set_data`` make), not
  passed through directly;
* its status is not 1xx, 204 or 304, and it has no ``Location`` or ``Content-Location`` field
  (werkzeug rewrites those).

Anything else returns None and goes through werkzeug itself. The response is closed (its
``call_on_close`` callbacks run) before :func:`wsgi_parts` returns, as werkzeug's
``ClosingIterator`` would once the body is consumed.
"""
from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response as _Response

__all__ = ["wsgi_parts"]

#: The methods whose werkzeug versions the fast path reproduces.
_WSGI_PATH = ("__call__", "get_wsgi_response", "get_wsgi_headers", "get_app_iter",
              "iter_encoded", "close", "is_sequence")
_eligible: dict[type, bool] = {}


def _class_ok(cls: type) -> bool:
    ok = _eligible.get(cls)
    if ok is None:
        ok = issubclass(cls, _Response) and all(
            getattr(cls, name) is getattr(_Response, name) for name in _WSGI_PATH) and \
            cls.automatically_set_content_length in (True, False)
        if len(_eligible) < 256:
            _eligible[cls] = ok
    return ok


def wsgi_parts(response: Any) -> tuple[str, list, list] | None:
    """``(status, headers, chunks)`` as werkzeug's WSGI path would produce them, or None."""
    if not _class_ok(type(response)):
        return None
    body = response.response
    if type(body) is not list and type(body) is not tuple or response.direct_passthrough:
        return None
    status = response.status_code
    if status < 200 or status == 204 or status == 304:
        return None
    for chunk in body:
        if type(chunk) is not bytes:
            return None
    headers = list(response.headers)
    has_length = False
    for key, _ in headers:
        lower = key.lower()
        if lower == "content-length":
            has_length = True
        elif lower == "location" or lower == "content-location":
            return None
    if not has_length and response.automatically_set_content_length:
        headers.append(("Content-Length", str(sum(len(chunk) for chunk in body))))
    response.close()
    return response.status, headers, list(body)
