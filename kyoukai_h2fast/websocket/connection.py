"""The WebSocket connection state machine (RFC 6455 §5-§7), sans-IO: bytes in, events out.

:class:`WebSocketConnection` is what both transports (HTTP/1.1 after a 101, HTTP/2 on an
extended CONNECT stream after a 200) drive, after the handshake (:mod:`.handshake`):

    conn = WebSocketConnection(deflate=pmd)     # pmd from handshake.negotiate_extensions
    events = conn.receive(data)                 # TextMessage, BytesMessage, Ping, ...
    transport.write(conn.data_to_send())        # automatic pongs, close echoes, failure closes
    transport.write(conn.send_text("hi"))       # the app's sends: the frame's bytes
    conn.output_drained()                       # when the transport's buffer is empty again
    if conn.closed: close the transport (after writing data_to_send())

Owns: message reassembly from fragments, decompression (permessage-deflate), the UTF-8 of
compressed text (the codec validates uncompressed text), close frames' contents (1-byte
payload, invalid codes, the reason's UTF-8), the close handshake, automatic pongs, the flood
budgets, and sending (a server never masks; ``client=True`` masks, for tests and benchmarks).
The frame rules, unmasking and UTF-8 of uncompressed text are the codec's
(:mod:`.frames`); a broken rule comes back as :class:`~.events.ConnectionFailed` with its
close code, the close frame queued, and the connection closed.

Limits (keyword arguments; defaults in :mod:`.constants`): ``max_message_size`` (16 MiB: a
message after reassembly and decompression, and so a frame; 1009), ``max_pings_per_10s``
(1000; 1008), ``max_empty_frames_per_10s`` (1000 frames without progress: non-final data
frames with an empty payload, and pongs; 1008), ``max_queued_pongs`` (1000 automatic pongs
queued since the transport last called :meth:`~WebSocketConnection.output_drained`: a peer
that sends pings and does not read; 1008). The 10 s windows are the HTTP/2 engine's
(:class:`~kyoukai_h2fast.http2.h2engine.budgets.RateWindow`).
"""
from __future__ import annotations

import enum
import os
from types import ModuleType
from typing import TYPE_CHECKING

from ..http2.h2engine.budgets import RateWindow
from . import frames
from .constants import (
    DEFAULT_MAX_EMPTY_FRAMES_PER_10S,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_PINGS_PER_10S,
    DEFAULT_MAX_QUEUED_PONGS,
    MAX_CLOSE_REASON,
    MAX_CONTROL_PAYLOAD,
    is_valid_close_code,
)
from .deflate import PerMessageDeflate
from .errors import R_INVALID_UTF8, R_TRUNCATED_UTF8, FrameError, InvalidStateError
from .events import (
    BytesMessage,
    CloseReceived,
    ConnectionFailed,
    Ping,
    Pong,
    TextMessage,
    WebSocketEvent,
)
from .frames import OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._frames_c import FrameReader, Utf8Validator

__all__ = ["WebSocketConnection", "State", "Input", "Action", "TRANSITIONS", "REASONS"]


class State(enum.Enum):
    """Where the close handshake is (RFC 6455 §7)."""

    OPEN = "OPEN"          # messages flow both ways
    CLOSING = "CLOSING"    # we sent a close frame; waiting for the peer's
    CLOSED = "CLOSED"      # both close frames exchanged, or the connection failed


class Input(enum.Enum):
    """What happens to the connection."""

    RECV_DATA = "RECV_DATA"          # a whole text or binary message arrived
    RECV_PING = "RECV_PING"
    RECV_PONG = "RECV_PONG"
    RECV_CLOSE = "RECV_CLOSE"        # a valid close frame arrived
    SEND_DATA = "SEND_DATA"          # send_text / send_bytes
    SEND_CONTROL = "SEND_CONTROL"    # send_ping / send_pong
    SEND_CLOSE = "SEND_CLOSE"        # send_close
    FAIL = "FAIL"                    # the peer broke a rule or a limit


