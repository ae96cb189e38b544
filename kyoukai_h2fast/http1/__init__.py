"""HTTP/1.1 (RFC 9112): the asyncio protocol, the request parser and the response wire format.

Requests become the same per-request state as over HTTP/2 (:mod:`kyoukai_h2fast.wsgi`) and go
to the same app runners (:mod:`kyoukai_h2fast.apps.runners`).
"""
