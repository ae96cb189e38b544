"""HTTP/2 frame layer (RFC 9113 §4, §6) on the compiled module and its pure twin.

The reference is what h2 runs: ``h2.frame_buffer.FrameBuffer`` parsing with hyperframe, and
hyperframe's ``serialize()``. Our ``FrameBuffer`` must yield frames equal in class and every
attribute, in any chunking, and raise the class h2's buffer raises (``FramePaddingError`` for
hyperframe's ``InvalidPaddingError``). Where h2/hyperframe break RFC 9113 we follow the RFC, so
the reference runs with those three rules corrected (:func:`rfc9113_hyperframe`): SETTINGS ACK
with a payload is FRAME_SIZE_ERROR (§6.5), HEADERS and PUSH_PROMISE padding is measured after
the priority fields / promised id (§6.2, §6.6). The low-level ``scan_frames`` must agree with
hyperframe's ``Frame.parse_frame_header``; serializers must give hyperframe's bytes. Arbitrary
bytes are in ``test_frames_fuzz.py``.
"""
from __future__ import annotations

import contextlib
import struct

import h2.config
import h2.connection
import pytest
from h2.exceptions import (
    DenialOfServiceError,
    FrameDataMissingError,
    FrameTooLargeError,
    ProtocolError,
)
from h2.frame_buffer import FrameBuffer as H2FrameBuffer
from hyperframe.exceptions import InvalidFrameError, InvalidPaddingError
from hyperframe.flags import Flags
from hyperframe.frame import (
    AltSvcFrame,
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.builds import implementations

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
NO_BLOCK_BOUND = 1 << 40    # h2's buffer has no header-block bound: lift ours to compare


@pytest.fixture(scope="module", params=implementations("frames"))
def impl(request):
    return request.param


# ---- helpers shared with test_frames_fuzz.py --------------------------------------------------

def frame_state(frame):
    """Class and every attribute of a frame, flags as their name sets."""
    attrs = dict(vars(frame))
    flags = attrs.pop("flags")
    assert type(flags) is Flags
    return (type(frame), attrs, set(flags._flags), set(flags._valid_flags))


def feed(buffer, chunks, max_frame_size):
    """Feed chunks as h2's ``receive_data`` does; (frame states, exception or None)."""
    frames = []
    try:
        for chunk in chunks:
            buffer.add_data(chunk)
            buffer.max_frame_size = max_frame_size
            frames.extend(frame_state(f) for f in buffer)
    except Exception as exc:   # noqa: BLE001 - the class is what is compared
        return frames, exc
    return frames, None


@contextlib.contextmanager
def rfc9113_hyperframe():
    """hyperframe with its three departures from RFC 9113 corrected, for the reference run.

    * §6.5: "a SETTINGS frame with the ACK flag set and a length field value other than 0
      MUST be treated as a connection error of type FRAME_SIZE_ERROR" (hyperframe raises
      InvalidDataError, which h2 turns into PROTOCOL_ERROR);
    * §6.2 / §6.6: padding "that exceeds the size remaining for the field block fragment" is a
      PROTOCOL_ERROR: what remains after Pad Length, priority fields and promised stream id
      (hyperframe leaves the priority fields / promised id out of that sum).
    """
    originals = {cls: cls.parse_body for cls in (SettingsFrame, HeadersFrame, PushPromiseFrame)}

    def settings_body(self, data):
        if "ACK" in self.flags and len(data):
            raise InvalidFrameError("SETTINGS ACK with a payload")
        originals[SettingsFrame](self, data)

    def padded_body(cls, room):
        def parse_body(self, data):
            try:
                originals[cls](self, data)
            except InvalidPaddingError:
                pass
            taken = room(self) if "PADDED" in self.flags else 0
            if "PADDED" in self.flags and self.pad_length > len(data) - taken:
                raise InvalidPaddingError("Padding is too long.")
        return parse_body

    SettingsFrame.parse_body = settings_body
    HeadersFrame.parse_body = padded_body(
        HeadersFrame, lambda f: 6 if "PRIORITY" in f.flags else 1)
    PushPromiseFrame.parse_body = padded_body(PushPromiseFrame, lambda f: 5)
    try:
        yield
    finally:
        for cls, method in originals.items():
            cls.parse_body = method


def expected_outcome(data_chunks, max_frame_size, server):
    """h2's buffer (on RFC 9113-corrected hyperframe) on the chunks, plus our documented
    difference: ours raises FrameTooLargeError as soon as the header is there, so an oversized
    frame left incomplete at the end (h2 still waiting) is an error for us.
    """
    ref = H2FrameBuffer(server=server)
    with rfc9113_hyperframe():
        frames, exc = feed(ref, data_chunks, max_frame_size)
    if exc is None and len(ref._data) >= 9:
        length = int.from_bytes(ref._data[:3], "big")
        if length > max_frame_size:
            exc = FrameTooLargeError("early")
    return frames, exc


def same_error(ours, ref) -> bool:
    if ours is None or ref is None:
        return ours is None and ref is None
    if type(ref) is InvalidPaddingError:   # h2's buffer lets hyperframe's class through
        return isinstance(ours, ProtocolError) and isinstance(ours, InvalidPaddingError)
    return type(ours) is type(ref)


def chunked(data: bytes, cuts) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for point in points + [len(data)]:
        out.append(data[last:point])
        last = point
    return out


stream_ids = st.integers(1, 2**31 - 1)
small_bytes = st.binary(max_size=64)


@st.composite
def padded(draw, frame):
    if draw(st.booleans()):
        frame.flags.add("PADDED")
        frame.pad_length = draw(st.integers(0, 255))
    return frame


@st.composite
def single_frames(draw):
    """Valid non-header-block frames of every type h2 may receive."""
    kind = draw(st.sampled_from(["data", "headers", "priority", "rst", "settings", "ping",
                                 "goaway", "window", "altsvc", "ext", "continuation"]))
    sid = draw(stream_ids)
    if kind == "data":
        f = draw(padded(DataFrame(sid, data=draw(small_bytes))))
        if draw(st.booleans()):
            f.flags.add("END_STREAM")
    elif kind == "headers":
        f = draw(padded(HeadersFrame(sid, data=draw(small_bytes))))
        f.flags.add("END_HEADERS")
        if draw(st.booleans()):
            f.flags.add("END_STREAM")
        if draw(st.booleans()):
            f.flags.add("PRIORITY")
            f.depends_on = draw(st.integers(0, 2**31 - 1))
            f.stream_weight = draw(st.integers(0, 255))
            f.exclusive = draw(st.booleans())
    elif kind == "priority":
        f = PriorityFrame(sid, depends_on=draw(st.integers(0, 2**31 - 1)),
                          stream_weight=draw(st.integers(0, 255)), exclusive=draw(st.booleans()))
    elif kind == "rst":
        f = RstStreamFrame(sid, error_code=draw(st.integers(0, 2**32 - 1)))
    elif kind == "settings":
        if draw(st.booleans()):
            f = SettingsFrame(0, flags=["ACK"])
        else:
            f = SettingsFrame(0, settings=draw(st.dictionaries(
                st.integers(0, 255), st.integers(0, 2**32 - 1), max_size=6)))
    elif kind == "ping":
        f = PingFrame(0, opaque_data=draw(st.binary(min_size=8, max_size=8)),
                      flags=["ACK"] if draw(st.booleans()) else [])
    elif kind == "goaway":
        f = GoAwayFrame(0, last_stream_id=draw(st.integers(0, 2**31 - 1)),
                        error_code=draw(st.integers(0, 2**32 - 1)),
                        additional_data=draw(small_bytes))
    elif kind == "window":
        f = WindowUpdateFrame(draw(st.sampled_from([0, sid])),
                              window_increment=draw(st.integers(1, 2**31 - 1)))
    elif kind == "altsvc":
        f = AltSvcFrame(draw(st.sampled_from([0, sid])), origin=draw(small_bytes),
                        field=draw(small_bytes))
    elif kind == "continuation":   # outside a header block: delivered as is
        f = ContinuationFrame(sid, data=draw(small_bytes),
                              flags=["END_HEADERS"] if draw(st.booleans()) else [])
    else:
        body = draw(small_bytes)
        f = ExtensionFrame(type=draw(st.integers(11, 255)),
                           stream_id=draw(st.integers(0, 2**31 - 1)),
                           flag_byte=draw(st.integers(0, 255)), body=body)
        f.body_len = len(body)
    return f.serialize()


@st.composite
def header_blocks(draw):
    """HEADERS or PUSH_PROMISE without END_HEADERS, then CONTINUATIONs, the last with it."""
    sid = draw(stream_ids)
    if draw(st.booleans()):
        first = draw(padded(HeadersFrame(sid, data=draw(small_bytes))))
        if draw(st.booleans()):
            first.flags.add("PRIORITY")
            first.depends_on = draw(st.integers(0, 2**31 - 1))
            first.stream_weight = draw(st.integers(0, 255))
        if draw(st.booleans()):
            first.flags.add("END_STREAM")
    else:
        promised = 2 * draw(st.integers(1, 2**30 - 1))
        first = draw(padded(PushPromiseFrame(sid, data=draw(small_bytes),
                                             promised_stream_id=promised)))
    parts = [first.serialize()]
    count = draw(st.integers(1, 5))
    for i in range(count):
        parts.append(ContinuationFrame(sid, data=draw(small_bytes),
                                       flags=["END_HEADERS"] if i == count - 1 else []).serialize())
    return b"".join(parts)


@st.composite
def mangle(draw, frame_bytes: bytes) -> bytes:
    """Set undefined flag bits (§4.1: ignored) and the reserved stream id bit (§4.1: ignored)."""
    out = bytearray(frame_bytes)
    if draw(st.booleans()):
        out[4] |= draw(st.integers(0, 255)) & ~0x2D & 0xFF   # bits no known type defines
    if draw(st.booleans()):
        out[5] |= 0x80
    return bytes(out)


frame_streams = st.lists(
    st.one_of(single_frames(), header_blocks()).flatmap(mangle), max_size=12).map(b"".join)


# ---- FrameBuffer: equal to h2's buffer on valid input -----------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=frame_streams, cuts=st.lists(st.integers(0, 10**6), max_size=8),
       server=st.booleans())
