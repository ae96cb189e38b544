"""Tests of HTTP/1.1 (kyoukai_h2fast.http1) against the real server."""
