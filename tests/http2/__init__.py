"""Tests of HTTP/2 (kyoukai_h2fast.http2): both engines in memory, and the real server."""
