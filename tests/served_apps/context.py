"""Apps the request-context tests serve (``tests.served_apps.context:<name>``): where a WSGI app's
code runs, seen from inside the app.

* ``flask_app`` ``GET /who?who=NAME&n=N``: a Flask view streaming N lines
  ``"<i> who=<NAME>"`` from a ``stream_with_context`` generator (5 ms apart), which reads
  ``request.args`` at every step: the request context must be the request's own at every
  ``next()`` and at ``close()``.
* ``probe_app`` ``GET /probe?id=ID&chunks=N&size=S&sleep=T``: the app call sets a ContextVar
  to ID (it must be unset before: one fresh context per request) and remembers its thread;
  every chunk (S bytes, T seconds apart; N <= 0: without end) starts with one line saying what
  that ``next()`` saw::

      #<i> id=<ID> var=<the ContextVar's value> thread=<same|other> step=<ok|bad>

  (``step``: the ContextVar the previous ``next()`` set is seen: the same Context object, not
  a copy made before); ``close()`` prints to the server's log::

      PROBE-CLOSED id=<ID> var=<value> thread=<same|other> reset=<ok|ValueError> count=<n>

  (``reset``: ``ContextVar.reset`` of the app call's token works only in the Context that
  made it). ``GET /`` answers ``ok`` at once.
* ``kyoukai_probe_app``: the same probe as a Kyoukai-style app (``process_request`` sets the
  ContextVar; the werkzeug ``Response`` streams the probe, pulled on the event loop after the
  handler's task ended).
"""
from __future__ import annotations

import contextvars
import itertools
import sys
import threading
import time
from urllib.parse import parse_qs

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
STEP: contextvars.ContextVar[int] = contextvars.ContextVar("step")


# -- a plain WSGI app that reports what each call of it saw ----------------------------------------
class _Probe:
    def __init__(self, rid: str, token: contextvars.Token, fresh: bool, chunks: int, size: int,
                 sleep: float) -> None:
        self.rid = rid
        self.token = token
        self.fresh = fresh
        self.thread = threading.get_ident()
        self.chunks = chunks
        self.size = size
        self.sleep = sleep
        self.index = 0
        self.closes = 0

    def __iter__(self) -> _Probe:
        return self

    def _seen(self) -> str:
        return (f"var={REQUEST_ID.get('<unset>')} "
                f"thread={'same' if threading.get_ident() == self.thread else 'other'}")

    def __next__(self) -> bytes:
        i = self.index
        if 0 < self.chunks <= i:
            raise StopIteration
        if i and self.sleep:
            time.sleep(self.sleep)
        step = "ok" if STEP.get(-1) == i else "bad"
        STEP.set(i + 1)
        self.index = i + 1
        fresh = "" if i or self.fresh else " fresh=no"
        line = f"#{i} id={self.rid} {self._seen()} step={step}{fresh}\n".encode()
        return line.ljust(self.size, b".")

    def close(self) -> None:
        self.closes += 1
        seen = self._seen()
        try:
            REQUEST_ID.reset(self.token)
            reset = "ok"
        except ValueError:
            reset = "ValueError"
        print(f"PROBE-CLOSED id={self.rid} {seen} reset={reset} count={self.closes}",
              file=sys.stderr, flush=True)


def probe_app(environ, start_response):
    if environ["PATH_INFO"] != "/probe":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    fresh = REQUEST_ID.get(None) is None and STEP.get(None) is None
    rid = query["id"]
    token = REQUEST_ID.set(rid)
    STEP.set(0)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _Probe(rid, token, fresh, int(query.get("chunks", "4")),
                  int(query.get("size", "64")), float(query.get("sleep", "0")))


class KyoukaiProbe:
    """``probe_app`` as a Kyoukai-style app."""

    def __init__(self) -> None:
        from werkzeug.wrappers import Request
        self.request_class = Request

    async def process_request(self, request, ctx):
        from werkzeug.wrappers import Response
        status: list = []
        body = probe_app(request.environ, lambda s, h: status.extend((s, h)))
        return Response(body, status=status[0], headers=status[1])


kyoukai_probe_app = KyoukaiProbe()


# -- Flask: stream_with_context ----------------------------------------------------------------
def _make_flask():
    import os

    from flask import Flask, Response, request, stream_with_context

    app = Flask("tests_context", root_path=os.path.dirname(os.path.abspath(__file__)))

    @app.route("/who")
    def who():
        count = int(request.args.get("n", "5"))

        @stream_with_context
        def generate():
            for i in itertools.count():
                if i == count:
                    return
                if i:
                    time.sleep(0.005)
                yield f"{i} who={request.args['who']}\n"

        return Response(generate(), mimetype="text/plain")

    @app.route("/")
    def index():
        return "ok"

    return app


flask_app = _make_flask()
