# Included by _engine_c.pyx: the flood budgets of one connection (RFC 9113 §10.5).
#
# The same counters, with the same arithmetic, as the pure twin's
# kyoukai_h2fast.http2.h2engine.budgets (read its docstring for what counts): both engines end a
# connection at the same frame. Per received frame, before it is handled, ``_count_frame``
# counts PINGs, SETTINGS and frames without progress (empty DATA without END_STREAM, tiny
# WINDOW_UPDATEs, PRIORITY, ACKs, GOAWAY, ignored frame types); after it was handled,
# ``_after_frame`` counts the streams the peer reset plus the RST_STREAM frames the frame
# provoked, and checks the control frames queued since the output last drained. Crossing a
# budget is a connection error ENHANCE_YOUR_CALM. The counters are C ints; the clock
# (time.monotonic, looked up each time: tests replace it) is read only when a window counts.

from kyoukai_h2fast.constants import BUDGET_REASONS as _REASONS


cdef inline void _rate_init(RateWindow* w, long long limit) noexcept:
    memset(w, 0, sizeof(RateWindow))
    w.limit = limit


cdef bint _rate_add(RateWindow* w, long long n) except -1:
    """Count ``n`` events now; True when the last 10 s hold more than the limit."""
    cdef double now = time.monotonic()
    cdef long long bucket, b
    if w.epoch == 0.0:
        w.epoch = now - 1.0
    bucket = <long long>((now - w.epoch) * 2.0)
    if bucket > w.bucket:
        if bucket - w.bucket >= RATE_BUCKETS:
            memset(w.counts, 0, sizeof(w.counts))
            w.total = 0
        else:
            for b in range(w.bucket + 1, bucket + 1):
                w.total -= w.counts[b % RATE_BUCKETS]
                w.counts[b % RATE_BUCKETS] = 0
        w.bucket = bucket
    w.counts[w.bucket % RATE_BUCKETS] += <int>n
    w.total += n
    return w.total > w.limit


cdef int _over_budget(Engine self, str name) except -1:
    message, debug = _REASONS[name]
    return self._fail(E_ENHANCE_YOUR_CALM, message, debug, name)


cdef int _count_frame(Engine self, FrameView* v) except -1:
    """A received frame, before it is handled: the PING, SETTINGS and no-progress budgets."""
    cdef uint8_t ftype = v.type
    if ftype == FRAME_DATA:
        if v.data_length or v.flags & FLAG_END_STREAM:
            return 0
    elif ftype == FRAME_PING:
        if not (v.flags & FLAG_ACK):
            if _rate_add(&self._rate_pings, 1):
                return _over_budget(self, "pings")
            return 0
    elif ftype == FRAME_SETTINGS:
        if not (v.flags & FLAG_ACK):
            if _rate_add(&self._rate_settings, 1):
                return _over_budget(self, "settings")
            return 0
    elif ftype == FRAME_WINDOW_UPDATE:
        if v.window_increment >= TINY_WINDOW_UPDATE:
            return 0
    elif ftype != FRAME_PRIORITY and ftype != FRAME_GOAWAY and ftype < FRAME_ALTSVC:
        return 0                       # HEADERS, RST_STREAM, PUSH_PROMISE, CONTINUATION
    if _rate_add(&self._rate_empty, 1):
        return _over_budget(self, "empty_frames")
    return 0


cdef int _after_frame(Engine self) except -1:
    """A frame was handled: the reset budget (the peer's and provoked resets) and the queue
    of control frames not yet written."""
    cdef int resets = self._frame_resets
    if resets:
        self._frame_resets = 0
        if _rate_add(&self._rate_resets, resets):
            return _over_budget(self, "resets")
    if self._ctrl_queued > self._max_ctrl:
        return _over_budget(self, "queued_control_frames")
    return 0