def test_framebuffer_equals_h2_on_random_frames_random_chunks(impl, body, cuts, server):
    data = (PREFACE if server else b"") + body
    chunks = chunked(data, cuts)
    ref_frames, ref_exc = expected_outcome(chunks, 16384, server)
    assert ref_exc is None
    ours = impl.FrameBuffer(server=server)
    ours.max_header_block_size = NO_BLOCK_BOUND
    frames, exc = feed(ours, chunks, 16384)
    assert exc is None
    assert frames == ref_frames


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=frame_streams)
def test_framebuffer_equals_h2_one_byte_at_a_time_and_all_at_once(impl, body):
    data = PREFACE + body
    ref_frames, _ = expected_outcome([data], 16384, True)
    for chunks in ([data[i:i + 1] for i in range(len(data))], [data]):
        frames, exc = feed(impl.FrameBuffer(server=True), chunks, 16384)
        assert exc is None
        assert frames == ref_frames


def test_framebuffer_accepts_bytearray_and_memoryview(impl):
    data = (PREFACE + SettingsFrame(0, settings={1: 2}).serialize()
            + PingFrame(0, b"12345678").serialize())
    ref, _ = expected_outcome([data], 16384, True)
    for kind in (bytearray, memoryview, bytes):
        frames, exc = feed(impl.FrameBuffer(server=True), [kind(data[:30]), kind(data[30:])], 16384)
        assert exc is None and frames == ref


