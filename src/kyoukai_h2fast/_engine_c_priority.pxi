# Included by _engine_c.pyx: RFC 9218 priority signals (the ``priority`` field, PRIORITY_UPDATE).
#
# The pure reading is ``kyoukai_h2fast.http2.priority`` (its docstring has the rules and the
# policy); this is the same in C, without Python objects:
#
# * ``_sf_line`` reads one field line as a Structured Fields Dictionary (RFC 9651 §4.2, the
#   RFC 8941 grammar plus Dates and Display Strings), keeping only the last ``u`` and ``i``.
#   Several lines of one field are one value joined with ", " (§4.2); reading them one by one
#   gives the same because a joined value is a Dictionary exactly when every line is one and,
#   when there are several, none is empty (``PrioritySignal`` keeps that).
# * The header sink (``_on_field`` in ``_engine_c_recv.pxi``) hands every ``priority`` line of a
#   request to ``_signal_line``; ``_open_priority`` turns the signal (and a PRIORITY_UPDATE
#   remembered for the stream) into the stream's priority when it opens.
# * ``_recv_priority_update`` handles the frame (§7.1); updates for streams not yet open are
#   kept in ``Engine._idle``, a small array sorted by stream id, bounded (see there).
# * ``_response_signal`` applies a response's own ``priority`` field (§8), read by
#   ``_send_headers`` while it encodes the block.
#
# A priority is coded 2 * urgency + incremental, the index in ``PRIORITIES`` (shared tuples).

from libc.string cimport memcmp, memmove

from kyoukai_h2fast.constants import PRIORITIES as _PRIORITIES_PY

cdef tuple _PRIORITIES = _PRIORITIES_PY

cdef enum:
    FRAME_PRIORITY_UPDATE = 0x10
    E_FRAME_SIZE_ERROR = 0x6
    PRIO_DEFAULT = 6              # u=3, not incremental: RFC 9218's defaults
    PRIO_UNSIGNALLED = 7          # u=3, incremental: no signal at all (shared fairly)
    SF_ABSENT = -1                # u / i: not in the value
    SF_WRONG = -2                 # ... present with a wrong type or out of range
    SF_FAIL = -1                  # reader results
    SF_OTHER = 0
    SF_INTEGER = 1
    SF_BOOLEAN = 2


cdef struct PrioritySignal:
    int lines                     # field lines read
    bint failed                   # a line was not (part of) a Dictionary
    bint empty                    # a line had no member
    int urgency                   # the last u: 0..7, SF_ABSENT or SF_WRONG
    int incremental               # the last i: 0/1, SF_ABSENT or SF_WRONG


cdef struct _SfReader:
    const unsigned char* p
    Py_ssize_t pos
    Py_ssize_t n
    int64_t number                # the last Integer read
    int boolean                   # the last Boolean read
    int64_t item_number           # ... as a member's value (parameters may follow it)
    int item_boolean


# ---- character classes (RFC 9651 §3, RFC 9110 tchar) ---------------------------------------------
cdef inline bint _is_digit(int c) noexcept nogil:
    return 0x30 <= c <= 0x39

cdef inline bint _is_lcalpha(int c) noexcept nogil:
    return 0x61 <= c <= 0x7A

cdef inline bint _is_alpha(int c) noexcept nogil:
    return _is_lcalpha(c) or 0x41 <= c <= 0x5A

cdef inline bint _is_key_rest(int c) noexcept nogil:
    return _is_lcalpha(c) or _is_digit(c) or c == 0x5F or c == 0x2D or c == 0x2E or c == 0x2A

cdef inline bint _is_tchar(int c) noexcept nogil:
    if _is_alpha(c) or _is_digit(c):
        return True
    return (c == 0x21 or c == 0x23 or c == 0x24 or c == 0x25 or c == 0x26 or c == 0x27
            or c == 0x2A or c == 0x2B or c == 0x2D or c == 0x2E or c == 0x5E or c == 0x5F
            or c == 0x60 or c == 0x7C or c == 0x7E)

