"""The command line: ``kyoukai-h2fast [APP] [options]`` (also ``python -m kyoukai_h2fast``).

It parses arguments, imports the app (``module:attribute``, or ``module`` for its ``app`` or
else its ``application``, as gunicorn and uvicorn look for them; current directory importable),
builds a :class:`ServerConfig`, checks the TLS files, and runs the server until SIGINT/SIGTERM.
Every user error (bad argument, bad certificate or key file, app that does not import, port
in use) is one line on stderr and exit code 2, never a traceback of ours; an app that fails to
import gets its own traceback (its frames only) printed below that line.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import importlib.util
import logging
import os
import ssl
import sys
import traceback
from collections.abc import Iterator, MutableMapping
from typing import Any, NoReturn

from .. import __version__, _switch
from ..apps.runners import detect_kind
from ..config import ServerConfig, default_wsgi_threads, parse_ip_list, resolve_workers
from ..errors import ConfigError
from .app_modules import AppModules

__all__ = ["main"]

PROG = "kyoukai-h2fast"


class UsageError(Exception):
    """A user error: printed as one line, exit code 2.

    ``detail`` (optional) is printed below that line as it is, e.g. the traceback of an app
    that failed to import.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        raise UsageError(message)


def _size(text: str) -> int:
    """An integer with an optional K/M/G suffix (binary units)."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    text = text.strip().lower().removesuffix("b").removesuffix("i")
    factor = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        return int(number) * factor
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    d = ServerConfig(wsgi_threads=default_wsgi_threads())
    p = _Parser(prog=PROG, description="Serve a Kyoukai-style or WSGI app over HTTP/2 "
                "(TLS with ALPN h2, or cleartext h2c with prior knowledge).")
    p.add_argument("app", nargs="?", help="module:attribute of the app, or module (its 'app', "
                   "else its 'application'; default: built-in demo)")
    p.add_argument("--host", default=d.host, help=f"address to bind (default {d.host})")
    p.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port}; 0: any)")
    p.add_argument("--certfile", help="TLS certificate chain (PEM); with --keyfile enables TLS")
    p.add_argument("--keyfile", help="TLS private key (PEM)")
    p.add_argument("--wsgi-threads", type=int, default=d.wsgi_threads, metavar="N",
                   help=f"thread pool for WSGI apps (default {d.wsgi_threads}); 0 runs the app "
                        "inline on the event loop (non-blocking apps only, fastest)")
    p.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                   help="event loop (default auto: uvloop when installed)")
    p.add_argument("--log-level", default="info",
                   choices=("debug", "info", "warning", "error", "critical"),
                   help="level of the server's log, the 'kyoukai_h2fast' logger (default info; "
                        "the access log and the app's loggers have their own)")
    p.add_argument("--version", action="store_true", help="print version and build, then exit")
    s = p.add_argument_group("production")
    s.add_argument("--http1", action=argparse.BooleanOptionalAction, default=d.http1,
                   help="serve HTTP/1.1 on the same port (TLS: ALPN http/1.1; cleartext: "
                        "told apart from the HTTP/2 preface); --no-http1: HTTP/2 only "
                        "(default on)")
    s.add_argument("--workers", type=_workers, default=d.workers, metavar="N",
                   help="worker processes run by a supervisor that restarts dead ones (on "
                        "Linux a SO_REUSEPORT socket each: see --reuse-port); 0 or 'auto': "
                        "one per CPU (default 1: this process serves)")
    s.add_argument("--access-log", action="store_true",
                   help="one line per request on the 'kyoukai_h2fast.access' logger (at INFO "
                        "whatever --log-level says)")
    s.add_argument("--log-config", metavar="FILE",
                   help="stdlib logging configuration: a .json dictConfig or an .ini/.conf "
                        "fileConfig (replaces the default setup of the 'kyoukai_h2fast' and "
                        "'kyoukai_h2fast.access' loggers)")
    s.add_argument("--forwarded-allow-ips", type=parse_ip_list, default=d.forwarded_allow_ips,
                   metavar="LIST", help="comma list of proxy addresses/networks, or '*', "
                   "whose X-Forwarded-For/-Proto and Forwarded headers set REMOTE_ADDR and "
                   "wsgi.url_scheme (default: trust no one)")
    s.add_argument("--metrics-port", type=int, default=d.metrics_port, metavar="PORT",
                   help="serve Prometheus metrics at http://METRICS_HOST:PORT/metrics, one "
                        "endpoint for all workers (0: any free port; needs the 'metrics' "
                        "extra: pip install 'kyoukai_h2fast[metrics]')")
    s.add_argument("--metrics-host", default=d.metrics_host, metavar="HOST",
                   help=f"address of the metrics endpoint (default {d.metrics_host})")
    s.add_argument("--static", type=_static_mount, action="append", default=[],
                   metavar="/PREFIX=DIR", help="serve the files of DIR at /PREFIX/... without "
                   "the app (GET/HEAD, ETag, ranges, .gz/.br twins); repeatable")
    s.add_argument("--static-index", default=d.static_index, metavar="NAME",
                   help="file served for a static directory, e.g. index.html (default: none, "
                        "directories are 404)")
    s.add_argument("--static-cache-control", default=d.static_cache_control, metavar="VALUE",
                   help=f"Cache-Control of static files (default '{d.static_cache_control}': "
                        "caches revalidate with the ETag)")
    _add_socket_options(p, d)
    _add_recycling_options(p, d)
    g = p.add_argument_group("limits")
    g.add_argument("--max-concurrent-streams", type=int, default=d.max_concurrent_streams,
                   metavar="N", help="SETTINGS_MAX_CONCURRENT_STREAMS; extra streams are "
                   f"refused with REFUSED_STREAM (default {d.max_concurrent_streams})")
    g.add_argument("--max-header-list-size", type=_size, default=d.max_header_list_size,
                   metavar="BYTES", help=f"default {d.max_header_list_size}")
    g.add_argument("--header-table-size", type=_size, default=d.header_table_size,
                   metavar="BYTES", help=f"HPACK dynamic table (default {d.header_table_size})")
    g.add_argument("--max-frame-size", type=_size, default=d.max_frame_size, metavar="BYTES",
                   help=f"16384..16777215 (default {d.max_frame_size})")
    g.add_argument("--max-body-size", type=_size, default=d.max_body_size, metavar="BYTES",
                   help=f"larger request bodies get 413 (default {d.max_body_size})")
    g.add_argument("--stream-window", type=_size, default=d.stream_window, metavar="BYTES",
                   help=f"receive window per stream (default {d.stream_window})")
    g.add_argument("--connection-window", type=_size, default=d.connection_window,
                   metavar="BYTES", help=f"receive window per connection "
                   f"(default {d.connection_window})")
    g.add_argument("--idle-timeout", type=float, default=d.idle_timeout, metavar="SECONDS",
                   help=f"close idle connections (default {d.idle_timeout:g}; 0: never)")
    g.add_argument("--body-timeout", type=float, default=d.body_timeout, metavar="SECONDS",
                   help="408 for a request whose body stalls this long while the app waits "
                        f"(default {d.body_timeout:g}; 0: never)")
    g.add_argument("--body-spool-threshold", type=_size, default=d.body_spool_threshold,
                   metavar="BYTES", help="apps on the event loop: request body kept in memory "
                   f"up to this per stream, then in a temporary file "
                   f"(default {d.body_spool_threshold})")
    g.add_argument("--stream-request-bodies", action="store_true",
                   help="apps on the event loop start before the body is complete (they read "
                        "it with await wsgi_input.read_async())")
    g.add_argument("--linger-bytes", type=_size, default=d.linger_bytes, metavar="BYTES",
                   help="after an early response, body bytes still accepted before the stream "
                        f"is reset (default {d.linger_bytes})")
    g.add_argument("--linger-timeout", type=float, default=d.linger_timeout,
                   metavar="SECONDS", help="after an early response, seconds the rest of the "
                   f"body may take (default {d.linger_timeout:g})")
    g.add_argument("--max-handlers-per-connection", type=int,
                   default=d.max_handlers_per_connection, metavar="N",
                   help="WSGI handlers one connection may run in the pool at once "
                        "(default 0: no cap)")
    g.add_argument("--shutdown-timeout", type=float, default=d.shutdown_timeout,
                   metavar="SECONDS", help="grace period for in-flight streams on SIGINT/SIGTERM "
                   f"(default {d.shutdown_timeout:g})")
    f = p.add_argument_group(
        "flood budgets (per connection; beyond them: GOAWAY(ENHANCE_YOUR_CALM))")
    f.add_argument("--max-resets-per-10s", type=int, default=d.max_resets_per_10s, metavar="N",
                   help="streams the peer resets, or makes us reset, within 10 s "
                        f"(default {d.max_resets_per_10s})")
    f.add_argument("--max-pings-per-10s", type=int, default=d.max_pings_per_10s, metavar="N",
                   help=f"PING frames within 10 s (default {d.max_pings_per_10s})")
    f.add_argument("--max-settings-per-10s", type=int, default=d.max_settings_per_10s,
                   metavar="N", help=f"SETTINGS frames within 10 s (default "
                   f"{d.max_settings_per_10s})")
    f.add_argument("--max-empty-frames-per-10s", type=int, default=d.max_empty_frames_per_10s,
                   metavar="N", help="frames without progress (empty DATA, tiny WINDOW_UPDATE, "
                   f"PRIORITY, ...) within 10 s (default {d.max_empty_frames_per_10s})")
    f.add_argument("--max-queued-control-frames", type=int,
                   default=d.max_queued_control_frames, metavar="N",
                   help="control frames queued for a peer that does not read "
                        f"(default {d.max_queued_control_frames})")
    g.add_argument("--max-frames-per-read", type=int, default=d.max_frames_per_read,
                   metavar="N", help="frames handled per turn before other connections get "
                   f"theirs (default {d.max_frames_per_read})")
    g.add_argument("--max-queued-output", type=_size, default=d.max_queued_output,
                   metavar="BYTES", help="response bytes queued per connection beyond which "
                   "streaming responses are not pulled and new requests wait "
                   f"(default {d.max_queued_output})")
    _add_app_options(p, d)
    _add_development_options(p)
    _add_environment_options(p)
    _add_tls_options(p, d)
    _add_http2_ping_options(p, d)
    _add_interface_options(p, d)
    _add_websocket_options(p, d)
    return p


def _add_interface_options(p: argparse.ArgumentParser, d: ServerConfig) -> None:
    """The kind of app (kyoukai_h2fast.apps.runners.detect_kind)."""
    a = p.add_argument_group("app interface")
    a.add_argument("--interface", choices=("auto", "asgi", "wsgi", "kyoukai"),
                   default=d.interface, help="the kind of app: auto (default: a Kyoukai-style "
                   "app, an ASGI 3 app - async def app(scope, receive, send) - else WSGI), or "
                   "force asgi, wsgi or kyoukai")


def _add_socket_options(p: argparse.ArgumentParser, d: ServerConfig) -> None:
    """Where to listen besides --host/--port (kyoukai_h2fast.server.socket_sources), and how
    worker processes share it."""
    s = p.add_argument_group("sockets (instead of --host/--port; systemd socket activation "
                             "(LISTEN_FDS) is used when present)")
    s.add_argument("--uds", metavar="PATH", default=d.uds,
                   help="listen on this Unix domain socket (HTTP/2 and HTTP/1.1; TLS with "
                        "--certfile); a stale socket file is replaced, removed on exit")
    s.add_argument("--uds-permissions", type=_octal, default=d.uds_permissions,
                   metavar="MODE", help="mode of the --uds socket, octal: 660 or 0o660 "
                   "(default: as the umask makes it)")
    s.add_argument("--fd", type=int, default=d.fd, metavar="N",
                   help="serve the inherited listening socket N (TCP or Unix) instead of "
                        "binding one")
    s.add_argument("--reuse-port", action=argparse.BooleanOptionalAction,
                   default=d.reuse_port, help="--workers N on Linux: a SO_REUSEPORT socket "
                   "per worker, the kernel spreads connections over them; --no-reuse-port: "
                   "one socket shared by all workers (default on)")


def _add_recycling_options(p: argparse.ArgumentParser, d: ServerConfig) -> None:
    """Worker recycling (kyoukai_h2fast.process.recycling) and the pid file."""
    r = p.add_argument_group("worker recycling (the supervisor starts a successor, then the "
                             "worker drains; with --workers 1 a supervisor runs one worker)")
    r.add_argument("--max-requests", type=int, default=d.max_requests, metavar="N",
                   help="replace a worker after N requests (default 0: never)")
    r.add_argument("--max-requests-jitter", type=int, default=d.max_requests_jitter,
                   metavar="J", help="plus up to J more, drawn per worker, so workers are "
                   "not replaced all at once (default 0)")
    r.add_argument("--workers-lifetime", type=float, default=d.workers_lifetime,
                   metavar="SECONDS", help="replace a worker after this long (default 0: "
                   "never)")
    r.add_argument("--workers-max-rss", type=int, default=d.workers_max_rss, metavar="MiB",
                   help="replace a worker whose resident memory exceeds this many MiB "
                        "(default 0: never)")
    r.add_argument("--pid-file", metavar="PATH", default=d.pid_file,
                   help="write the server's pid (the supervisor's with workers) here; "
                        "removed on exit")


def _octal(text: str) -> int:
    """A file mode: ``660``, ``0660`` or ``0o660``."""
    digits = text.strip().lower().removeprefix("0o")
    try:
        return int(digits, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r}") from None


def _add_app_options(p: argparse.ArgumentParser, d: ServerConfig) -> None:
    """How APP is made and where it is mounted (--factory, --root-path)."""
    a = p.add_argument_group("app")
    a.add_argument("--factory", action="store_true",
                   help="APP names a callable without arguments that returns the app; it is "
                        "called once per worker process and per reload")
    a.add_argument("--root-path", type=_root_path, default=d.root_path, metavar="PREFIX",
                   help="serve the app under the URL prefix PREFIX (e.g. /api): it gets "
                        "SCRIPT_NAME=PREFIX and PATH_INFO without it; other paths get 404")


def _root_path(text: str) -> str:
    """``/api/`` -> ``/api``; ``/`` and ``""`` -> ``""`` (the config checks the rest)."""
    return text.strip().rstrip("/")


def _add_development_options(p: argparse.ArgumentParser) -> None:
    """--reload and its directories (kyoukai_h2fast.process.watch)."""
    r = p.add_argument_group("development")
    r.add_argument("--reload", action=argparse.BooleanOptionalAction, default=False,
                   help="restart the server when a .py file under a --reload-dir changes "
                        "(development; needs the 'reload' extra: pip install "
                        "'kyoukai_h2fast[reload]')")
    r.add_argument("--reload-dir", action="append", default=[], metavar="DIR",
                   help="directory watched by --reload; repeatable (default: the current "
                        "directory; virtual environments, caches, .git and build "
                        "directories are ignored)")


def _add_environment_options(p: argparse.ArgumentParser) -> None:
    """--env-file (every option also reads KYOUKAI_H2FAST_<OPTION>: env_options)."""
    e = p.add_argument_group(
        "environment", "every option can be set as KYOUKAI_H2FAST_<OPTION> (e.g. "
        "KYOUKAI_H2FAST_PORT=9000, KYOUKAI_H2FAST_ACCESS_LOG=1, APP as KYOUKAI_H2FAST_APP); "
        "the command line wins over the environment, which wins over the env file")
    e.add_argument("--env-file", metavar="PATH",
                   help="dotenv-style file of KEY=VALUE lines read before the environment: "
                        "its KYOUKAI_H2FAST_* variables set options, all of them are put in "
                        "the environment unless already there")

def _add_websocket_options(p: argparse.ArgumentParser, d: ServerConfig) -> None:
    """WebSockets (RFC 6455, RFC 8441; kyoukai_h2fast.websocket): limits and keep-alive."""
    g = p.add_argument_group("WebSockets (apps that serve them)")
    g.add_argument("--ws-max-message-size", type=_size, default=d.ws_max_message_size,
                   metavar="BYTES", help="largest message after reassembly and decompression; "
                   f"larger: close 1009 (default {d.ws_max_message_size})")
    g.add_argument("--ws-max-queue", type=int, default=d.ws_max_queue, metavar="N",
                   help="messages received and not read by the app beyond which the socket "
                   f"stops reading (default {d.ws_max_queue})")
    g.add_argument("--ws-write-limit", type=_size, default=d.ws_write_limit, metavar="BYTES",
                   help="unsent bytes of a socket beyond which the app's send waits "
                   f"(default {d.ws_write_limit})")
    g.add_argument("--ws-ping-interval", type=float, default=d.ws_ping_interval,
                   metavar="SECONDS", help="seconds between the server's pings; 0: none "
                   f"(default {d.ws_ping_interval:g})")
    g.add_argument("--ws-ping-timeout", type=float, default=d.ws_ping_timeout,
                   metavar="SECONDS", help="a pong not back within this closes the socket "
                   f"with 1011 (default {d.ws_ping_timeout:g})")
    g.add_argument("--no-ws-per-message-deflate", dest="ws_per_message_deflate",
                   action="store_false", help="do not negotiate permessage-deflate (RFC 7692)")
    g.add_argument("--no-ws-http2", dest="ws_http2", action="store_false",
                   help="do not offer WebSockets over HTTP/2 (RFC 8441: no "
                   "SETTINGS_ENABLE_CONNECT_PROTOCOL); clients use HTTP/1.1")


def _add_tls_options(p: argparse.ArgumentParser, d: ServerConfig) -> None:
    """Mutual TLS, TLS versions and ciphers, encrypted keys (with --certfile/--keyfile)."""
    t = p.add_argument_group("TLS (with --certfile and --keyfile)")
    t.add_argument("--ssl-ca-certs", default=d.ssl_ca_certs, metavar="FILE",
                   help="CA certificates (PEM) that issue the client certificates to accept "
                        "(with --ssl-cert-reqs optional or required)")
    t.add_argument("--ssl-cert-reqs", default=d.ssl_cert_reqs,
                   choices=("none", "optional", "required"),
                   help="client certificates: none (not asked for), optional (verified when "
                        "sent), required (the handshake fails without one); the verified "
                        f"certificate reaches the app as SSL_CLIENT_* keys (default "
                        f"{d.ssl_cert_reqs})")
    t.add_argument("--ssl-min-version", default=d.ssl_min_version, choices=("1.2", "1.3"),
                   help=f"lowest TLS version accepted (default {d.ssl_min_version})")
    t.add_argument("--ssl-ciphers", default=d.ssl_ciphers, metavar="LIST",
                   help="OpenSSL cipher list for TLS 1.2 (default: ECDHE with AES-GCM or "
                        "ChaCha20, as RFC 9113 §9.2.2 wants; TLS 1.3 suites are OpenSSL's)")
    t.add_argument("--ssl-keyfile-password-file", default=d.ssl_keyfile_password_file,
                   metavar="FILE", help="file whose first line is the password of an "
                   "encrypted --keyfile (preferred: not visible in ps)")
    t.add_argument("--ssl-keyfile-password", default=d.ssl_keyfile_password,
                   metavar="PASSWORD", help="the password of an encrypted --keyfile (visible "
                   "to other users in ps: prefer --ssl-keyfile-password-file)")


def _add_http2_ping_options(p: argparse.ArgumentParser, d: ServerConfig) -> None:
    """HTTP/2 keep-alive PINGs (kyoukai_h2fast.http2.keepalive)."""
    k = p.add_argument_group("HTTP/2 keep-alive")
    k.add_argument("--http2-ping-interval", type=float, default=d.http2_ping_interval,
                   metavar="SECONDS", help="send a PING on a connection whose peer has been "
                   f"silent this long (default {d.http2_ping_interval:g}: never)")
    k.add_argument("--http2-ping-timeout", type=float, default=d.http2_ping_timeout,
                   metavar="SECONDS", help="close the connection when the PING is not "
                   f"acknowledged within this (default {d.http2_ping_timeout:g})")


def _static_mount(text: str) -> tuple[str, str]:
    """``/prefix=DIR`` -> ``("/prefix", "DIR")`` (the directory is checked by the config)."""
    prefix, sep, directory = text.partition("=")
    if not sep or not prefix.startswith("/") or not directory:
        raise argparse.ArgumentTypeError(f"expected /PREFIX=DIR, got {text!r}")
    return prefix, directory


def _workers(text: str) -> int:
    """``N`` (>= 0) or ``auto`` (= 0: one per CPU)."""
    if text.strip().lower() == "auto":
        return 0
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'auto': {text!r}") from None


#: The format of the server's log lines and access lines on stderr (without --log-config).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The loggers the CLI configures (children such as ``kyoukai_h2fast.supervisor`` and
#: ``kyoukai_h2fast.engine`` write through the first).
SERVER_LOGGER = "kyoukai_h2fast"


class _ConsoleHandler(logging.StreamHandler):
    """The stderr handler the CLI gives each of the server's loggers."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(LOG_FORMAT))