def test_header_block_joined_into_first_frame_rfc9113_6_10(impl):
    first = HeadersFrame(3, data=b"abc", flags=["END_STREAM", "PADDED"], pad_length=2)
    data = (first.serialize() + ContinuationFrame(3, data=b"def").serialize()
            + ContinuationFrame(3, data=b"gh", flags=["END_HEADERS"]).serialize())
    buf = impl.FrameBuffer()
    buf.max_frame_size = 16384
    buf.add_data(data)
    (frame,) = list(buf)
    assert type(frame) is HeadersFrame
    assert frame.data == b"abcdefgh"
    assert set(frame.flags) == {"END_STREAM", "PADDED", "END_HEADERS"}
    assert frame.pad_length == 2 and frame.body_len == len(first.serialize()) - 9 - 1
    assert impl.scan_frames(data) == [(len(first.serialize()) - 9, 1, 0x0D, 3)]


def test_unknown_frame_type_is_extension_frame_rfc9113_5_5(impl):
    data = b"\x00\x00\x03\xfa\xff\x80\x00\x00\x07xyz"
    buf = impl.FrameBuffer()
    buf.max_frame_size = 16384
    buf.add_data(data)
    (frame,) = list(buf)
    assert type(frame) is ExtensionFrame
    assert (frame.type, frame.flag_byte, frame.stream_id, frame.body, frame.body_len) == (
        0xFA, 0xFF, 7, b"xyz", 3)
    assert impl.scan_frames(data) == [(3, 0xFA, 0xFF, 7)]


def test_frames_work_in_a_real_h2_connection(impl):
    """h2's H2Connection with our buffer produces the events and bytes it does with its own."""
    from hpack import Encoder
    block = Encoder().encode([(":method", "GET"), (":path", "/"), (":scheme", "https"),
                              (":authority", "x")])
    data = (PREFACE + SettingsFrame(0, settings={4: 100000}).serialize()
            + HeadersFrame(1, data=block[:5]).serialize()
            + ContinuationFrame(1, data=block[5:], flags=["END_HEADERS"]).serialize()
            + DataFrame(1, data=b"x" * 50, flags=["END_STREAM", "PADDED"], pad_length=9).serialize()
            + PingFrame(0, b"abcdefgh").serialize()
            + WindowUpdateFrame(0, window_increment=5).serialize()
            + ExtensionFrame(type=0x20, stream_id=0, body=b"?").serialize())
    results = []
    for use_ours in (False, True):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        if use_ours:
            conn.incoming_buffer = impl.FrameBuffer(server=True)
        conn.initiate_connection()
        conn.data_to_send()
        events = []
        for i in range(0, len(data), 7):
            events.extend(conn.receive_data(data[i:i + 7]))
        results.append(([repr(e) for e in events], conn.data_to_send()))
    assert results[0] == results[1]
    assert len(results[0][0]) >= 6


# ---- FrameBuffer: errors ------------------------------------------------------------------------

def raw_frame(ftype: int, flags: int, stream_id: int, payload: bytes,
              length: int | None = None) -> bytes:
    length = len(payload) if length is None else length
    return (length.to_bytes(3, "big") + bytes([ftype, flags]) + stream_id.to_bytes(4, "big")
            + payload)