cdef inline bint _is_base64(int c) noexcept nogil:
    return _is_alpha(c) or _is_digit(c) or c == 0x2B or c == 0x2F or c == 0x3D

cdef inline bint _is_lchex(int c) noexcept nogil:
    return _is_digit(c) or 0x61 <= c <= 0x66


# ---- the reader ----------------------------------------------------------------------------------
cdef inline int _sf_peek(_SfReader* r) noexcept nogil:
    return r.p[r.pos] if r.pos < r.n else -1


cdef inline void _sf_skip_sp(_SfReader* r) noexcept nogil:
    while r.pos < r.n and r.p[r.pos] == 0x20:
        r.pos += 1


cdef inline void _sf_skip_ows(_SfReader* r) noexcept nogil:
    while r.pos < r.n and (r.p[r.pos] == 0x20 or r.p[r.pos] == 0x09):
        r.pos += 1


cdef int _sf_key(_SfReader* r) noexcept nogil:
    """A key (§4.2.3.3): 1 for "u", 2 for "i", 0 for another, SF_FAIL."""
    cdef Py_ssize_t start = r.pos
    cdef int c = _sf_peek(r)
    if not (_is_lcalpha(c) or c == 0x2A):
        return SF_FAIL
    r.pos += 1
    while r.pos < r.n and _is_key_rest(r.p[r.pos]):
        r.pos += 1
    if r.pos - start == 1:
        if c == 0x75:
            return 1
        if c == 0x69:
            return 2
    return 0


cdef int _sf_number(_SfReader* r) noexcept nogil:
    """An Integer or a Decimal (§4.2.4): SF_INTEGER (``r.number``), SF_OTHER, SF_FAIL."""
    cdef bint negative = False
    cdef Py_ssize_t start, dot = -1
    cdef int64_t value = 0
    cdef int c
    if _sf_peek(r) == 0x2D:
        negative = True
        r.pos += 1
    start = r.pos
    if not _is_digit(_sf_peek(r)):
        return SF_FAIL
    while r.pos < r.n:
        c = r.p[r.pos]
        if _is_digit(c):
            if dot < 0:
                value = value * 10 + (c - 0x30)
            r.pos += 1
        elif c == 0x2E and dot < 0:
            if r.pos - start > 12:
                return SF_FAIL
            dot = r.pos
            r.pos += 1
        else:
            break
        if dot < 0 and r.pos - start > 15:
            return SF_FAIL
        if dot >= 0 and r.pos - start > 16:
            return SF_FAIL
    if dot < 0:
        r.number = -value if negative else value
        return SF_INTEGER
    if dot == r.pos - 1 or r.pos - dot - 1 > 3:
        return SF_FAIL
    return SF_OTHER


cdef int _sf_string(_SfReader* r) noexcept nogil:
    """A String (§4.2.5)."""
    cdef int c
    r.pos += 1
    while r.pos < r.n:
        c = r.p[r.pos]
        r.pos += 1
        if c == 0x5C:
            c = _sf_peek(r)
            if c != 0x22 and c != 0x5C:
                return SF_FAIL
            r.pos += 1
        elif c == 0x22:
            return SF_OTHER
        elif c < 0x20 or c > 0x7E:
            return SF_FAIL
    return SF_FAIL


cdef int _sf_byte_sequence(_SfReader* r) noexcept nogil:
    """A Byte Sequence (§4.2.7): base64, padded or not (parsers SHOULD NOT fail on missing
    padding or non-zero pad bits): "=" only as one or two at the end after a data character,
    and never a lone 6-bit digit at the end of the data."""
    cdef Py_ssize_t start = r.pos + 1, end = start, digits, pad = 0, i
    while end < r.n and r.p[end] != 0x3A:
        if not _is_base64(r.p[end]):
            return SF_FAIL
        end += 1
    if end >= r.n:
        return SF_FAIL
    digits = end
    while digits > start and r.p[digits - 1] == 0x3D:
        digits -= 1
        pad += 1
    for i in range(start, digits):
        if r.p[i] == 0x3D:
            return SF_FAIL
    digits -= start
    if pad > 2 or (pad and digits == 0) or digits % 4 == 1:
        return SF_FAIL
    r.pos = end + 1
    return SF_OTHER


