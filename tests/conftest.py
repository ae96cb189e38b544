"""Shared test fixtures: the real servers (compiled and pure builds), TLS files, and the rule
that a skipped test fails the run. The helpers they use are in ``tests/helpers/``."""
from __future__ import annotations

import pytest

from tests.helpers.builds import default_impl, server_impls
from tests.helpers.serverproc import ServerProcess


# -- the real server -------------------------------------------------------------------------
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

    def get(self, app: str | None = "tests.served_apps.basic:wsgi_app", impl: str | None = None,
            tls: bool = False, args=()) -> ServerProcess:
        impl = impl or default_impl()
        key = (app, impl, tls, tuple(args))
        server = self._running.get(key)
        if server is None or not server.alive():
            server = ServerProcess(app, impl, self._tls_files[:2] if tls else None, args)
            self._running[key] = server
        return server

    def fresh(self, app: str | None = "tests.served_apps.basic:wsgi_app", impl: str | None = None,
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