BAD_FRAMES = {
    # RFC 9113 §6.1/§6.2/§6.6: padding as long as the payload -> PROTOCOL_ERROR
    "data padding too long": raw_frame(0, 0x08, 1, b"\x05abcd"),
    "data pad length missing": raw_frame(0, 0x08, 1, b""),
    "headers padding too long": raw_frame(1, 0x0C, 1, b"\x04abc"),
    "data padding equal to payload": raw_frame(0, 0x08, 1, b"\x04abc"),
    "headers padding over the fragment": raw_frame(1, 0x0C, 1, b"\x04abc"),
    "headers padding over priority fields": raw_frame(1, 0x2C, 1, b"\x06" + b"\x00" * 5 + b"ab"),
    "push promise padding over promised id": raw_frame(5, 0x0C, 1, b"\x02\x00\x00\x00\x02a"),
    "headers padding equal to rest with priority":
        raw_frame(1, 0x2C, 1, b"\x07" + b"\x00" * 5 + b"ab"),
    "push promise padding equal to payload": raw_frame(5, 0x0C, 1, b"\x06\x00\x00\x00\x02a"),
    "headers priority missing": raw_frame(1, 0x24, 1, b"\x00\x00\x00"),
    "push promise padding too long": raw_frame(5, 0x0C, 1, b"\x09\x00\x00\x00\x02abcd"),
    "push promise promised id missing": raw_frame(5, 0x04, 1, b"\x00\x00\x02"),
    "push promise odd promised id": raw_frame(5, 0x04, 1, b"\x00\x00\x00\x03"),
    "push promise zero promised id": raw_frame(5, 0x04, 1, b"\x00\x00\x00\x00"),
    # fixed lengths (§6.3, §6.4, §6.5, §6.7, §6.8, §6.9) -> FRAME_SIZE_ERROR in h2's terms
    "ping 7": raw_frame(6, 0, 0, b"1234567"),
    "ping 9": raw_frame(6, 0, 0, b"123456789"),
    "window update 3": raw_frame(8, 0, 1, b"\x00\x00\x01"),
    "window update 5": raw_frame(8, 0, 1, b"\x00\x00\x00\x01\x00"),
    "rst stream 3": raw_frame(3, 0, 1, b"\x00\x00\x01"),
    "rst stream 5": raw_frame(3, 0, 1, b"\x00\x00\x00\x01\x00"),
    "priority 4": raw_frame(2, 0, 1, b"\x00\x00\x00\x01"),
    "priority 6": raw_frame(2, 0, 1, b"\x00\x00\x00\x01\x00\x00"),
    "settings 5": raw_frame(4, 0, 0, b"\x00\x01\x00\x00\x00"),
    "settings 7": raw_frame(4, 0, 0, b"\x00\x01\x00\x00\x00\x00\x00"),
    "goaway 7": raw_frame(7, 0, 0, b"\x00" * 7),
    "altsvc 1": raw_frame(10, 0, 0, b"\x00"),
    "altsvc origin short": raw_frame(10, 0, 0, b"\x00\x05abc"),
    # content rules
    "settings ack with payload": raw_frame(4, 0x01, 0, b"\x00\x01\x00\x00\x00\x01"),
    "window update zero": raw_frame(8, 0, 0, b"\x00\x00\x00\x00"),
    "window update reserved bit": raw_frame(8, 0, 0, b"\x80\x00\x00\x01"),
    # stream association (§6.x: "MUST be associated with a stream" / "not associated")
    "data on stream 0": raw_frame(0, 0, 0, b"x"),
    "headers on stream 0": raw_frame(1, 4, 0, b"x"),
    "priority on stream 0": raw_frame(2, 0, 0, b"\x00" * 5),
    "rst on stream 0": raw_frame(3, 0, 0, b"\x00" * 4),
    "push promise on stream 0": raw_frame(5, 4, 0, b"\x00\x00\x00\x02"),
    "continuation on stream 0": raw_frame(9, 4, 0, b""),
    "settings on stream 1": raw_frame(4, 0, 1, b""),
    "ping on stream 1": raw_frame(6, 0, 1, b"\x00" * 8),
    "goaway on stream 1": raw_frame(7, 0, 1, b"\x00" * 8),
    # RFC 9113 §6.10: only CONTINUATION on the same stream inside a header block
    "frame inside header block": raw_frame(1, 0, 1, b"a") + raw_frame(6, 0, 0, b"\x00" * 8),
    "continuation on other stream": raw_frame(1, 0, 1, b"a") + raw_frame(9, 4, 3, b"b"),
    "headers inside header block": raw_frame(1, 0, 1, b"a") + raw_frame(1, 4, 1, b"b"),
    "too many continuations": raw_frame(1, 0, 1, b"a") + raw_frame(9, 0, 1, b"b") * 63
    + raw_frame(9, 4, 1, b"c"),
    # RFC 9113 §4.2
    "frame over max size": raw_frame(0, 0, 1, b"x" * 16385),
}
EXPECTED = {
    "data padding too long": InvalidPaddingError, "headers padding too long": InvalidPaddingError,
    "push promise padding too long": InvalidPaddingError, "frame over max size": FrameTooLargeError,
    "data padding equal to payload": InvalidPaddingError,
    "headers padding over the fragment": InvalidPaddingError,
    "headers padding over priority fields": InvalidPaddingError,
    "push promise padding over promised id": InvalidPaddingError,
    "settings ack with payload": FrameDataMissingError,
    "headers padding equal to rest with priority": InvalidPaddingError,
    "push promise padding equal to payload": InvalidPaddingError,
}