cdef int _sf_display_string(_SfReader* r) noexcept nogil:
    """A Display String (RFC 9651 §4.2.10): percent-encoded UTF-8, checked strictly."""
    cdef int c, b, need = 0, lo = 0x80, hi = 0xBF
    r.pos += 1
    if _sf_peek(r) != 0x22:
        return SF_FAIL
    r.pos += 1
    while r.pos < r.n:
        c = r.p[r.pos]
        r.pos += 1
        if c < 0x20 or c > 0x7E:
            return SF_FAIL
        if c == 0x22:
            return SF_OTHER if need == 0 else SF_FAIL
        if c != 0x25:
            if need:
                return SF_FAIL            # an ASCII byte inside a multi-byte sequence
            continue
        if r.pos + 2 > r.n or not _is_lchex(r.p[r.pos]) or not _is_lchex(r.p[r.pos + 1]):
            return SF_FAIL
        b = ((r.p[r.pos] - (0x30 if r.p[r.pos] <= 0x39 else 0x57)) << 4) | (
            r.p[r.pos + 1] - (0x30 if r.p[r.pos + 1] <= 0x39 else 0x57))
        r.pos += 2
        if need == 0:                     # UTF-8 (RFC 3629 §4): no overlong forms, no
            if b < 0x80:                  # surrogates, nothing above U+10FFFF
                continue
            if 0xC2 <= b <= 0xDF:
                need = 1
            elif b == 0xE0:
                need = 2
                lo = 0xA0
            elif b == 0xED:
                need = 2
                hi = 0x9F
            elif 0xE1 <= b <= 0xEF:
                need = 2
            elif b == 0xF0:
                need = 3
                lo = 0x90
            elif 0xF1 <= b <= 0xF3:
                need = 3
            elif b == 0xF4:
                need = 3
                hi = 0x8F
            else:
                return SF_FAIL
        else:
            if b < lo or b > hi:
                return SF_FAIL
            need -= 1
            lo = 0x80
            hi = 0xBF
    return SF_FAIL


cdef int _sf_bare_item(_SfReader* r) noexcept nogil:
    """A Bare Item (§4.2.3.1): SF_INTEGER / SF_BOOLEAN (value in the reader), SF_OTHER for the
    other types, SF_FAIL."""
    cdef int c = _sf_peek(r)
    if c == 0x2D or _is_digit(c):
        return _sf_number(r)
    if c == 0x22:
        return _sf_string(r)
    if _is_alpha(c) or c == 0x2A:                 # a Token
        r.pos += 1
        while r.pos < r.n and (_is_tchar(r.p[r.pos]) or r.p[r.pos] == 0x3A
                               or r.p[r.pos] == 0x2F):
            r.pos += 1
        return SF_OTHER
    if c == 0x3A:
        return _sf_byte_sequence(r)
    if c == 0x3F:                                 # a Boolean
        r.pos += 1
        c = _sf_peek(r)
        if c != 0x30 and c != 0x31:
            return SF_FAIL
        r.pos += 1
        r.boolean = c == 0x31
        return SF_BOOLEAN
    if c == 0x40:                                 # a Date: an Integer (RFC 9651 §4.2.9)
        r.pos += 1
        return SF_OTHER if _sf_number(r) == SF_INTEGER else SF_FAIL
    if c == 0x25:
        return _sf_display_string(r)
    return SF_FAIL


