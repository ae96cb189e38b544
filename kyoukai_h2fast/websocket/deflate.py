"""permessage-deflate (RFC 7692): the client's offers, the agreement, and per-message zlib.

Owns:

* :func:`parse_extensions`: the ``Sec-WebSocket-Extensions`` grammar (RFC 6455 §9.1: a list
  of ``name; param[=value]`` with token or quoted-string values); a syntax error is
  ``ValueError`` (the handshake answers 400).
* :func:`negotiate`: the first acceptable ``permessage-deflate`` offer, by the server's
  :class:`DeflatePolicy`; an offer with an unknown, duplicated or invalid parameter is declined
  and the next one considered (§5, §7.1); the response header value and a
  :class:`PerMessageDeflate` for the connection.
* :class:`PerMessageDeflate`: compress a message (sync flush, the ``00 00 ff ff`` tail
  stripped, §7.2.1) and decompress one fragment by fragment (the tail appended to the last,
  §7.2.2), with context takeover or a fresh zlib stream per message as agreed, and a bound on
  the decompressed size (``max_length``: a small frame cannot expand into gigabytes).

Window bits: zlib cannot compress raw deflate with an 8-bit window; when a client asks for
``server_max_window_bits=8`` we compress with 9 bits, whose matches never reach further back
than 250 bytes (zlib's ``MAX_DIST`` = window - 262), so a 256-byte window decodes it
(``tests/websocket/test_ws_deflate.py`` proves it with a streaming decoder).

Leaves to the connection which messages are compressed (RSV1) and the close codes: a corrupt
stream is :class:`~kyoukai_h2fast.websocket.errors.FrameError` 1007, too much output 1009.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import R_TOO_BIG, FrameError

__all__ = ["DeflateParameters", "DeflatePolicy", "PerMessageDeflate", "parse_extensions",
           "parse_deflate_params", "negotiate", "EXTENSION_NAME", "Extension"]

EXTENSION_NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*)"')
_OWS = re.compile(r"[ \t]*")
_WINDOW_BITS = re.compile(r"[1-9][0-9]?\Z")      # 1*DIGIT without a leading zero (§7.1.2.1)


@dataclass(frozen=True, slots=True)
class DeflateParameters:
    """One offer's or the agreement's parameters (RFC 7692 §7.1)."""

    #: The server will (agreement) / is asked to (offer) start each message's compression
    #: from an empty window (§7.1.1.1).
    server_no_context_takeover: bool = False
    #: The same for the client's compression (§7.1.1.2).
    client_no_context_takeover: bool = False
    #: Largest LZ77 window the server compresses with, 8-15; None when not given (15).
    server_max_window_bits: int | None = None
    #: Largest window the client compresses with, 8-15; ``True`` in an offer: "given without a
    #: value" (the server may choose); None when not given (15).
    client_max_window_bits: int | bool | None = None

    def header_value(self) -> str:
        """The extension as a ``Sec-WebSocket-Extensions`` element."""
        parts = [EXTENSION_NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits is True:
            parts.append("client_max_window_bits")
        elif self.client_max_window_bits:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class DeflatePolicy:
    """What the server accepts and prefers. The defaults keep a connection's zlib memory
    small (as the ``websockets`` library's: a 4 KiB window each way when the client lets us
    choose, ``mem_level`` 5), at some cost in ratio."""

    #: Always ask for (and do) a fresh compression per message.
    server_no_context_takeover: bool = False
    #: Always ask the client to compress each message afresh (we then keep no inflate state).
    client_no_context_takeover: bool = False
    #: Our compression window, 8-15 (lowered further when the client asks).
    server_max_window_bits: int = 12
    #: The client's window when its offer lets us choose (``client_max_window_bits`` without
    #: a value), 8-15.
    client_max_window_bits: int = 12
    #: zlib compression level, -1 (zlib's default, 6) or 0-9.
    level: int = -1
    #: zlib ``memLevel``, 1-9.
    mem_level: int = 5

    def __post_init__(self) -> None:
        for name in ("server_max_window_bits", "client_max_window_bits"):
            if not 8 <= getattr(self, name) <= 15:
                raise ValueError(f"{name} must be 8-15")
        if not -1 <= self.level <= 9:
            raise ValueError("level must be -1-9")
        if not 1 <= self.mem_level <= 9:
            raise ValueError("mem_level must be 1-9")

    def accept(self, offer: DeflateParameters) -> DeflateParameters:
        """The agreement for a valid client offer (§7.1.1, §7.1.2)."""
        server_bits = offer.server_max_window_bits
        if server_bits is not None:
            server_bits = min(server_bits, self.server_max_window_bits)
        elif self.server_max_window_bits < 15:
            server_bits = self.server_max_window_bits   # may be sent unasked (§7.1.2.1)
        client_bits = offer.client_max_window_bits
        if client_bits is True:
            client_bits = self.client_max_window_bits if self.client_max_window_bits < 15 else None
        elif client_bits is not None:                    # the client's own limit: keep it
            client_bits = min(int(client_bits), self.client_max_window_bits)
        # (never when the offer had none: §7.1.2.2)
        return DeflateParameters(
            server_no_context_takeover=(offer.server_no_context_takeover
                                        or self.server_no_context_takeover),
            client_no_context_takeover=(offer.client_no_context_takeover
                                        or self.client_no_context_takeover),
            server_max_window_bits=server_bits,
            client_max_window_bits=client_bits)


#: One extension of a ``Sec-WebSocket-Extensions`` field: ``(name, [(param, value), ...])``.
Extension = tuple[str, list[tuple[str, str | None]]]


def parse_extensions(values: Iterable[bytes | str]) -> list[Extension]:
    """The extensions of ``Sec-WebSocket-Extensions`` field values, in order:
    ``[(name, [(param, value or None), ...]), ...]``. Quoted values are unquoted (and must then
    be tokens, §9.1); empty list elements are skipped (RFC 9110 §5.6.1). ``ValueError`` on a
    syntax error."""
    extensions: list[Extension] = []
    for raw in values:
        text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        pos = 0
        end = len(text)
        while True:
            pos = _OWS.match(text, pos).end()  # type: ignore[union-attr]
            if pos < end and text[pos] == ",":
                pos += 1
                continue
            if pos >= end:
                break
            match = _TOKEN.match(text, pos)
            if match is None:
                raise ValueError(f"expected an extension name at {pos}: {text!r}")
            name = match.group()
            pos = _OWS.match(text, match.end()).end()  # type: ignore[union-attr]
            params: list[tuple[str, str | None]] = []
            while pos < end and text[pos] == ";":
                pos = _OWS.match(text, pos + 1).end()  # type: ignore[union-attr]
                match = _TOKEN.match(text, pos)
                if match is None:
                    raise ValueError(f"expected a parameter name at {pos}: {text!r}")
                param = match.group()
                value: str | None = None
                pos = _OWS.match(text, match.end()).end()  # type: ignore[union-attr]
                if pos < end and text[pos] == "=":
                    pos = _OWS.match(text, pos + 1).end()  # type: ignore[union-attr]
                    match = _TOKEN.match(text, pos)
                    if match is not None:
                        value = match.group()
                    else:
                        match = _QUOTED.match(text, pos)
                        if match is None:
                            raise ValueError(f"expected a parameter value at {pos}: {text!r}")
                        value = re.sub(r"\\(.)", r"\1", match.group(1))
                        if not _TOKEN.fullmatch(value):
                            raise ValueError(f"quoted value {value!r} is not a token")
                    pos = _OWS.match(text, match.end()).end()  # type: ignore[union-attr]
                params.append((param, value))
            extensions.append((name, params))
            if pos < end:
                if text[pos] != ",":
                    raise ValueError(f"expected ',' or ';' at {pos}: {text!r}")
                pos += 1
    return extensions


def parse_deflate_params(params: list[tuple[str, str | None]]) -> DeflateParameters | None:
    """A ``permessage-deflate`` offer's parameters, or None when the offer must be declined:
    an unknown parameter, one given twice, a value where none belongs, a window size that is
    not 8-15 (RFC 7692 §7.1)."""
    seen: set[str] = set()
    flags = {"server_no_context_takeover": False, "client_no_context_takeover": False}
    server_bits: int | None = None
    client_bits: int | bool | None = None
    for name, value in params:
        if name in seen:
            return None
        seen.add(name)
        if name in flags:
            if value is not None:
                return None
            flags[name] = True
        elif name == "server_max_window_bits":
            if value is None or not _WINDOW_BITS.match(value) or not 8 <= int(value) <= 15:
                return None
            server_bits = int(value)
        elif name == "client_max_window_bits":
            if value is None:
                client_bits = True
            elif not _WINDOW_BITS.match(value) or not 8 <= int(value) <= 15:
                return None
            else:
                client_bits = int(value)
        else:
            return None
    return DeflateParameters(flags["server_no_context_takeover"],
                             flags["client_no_context_takeover"], server_bits, client_bits)


def negotiate(values: Iterable[bytes | str], policy: DeflatePolicy | None = None,
              ) -> tuple[str | None, PerMessageDeflate | None]:
    """The server's answer to the ``Sec-WebSocket-Extensions`` field values of a request:
    ``(response field value, PerMessageDeflate)`` for the first acceptable
    ``permessage-deflate`` offer, ``(None, None)`` when there is none (other extensions are
    not supported and simply not accepted). ``ValueError`` on a syntax error."""
    policy = policy or DeflatePolicy()
    for name, params in parse_extensions(values):
        if name != EXTENSION_NAME:
            continue
        offer = parse_deflate_params(params)
        if offer is None:
            continue                     # declined (§5): consider the next offer
        agreed = policy.accept(offer)
        return agreed.header_value(), PerMessageDeflate(agreed, False, policy.level,
                                                        policy.mem_level)
    return None, None


class PerMessageDeflate:
    """The agreed permessage-deflate of one connection, from one side (``client=False``: the
    server compresses with the ``server_*`` parameters and decompresses with the
    ``client_*`` ones)."""

    __slots__ = ("params", "_level", "_mem_level", "_compress_bits", "_decompress_bits",
                 "_compress_reset", "_decompress_reset", "_compressor", "_decompressor")

    def __init__(self, params: DeflateParameters, client: bool = False, level: int = -1,
                 mem_level: int = 5) -> None:
        #: The agreement.
        self.params = params
        self._level = level
        self._mem_level = mem_level
        server_bits = params.server_max_window_bits or 15
        agreed_client_bits = params.client_max_window_bits
        client_bits = (agreed_client_bits if type(agreed_client_bits) is int  # not True: 15
                       else 15)
        ours, theirs = (client_bits, server_bits) if client else (server_bits, client_bits)
        self._compress_bits = max(ours, 9)      # 8 compresses as 9 (module docstring)
        self._decompress_bits = theirs
        self._compress_reset = (params.client_no_context_takeover if client
                                else params.server_no_context_takeover)
        self._decompress_reset = (params.server_no_context_takeover if client
                                  else params.client_no_context_takeover)
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    def compress(self, data: bytes) -> bytes:
        """One message's payload, compressed (the frame carries RSV1)."""
        compressor = self._compressor
        if compressor is None:
            compressor = zlib.compressobj(self._level, zlib.DEFLATED, -self._compress_bits,
                                          self._mem_level)
        out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        self._compressor = None if self._compress_reset else compressor
        return out[:-4] if out.endswith(_TAIL) else out

    def decompress(self, data: bytes, final: bool, max_length: int) -> bytes:
        """Decompress one fragment of a compressed message (``final``: its last); at most
        ``max_length`` bytes may come out, else ``FrameError`` 1009; a corrupt stream is
        ``FrameError`` 1007."""
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(
                wbits=-self._decompress_bits)
        if final:
            data = b"".join((data, _TAIL))
        try:
            # max_length=0 would mean "no limit": ask for one byte more than allowed
            out = decompressor.decompress(data, max_length + 1)
        except zlib.error:
            self._decompressor = None
            raise FrameError(1007, "invalid compressed data") from None
        if len(out) > max_length:
            raise FrameError(1009, R_TOO_BIG)
        if decompressor.eof and decompressor.unused_data not in (b"", _TAIL):
            raise FrameError(1007, "data after the end of the compressed stream")
        if final and (self._decompress_reset or decompressor.eof):
            self._decompressor = None            # a final block (BFINAL) ends the context too
        return out