class Action(enum.IntFlag):
    """What the connection does about an input (flags; none: drop it silently)."""

    DELIVER = 1      # report the event
    ANSWER = 2       # queue the answer: a pong, the close echo, or the failure's close frame
    SEND = 4         # return the frame's bytes to the caller
    REFUSE = 8       # raise InvalidStateError


# Theory of operation. A connection starts OPEN (the handshake is done). The peer's close moves
# it to CLOSED at once: we echo its code (RFC 6455 §5.5.1) and read nothing after it. Our
# send_close moves it to CLOSING: no more data may be sent (§5.5.1); messages that still arrive
# are read (their framing must stay valid, to find the close frame) but dropped, pings are
# still answered (§5.5.2: only a received close ends that duty), and the peer's close ends it
# (CLOSED, no second echo). A failure (§7.1.7) moves any state to CLOSED; the close frame with
# the failure's code is queued unless we already sent one. In CLOSED, receive() reads nothing,
# data sends are refused and send_close() returns nothing. The transport closes the TCP
# connection (HTTP/1.1) or the stream (HTTP/2) once it sees ``closed`` and has written
# data_to_send() (§7.1.1: the server closes first).
_S, _I, _A = State, Input, Action
TRANSITIONS: dict[tuple[State, Input], tuple[State, Action]] = {
    (_S.OPEN, _I.RECV_DATA): (_S.OPEN, _A.DELIVER),
    (_S.OPEN, _I.RECV_PING): (_S.OPEN, _A.DELIVER | _A.ANSWER),
    (_S.OPEN, _I.RECV_PONG): (_S.OPEN, _A.DELIVER),
    (_S.OPEN, _I.RECV_CLOSE): (_S.CLOSED, _A.DELIVER | _A.ANSWER),
    (_S.OPEN, _I.SEND_DATA): (_S.OPEN, _A.SEND),
    (_S.OPEN, _I.SEND_CONTROL): (_S.OPEN, _A.SEND),
    (_S.OPEN, _I.SEND_CLOSE): (_S.CLOSING, _A.SEND),
    (_S.OPEN, _I.FAIL): (_S.CLOSED, _A.DELIVER | _A.ANSWER),
    (_S.CLOSING, _I.RECV_DATA): (_S.CLOSING, _A(0)),
    (_S.CLOSING, _I.RECV_PING): (_S.CLOSING, _A.ANSWER),
    (_S.CLOSING, _I.RECV_PONG): (_S.CLOSING, _A(0)),
    (_S.CLOSING, _I.RECV_CLOSE): (_S.CLOSED, _A.DELIVER),
    (_S.CLOSING, _I.SEND_DATA): (_S.CLOSING, _A.REFUSE),
    (_S.CLOSING, _I.SEND_CONTROL): (_S.CLOSING, _A.REFUSE),
    (_S.CLOSING, _I.SEND_CLOSE): (_S.CLOSING, _A(0)),
    (_S.CLOSING, _I.FAIL): (_S.CLOSED, _A.DELIVER),
    (_S.CLOSED, _I.RECV_DATA): (_S.CLOSED, _A(0)),
    (_S.CLOSED, _I.RECV_PING): (_S.CLOSED, _A(0)),
    (_S.CLOSED, _I.RECV_PONG): (_S.CLOSED, _A(0)),
    (_S.CLOSED, _I.RECV_CLOSE): (_S.CLOSED, _A(0)),
    (_S.CLOSED, _I.SEND_DATA): (_S.CLOSED, _A.REFUSE),
    (_S.CLOSED, _I.SEND_CONTROL): (_S.CLOSED, _A.REFUSE),
    (_S.CLOSED, _I.SEND_CLOSE): (_S.CLOSED, _A(0)),
    (_S.CLOSED, _I.FAIL): (_S.CLOSED, _A(0)),
}

#: The reasons of the failures this module decides (the codec's are in :mod:`.errors`).
REASONS = {
    "pings": "too many pings",
    "empty": "too many frames without progress",
    "pongs": "too many pongs queued for a peer that does not read",
    "close_length": "close frame with a 1-byte payload",
    "close_code": "invalid close code",
    "close_utf8": "invalid UTF-8 in the close reason",
}