cdef int _sf_parameters(_SfReader* r) noexcept nogil:
    """Parameters (§4.2.3.2): read and dropped (a member's parameters are not priority
    parameters)."""
    while _sf_peek(r) == 0x3B:
        r.pos += 1
        _sf_skip_sp(r)
        if _sf_key(r) == SF_FAIL:
            return SF_FAIL
        if _sf_peek(r) == 0x3D:
            r.pos += 1
            if _sf_bare_item(r) == SF_FAIL:
                return SF_FAIL
    return 0


cdef int _sf_member_value(_SfReader* r) noexcept nogil:
    """An Item or an Inner List (§4.2.1.1): the Item's kind (its value in ``item_number`` or
    ``item_boolean``), SF_OTHER for an Inner List."""
    cdef int kind
    if _sf_peek(r) == 0x28:                       # "(": an Inner List
        r.pos += 1
        while True:
            _sf_skip_sp(r)
            if r.pos >= r.n:
                return SF_FAIL
            if r.p[r.pos] == 0x29:
                r.pos += 1
                return SF_OTHER if _sf_parameters(r) == 0 else SF_FAIL
            if _sf_bare_item(r) == SF_FAIL or _sf_parameters(r) == SF_FAIL:
                return SF_FAIL
            if _sf_peek(r) != 0x20 and _sf_peek(r) != 0x29:
                return SF_FAIL
    kind = _sf_bare_item(r)
    r.item_number = r.number
    r.item_boolean = r.boolean
    if kind == SF_FAIL or _sf_parameters(r) == SF_FAIL:
        return SF_FAIL
    return kind


cdef int _sf_line(const unsigned char* p, Py_ssize_t n, bint first, int* urgency,
                  int* incremental) noexcept nogil:
    """Read one line of a Dictionary (§4.2.2): 1 with members (the last ``u``/``i`` stored),
    2 without any member, 0 when it is not (part of) a Dictionary. A line after the first
    follows ", " in the joined value, so it may start with HTAB too."""
    cdef _SfReader r
    cdef int key, kind
    r.p = p
    r.pos = 0
    r.n = n
    r.number = r.item_number = 0
    r.boolean = r.item_boolean = 0
    if first:
        _sf_skip_sp(&r)
    else:
        _sf_skip_ows(&r)
    if r.pos == r.n:
        return 2
    while True:
        key = _sf_key(&r)
        if key == SF_FAIL:
            return 0
        if _sf_peek(&r) == 0x3D:
            r.pos += 1
            kind = _sf_member_value(&r)
            if kind == SF_FAIL:
                return 0
        else:                             # a bare key is the Boolean true
            if _sf_parameters(&r) == SF_FAIL:
                return 0
            kind = SF_BOOLEAN
            r.item_boolean = 1
        if key == 1:
            urgency[0] = (<int>r.item_number if kind == SF_INTEGER and 0 <= r.item_number <= 7
                          else SF_WRONG)
        elif key == 2:
            incremental[0] = r.item_boolean if kind == SF_BOOLEAN else SF_WRONG
        _sf_skip_ows(&r)
        if r.pos == r.n:
            return 1
        if r.p[r.pos] != 0x2C:
            return 0
        r.pos += 1
        _sf_skip_ows(&r)
        if r.pos == r.n:
            return 0                      # a trailing comma


# ---- a field's lines -----------------------------------------------------------------------------
cdef inline void _signal_init(PrioritySignal* s, bint off=False) noexcept nogil:
    """An empty signal; ``off``: lines given to it are ignored (a trailer block)."""
    s.lines = 0
    s.failed = off
    s.empty = False
    s.urgency = SF_ABSENT
    s.incremental = SF_ABSENT


cdef inline void _signal_line(PrioritySignal* s, const unsigned char* p,
                              Py_ssize_t n) noexcept nogil:
    cdef int read
    if s.failed:
        return
    read = _sf_line(p, n, s.lines == 0, &s.urgency, &s.incremental)
    s.lines += 1
    if read == 0:
        s.failed = True
    elif read == 2:
        s.empty = True


