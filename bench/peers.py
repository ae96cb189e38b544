"""The servers under test: kyoukai_h2fast variants and peers, and the peers' virtual env.

Owns:

* the peers' virtual environment (``bench/.venv-peers``): :func:`ensure_peer_venv` creates it
  and installs the peer servers (they are not dependencies of kyoukai_h2fast) and reports,
  package by package, what is installed or why it is not;
* :class:`ServerSpec` and :func:`all_servers`: how each server or variant is started (argv,
  environment), which transports it supports (h2c with prior knowledge, TLS with ALPN h2), and
  which package it needs.

kyoukai_h2fast itself runs from the interpreter running the benchmark (the installed package,
whose path is recorded), never from the peers' venv. Apps come from ``bench/apps.py``; every
server is started with ``bench/`` as its working directory so ``apps:...`` imports.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import venv

__all__ = ["PEER_REQUIREMENTS", "ServerSpec", "TLSFiles", "all_servers", "ensure_peer_venv",
           "peer_versions", "kyoukai_build_info", "kyoukai_loop", "QUICK_SERVERS",
           "GUNICORN_THREADS", "DOCUMENTED_LOOP"]

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
#: The loop the main kyoukai_h2fast variants are documented (and committed) with.
DOCUMENTED_LOOP = "uvloop"
DEFAULT_VENV = os.path.join(BENCH_DIR, ".venv-peers")

# Package -> requirement installed into the peers' venv.
PEER_REQUIREMENTS = {
    "hypercorn": "hypercorn==0.18.*",
    "gunicorn": "gunicorn[http2]>=27",
    "uvicorn": "uvicorn>=0.54",
    "zttp": "zttp",
    "granian": "granian",
    "uvloop": "uvloop",
    "werkzeug": "werkzeug",
    "httptools": "httptools",
    "fastapi": "fastapi",
    "websockets": "websockets",  # uvicorn --ws websockets (bench/ws_echo.py)
    "flask": "flask",
}
# Another kyoukai_h2fast checkout (built in place) to compare with in the same run: its
# variants appear as "baseline-*" (e.g. the commit before a change, for an A/B of the hot path).
BASELINE_ENV = "KYOUKAI_BENCH_BASELINE"

# gunicorn's gthread worker serves one HTTP/2 connection per busy thread; 32 threads was its
# best setting of 6/32/128 tried on the 10- and 100-connection GET workloads on this machine.
GUNICORN_THREADS = 32
QUICK_SERVERS = ["kyoukai-compiled-wsgi-inline", "kyoukai-compiled-async",
                 "kyoukai-compiled-wsgi-pool", "kyoukai-h2engine-wsgi-inline",
                 "kyoukai-pure-wsgi-inline", "hypercorn", "gunicorn", "uvicorn", "granian",
                 "nghttpd", "gunicorn-h1", "uvicorn-h1", "granian-h1",
                 "kyoukai-compiled-asgi"]


@dataclasses.dataclass(frozen=True)
class TLSFiles:
    certfile: str
    keyfile: str


@dataclasses.dataclass
class ServerSpec:
    """One server or variant. ``argv(port, tls)`` builds its command (tls: TLSFiles|None)."""

    id: str
    label: str
    family: str                 # "kyoukai_h2fast", "peer", "ceiling"
    interface: str              # "WSGI", "Kyoukai-style", "ASGI", "static files"
    argv: object                # callable(port, tls) -> list[str]
    env: dict = dataclasses.field(default_factory=dict)      # overrides; None value: unset
    needs: tuple = ()           # peer packages that must be installed
    tls: bool = True            # supports TLS with ALPN h2
    build: str = ""             # kyoukai_h2fast: "compiled" or "pure"
    loop: str = ""              # kyoukai_h2fast: the event loop it runs on
    planned_loop: str = ""      # kyoukai_h2fast: the loop it is documented with
    notes: str = ""
    # the server closes an HTTP/2 connection after this many streams: runs stay below it
    max_requests_per_connection: int | None = None
    h1: bool = False            # runs the HTTP/1.1 workloads (h2load --h1)
    h2: bool = True             # runs the HTTP/2 workloads
    flask: bool = False         # runs the Flask workloads (apps:wsgi_app -> apps:flask_app)
    # workloads it does not take part in: workload id -> why (reported as "unsupported")
    skip: dict = dataclasses.field(default_factory=dict)
    # runs an ASGI app of bench/ for the workloads that name one (Workload.app, module:attr):
    # callable(port, tls, app) -> list[str]; None: it takes no part in them
    app_argv: object = None
    app_only: bool = False      # takes part in the ASGI-app workloads only


def _venv_bin(venv_dir: str, name: str) -> str:
    return os.path.join(venv_dir, "bin", name)


def kyoukai_loop(requested: str = "auto") -> tuple[str | None, str]:
    """The loop for the kyoukai_h2fast variants documented with uvloop, and a note saying why
    it is another one (empty when it is uvloop). ``requested``: ``"auto"`` (uvloop, else
    asyncio), ``"uvloop"`` (None when uvloop is missing: stop before running anything) or
    ``"asyncio"``. uvloop must be importable by this interpreter, which runs kyoukai_h2fast."""
    if requested == "asyncio":
        return "asyncio", "--loop asyncio was asked for"
    if importlib.util.find_spec("uvloop") is not None:
        return DOCUMENTED_LOOP, ""
    note = (f"uvloop is not installed in {sys.executable} (pip install uvloop; it is a "
            "dependency of kyoukai_h2fast on CPython outside Windows)")
    return (None if requested == "uvloop" else "asyncio"), note


def _kyoukai(build: str, app: str, loop: str, threads: int | None):
    def argv(port, tls):
        cmd = [sys.executable, "-m", "kyoukai_h2fast", app, "--host", "127.0.0.1",
               "--port", str(port), "--loop", loop, "--log-level", "warning",
               "--shutdown-timeout", "2"]
        if threads is not None:
            cmd += ["--wsgi-threads", str(threads)]
        if tls:
            cmd += ["--certfile", tls.certfile, "--keyfile", tls.keyfile]
        return cmd
    return argv


def _kyoukai_app(build: str, loop: str):
    """``app_argv`` of a kyoukai_h2fast variant: the workload's ASGI app of bench/apps.py."""
    def argv(port, tls, app):
        return _kyoukai(build, app, loop, None)(port, tls)
    return argv