def _setup_logging(args: argparse.Namespace) -> None:
    """The server's loggers only, as gunicorn and uvicorn do: ``kyoukai_h2fast`` at
    ``--log-level`` and ``kyoukai_h2fast.access`` at INFO with ``--access-log`` (whatever the
    level of the first), each with its own stderr handler and ``propagate = False``. The root
    logger is the app's: configuring it would print every line of an app with handlers of its
    own twice. ``--log-config FILE`` replaces all of this."""
    if not args.log_config:
        from ..server.accesslog import ACCESS_LOGGER
        for name, level in ((SERVER_LOGGER, args.log_level.upper()),
                            (ACCESS_LOGGER, "INFO" if args.access_log else None)):
            logger = logging.getLogger(name)
            for handler in [h for h in logger.handlers if isinstance(h, _ConsoleHandler)]:
                logger.removeHandler(handler)  # (main() run again in one process)
            logger.addHandler(_ConsoleHandler())
            if level is not None:
                logger.setLevel(level)
            logger.propagate = False
        return
    import json
    from logging import config as logging_config
    path = args.log_config
    try:
        if path.endswith(".json"):
            with open(path) as f:
                logging_config.dictConfig(json.load(f))
        else:
            logging_config.fileConfig(path, disable_existing_loggers=False)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ImportError) as e:
        raise UsageError(f"--log-config {path}: {type(e).__name__}: {e}") from None
    except Exception as e:  # configparser errors and whatever a handler raises
        raise UsageError(f"--log-config {path}: {type(e).__name__}: {e}") from None


