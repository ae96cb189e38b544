"""RFC 9218 priority signals: what a ``priority`` field or a PRIORITY_UPDATE frame asks for.

Owns the reading of priority signals and the policy for requests without one; the engines own
what is done with the result (their DATA schedulers), and this module is the reading of the
pure twin (:mod:`kyoukai_h2fast.http2.h2engine.engine`). The compiled engine reads the same signals
field by field in C (``src/kyoukai_h2fast/_engine_c_priority.pxi``); tests prove the two agree
with each other and with an independent Structured Fields parser.

A priority is ``(urgency, incremental)``: urgency 0 (first) to 7 (background), incremental a
bool (RFC 9218 §4). The field value is a Structured Fields Dictionary (RFC 8941, as updated by
RFC 9651, whose Date and Display String types it accepts): :func:`parse` reads it whole; a
value that does not parse is ignored as a whole (RFC 9651 §4.2), never an error. In a value
that parses, ``u`` must be an Integer 0..7 and ``i`` a Boolean; other values, other
parameters and member parameters are ignored (RFC 9218 §4). Several field lines are one value
joined with ``", "`` (RFC 9651 §4.2).

The policy for each signal:

* request (:func:`request_priority`): the parameters it has, RFC 9218's defaults (``u=3``,
  not incremental) for those it leaves out. A request with no signal at all (no ``priority``
  field, or one that does not parse) is ``UNSIGNALLED``: urgency 3, *incremental*. Clients
  that do not speak RFC 9218 (curl, API clients, proxies coalescing many users' requests)
  thus share the connection fairly, frame by frame, as they did before priorities existed,
  rather than waiting for each other's responses in stream order (RFC 9218 §10 asks servers
  to avoid such starvation, §12.1 to share bandwidth for coalesced requests).
* PRIORITY_UPDATE frame (:func:`update_priority`): a complete set (RFC 9218 §7: defaults for
  what it leaves out); a value that does not parse leaves the priority as it was.
* response field (:func:`response_priority`, RFC 9218 §8): only the parameters it has change
  the response's priority (omission means "no change").
"""
from __future__ import annotations

# Every priority as the one tuple object both engines hand out (PRIORITIES[2 * u + i]), and the
# priority of a request without a signal: shared with the compiled engine.
from ..constants import PRIORITIES, UNSIGNALLED

__all__ = [
    "PRIORITIES", "DEFAULT", "UNSIGNALLED", "parse", "request_priority", "update_priority",
    "response_priority",
]

#: RFC 9218's defaults (a request with a signal that leaves both parameters out).
DEFAULT = PRIORITIES[6]

_DIGITS = frozenset(b"0123456789")
_LCALPHA = frozenset(b"abcdefghijklmnopqrstuvwxyz")
_ALPHA = _LCALPHA | frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_KEY_FIRST = _LCALPHA | {ord("*")}
_KEY_REST = _LCALPHA | _DIGITS | frozenset(b"_-.*")
_TCHAR = _ALPHA | _DIGITS | frozenset(b"!#$%&'*+-.^_`|~")
_TOKEN_REST = _TCHAR | frozenset(b":/")
_BASE64 = _ALPHA | _DIGITS | frozenset(b"+/=")
_LCHEX = frozenset(b"0123456789abcdef")


class _Invalid(Exception):
    """The value is not a Structured Fields Dictionary."""


#: Marks a parameter present with a value of the wrong type or out of range.
_WRONG = object()