cdef inline int _signal_priority(PrioritySignal* s) noexcept nogil:
    """The priority the lines set, RFC 9218's defaults for what they leave out; -1 when there
    is no line or the value is not a Dictionary."""
    if s.lines == 0 or s.failed or (s.empty and s.lines > 1):
        return -1
    return (2 * (s.urgency if s.urgency >= 0 else DEFAULT_URGENCY)
            + (s.incremental if s.incremental >= 0 else 0))


cdef int _response_signal(Engine self, _Stream stream, PrioritySignal* s) except -1:
    """A response's ``priority`` field (RFC 9218 §8): what it has changes the priority."""
    cdef int urgency = stream.urgency, incremental = stream.incremental
    if _signal_priority(s) < 0:
        return 0
    if s.urgency >= 0:
        urgency = s.urgency
    if s.incremental >= 0:
        incremental = s.incremental
    return self._reprioritize(stream, 2 * urgency + incremental)


cdef object _open_priority(Engine self, _Stream stream, PrioritySignal* s, int remembered):
    """A request stream opens: its priority from a PRIORITY_UPDATE that came first (the most
    recent signal wins, RFC 9218 §7), else from its ``priority`` field, else UNSIGNALLED."""
    cdef int priority = remembered
    if priority < 0:
        priority = _signal_priority(s)
        if priority < 0:
            priority = PRIO_UNSIGNALLED
    stream.urgency = <uint8_t>(priority >> 1)
    stream.incremental = priority & 1
    return <object>PyTuple_GET_ITEM(_PRIORITIES, priority)


# ---- PRIORITY_UPDATEs for streams not yet open ---------------------------------------------------
# At most min(SETTINGS_MAX_CONCURRENT_STREAMS - open streams, IDLE_PRIORITY_MEMORY): more
# streams "prioritized but idle" than the stream limit allows is a connection error (RFC 9218
# §7.1); past our own memory bound further ones are ignored. A stream opening takes its entry
# and drops those below it (they can no longer open, RFC 9113 §5.1.1); the array is freed
# when it empties.
cdef Py_ssize_t _idle_find(Engine self, uint32_t sid) noexcept:
    """Index of the first entry with a stream id >= ``sid``."""
    cdef Py_ssize_t lo = 0, hi = self._idle_count, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if self._idle[mid].stream_id < sid:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int _idle_take(Engine self, uint32_t sid) except -2:
    """Stream ``sid`` opens: its remembered priority (or -1); entries up to it are dropped."""
    cdef Py_ssize_t i = _idle_find(self, sid)
    cdef int priority = -1
    if i < self._idle_count and self._idle[i].stream_id == sid:
        priority = self._idle[i].priority
        i += 1
    if i:
        self._idle_count -= i
        memmove(self._idle, self._idle + i, self._idle_count * sizeof(IdlePriority))
    if self._idle_count == 0:
        PyMem_Free(self._idle)
        self._idle = NULL
        self._idle_cap = 0
    return priority


cdef int _idle_put(Engine self, uint32_t sid, int priority) except -1:
    cdef Py_ssize_t i = _idle_find(self, sid), cap
    cdef IdlePriority* grown
    if i < self._idle_count and self._idle[i].stream_id == sid:
        self._idle[i].priority = <uint8_t>priority      # the most recent one counts
        return 0
    if self._idle_count + 1 + self._open_streams > self._max_streams:
        return self._fail(E_PROTOCOL_ERROR,
                          f"PRIORITY_UPDATE for stream {sid}: more streams prioritized "
                          f"while idle and open than SETTINGS_MAX_CONCURRENT_STREAMS")
    if self._idle_count >= IDLE_PRIORITY_MEMORY:
        return 0
    if self._idle_count == self._idle_cap:
        cap = self._idle_cap * 2 if self._idle_cap else 8
        grown = <IdlePriority*>PyMem_Realloc(self._idle, cap * sizeof(IdlePriority))
        if grown == NULL:
            raise MemoryError()
        self._idle = grown
        self._idle_cap = cap
    memmove(self._idle + i + 1, self._idle + i, (self._idle_count - i) * sizeof(IdlePriority))
    self._idle[i].stream_id = sid
    self._idle[i].priority = <uint8_t>priority
    self._idle_count += 1
    return 0