@pytest.mark.parametrize("frame", [
    raw_frame(0, 0x08, 1, b"\x03abc"),                         # DATA: padding = payload - 1
    raw_frame(1, 0x0C, 1, b"\x02abc"),                         # HEADERS: one fragment byte
    raw_frame(1, 0x0C, 1, b"\x03abc"),                         # HEADERS: empty fragment (h2: error)
    raw_frame(1, 0x2C, 1, b"\x02" + b"\x00" * 5 + b"ab"),      # HEADERS+PRIORITY: empty fragment
    raw_frame(5, 0x0C, 1, b"\x01\x00\x00\x00\x02a"),          # PUSH_PROMISE: empty fragment
])
def test_padding_that_fits_is_accepted_rfc9113_6_1_6_2_6_6(impl, frame):
    ref_frames, ref_exc = expected_outcome([frame], 16384, False)
    frames, exc = feed(impl.FrameBuffer(), [frame], 16384)
    assert ref_exc is None and exc is None
    assert frames == ref_frames and len(frames) == 1


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_bad_frames_raise_what_h2s_buffer_raises(impl, name):
    data = BAD_FRAMES[name]
    ref_frames, ref_exc = expected_outcome([data], 16384, False)
    assert ref_exc is not None
    if name in EXPECTED:
        assert type(ref_exc) is EXPECTED[name]
    elif "missing" in name or any(c.isdigit() for c in name.split()[-1]):
        assert type(ref_exc) in (FrameDataMissingError, ProtocolError)
    for chunks in ([data], [data[i:i + 1] for i in range(len(data))]):
        frames, exc = feed(impl.FrameBuffer(), chunks, 16384)
        assert frames == ref_frames
        assert same_error(exc, ref_exc), (exc, ref_exc)


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_bad_frames_give_h2_connection_the_same_goaway(impl, name):
    """Through H2Connection.receive_data: same exception class and the same bytes to send
    (GOAWAY with the same error code) as h2 with its own buffer (on RFC 9113 hyperframe)."""
    outcomes = []
    for use_ours in (False, True):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        if use_ours:
            conn.incoming_buffer = impl.FrameBuffer(server=True)
        conn.initiate_connection()
        conn.receive_data(PREFACE + SettingsFrame(0).serialize())
        conn.data_to_send()
        with pytest.raises(ProtocolError) as info, (
                contextlib.nullcontext() if use_ours else rfc9113_hyperframe()):
            conn.receive_data(BAD_FRAMES[name])
        outcomes.append((type(info.value) if not isinstance(info.value, InvalidPaddingError)
                         else ProtocolError, conn.data_to_send()))
    assert outcomes[0] == outcomes[1]


def test_oversized_frame_rejected_before_its_payload_arrives_rfc9113_4_2(impl):
    buf = impl.FrameBuffer()
    buf.max_frame_size = 16384
    buf.add_data(raw_frame(0, 0, 1, b"", length=16385))   # the header only
    with pytest.raises(FrameTooLargeError):
        next(buf)
    assert buf.buffered == 9
    ref = H2FrameBuffer()
    ref.max_frame_size = 16384
    ref.add_data(raw_frame(0, 0, 1, b"", length=16385))
    assert list(ref) == []       # h2 waits for 16 KiB it will reject
    ref.add_data(b"x" * 16385)
    with pytest.raises(FrameTooLargeError):
        list(ref)


def test_frame_of_exactly_max_size_is_accepted(impl):
    buf = impl.FrameBuffer()
    buf.max_frame_size = 100
    buf.add_data(raw_frame(0, 1, 1, b"y" * 100))
    (frame,) = list(buf)
    assert frame.data == b"y" * 100


def test_default_max_frame_size_is_zero_like_h2(impl):
    buf = impl.FrameBuffer()
    buf.add_data(SettingsFrame(0, flags=["ACK"]).serialize() + PingFrame(0).serialize())
    assert type(next(buf)) is SettingsFrame
    with pytest.raises(FrameTooLargeError):
        next(buf)


@pytest.mark.parametrize("split", [1, 5, 23, 24, 30])
def test_bad_preface_raises_as_soon_as_it_differs_rfc9113_3_4(impl, split):
    bad = bytearray(PREFACE)
    bad[23] ^= 1
    buf = impl.FrameBuffer(server=True)
    first, rest = bytes(bad[:split]), bytes(bad[split:])
    if split <= 23:
        buf.add_data(first)
        with pytest.raises(ProtocolError):
            buf.add_data(rest)
    else:
        with pytest.raises(ProtocolError):
            buf.add_data(first)
    client = impl.FrameBuffer(server=False)   # a client buffer expects no preface
    client.add_data(PREFACE[:8])
    assert client.buffered == 8