#: Fragments below this size are gathered in one buffer: a message sent as millions of
#: 1-byte fragments then holds its size in memory, not millions of objects.
_SMALL_PART = 4096

_DELIVER, _ANSWER, _SEND = Action.DELIVER, Action.ANSWER, Action.SEND
_OPEN, _CLOSING, _CLOSED = State.OPEN, State.CLOSING, State.CLOSED


class WebSocketConnection:
    """One WebSocket, either side (``client=True`` masks what it sends and expects unmasked
    frames). ``deflate``: the agreed permessage-deflate (None: no extension). ``codec``: the
    frame codec module (default: the one :mod:`.frames` selected; tests and benchmarks pass
    either twin). See the module docstring for the calls and the limits."""

    __slots__ = ("_state", "_client", "_deflate", "_reader", "_build", "_out", "_deliver_data",
                 "_send_data", "_parts", "_message_opcode", "_message_compressed",
                 "_message_size", "_utf8", "_pings", "_empty", "_queued_pongs",
                 "max_queued_pongs", "close_sent", "close_code", "close_reason")

    def __init__(self, *, client: bool = False, deflate: PerMessageDeflate | None = None,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 max_pings_per_10s: int = DEFAULT_MAX_PINGS_PER_10S,
                 max_empty_frames_per_10s: int = DEFAULT_MAX_EMPTY_FRAMES_PER_10S,
                 max_queued_pongs: int = DEFAULT_MAX_QUEUED_PONGS,
                 codec: ModuleType | None = None) -> None:
        codec = codec or frames
        self._client = client
        self._deflate = deflate
        self._reader: FrameReader = codec.FrameReader(max_message_size, client,
                                                      deflate is not None)
        self._build: Callable[..., bytes] = codec.build_frame
        self._out: list[bytes] = []                 # automatic frames, for data_to_send()
        self._parts: list[bytes | bytearray] = []   # fragments of the message in progress
        self._message_opcode = 0
        self._message_compressed = False
        self._message_size = 0                      # decompressed bytes of that message
        self._utf8: Utf8Validator = codec.Utf8Validator()    # for compressed text
        self._pings = RateWindow(max_pings_per_10s)
        self._empty = RateWindow(max_empty_frames_per_10s)
        self._queued_pongs = 0
        #: Bound of automatic pongs queued between two output_drained() calls.
        self.max_queued_pongs = max_queued_pongs
        #: The code of the close frame we sent (1005: one without a code), or None.
        self.close_sent: int | None = None
        #: Once CLOSED: the peer's close code (1005 when its close had none), or the code we
        #: failed the connection with. None before.
        self.close_code: int | None = None
        #: The reason that goes with ``close_code`` ("" when none).
        self.close_reason = ""
        self._enter(_OPEN)

    # -- the state table ----------------------------------------------------------------------
    def _enter(self, state: State) -> None:
        self._state = state
        self._deliver_data = bool(TRANSITIONS[(state, Input.RECV_DATA)][1] & _DELIVER)
        self._send_data = bool(TRANSITIONS[(state, Input.SEND_DATA)][1] & _SEND)

    def _on(self, event: Input) -> Action:
        state, action = TRANSITIONS[(self._state, event)]
        if state is not self._state:
            self._enter(state)
        return action

    @property
    def max_message_size(self) -> int:
        """Largest message (after reassembly and decompression), and so largest frame."""
        return self._reader.max_message_size

    @max_message_size.setter
    def max_message_size(self, value: int) -> None:
        self._reader.max_message_size = value

    @property
    def state(self) -> State:
        """OPEN, CLOSING (our close sent) or CLOSED."""
        return self._state

    @property
    def closed(self) -> bool:
        """True once nothing more will be read or sent: the transport closes."""
        return self._state is _CLOSED

    # -- receiving ----------------------------------------------------------------------------
    def receive(self, data: bytes) -> list[WebSocketEvent]:
        """Feed bytes from the peer; the events of every frame they complete. After a
        failure or the peer's close, nothing more is read."""
        if self._state is _CLOSED:
            return []
        events: list[WebSocketEvent] = []
        reader = self._reader
        reader.feed(data)
        try:
            for opcode, fin, rsv1, payload in reader:
                if type(payload) is str:            # a whole uncompressed text message
                    if self._deliver_data:
                        events.append(TextMessage(payload))
                elif opcode == OP_BINARY and fin and not rsv1:
                    if self._deliver_data:
                        events.append(BytesMessage(payload))   # type: ignore[arg-type]
                else:
                    self._frame(opcode, fin, rsv1, payload, events)  # type: ignore[arg-type]
                    if self._state is _CLOSED:
                        break                       # the peer's close: read no further
        except FrameError as e:
            self._fail(e.code, e.reason, events)
        return events

    def _frame(self, opcode: int, fin: bool, rsv1: bool, payload: bytes,
               events: list[WebSocketEvent]) -> None:
        """Every frame but a whole uncompressed message: fragments, compressed messages and
        control frames."""
        if opcode >= OP_CLOSE:
            if opcode == OP_PING:
                if self._pings.add():
                    raise FrameError(1008, REASONS["pings"])
                action = self._on(Input.RECV_PING)
                if action & _ANSWER:
                    self._queued_pongs += 1
                    if self._queued_pongs > self.max_queued_pongs:
                        raise FrameError(1008, REASONS["pongs"])
                    self._out.append(self._build(OP_PONG, payload, True, False, self._mask()))
                if action & _DELIVER:
                    events.append(Ping(payload))
            elif opcode == OP_PONG:
                if self._empty.add():
                    raise FrameError(1008, REASONS["empty"])
                if self._on(Input.RECV_PONG) & _DELIVER:
                    events.append(Pong(payload))
            else:
                self._receive_close(payload, events)
            return
        if not fin and not payload and self._empty.add():
            raise FrameError(1008, REASONS["empty"])
        if opcode != OP_CONTINUATION:               # a message starts
            self._message_opcode = opcode
            self._message_compressed = rsv1        # (the reader allows it with deflate only)
            self._message_size = 0
            self._parts = []
            if self._message_compressed and opcode == OP_TEXT:
                self._utf8.reset()
        if self._message_compressed:
            assert self._deflate is not None
            payload = self._deflate.decompress(payload, fin,
                                               self.max_message_size - self._message_size)
            self._message_size += len(payload)
            if self._message_opcode == OP_TEXT:
                if not self._utf8.feed(payload):
                    raise FrameError(1007, R_INVALID_UTF8)
                if fin and not self._utf8.complete:
                    raise FrameError(1007, R_TRUNCATED_UTF8)
        if not fin:
            parts = self._parts
            if len(payload) >= _SMALL_PART:
                parts.append(payload)
            elif parts and type(parts[-1]) is bytearray:
                parts[-1] += payload   # (tiny fragments cost their bytes, not an object each)
            else:
                parts.append(bytearray(payload))
            return
        if self._parts:
            self._parts.append(payload)
            payload = b"".join(self._parts)
            self._parts = []
        if self._on(Input.RECV_DATA) & _DELIVER:
            if self._message_opcode == OP_TEXT:
                events.append(TextMessage(payload.decode("utf-8")))   # validated already
            else:
                events.append(BytesMessage(payload))

    def _receive_close(self, payload: bytes, events: list[WebSocketEvent]) -> None:
        """The peer's close frame (RFC 6455 §5.5.1, §7.4)."""
        if not payload:
            code, reason = 1005, ""
        elif len(payload) == 1:
            raise FrameError(1002, REASONS["close_length"])
        else:
            code = int.from_bytes(payload[:2], "big")
            if not is_valid_close_code(code):
                raise FrameError(1002, f"{REASONS['close_code']} {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise FrameError(1007, REASONS["close_utf8"]) from None
        action = self._on(Input.RECV_CLOSE)
        self.close_code = code
        self.close_reason = reason
        self._parts = []
        if action & _ANSWER:                        # echo the code (none for none)
            self._out.append(self._close_frame(code, ""))
            self.close_sent = code
        if action & _DELIVER:
            events.append(CloseReceived(code, reason))

    def _fail(self, code: int, reason: str, events: list[WebSocketEvent]) -> None:
        """RFC 6455 §7.1.7: send a close with ``code`` (unless one was sent), report, close."""
        action = self._on(Input.FAIL)
        if action & _ANSWER:
            self._out.append(self._close_frame(code, reason))
            self.close_sent = code
        if action & _DELIVER:
            self.close_code = code
            self.close_reason = reason
            self._parts = []
            events.append(ConnectionFailed(code, reason))

    # -- sending ------------------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        """Take the frames the connection queued itself: pongs, the close echo, a failure's
        close frame (b"" when none)."""
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out = []
        return out

    def output_drained(self) -> None:
        """The transport's buffer is empty: the pongs queued so far were read by the peer."""
        self._queued_pongs = 0

    def send_text(self, text: str) -> bytes:
        """A text message's frame. ``InvalidStateError`` after a close."""
        if not self._send_data:
            raise InvalidStateError(f"no message can be sent when {self._state.value}")
        if self._deflate is None:
            return self._build(OP_TEXT, text, True, False, self._mask())
        return self._build(OP_TEXT, self._deflate.compress(text.encode("utf-8")), True, True,
                           self._mask())

    def send_bytes(self, data: bytes) -> bytes:
        """A binary message's frame. ``InvalidStateError`` after a close."""
        if not self._send_data:
            raise InvalidStateError(f"no message can be sent when {self._state.value}")
        if self._deflate is None:
            return self._build(OP_BINARY, data, True, False, self._mask())
        return self._build(OP_BINARY, self._deflate.compress(bytes(data)), True, True,
                           self._mask())

    def send_ping(self, payload: bytes = b"") -> bytes:
        """A ping (at most 125 bytes of payload)."""
        return self._control(OP_PING, payload)

    def send_pong(self, payload: bytes = b"") -> bytes:
        """An unsolicited pong (a heartbeat, RFC 6455 §5.5.3)."""
        return self._control(OP_PONG, payload)

    def send_close(self, code: int = 1000, reason: str = "") -> bytes:
        """Our close frame (``code`` 1005: one without a code or reason); b"" when a close was
        sent already or the connection is closed. ``ValueError`` for a code that may not be
        sent or a reason over 123 bytes of UTF-8."""
        if code == 1005:
            if reason:
                raise ValueError("a close without a code has no reason")
        elif not is_valid_close_code(code):
            raise ValueError(f"close code {code} may not be sent")
        if len(reason.encode("utf-8")) > MAX_CLOSE_REASON:
            raise ValueError(f"a close reason has at most {MAX_CLOSE_REASON} bytes")
        if not self._on(Input.SEND_CLOSE) & _SEND:
            return b""
        self.close_sent = code
        return self._close_frame(code, reason)

    def _control(self, opcode: int, payload: bytes) -> bytes:
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise ValueError(f"a control frame carries at most {MAX_CONTROL_PAYLOAD} bytes")
        if self._on(Input.SEND_CONTROL) & Action.REFUSE:
            raise InvalidStateError(f"no ping or pong can be sent when {self._state.value}")
        return self._build(opcode, payload, True, False, self._mask())

    def _close_frame(self, code: int, reason: str) -> bytes:
        if code == 1005:
            payload = b""
        else:
            text = reason.encode("utf-8")
            if len(text) > MAX_CLOSE_REASON:      # a failure's reason: cut at a character
                text = text[:MAX_CLOSE_REASON].decode("utf-8", "ignore").encode("utf-8")
            payload = code.to_bytes(2, "big") + text
        return self._build(OP_CLOSE, payload, True, False, self._mask())

    def _mask(self) -> bytes | None:
        return os.urandom(4) if self._client else None
