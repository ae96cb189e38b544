"""Tests of the request as apps see it (kyoukai_h2fast.wsgi): environ, wsgi.input, file wrapper."""