def test_header_block_of_64_frames_accepted_65_rejected(impl):
    for count, ok in ((63, True), (64, False)):
        data = (raw_frame(1, 0, 1, b"a") + raw_frame(9, 0, 1, b"b") * (count - 1)
                + raw_frame(9, 4, 1, b"c"))
        buf = impl.FrameBuffer()
        buf.max_frame_size = 16384
        buf.add_data(data)
        if ok:
            (frame,) = list(buf)
            assert frame.data == b"a" + b"b" * (count - 1) + b"c"
        else:
            with pytest.raises(ProtocolError):
                list(buf)


@pytest.mark.parametrize("first_type", [1, 5])
def test_header_block_larger_than_bound_is_denial_of_service(impl, first_type):
    prefix = b"\x00\x00\x00\x02" if first_type == 5 else b""
    limit = 1000
    for extra, ok in ((0, True), (1, False)):
        data = (raw_frame(first_type, 0, 1, prefix + b"a" * 400)
                + raw_frame(9, 0, 1, b"b" * 400) + raw_frame(9, 4, 1, b"c" * (200 + extra)))
        buf = impl.FrameBuffer()
        buf.max_frame_size = 16384
        buf.max_header_block_size = limit
        buf.add_data(data)
        if ok:
            assert len(list(buf)[0].data) == limit
        else:
            with pytest.raises(DenialOfServiceError) as info:
                list(buf)
            assert isinstance(info.value, ProtocolError)
    single = impl.FrameBuffer()       # one HEADERS frame carrying the whole block
    single.max_frame_size = 1 << 20
    single.max_header_block_size = limit
    single.add_data(raw_frame(1, 4, 1, b"z" * (limit + 1)))
    with pytest.raises(DenialOfServiceError):
        next(single)
    assert impl.FrameBuffer().max_header_block_size == 262144


def test_buffered_bytes_bounded_by_one_frame_plus_one_read(impl):
    payloads = [bytes([i]) * 16384 for i in range(20)]
    data = b"".join(DataFrame(1 + 2 * i, data=p).serialize() for i, p in enumerate(payloads))
    buf = impl.FrameBuffer()
    read = 5000
    frames = []
    for i in range(0, len(data), read):
        buf.add_data(data[i:i + read])
        buf.max_frame_size = 16384
        frames.extend(buf)
        assert buf.buffered < 9 + 16384
    assert [f.data for f in frames] == payloads and buf.buffered == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), sizes=st.lists(st.integers(0, 20000), min_size=1, max_size=12),
       reads=st.lists(st.integers(1, 40000), min_size=1, max_size=30))
def test_large_frames_in_random_reads_equal_h2(impl, seed, sizes, reads):
    """Frames up to max size in reads of any size: exercises the read buffer's compaction."""
    import random
    rng = random.Random(seed)
    data = b"".join(DataFrame(1 + 2 * i, data=rng.randbytes(n)).serialize()
                    for i, n in enumerate(sizes))
    chunks, position = [], 0
    for i in range(10**6):
        if position >= len(data):
            break
        size = reads[i % len(reads)]
        chunks.append(data[position:position + size])
        position += size
    ref_frames, ref_exc = expected_outcome(chunks, 20000, False)
    frames, exc = feed(impl.FrameBuffer(), chunks, 20000)
    assert ref_exc is None and exc is None
    assert frames == ref_frames and len(frames) == len(sizes)


# ---- low-level scan -----------------------------------------------------------------------------

def reference_scan(data: bytes):
    """(length, type, defined flags, stream id) per delivered frame, from hyperframe."""
    out, position, block = [], 0, None
    while position + 9 <= len(data):
        frame, length = Frame.parse_frame_header(memoryview(data[position:position + 9]))
        position += 9 + length
        if isinstance(frame, ExtensionFrame):
            flags = frame.flag_byte
        else:
            flags = sum(bit for name, bit in frame.defined_flags if name in frame.flags)
        item = (length, frame.type, flags, frame.stream_id)
        if block is not None:
            if flags & 0x04:
                out.append(block[:2] + (block[2] | 0x04,) + block[3:])
                block = None
        elif frame.type in (1, 5) and not flags & 0x04:
            block = item
        else:
            out.append(item)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=frame_streams)
def test_scan_frames_agrees_with_hyperframe_parse_frame_header(impl, body):
    expected = reference_scan(body)
    assert impl.scan_frames(body, max_header_block_size=NO_BLOCK_BOUND) == expected
    assert impl.count_frames(body, max_header_block_size=NO_BLOCK_BOUND) == len(expected)
    assert impl.scan_frames(PREFACE + body, server=True,
                            max_header_block_size=NO_BLOCK_BOUND) == expected