# ---- PRIORITY_UPDATE (RFC 9218 §7.1) -------------------------------------------------------------
cdef int _recv_priority_update(Engine self, FrameView* v, list events) except -1:
    cdef uint32_t sid
    cdef _Stream stream
    cdef PrioritySignal signal
    cdef int priority
    if v.stream_id != 0:
        return self._fail(E_PROTOCOL_ERROR, f"PRIORITY_UPDATE on stream {v.stream_id}")
    if v.length < 4:
        return self._fail(E_FRAME_SIZE_ERROR, f"PRIORITY_UPDATE of {v.length} bytes")
    sid = ((<uint32_t>v.payload[0] & 0x7F) << 24) | (<uint32_t>v.payload[1] << 16) | (
        <uint32_t>v.payload[2] << 8) | v.payload[3]
    if sid == 0:
        return self._fail(E_PROTOCOL_ERROR, "PRIORITY_UPDATE for stream 0")
    if sid & 1 == 0:                      # we never push: an even stream is an idle push stream
        return self._fail(E_PROTOCOL_ERROR, f"PRIORITY_UPDATE for push stream {sid}")
    stream = self._get(sid)
    if stream is None and sid <= self._highest:
        return 0                          # closed: nothing to send any more
    _signal_init(&signal)
    _signal_line(&signal, v.payload + 4, v.length - 4)
    priority = _signal_priority(&signal)
    if priority < 0:
        return 0                          # not a Dictionary: ignored, never an error
    if stream is not None:
        return self._reprioritize(stream, priority)
    return _idle_put(self, sid, priority)


# ---- test hooks: the readers above on Python values ----------------------------------------------
def priority_of_lines(lines):
    """The priority of a request whose ``priority`` field lines are ``lines`` (the compiled
    reading of :func:`kyoukai_h2fast.http2.priority.request_priority`)."""
    cdef PrioritySignal signal
    cdef bytes line
    cdef int priority
    _signal_init(&signal)
    for line in lines:
        _signal_line(&signal, <const unsigned char*>PyBytes_AS_STRING(line),
                     PyBytes_GET_SIZE(line))
    priority = _signal_priority(&signal)
    return _PRIORITIES[priority if priority >= 0 else PRIO_UNSIGNALLED]


def priority_of_update(bytes value):
    """What a PRIORITY_UPDATE with ``value`` sets, or None (compiled
    :func:`kyoukai_h2fast.http2.priority.update_priority`)."""
    cdef PrioritySignal signal
    cdef int priority
    _signal_init(&signal)
    _signal_line(&signal, <const unsigned char*>PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))
    priority = _signal_priority(&signal)
    return _PRIORITIES[priority] if priority >= 0 else None


def priority_of_response(lines, tuple current):
    """``current`` changed by a response's ``priority`` field lines (compiled
    :func:`kyoukai_h2fast.http2.priority.response_priority`)."""
    cdef PrioritySignal signal
    cdef bytes line
    cdef int urgency = current[0], incremental = current[1]
    _signal_init(&signal)
    for line in lines:
        _signal_line(&signal, <const unsigned char*>PyBytes_AS_STRING(line),
                     PyBytes_GET_SIZE(line))
    if _signal_priority(&signal) >= 0:
        if signal.urgency >= 0:
            urgency = signal.urgency
        if signal.incremental >= 0:
            incremental = signal.incremental
    return _PRIORITIES[2 * urgency + incremental]