class _Reader:
    """RFC 9651 §4.2 parsing over bytes; only what a priority needs is kept."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def peek(self) -> int:
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def skip_sp(self) -> None:
        while self.peek() == 0x20:
            self.pos += 1

    def skip_ows(self) -> None:
        while self.peek() in (0x20, 0x09):
            self.pos += 1

    def dictionary(self) -> dict:
        members: dict = {}
        while self.pos < len(self.data):
            key = self.key()
            if self.peek() == 0x3D:                    # "="
                self.pos += 1
                members[key] = self.item_or_inner_list()
            else:
                self.parameters()
                members[key] = True
            self.skip_ows()
            if self.pos == len(self.data):
                return members
            if self.peek() != 0x2C:                    # ","
                raise _Invalid
            self.pos += 1
            self.skip_ows()
            if self.pos == len(self.data):             # a trailing comma
                raise _Invalid
        return members

    def key(self) -> bytes:
        start = self.pos
        if self.peek() not in _KEY_FIRST:
            raise _Invalid
        self.pos += 1
        while self.peek() in _KEY_REST:
            self.pos += 1
        return self.data[start:self.pos]

    def item_or_inner_list(self) -> object:
        if self.peek() == 0x28:                        # "(": an inner list
            self.pos += 1
            while True:
                self.skip_sp()
                c = self.peek()
                if c == -1:
                    raise _Invalid
                if c == 0x29:                          # ")"
                    self.pos += 1
                    self.parameters()
                    return _WRONG
                self.bare_item()
                self.parameters()
                if self.peek() not in (0x20, 0x29):
                    raise _Invalid
        value = self.bare_item()
        self.parameters()
        return value

    def parameters(self) -> None:
        while self.peek() == 0x3B:                     # ";"
            self.pos += 1
            self.skip_sp()
            self.key()
            if self.peek() == 0x3D:
                self.pos += 1
                self.bare_item()

    def bare_item(self) -> object:
        """The item's value if it is an Integer or a Boolean, else ``_WRONG``."""
        c = self.peek()
        if c == 0x2D or c in _DIGITS:                  # "-" / DIGIT
            return self.number()
        if c == 0x22:                                  # DQUOTE
            self.string()
            return _WRONG
        if c in _ALPHA or c == 0x2A:                   # a token
            self.pos += 1
            while self.peek() in _TOKEN_REST:
                self.pos += 1
            return _WRONG
        if c == 0x3A:                                  # ":" a byte sequence
            self.byte_sequence()
            return _WRONG
        if c == 0x3F:                                  # "?" a boolean
            self.pos += 1
            c = self.peek()
            if c not in (0x30, 0x31):
                raise _Invalid
            self.pos += 1
            return c == 0x31
        if c == 0x40:                                  # "@" a date (RFC 9651)
            self.pos += 1
            if self.number() is _WRONG:                # a Decimal is not a date
                raise _Invalid
            return _WRONG
        if c == 0x25:                                  # "%" a display string (RFC 9651)
            self.display_string()
            return _WRONG
        raise _Invalid

    def number(self) -> object:
        """An Integer's value, or ``_WRONG`` for a Decimal (RFC 9651 §4.2.4)."""
        data = self.data
        negative = self.peek() == 0x2D
        if negative:
            self.pos += 1
        start = self.pos
        if self.peek() not in _DIGITS:
            raise _Invalid
        dot = -1
        while self.pos < len(data):
            c = data[self.pos]
            if c in _DIGITS:
                self.pos += 1
            elif c == 0x2E and dot < 0:                # "."
                if self.pos - start > 12:
                    raise _Invalid
                dot = self.pos
                self.pos += 1
            else:
                break
            if dot < 0 and self.pos - start > 15:
                raise _Invalid
            if dot >= 0 and self.pos - start > 16:
                raise _Invalid
        if dot < 0:
            value = int(data[start:self.pos])
            return -value if negative else value
        if dot == self.pos - 1 or self.pos - dot - 1 > 3:
            raise _Invalid
        return _WRONG

    def string(self) -> None:
        data = self.data
        self.pos += 1
        while self.pos < len(data):
            c = data[self.pos]
            self.pos += 1
            if c == 0x5C:                              # backslash
                if self.peek() not in (0x22, 0x5C):
                    raise _Invalid
                self.pos += 1
            elif c == 0x22:
                return
            elif c < 0x20 or c > 0x7E:
                raise _Invalid
        raise _Invalid

    def byte_sequence(self) -> None:
        data = self.data
        start = self.pos + 1
        end = data.find(b":", start)
        if end < 0:
            raise _Invalid
        content = data[start:end]
        if any(c not in _BASE64 for c in content):
            raise _Invalid
        # base64, padded or not (RFC 9651 §4.2.7: parsers SHOULD NOT fail on missing padding
        # or non-zero pad bits): "=" only as one or two at the end after a data character, and
        # never a lone 6-bit digit at the end of the data.
        digits = content.rstrip(b"=")
        pad = len(content) - len(digits)
        if b"=" in digits or pad > 2 or (pad and not digits) or len(digits) % 4 == 1:
            raise _Invalid
        self.pos = end + 1

    def display_string(self) -> None:
        data = self.data
        self.pos += 1
        if self.peek() != 0x22:
            raise _Invalid
        self.pos += 1
        out = bytearray()
        while self.pos < len(data):
            c = data[self.pos]
            self.pos += 1
            if c < 0x20 or c > 0x7E:
                raise _Invalid
            if c == 0x25:                              # "%" and two lowercase hex digits
                hexa = data[self.pos:self.pos + 2]
                if len(hexa) != 2 or any(h not in _LCHEX for h in hexa):
                    raise _Invalid
                out.append(int(hexa, 16))
                self.pos += 2
            elif c == 0x22:
                try:
                    out.decode("utf-8")
                except UnicodeDecodeError:
                    raise _Invalid from None
                return
            else:
                out.append(c)
        raise _Invalid


def parse(value: bytes) -> tuple | None:
    """``(urgency, incremental)`` read from a ``priority`` field value, each None when the
    value leaves it out or gives it an invalid value; None when the value is not a Structured
    Fields Dictionary."""
    reader = _Reader(bytes(value))
    try:
        reader.skip_sp()
        members = reader.dictionary()
        reader.skip_sp()
        if reader.pos != len(reader.data):
            raise _Invalid
    except _Invalid:
        return None
    u = members.get(b"u")
    i = members.get(b"i")
    urgency = u if type(u) is int and 0 <= u <= 7 else None
    incremental = i if type(i) is bool else None
    return urgency, incremental


def request_priority(lines: list) -> tuple:
    """The priority of a request whose ``priority`` field lines are ``lines`` (bytes)."""
    if not lines:
        return UNSIGNALLED
    return update_priority(b", ".join(lines)) or UNSIGNALLED


def update_priority(value: bytes) -> tuple | None:
    """The priority a PRIORITY_UPDATE frame's field value sets (RFC 9218 §7: defaults for
    what it leaves out), or None when the value does not parse (the frame is ignored)."""
    read = parse(value)
    if read is None:
        return None
    urgency, incremental = read
    return PRIORITIES[2 * (3 if urgency is None else urgency) + bool(incremental)]


def response_priority(lines: list, current: tuple) -> tuple:
    """``current`` changed by the parameters a response's ``priority`` field lines have."""
    if not lines:
        return current
    read = parse(b", ".join(lines))
    if read is None:
        return current
    urgency, incremental = read
    if urgency is None:
        urgency = current[0]
    if incremental is None:
        incremental = current[1]
    return PRIORITIES[2 * urgency + bool(incremental)]