@settings(max_examples=300, deadline=None)
@given(header=st.binary(min_size=9, max_size=20))
def test_parse_frame_header_agrees_with_hyperframe_rfc9113_4_1(impl, header):
    length, ftype, flags, stream_id = impl.parse_frame_header(header)
    high, low, ref_type, ref_flags, ref_sid = struct.unpack(">HBBBL", header[:9])
    assert (length, ftype, flags, stream_id) == ((high << 8) | low, ref_type, ref_flags,
                                                 ref_sid & 0x7FFFFFFF)
    try:
        frame, ref_length = Frame.parse_frame_header(memoryview(header[:9]))
    except Exception:   # noqa: BLE001 - hyperframe rejects the stream id for the type
        return
    assert (ref_length, frame.type, frame.stream_id) == (length, ftype, stream_id)


def test_parse_frame_header_needs_nine_bytes(impl):
    with pytest.raises(InvalidFrameError):
        impl.parse_frame_header(b"\x00" * 8)


def test_scan_frames_raises_like_the_buffer(impl):
    for name, data in BAD_FRAMES.items():
        ref_frames, ref_exc = expected_outcome([data], 16384, False)
        with pytest.raises(Exception) as info:
            impl.scan_frames(data)
        assert same_error(info.value, ref_exc), name


# ---- serializers --------------------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(frame_bytes=st.one_of(single_frames(), header_blocks()))
def test_serialize_frame_equals_hyperframe_serialize(impl, frame_bytes):
    position = 0
    while position < len(frame_bytes):
        header = memoryview(frame_bytes[position:position + 9])
        frame, length = Frame.parse_frame_header(header)
        body = memoryview(frame_bytes[position + 9:position + 9 + length])
        twin, _ = Frame.parse_frame_header(header)
        with rfc9113_hyperframe():   # a padded HEADERS frame may have an empty fragment
            frame.parse_body(body)
            twin.parse_body(body)
        position += 9 + length
        assert impl.serialize_frame(frame) == twin.serialize()
        assert frame_state(frame) == frame_state(twin)   # same side effects (body_len)


@pytest.mark.parametrize("make", [
    lambda: DataFrame(1, data=memoryview(b"abc")),
    lambda: DataFrame(1, data=bytearray(b"abc")),
    lambda: DataFrame(1, data=b"abc", pad_length=3),            # padding without PADDED
    lambda: DataFrame(1, data=b"abc", flags=["PADDED"], pad_length=300),
    lambda: HeadersFrame(1, data=b"h", flags=["PRIORITY"], depends_on=2**31, exclusive=True),
    lambda: HeadersFrame(1, data=b"h", flags=["PRIORITY"], stream_weight=256),
    lambda: SettingsFrame(0, settings={0x1234: 5}),               # hyperframe masks the id
    lambda: SettingsFrame(0, settings={1: 2**32}),
    lambda: PingFrame(0, opaque_data=b"123"),
    lambda: PingFrame(0, opaque_data=b"123456789"),
    lambda: WindowUpdateFrame(1, window_increment=2**31 + 7),
    lambda: GoAwayFrame(0, last_stream_id=2**31 + 3, additional_data=bytearray(b"d")),
    lambda: RstStreamFrame(1, error_code=-1),
    lambda: AltSvcFrame(0, origin=b"o" * 70000),
    lambda: ExtensionFrame(type=0x33, stream_id=5, flag_byte=3, body=b"e"),
    lambda: PushPromiseFrame(1, promised_stream_id=2**32, data=b"p"),
    lambda: PriorityFrame(1, depends_on=7, stream_weight=3, exclusive=True),
])
def test_serialize_frame_unusual_values_match_hyperframe(impl, make):
    ref_frame, frame = make(), make()
    try:
        expected = ref_frame.serialize()
    except Exception as exc:   # noqa: BLE001 - hyperframe's error must be ours
        with pytest.raises(type(exc)):
            impl.serialize_frame(frame)
        return
    assert impl.serialize_frame(frame) == expected
    assert frame.body_len == ref_frame.body_len


def parse_all(data: bytes):
    frames, position = [], 0
    while position < len(data):
        frame, length = Frame.parse_frame_header(memoryview(data[position:position + 9]))
        frame.parse_body(memoryview(data[position + 9:position + 9 + length]))
        frames.append((frame, length))
        position += 9 + length
    assert position == len(data)
    return frames


@settings(max_examples=200, deadline=None)
@given(sid=stream_ids, payload=st.binary(max_size=300), end_stream=st.booleans(),
       max_frame_size=st.integers(1, 120))
