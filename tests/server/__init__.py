"""Tests of the server (kyoukai_h2fast.server): protocol selection, access log, proxy headers."""
