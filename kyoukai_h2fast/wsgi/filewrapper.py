"""``wsgi.file_wrapper``: PEP 3333's optional "platform-specific file handling" extension.

An app (or werkzeug's ``wrap_file``, hence Flask's ``send_file``) returns
``environ["wsgi.file_wrapper"](file, block_size)`` as its response iterable. The server then
pulls blocks from it on demand, under HTTP/2 flow control, like any app iterable (in the WSGI
worker thread for thread-pool apps), and calls :meth:`FileWrapper.close` when the response is
done, failed, or reset by the client (PEP 3333: always), which closes the file.

What this class adds over iterating the file as the app asked: blocks of at least
:data:`MIN_BLOCK_SIZE` (werkzeug asks for 8192 bytes, which would mean 32 Python-level pulls,
thread hand-offs and sends per 256 KiB), and at most :data:`MAX_BLOCK_SIZE` (at most one block
per stream waits ahead of the flow-control window, so this bounds the memory a download holds).
It keeps werkzeug's ``seekable``/``seek``/``tell`` so Range requests seek instead of reading
up to their start.
"""
from __future__ import annotations

from typing import Any

__all__ = ["FileWrapper", "MIN_BLOCK_SIZE", "MAX_BLOCK_SIZE"]

#: Smallest block read from the file, whatever smaller size the app asks for.
MIN_BLOCK_SIZE = 256 * 1024
#: Largest block read from the file, whatever larger size the app asks for.
MAX_BLOCK_SIZE = 1024 * 1024


class FileWrapper:
    """Iterates a binary file-like object in large blocks; :meth:`close` closes it.

    ``filelike`` needs ``read(n)``; ``close``, ``seekable``, ``seek`` and ``tell`` are used
    when it has them. ``blksize`` is the app's block size, raised to :data:`MIN_BLOCK_SIZE`
    and capped at :data:`MAX_BLOCK_SIZE`.
    """

    __slots__ = ("filelike", "blksize", "_closed")

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = min(max(int(blksize), MIN_BLOCK_SIZE), MAX_BLOCK_SIZE)
        self._closed = False

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        data = self.filelike.read(self.blksize)
        if not data:
            raise StopIteration
        return data

    def close(self) -> None:
        """Close the file (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()

    # werkzeug's _RangeWrapper seeks to a Range's start through these.
    def seekable(self) -> bool:
        seekable = getattr(self.filelike, "seekable", None)
        if seekable is not None:
            return bool(seekable())
        return hasattr(self.filelike, "seek")

    def seek(self, *args: int) -> None:
        self.filelike.seek(*args)

    def tell(self) -> int | None:
        tell = getattr(self.filelike, "tell", None)
        return None if tell is None else tell()