def test_headers_frames_split_into_continuations_rfc9113_6_10(impl, sid, payload, end_stream,
                                                              max_frame_size):
    out = impl.headers_frames(sid, payload, end_stream, max_frame_size)
    frames = parse_all(out)
    assert len(frames) == max(1, -(-len(payload) // max_frame_size))
    assert type(frames[0][0]) is HeadersFrame
    assert all(type(f) is ContinuationFrame for f, _ in frames[1:])
    assert all(f.stream_id == sid and n <= max_frame_size for f, n in frames)
    assert b"".join(f.data for f, _ in frames) == payload
    assert ("END_STREAM" in frames[0][0].flags) == end_stream
    assert ["END_HEADERS" in f.flags for f, _ in frames] == [False] * (len(frames) - 1) + [True]
    buffer = impl.WriteBuffer()
    buffer.add_headers_frames(sid, payload, end_stream, max_frame_size)
    assert buffer.take() == out and len(buffer) == 0


@settings(max_examples=200, deadline=None)
@given(sid=stream_ids, payload=st.binary(max_size=300), end_stream=st.booleans(),
       max_frame_size=st.integers(1, 120))
def test_data_frames_split_by_max_frame_size_rfc9113_6_1(impl, sid, payload, end_stream,
                                                         max_frame_size):
    out = impl.data_frames(sid, memoryview(payload), end_stream, max_frame_size)
    frames = parse_all(out)
    assert len(frames) == max(1, -(-len(payload) // max_frame_size))
    assert all(type(f) is DataFrame and f.stream_id == sid and n <= max_frame_size
               for f, n in frames)
    assert b"".join(f.data for f, _ in frames) == payload
    assert ["END_STREAM" in f.flags for f, _ in frames] == (
        [False] * (len(frames) - 1) + [end_stream])
    buffer = impl.WriteBuffer()
    buffer.write(b"#")
    buffer.add_data_frames(sid, payload, end_stream, max_frame_size)
    assert buffer.getvalue() == b"#" + out


@settings(max_examples=200, deadline=None)
@given(settings_=st.dictionaries(st.integers(0, 255), st.integers(0, 2**32 - 1), max_size=8),
       sid=st.integers(0, 2**31 - 1), value=st.integers(1, 2**31 - 1),
       code=st.integers(0, 2**32 - 1), opaque=st.binary(max_size=8), ack=st.booleans(),
       debug=st.binary(max_size=40))
def test_direct_serializers_equal_hyperframe(impl, settings_, sid, value, code, opaque, ack, debug):
    flags = ["ACK"] if ack else []
    assert impl.settings_frame(settings_) == SettingsFrame(0, settings=settings_).serialize()
    assert impl.settings_frame({}, ack=True) == SettingsFrame(0, flags=["ACK"]).serialize()
    assert impl.window_update_frame(sid, value) == WindowUpdateFrame(
        sid, window_increment=value).serialize()
    assert impl.ping_frame(opaque, ack) == PingFrame(0, opaque_data=opaque, flags=flags).serialize()
    assert (impl.rst_stream_frame(sid or 1, code)
            == RstStreamFrame(sid or 1, error_code=code).serialize())
    assert impl.goaway_frame(sid, code, debug) == GoAwayFrame(
        last_stream_id=sid, error_code=code, additional_data=debug).serialize()
    assert (impl.goaway_frame(sid, code)
            == GoAwayFrame(last_stream_id=sid, error_code=code).serialize())
    buffer = impl.WriteBuffer()
    buffer.add_settings(settings_)
    buffer.add_window_update(sid, value)
    buffer.add_ping(opaque, ack)
    buffer.add_rst_stream(sid, code)
    buffer.add_goaway(sid, code, debug)
    buffer.add_frame(PriorityFrame(max(sid, 1), depends_on=3))
    assert buffer.take() == b"".join([
        impl.settings_frame(settings_), impl.window_update_frame(sid, value),
        impl.ping_frame(opaque, ack), impl.rst_stream_frame(sid, code),
        impl.goaway_frame(sid, code, debug), PriorityFrame(max(sid, 1), depends_on=3).serialize()])


def test_settings_frame_writes_16_bit_identifiers_rfc9113_6_5_1(impl):
    assert impl.settings_frame({0x1234: 7}) == raw_frame(4, 0, 0, b"\x12\x34\x00\x00\x00\x07")


@pytest.mark.parametrize("call, error", [
    (lambda m: m.window_update_frame(1, 0), ValueError),
    (lambda m: m.window_update_frame(2**31, 1), ValueError),
    (lambda m: m.window_update_frame(-1, 1), ValueError),
    (lambda m: m.rst_stream_frame(1, 2**32), ValueError),
    (lambda m: m.goaway_frame(2**31, 0), ValueError),
    (lambda m: m.ping_frame(b"123456789"), ValueError),
    (lambda m: m.settings_frame({1: 1}, ack=True), ValueError),
    (lambda m: m.settings_frame({0x10000: 1}), ValueError),
    (lambda m: m.settings_frame({1: -1}), ValueError),
    (lambda m: m.settings_frame(None), TypeError),
    (lambda m: m.data_frames(1, b"x", False, 0), ValueError),
    (lambda m: m.data_frames(1, b"x", False, 2**24), ValueError),
    (lambda m: m.headers_frames("1", b"x", False), TypeError),
    (lambda m: m.data_frames(1, "text", False), TypeError),
])
def test_direct_serializers_reject_bad_arguments(impl, call, error):
    with pytest.raises(error):
        call(impl)