def version_text() -> str:
    missing = _switch.missing_extensions()
    if missing:
        print(f"{PROG}: warning: not compiled: {', '.join(missing)}", file=sys.stderr)
    return (f"kyoukai_h2fast {__version__}\nextensions: {_switch.extensions_state()}\n"
            f"engine: {_switch.engine_state()}")


#: Attributes looked up, in order, when APP names a module only (gunicorn: ``application``;
#: uvicorn, Flask's convention: ``app``).
DEFAULT_ATTRIBUTES = ("app", "application")


def load_app(spec: str | None, factory: bool = False, interface: str = "auto") -> Any:
    """Import ``module:attribute``, or ``module`` and its ``app`` or else its ``application``
    (cwd importable, as uvicorn does); None: the demo app. ``factory``: the attribute is a
    callable that makes the app; it is returned uncalled (see :func:`call_factory`)."""
    if factory and spec is None:
        raise UsageError("--factory needs APP (module:function returning the app)")
    if spec is None:
        from .demo import app
        return app
    module_name, sep, attr = spec.partition(":")
    if not module_name or (sep and not attr):
        raise UsageError(f"APP must look like module:attribute or module, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # the app's own import error, whatever it is
        raise UsageError(f"cannot import {module_name!r}: {type(e).__name__}: {e}",
                         _app_traceback(e)) from None
    if not sep:
        attr = next((name for name in DEFAULT_ATTRIBUTES if _has(module, name, module_name)),
                    "")
        if not attr:
            raise UsageError(f"module {module_name!r} has no attribute 'app' or 'application' "
                             f"(name the app: {module_name}:ATTRIBUTE)")
    obj = module
    try:
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise UsageError(f"module {module_name!r} has no attribute {attr!r}") from None
    except Exception as e:  # a module __getattr__ or property of the app's that raised
        raise UsageError(f"cannot get {attr!r} from {module_name!r}: {type(e).__name__}: {e}",
                         _app_traceback(e)) from None
    if factory:
        if not callable(obj):
            raise UsageError(f"--factory: {module_name}:{attr} is not callable "
                             f"({type(obj).__name__})")
        return obj
    try:
        detect_kind(obj, interface)
    except TypeError as e:
        raise UsageError(f"{module_name}:{attr}: {e}") from None
    return obj


def call_factory(factory: Any, spec: str | None) -> Any:
    """The app ``factory()`` returns (``--factory``); its errors are UsageErrors with the
    factory's traceback, as an app's import error."""
    try:
        app = factory()
    except Exception as e:
        raise UsageError(f"--factory: {spec}() failed: {type(e).__name__}: {e}",
                         _app_traceback(e)) from None
    try:
        detect_kind(app)
    except TypeError as e:
        raise UsageError(f"--factory: {spec}() returned {e}") from None
    return app


def _has(module: Any, name: str, module_name: str) -> bool:
    """Whether ``module`` has attribute ``name`` (a module ``__getattr__`` that raises
    something else than AttributeError is the app's error: reported with its traceback)."""
    try:
        getattr(module, name)
    except AttributeError:
        return False
    except Exception as e:
        raise UsageError(f"cannot get {name!r} from {module_name!r}: {type(e).__name__}: {e}",
                         _app_traceback(e)) from None
    return True


# Frames of the import machinery and of this module: not the app's, left out of its traceback.
_NOT_APP_FILES = (os.path.abspath(__file__), os.path.abspath(importlib.__file__))


def _is_app_frame(frame: traceback.FrameSummary) -> bool:
    name = frame.filename
    return not (name.startswith("<frozen importlib") or os.path.abspath(name) in _NOT_APP_FILES)


def _app_traceback(error: BaseException) -> str:
    """The traceback of an app's import error, its frames only (no CLI, no importlib).

    Empty when nothing in it is the app's: a module that does not exist at all says all in the
    one-line error. A SyntaxError keeps its file, line and caret.
    """
    report = traceback.TracebackException.from_exception(error)
    for part in _chain(report):
        part.stack = traceback.StackSummary.from_list(
            [frame for frame in part.stack if _is_app_frame(frame)])
    if not report.stack and not isinstance(error, SyntaxError) and error.__cause__ is None \
            and (error.__context__ is None or error.__suppress_context__):
        return ""
    return "".join(report.format()).rstrip("\n")


def _chain(first: traceback.TracebackException) -> Iterator[traceback.TracebackException]:
    """``first`` and the exceptions it was raised from or during (each once)."""
    seen = set()
    report: traceback.TracebackException | None = first
    while report is not None and id(report) not in seen:
        seen.add(id(report))
        yield report
        report = report.__cause__ or (None if report.__suppress_context__
                                      else report.__context__)


def _config_from(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig of the parsed options: every option whose dest is a field name sets
    that field (the option groups name their dests after the fields), checked by the config."""
    values = vars(args)
    settings = {field.name: values[field.name] for field in dataclasses.fields(ServerConfig)
                if field.init and field.name in values}
    if "static" in settings:  # (repeatable: a list from argparse)
        settings["static"] = tuple(settings["static"])
    try:
        return ServerConfig(**settings).validate()
    except ConfigError as e:
        from .env_options import name_source
        raise UsageError(name_source(str(e), args)) from None


def _check_tls(config: ServerConfig) -> None:
    """Load the certificate and key once before serving: a bad file is a one-line error."""
    certfile = config.certfile
    if certfile is None:  # config.tls is False
        return
    from ..server.tls import TLSFileError, ssl_context_for
    try:
        ssl_context_for(config)
    except TLSFileError as e:
        raise UsageError(f"--{e.which} {e.path}: {e.reason}" if e.path else
                         f"--{e.which}: {e.reason}") from None
    except ConfigError as e:
        raise UsageError(str(e)) from None
    except (OSError, ssl.SSLError) as e:  # not explained by tls.diagnose: say what OpenSSL said
        reason = e.strerror or getattr(e, "reason", None) or str(e)
        raise UsageError(f"cannot load TLS certificate/key ({config.certfile}, "
                         f"{config.keyfile}): {reason}") from None


def _startup_failed(error: BaseException) -> int:
    """The ASGI app's lifespan startup failed: one line, its own exit code."""
    from ..asgi.lifespan import EXIT_STARTUP_FAILED
    print(f"{PROG}: error: the app's lifespan startup failed: {error}", file=sys.stderr)
    return EXIT_STARTUP_FAILED


def _cannot_listen(config: ServerConfig, error: OSError) -> UsageError:
    """A bind error as one line (``listen_address``: another listener than the server's)."""
    where = getattr(error, "listen_address", None) or f"{config.host}:{config.port}"
    return UsageError(f"cannot listen on {where}: {error.strerror or error}")


@contextlib.contextmanager
def _sockets_and_pid_file(config: ServerConfig) -> Iterator[tuple[ServerConfig, Any]]:
    """The socket source of ``config`` (--uds, --fd, systemd; None: bind --host/--port) and
    the pid file, for the life of the server; ``config`` with the address of an inherited
    TCP socket."""
    from ..server.socket_sources import SocketSourceError, open_source
    try:
        source = open_source(config)
    except SocketSourceError as e:
        raise UsageError(str(e)) from None
    try:
        if source is not None and source.tcp_address() is not None:
            host, port = source.tcp_address()  # type: ignore[misc]
            config = config.replace(host=host, port=port)
        with _pid_file(config.pid_file):
            yield config, source
    finally:
        if source is not None:
            source.close()


@contextlib.contextmanager
def _pid_file(path: str | None) -> Iterator[None]:
    """``path`` holds this process's pid while the server runs (removed after, if it still
    names this process)."""
    if path is None:
        yield
        return
    pid = os.getpid()
    try:
        with open(path, "w") as f:
            f.write(f"{pid}\n")
    except OSError as e:
        raise UsageError(f"--pid-file {path}: {e.strerror or e}") from None
    try:
        yield
    finally:
        try:
            with open(path) as f:
                mine = f.read().strip() == str(pid)
            if mine and os.getpid() == pid:
                os.unlink(path)
        except OSError:
            pass


def _supervised(config: ServerConfig) -> bool:
    """Whether a supervisor runs worker processes: --workers N > 1, or a recycling limit
    (then with --workers 1 a supervisor runs one worker, replaced without a gap)."""
    return resolve_workers(config.workers) > 1 or config.recycles


def _serve(app: Any, config: ServerConfig, loop: str, fresh_app: Any, source: Any,
           factory: Any = None) -> int:
    """Run the supervisor (:func:`_supervised`; ``factory``: --factory, called in each
    worker) or serve in this process."""
    sockets = source.sockets if source is not None else None
    if _supervised(config):
        from .supervisor import Supervisor
        try:
            return Supervisor(app, config, loop, fresh_app, factory=factory,
                              sockets=sockets).run()
        except OSError as e:
            raise _cannot_listen(config, e) from None
    from ..server.component import H2KyoukaiComponent, run
    from .reload import ReloadingServer

    def component_for(app: Any) -> H2KyoukaiComponent:
        component = H2KyoukaiComponent(app, config.keyfile, config.certfile, ip=config.host,
                                       port=config.port, config=config)
        component.sockets = sockets  # (a reload's component takes the old one's instead)
        return component

    server = ReloadingServer(component_for, app, fresh_app)
    try:
        run(server.start, server.shutdown, loop, reload=server.reload)
    except OSError as e:  # bind errors: address in use, permission, bad host
        raise _cannot_listen(config, e) from None
    except Exception as e:
        if type(e).__name__ != "LifespanFailed":
            raise
        return _startup_failed(e)
    return 0


def parse_args(argv: list[str] | None = None,
               environ: MutableMapping[str, str] | None = None) -> argparse.Namespace:
    """The command line ``argv`` (default ``sys.argv[1:]``), completed from the env file and
    ``environ`` (default ``os.environ``, which gets the env file's variables): see
    :mod:`kyoukai_h2fast.process.env_options`."""
    from .env_options import EnvError, merge_environment
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        merge_environment(parser, args, argv, os.environ if environ is None else environ)
    except EnvError as e:
        raise UsageError(str(e)) from None
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = parse_args(argv)
        if args.version:
            print(version_text())
            return 0
        config = _config_from(args)
        _check_tls(config)
        _setup_logging(args)
        if args.reload:  # a watcher that runs the server as its child
            from .watch import run_watcher
            return run_watcher(argv, args.reload_dir, config.shutdown_timeout)
        modules = AppModules()  # (before the first import of the app: see fresh_app)
        # With --factory and several workers, each worker calls the factory (the supervisor
        # holds the factory); else this process does, at the start and on each reload.
        per_worker = args.factory and _supervised(config)

        def load() -> Any:
            app = load_app(args.app, args.factory, config.interface)
            return call_factory(app, args.app) if args.factory and not per_worker else app

        app = load()

        def fresh_app() -> Any:
            """SIGHUP: the certificate files checked, the app imported afresh."""
            _check_tls(config)
            return modules.fresh(load)

        if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise UsageError("--loop uvloop: uvloop is not installed "
                             "(pip install 'kyoukai_h2fast[uvloop]')")
        with _sockets_and_pid_file(config) as (config, source):
            return _serve(app, config, args.loop, fresh_app, source,
                          (lambda f: call_factory(f, args.app)) if per_worker else None)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        if e.detail:
            print(e.detail, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
