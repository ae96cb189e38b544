"""What both environ builders share: the ``HTTP_*`` keys they make at import, and their bound.

The compiled :mod:`kyoukai_h2fast._environ_c` and its pure twin
:mod:`kyoukai_h2fast.wsgi._environ_py` both import these (a compiled module imports nothing
from its twin), so the two caches start and stop alike.
"""
from __future__ import annotations

__all__ = ["COMMON_FIELD_NAMES", "HTTP_KEY_CACHE_MAX"]

#: Field names whose ``HTTP_*`` environ keys are made at import (browser and API traffic).
COMMON_FIELD_NAMES = (
    b"accept", b"accept-charset", b"accept-encoding", b"accept-language", b"authorization",
    b"cache-control", b"dnt", b"forwarded", b"host", b"if-match", b"if-modified-since",
    b"if-none-match", b"if-range", b"if-unmodified-since", b"origin", b"pragma", b"priority",
    b"range", b"referer", b"sec-ch-ua", b"sec-ch-ua-mobile", b"sec-ch-ua-platform",
    b"sec-fetch-dest", b"sec-fetch-mode", b"sec-fetch-site", b"sec-fetch-user", b"te",
    b"upgrade-insecure-requests", b"user-agent", b"via", b"x-api-key", b"x-forwarded-for",
    b"x-forwarded-host", b"x-forwarded-proto", b"x-real-ip", b"x-request-id",
    b"x-requested-with", b"content-encoding", b"content-language", b"content-md5",
    b"expect", b"from", b"max-forwards", b"proxy-authorization", b"traceparent",
    b"tracestate", b"baggage", b"grpc-timeout", b"grpc-encoding", b"grpc-accept-encoding",
)

#: Upper bound on the name -> ``HTTP_*`` key cache: past it, new names are not remembered, so
#: a client sending endless distinct names cannot grow the server's memory.
HTTP_KEY_CACHE_MAX = 512
