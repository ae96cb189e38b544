"""The app mounted under a URL prefix (``--root-path /api``, :attr:`ServerConfig.root_path`).

:class:`RootPathRunner` wraps the app's runner (and the static files' one, whose prefixes are
then inside the root path): a request whose path is the prefix or starts with the prefix
and ``/`` goes on with ``SCRIPT_NAME`` = the prefix and ``PATH_INFO`` = the rest
(PEP 3333; ``""`` for the prefix itself), every other request gets a plain 404 without the
app. The match is on whole path segments of the decoded path (``/api`` does not match
``/apiv2``). ``RAW_URI``/``REQUEST_URI`` keep the whole target, as the client sent it.

The server builds this runner only when a root path is set: without one the app's runner
is called directly, at no cost.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .wrapping import WrappingRunner, path_under

if TYPE_CHECKING:
    from ..contracts import Responder, Runner
    from ..wsgi.request_state import H2State

__all__ = ["RootPathRunner"]

_NOT_FOUND = b"Not Found\n"
_NOT_FOUND_FIELDS = [("Content-Type", "text/plain; charset=utf-8"),
                     ("Content-Length", str(len(_NOT_FOUND)))]


class RootPathRunner(WrappingRunner):
    """``inner`` (a :class:`~kyoukai_h2fast.contracts.Runner`) under the prefix ``root_path``."""

    def __init__(self, inner: Runner, root_path: str) -> None:
        super().__init__(inner)
        #: The prefix as a WSGI string (UTF-8 bytes as latin-1), as PATH_INFO is.
        self.prefix = root_path.encode("utf-8").decode("latin-1")
        self._inner_dispatch = inner.dispatch

    def dispatch(self, responder: Responder, state: H2State) -> None:
        environ = state.environ
        assert environ is not None  # built before dispatch
        path = environ["PATH_INFO"]
        prefix = self.prefix
        if path_under(path, prefix):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
            environ["PATH_INFO"] = path[len(prefix):]
            self._inner_dispatch(responder, state)
            return
        state.start_response("404 Not Found", list(_NOT_FOUND_FIELDS))
        responder.respond(state, [_NOT_FOUND])
