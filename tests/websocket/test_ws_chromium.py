"""Headless Chromium over TLS: a page opens ``wss://`` to its own origin, and with RFC 8441 the
WebSocket rides the page's HTTP/2 connection. Proved from the server's side: the app saw the
socket with ``http_version`` "2", and the connection that served the page counted one extended
CONNECT stream. Needs the ``chromium`` package (``apt-get install -y chromium``); without it the
test fails, saying so (a skip would count as a pass)."""
from __future__ import annotations

import shutil
import subprocess
import time
from urllib.parse import unquote

import pytest

from tests.helpers.ws_server import RESULTS, VERSIONS, serve_in_thread

pytestmark = pytest.mark.chromium


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is needed: apt-get install -y chromium")


def test_chromium_websocket_rides_http2(tls_files, tmp_path):
    browser = _chromium()
    certfile, keyfile, _ = tls_files
    component, stop = serve_in_thread(certfile=certfile, keyfile=keyfile, ws_ping_interval=0)
    del RESULTS[:], VERSIONS[:]
    proc = subprocess.Popen(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
         "--ignore-certificate-errors", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={tmp_path / 'profile'}",
         f"https://127.0.0.1:{component.port}/page"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not RESULTS and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        streams = sum(getattr(c, "websocket_streams", 0) for c in component.connections)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        stop()
    assert RESULTS, "the page reported nothing"
    info, _, echo = unquote(RESULTS[0]).partition("|")
    assert echo == "echo me"
    assert '"http_version": "2"' in info and '"scheme": "wss"' in info
    assert ("/info", "2") in VERSIONS
    assert streams == 1                   # one extended CONNECT on the page's connection