def _kyoukai_specs(loop: str) -> list[ServerSpec]:
    """The kyoukai_h2fast variants; ``loop`` is what the main ones run on (``"uvloop"``, or
    ``"asyncio"`` when uvloop is missing: see ``run.py --loop``)."""
    specs = []
    kinds = [
        ("async", "apps:kyoukai_app", None, "Kyoukai-style",
         "Kyoukai-style async app on the event loop"),
        ("wsgi-inline", "apps:wsgi_app", 0, "WSGI",
         "WSGI inline on the loop (--wsgi-threads 0)"),
        ("wsgi-pool", "apps:wsgi_app", None, "WSGI",
         "WSGI in the default thread pool"),
    ]
    for build in ("compiled", "pure"):
        env = {"KYOUKAI_H2FAST_NO_EXTENSIONS": "1" if build == "pure" else None}
        for kind, app, threads, interface, notes in kinds:
            specs.append(ServerSpec(
                id=f"kyoukai-{build}-{kind}", label=f"kyoukai_h2fast {build} {kind}",
                family="kyoukai_h2fast", interface=interface,
                argv=_kyoukai(build, app, loop, threads), env=dict(env), build=build,
                loop=loop, planned_loop=DOCUMENTED_LOOP,
                notes=notes if loop == DOCUMENTED_LOOP else f"{notes}, {loop} loop",
                h1=True, flask=kind == "wsgi-pool" and build == "compiled"))
    for build in ("compiled", "pure"):
        env = {"KYOUKAI_H2FAST_NO_EXTENSIONS": "1" if build == "pure" else None}
        specs.append(ServerSpec(
            id=f"kyoukai-{build}-asgi", label=f"kyoukai_h2fast {build} ASGI",
            family="kyoukai_h2fast", interface="ASGI",
            argv=_kyoukai(build, "apps:asgi_app", loop, None), env=dict(env), build=build,
            loop=loop, planned_loop=DOCUMENTED_LOOP, h1=True, app_only=True,
            app_argv=_kyoukai_app(build, loop),
            notes="ASGI 3 app on the event loop" + ("" if loop == DOCUMENTED_LOOP
                                                      else f", {loop} loop")))
    for kind, app, threads, interface, notes in kinds:
        # The same with the h2-based connection engine (other hot paths compiled): "before"
        # the compiled engine, in the same run.
        specs.append(ServerSpec(
            id=f"kyoukai-h2engine-{kind}", label=f"kyoukai_h2fast h2 engine {kind}",
            family="kyoukai_h2fast", interface=interface,
            argv=_kyoukai("compiled", app, loop, threads),
            env={"KYOUKAI_H2FAST_NO_EXTENSIONS": None, "KYOUKAI_H2FAST_ENGINE": "h2"},
            build="compiled", loop=loop, planned_loop=DOCUMENTED_LOOP, h1=True,
            notes=f"{notes}; the h2-based engine (KYOUKAI_H2FAST_ENGINE=h2)"))
    for kind, app, threads, interface, notes in kinds[:2]:
        specs.append(ServerSpec(
            id=f"kyoukai-compiled-{kind}-asyncio", label=f"kyoukai_h2fast compiled {kind} asyncio",
            family="kyoukai_h2fast", interface=interface,
            argv=_kyoukai("compiled", app, "asyncio", threads),
            env={"KYOUKAI_H2FAST_NO_EXTENSIONS": None}, build="compiled", loop="asyncio",
            planned_loop="asyncio", notes=notes + ", plain asyncio loop", h1=True))
    baseline = os.environ.get(BASELINE_ENV)
    if baseline:
        for kind, app, threads, interface, notes in kinds:
            specs.append(ServerSpec(
                id=f"baseline-compiled-{kind}", label=f"baseline compiled {kind}",
                family="baseline", interface=interface,
                argv=_kyoukai("compiled", app, loop, threads),
                env={"KYOUKAI_H2FAST_NO_EXTENSIONS": None, "PYTHONPATH": baseline},
                build="compiled", loop=loop, planned_loop=DOCUMENTED_LOOP, h1=True,
                flask=kind == "wsgi-pool",
                notes=f"{notes}; the kyoukai_h2fast checkout in {baseline}"))
    return specs


