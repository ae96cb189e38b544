"""Shared test fixtures: implementation parametrization (compiled and pure twins)."""
from __future__ import annotations

import pytest

from kyoukai_h2fast import _switch


class _MissingCompiled:
    """Stands in for a compiled module that was not built: any use fails the test."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str):
        module = _switch.PATHS.get(self._name, (f"kyoukai_h2fast._{self._name}_c",))[0]
        pytest.fail(f"{module} is not built (pip install -e . compiles it)")


def implementations(name: str) -> list:
    """pytest params for the pure twin and the compiled module of hot path ``name``.

    Ids are ``pure`` and ``compiled``. A compiled module that is missing fails its tests
    loudly, unless the user asked for a pure build (``KYOUKAI_H2FAST_NO_EXTENSIONS=1``) and
    nothing was compiled, in which case only the pure param exists.
    """
    params = [pytest.param(_switch.pure(name), id="pure")]
    module = _switch.compiled(name)
    if module is not None:
        params.append(pytest.param(module, id="compiled"))
    elif not _switch.NO_EXTENSIONS:
        params.append(pytest.param(_MissingCompiled(name), id="compiled"))
    return params


# -- the real server -------------------------------------------------------------------------
import shutil  # noqa: E402

from serverproc import ServerProcess  # noqa: E402


def server_impls() -> list:
    """``compiled`` and ``pure`` server params (same rule as :func:`implementations`)."""
    params = [pytest.param("compiled", id="compiled"), pytest.param("pure", id="pure")]
    if _switch.NO_EXTENSIONS and _switch.compiled("frames") is None:
        params = params[1:]
    return params


def default_impl() -> str:
    """The implementation tests use when they do not parametrize it: what the process uses
    (pure with ``KYOUKAI_H2FAST_NO_EXTENSIONS=1``, else compiled)."""
    return "pure" if _switch.NO_EXTENSIONS else "compiled"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """A CA and a server certificate for localhost/127.0.0.1: (certfile, keyfile, ca_file)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    d = tmp_path_factory.mktemp("tls")
    certfile, keyfile, cafile = d / "cert.pem", d / "key.pem", d / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    return str(certfile), str(keyfile), str(cafile)


class _Servers:
    """Session cache of running servers keyed by (app, impl, tls, args)."""

    def __init__(self, tls_files) -> None:
        self._tls_files = tls_files
        self._running: dict = {}

    def get(self, app: str | None = "tests.apps:wsgi_app", impl: str | None = None,
            tls: bool = False, args=()) -> ServerProcess:
        impl = impl or default_impl()
        key = (app, impl, tls, tuple(args))
        server = self._running.get(key)
        if server is None or not server.alive():
            server = ServerProcess(app, impl, self._tls_files[:2] if tls else None, args)
            self._running[key] = server
        return server

    def fresh(self, app: str | None = "tests.apps:wsgi_app", impl: str | None = None,
              tls: bool = False, args=()) -> ServerProcess:
        """A server of the test's own (stopped at session end)."""
        impl = impl or default_impl()
        server = ServerProcess(app, impl, self._tls_files[:2] if tls else None, args)
        self._running[object()] = server
        return server

    def stop_all(self) -> None:
        for server in self._running.values():
            server.stop()


@pytest.fixture(scope="session")
def servers(tls_files):
    cache = _Servers(tls_files)
    yield cache
    cache.stop_all()


@pytest.fixture(params=server_impls())
def impl(request) -> str:
    """The server implementation under test: ``compiled`` or ``pure``."""
    return request.param


def require_tool(name: str) -> str:
    """Path of a real client tool; a missing one fails the test (CI installs them)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt-get install -y nghttp2-client curl)")
    return path


# -- no silent skips ----------------------------------------------------------------------------
_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """A skipped test is not a pass: any skip fails the run."""
    if _skipped and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _skipped:
        terminalreporter.write_line(
            f"FAILING THE RUN: {len(_skipped)} test(s) skipped; skips are not passes here: "
            + ", ".join(_skipped[:10]), red=True)
