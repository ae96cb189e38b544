"""A WSGI app that sets up logging of its own, as Django with ``DEBUG=True`` and many apps do:
a handler on its own logger, which also propagates to the root logger. Each request logs one
warning naming its path."""
from __future__ import annotations

import logging

log = logging.getLogger("tests.own_logging")
_handler = logging.StreamHandler()  # stderr
_handler.setFormatter(logging.Formatter("APP-HANDLER %(levelname)s %(message)s"))
log.addHandler(_handler)


def wsgi_app(environ, start_response):
    log.warning("app warning for %s", environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"logged"]
