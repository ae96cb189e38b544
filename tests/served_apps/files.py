"""A Flask app serving files with ``send_file``, for the ``wsgi.file_wrapper`` tests (PEP 3333).

Served by the real server as ``tests.served_apps.files:flask_app``. At import it writes its files
(:data:`SIZES`, contents from :func:`content`, so a test can rebuild the expected bytes) to a
temporary directory named on ``GET /where``.

* ``GET /send/<name>``: ``send_file(path)``, the everyday Flask call (Flask opens the file);
* ``GET /recorded/<name>?tag=T``: ``send_file(file object)`` with a file that records the size
  of every ``read`` and whether it was closed, read back with ``GET /reads/T``;
* ``GET /wrapper``: what ``environ["wsgi.file_wrapper"]`` is.
"""
from __future__ import annotations

import atexit
import io
import json
import os
import random
import shutil
import tempfile
import threading

from flask import Flask, abort, request, send_file

#: Files served, by name: sizes in bytes.
SIZES = {"big.bin": 6 * 1024 * 1024 + 12345, "small.txt": 1000}


def content(name: str) -> bytes:
    """The bytes of file ``name`` (deterministic, incompressible)."""
    return random.Random(name).randbytes(SIZES[name])


FILES_DIR = tempfile.mkdtemp(prefix="kyoukai-h2fast-files-")
for _name in SIZES:
    with open(os.path.join(FILES_DIR, _name), "wb") as _f:
        _f.write(content(_name))

_lock = threading.Lock()
_records: dict[str, dict] = {}  # tag -> {"reads": [sizes asked], "closed": bool}


class RecordingFile(io.FileIO):
    """A file that records every read size and its close."""

    def __init__(self, path: str, record: dict) -> None:
        super().__init__(path, "rb")
        self.record = record

    def read(self, size: int = -1) -> bytes:
        with _lock:
            self.record["reads"].append(size)
        return super().read(size)

    def close(self) -> None:
        with _lock:
            self.record["closed"] = True
        super().close()


flask_app = Flask("tests.apps_files", root_path=FILES_DIR)


@flask_app.route("/where")
def where():
    return {"dir": FILES_DIR, "pid": os.getpid()}


@flask_app.route("/send/<name>")
def send(name: str):
    if name not in SIZES:
        abort(404)
    return send_file(os.path.join(FILES_DIR, name), mimetype="application/octet-stream")


@flask_app.route("/recorded/<name>")
def recorded(name: str):
    if name not in SIZES:
        abort(404)
    record = {"reads": [], "closed": False}
    with _lock:
        _records[request.args["tag"]] = record
    return send_file(RecordingFile(os.path.join(FILES_DIR, name), record),
                     mimetype="application/octet-stream", download_name=name)


@flask_app.route("/reads/<tag>")
def reads(tag: str):
    with _lock:
        return json.dumps(_records.get(tag))


@flask_app.route("/wrapper")
def wrapper():
    file_wrapper = request.environ.get("wsgi.file_wrapper")
    return {"wrapper": None if file_wrapper is None
            else f"{file_wrapper.__module__}.{file_wrapper.__qualname__}"}


atexit.register(shutil.rmtree, FILES_DIR, ignore_errors=True)