def _peer_specs(venv_dir: str, site: dict, hypercorn_config: str) -> list[ServerSpec]:
    b = lambda name: _venv_bin(venv_dir, name)  # noqa: E731

    def hypercorn(port, tls):
        cmd = [b("hypercorn"), "-k", "uvloop", "-w", "1", "-c", hypercorn_config,
               "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
        if tls:
            cmd += ["--certfile", tls.certfile, "--keyfile", tls.keyfile]
        return cmd + ["apps:wsgi_app"]

    def gunicorn(port, tls):
        cmd = [b("gunicorn"), "-k", "gthread", "-w", "1", "--threads", str(GUNICORN_THREADS),
               "--http-protocols", "h2", "--forwarded-allow-ips", "*",
               "-b", f"127.0.0.1:{port}", "--log-level", "warning"]
        if tls:
            cmd += ["--certfile", tls.certfile, "--keyfile", tls.keyfile]
        else:
            cmd += ["--http2-cleartext", "prior-knowledge"]
        return cmd + ["apps:wsgi_app"]

    def gunicorn_h1(port, tls):
        cmd = [b("gunicorn"), "-k", "gthread", "-w", "1", "--threads", str(GUNICORN_THREADS),
               "--forwarded-allow-ips", "*", "-b", f"127.0.0.1:{port}",
               "--log-level", "warning"]
        if tls:
            cmd += ["--certfile", tls.certfile, "--keyfile", tls.keyfile]
        return cmd + ["apps:wsgi_app"]

    def uvicorn(port, tls):
        cmd = [b("uvicorn"), "--http", "zttp", "--http2", "--loop", "uvloop",
               "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
        if tls:
            cmd += ["--ssl-certfile", tls.certfile, "--ssl-keyfile", tls.keyfile]
        return cmd + ["apps:asgi_app"]

    def granian(port, tls):
        cmd = [b("granian"), "--interface", "wsgi", "--http", "2", "--workers", "1",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        if tls:
            cmd += ["--ssl-certificate", tls.certfile, "--ssl-keyfile", tls.keyfile]
        return cmd + ["apps:wsgi_app"]

    def hypercorn_app(port, tls, app):
        return hypercorn(port, tls)[:-1] + [app]

    def uvicorn_app(port, tls, app):
        return uvicorn(port, tls)[:-1] + [app]

    def granian_app(port, tls, app):
        cmd = granian(port, tls)[:-1] + [app]
        cmd[cmd.index("--interface") + 1] = "asgi"
        return cmd

    def uvicorn_h1_app(port, tls, app):
        return uvicorn_h1(port, tls)[:-1] + [app]

    def granian_h1_app(port, tls, app):
        cmd = granian_h1(port, tls)[:-1] + [app]
        cmd[cmd.index("--interface") + 1] = "asgi"
        return cmd

    def uvicorn_h1(port, tls):
        cmd = [b("uvicorn"), "--http", "httptools", "--loop", "uvloop",
               "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
        if tls:
            cmd += ["--ssl-certfile", tls.certfile, "--ssl-keyfile", tls.keyfile]
        return cmd + ["apps:asgi_app"]

    def granian_h1(port, tls):
        cmd = [b("granian"), "--interface", "wsgi", "--http", "1", "--workers", "1",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        if tls:
            cmd += ["--ssl-certificate", tls.certfile, "--ssl-keyfile", tls.keyfile]
        return cmd + ["apps:wsgi_app"]

    def nghttpd(port, tls):
        cmd = ["nghttpd", "-a", "127.0.0.1", "-d", site["htdocs"],
               f"--mime-types-file={site['mime_types']}", "--echo-upload", "-n", "1"]
        if not tls:
            return cmd + ["--no-tls", str(port)]
        return cmd + [str(port), tls.keyfile, tls.certfile]

    return [
        ServerSpec("hypercorn", "hypercorn", "peer", "WSGI", hypercorn,
                   needs=("hypercorn", "uvloop"), h1=True,
                   skip={wid: "h2load --h1 counts its answers as failed: its status line "
                              "has no reason phrase (`HTTP/1.1 200 `), so h2load's parser "
                              "reports no status (2026-12-07)"
                         for wid in ("h1-get-c10-m1", "asgi-h1-get-c10")},
                   notes="-k uvloop, 1 worker, keep_alive_max_requests=1e9 and "
                         "wsgi_max_body_size=128 MiB (config file); the ASGI app for the "
                         "ASGI workloads", app_argv=hypercorn_app),
        ServerSpec("gunicorn", "gunicorn gthread h2", "peer", "WSGI", gunicorn,
                   needs=("gunicorn",),
                   notes=f"-k gthread --threads {GUNICORN_THREADS}, 1 worker, "
                         "--http-protocols h2, h2c prior knowledge", flask=True,
                   skip={"post-64mib-c1": "two 64 MiB uploads take it over 60 s (the "
                                          "warm-up's limit; 2026-11-27)"}),
        ServerSpec("uvicorn", "uvicorn zttp http2", "peer", "ASGI", uvicorn,
                   needs=("uvicorn", "zttp", "uvloop"),
                   notes="--http zttp --http2 --loop uvloop, 1 worker; zttp answers the "
                         "4097th stream of a connection with GOAWAY ENHANCE_YOUR_CALM "
                         "(\"flood detected\"), so its runs are capped at 4000 requests per "
                         "connection", max_requests_per_connection=4000,
                   app_argv=uvicorn_app),
        ServerSpec("granian", "granian WSGI", "peer", "WSGI", granian, needs=("granian",),
                   notes="--interface wsgi --http 2, 1 worker; --interface asgi for the ASGI "
                         "workloads", app_argv=granian_app, flask=True),
        ServerSpec("gunicorn-h1", "gunicorn gthread HTTP/1.1", "peer", "WSGI", gunicorn_h1,
                   needs=("gunicorn",), h1=True, h2=False,
                   notes=f"-k gthread --threads {GUNICORN_THREADS}, 1 worker, HTTP/1.1 "
                         "(its default protocols)"),
        ServerSpec("uvicorn-h1", "uvicorn httptools HTTP/1.1", "peer", "ASGI", uvicorn_h1,
                   needs=("uvicorn", "httptools", "uvloop"), h1=True, h2=False,
                   app_argv=uvicorn_h1_app,
                   notes="--http httptools --loop uvloop, 1 worker"),
        ServerSpec("granian-h1", "granian WSGI HTTP/1.1", "peer", "WSGI", granian_h1,
                   needs=("granian",), h1=True, h2=False, app_argv=granian_h1_app,
                   notes="--interface wsgi --http 1, 1 worker"),
        ServerSpec("nghttpd", "nghttpd (static, C)", "ceiling", "static files", nghttpd,
                   notes="nghttp2's C server, static files, --echo-upload, 1 thread"),
    ]


def all_servers(venv_dir: str, site: dict, hypercorn_config: str,
                kyoukai_loop: str = DOCUMENTED_LOOP) -> list[ServerSpec]:
    return _kyoukai_specs(kyoukai_loop) + _peer_specs(venv_dir, site, hypercorn_config)


def write_hypercorn_config(directory: str) -> str:
    """hypercorn closes a connection after keep_alive_max_requests (default 1000), which makes
    h2load count failures, and answers WSGI bodies over wsgi_max_body_size (default 16 MiB)
    with 413; raise both out of the workloads' reach."""
    path = os.path.join(directory, "hypercorn.toml")
    with open(path, "w") as f:
        f.write("keep_alive_max_requests = 1000000000\n"
                "wsgi_max_body_size = 134217728\n")
    return path


# --- the peers' venv ----------------------------------------------------------------------

def _pip(venv_dir: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([_venv_bin(venv_dir, "python"), "-m", "pip",
                           "--disable-pip-version-check", "-q", *args],
                          capture_output=True, text=True, timeout=timeout)


def peer_versions(venv_dir: str) -> dict:
    """{package: version or None} as installed in the venv (None: not installed / no venv)."""
    python = _venv_bin(venv_dir, "python")
    if not os.path.exists(python):
        return {name: None for name in PEER_REQUIREMENTS}
    code = ("import json, importlib.metadata as m\nout = {}\n"
            f"for n in {list(PEER_REQUIREMENTS)!r}:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = None\n"
            "print(json.dumps(out))")
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return {name: None for name in PEER_REQUIREMENTS}
    return json.loads(done.stdout)


def ensure_peer_venv(venv_dir: str, install: bool, log=print) -> dict:
    """Create the venv and install missing peers (one pip call, then one by one on failure).

    Returns ``{"venv": dir, "versions": {...}, "errors": {package: message}}``.
    """
    errors: dict[str, str] = {}
    if install and not os.path.exists(_venv_bin(venv_dir, "python")):
        log(f"creating the peers' virtual environment {venv_dir}")
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
        except Exception as e:  # report, do not crash: every peer then shows as not installed
            errors["venv"] = f"{type(e).__name__}: {e}"
    versions = peer_versions(venv_dir)
    missing = [n for n, v in versions.items() if v is None]
    if install and missing and "venv" not in errors:
        log(f"installing into {venv_dir}: {', '.join(PEER_REQUIREMENTS[n] for n in missing)}")
        done = _pip(venv_dir, "install", *(PEER_REQUIREMENTS[n] for n in missing))
        if done.returncode != 0:
            for name in missing:   # one by one, so one broken package does not hide the rest
                one = _pip(venv_dir, "install", PEER_REQUIREMENTS[name])
                if one.returncode != 0:
                    lines = [ln for ln in one.stderr.splitlines() if ln.strip()
                             and not ln.startswith("WARNING: Location")]
                    errors[name] = (lines[-1] if lines else f"pip exit {one.returncode}")[:300]
        versions = peer_versions(venv_dir)
    for name, version in versions.items():
        if version is None and name not in errors:
            errors[name] = "not installed" + ("" if install else " (--no-install)")
    return {"venv": venv_dir, "versions": versions, "errors": errors}


def kyoukai_build_info(build: str) -> dict:
    """What ``python -m kyoukai_h2fast --version`` says under the variant's environment."""
    env = os.environ.copy()
    env.pop("KYOUKAI_H2FAST_NO_EXTENSIONS", None)
    if build == "pure":
        env["KYOUKAI_H2FAST_NO_EXTENSIONS"] = "1"
    try:
        done = subprocess.run([sys.executable, "-m", "kyoukai_h2fast", "--version"], env=env,
                              capture_output=True, text=True, timeout=60, cwd=BENCH_DIR)
    except Exception as e:
        return {"requested": build, "ok": False, "error": f"{type(e).__name__}: {e}"}
    lines = done.stdout.strip().splitlines()
    state = lines[1].split(":", 1)[1].strip() if len(lines) > 1 and ":" in lines[1] else None
    code = "import kyoukai_h2fast, os; print(os.path.dirname(kyoukai_h2fast.__file__))"
    where = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=60, cwd=BENCH_DIR)
    return {"requested": build, "version_output": done.stdout.strip(),
            "stderr": done.stderr.strip(), "extensions": state, "ok": state == build,
            "package_dir": where.stdout.strip(), "exit_code": done.returncode}
