"""SETTINGS both ways, PING, and the connection preface, in memory (RFC 9113 §3.4, §6.5, §6.7).

Our SETTINGS go out first (what h2 sends, plus HEADER_TABLE_SIZE when configured) and apply as
the peer acknowledges them; the peer's are validated (§6.5.2), applied in order (§6.5.3) and
acknowledged once per frame; they drive our HPACK encoder and the size of our frames.
"""
from __future__ import annotations

import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from kyoukai_h2fast.config import ServerConfig
from kyoukai_h2fast.constants import CLIENT_PREFACE, ErrorCode, FrameType, Setting
from kyoukai_h2fast.errors import ConnectionFailed
from kyoukai_h2fast.http2.events import RequestReceived
from tests.helpers.engine_frames import ENGINE_PARAMS, Peer, raw_frame, twin_fault

pytestmark = pytest.mark.parametrize("engine_cls", ENGINE_PARAMS)


def test_server_preface_is_our_settings_then_the_connection_window_3_4(engine_cls):
    config = ServerConfig(max_concurrent_streams=7, stream_window=100_000,
                          connection_window=1 << 20, max_frame_size=32_768,
                          max_header_list_size=8192, header_table_size=1024)
    peer = Peer(engine_cls, config, handshake=False)
    frames = peer.take()
    assert [type(f) for f in frames] == [SettingsFrame, SettingsFrame, WindowUpdateFrame]
    assert frames[0].settings == {
        Setting.HEADER_TABLE_SIZE: 4096, Setting.ENABLE_PUSH: 0,
        Setting.INITIAL_WINDOW_SIZE: 100_000, Setting.MAX_FRAME_SIZE: 32_768,
        Setting.ENABLE_CONNECT_PROTOCOL: 1, Setting.MAX_CONCURRENT_STREAMS: 7,  # RFC 8441
        Setting.MAX_HEADER_LIST_SIZE: 8192, Setting.NO_RFC7540_PRIORITIES: 1}   # RFC 9218 §2.1
    assert frames[1].settings == {Setting.HEADER_TABLE_SIZE: 1024}
    assert (frames[2].stream_id, frames[2].window_increment) == (0, (1 << 20) - 65_535)


def test_default_table_size_and_window_need_one_settings_frame(engine_cls):
    peer = Peer(engine_cls, ServerConfig(connection_window=65_535), handshake=False)
    assert [type(f) for f in peer.take()] == [SettingsFrame]


def test_every_peer_settings_frame_is_acknowledged_once_6_5_3(engine_cls):
    peer = Peer(engine_cls)
    peer.recv(peer.ff.settings({Setting.MAX_CONCURRENT_STREAMS: 5}),
              peer.ff.settings({0x7A7A: 1, 0xF0F0: 0}),     # unknown settings: ignored
              peer.ff.settings({}))
    acks = [f for f in peer.take() if isinstance(f, SettingsFrame)]
    assert [sorted(f.flags) for f in acks] == [["ACK"]] * 3
    peer.recv(peer.ff.settings(ack=True))                   # an ACK is not acknowledged
    assert peer.take() == []


@pytest.mark.parametrize("ident,value,code", [
    (Setting.ENABLE_PUSH, 2, ErrorCode.PROTOCOL_ERROR),
    (Setting.INITIAL_WINDOW_SIZE, 2**31, ErrorCode.FLOW_CONTROL_ERROR),
    (Setting.MAX_FRAME_SIZE, 16_383, ErrorCode.PROTOCOL_ERROR),
    (Setting.MAX_FRAME_SIZE, 2**24, ErrorCode.PROTOCOL_ERROR),
    (Setting.ENABLE_CONNECT_PROTOCOL, 2, ErrorCode.PROTOCOL_ERROR),
], ids=["enable-push-2", "initial-window-2^31", "max-frame-16383", "max-frame-2^24",
        "connect-protocol-2"])
def test_settings_value_out_of_range_is_a_connection_error_6_5_2(engine_cls, ident, value, code):
    peer = Peer(engine_cls)
    assert peer.recv_error(peer.ff.settings_raw([(ident, value)])) == code


@pytest.mark.parametrize("ident,value", [(Setting.ENABLE_PUSH, 1), (Setting.ENABLE_PUSH, 0),
                                         (Setting.INITIAL_WINDOW_SIZE, 2**31 - 1),
                                         (Setting.MAX_FRAME_SIZE, 2**24 - 1),
                                         (Setting.MAX_HEADER_LIST_SIZE, 0),
                                         (Setting.HEADER_TABLE_SIZE, 2**32 - 1)])
def test_settings_values_at_the_bounds_are_accepted_6_5_2(engine_cls, ident, value):
    peer = Peer(engine_cls)
    peer.recv(peer.ff.settings_raw([(ident, value)]))
    assert [sorted(f.flags) for f in peer.take()] == [["ACK"]]


@pytest.mark.parametrize("payload,code", [
    (b"\x00" * 5, ErrorCode.FRAME_SIZE_ERROR),
], ids=["length-not-multiple-of-6"])
def test_malformed_settings_frames_are_connection_errors_6_5(engine_cls, payload, code):
    peer = Peer(engine_cls)
    assert peer.recv_error(raw_frame(FrameType.SETTINGS, 0, 0, payload)) == code


def test_settings_ack_with_a_payload_is_a_frame_size_error_6_5(engine_cls):
    peer = Peer(engine_cls)
    frame = raw_frame(FrameType.SETTINGS, 0x1, 0, b"\x00\x04\x00\x00\x00\x00")
    assert peer.recv_error(frame) == ErrorCode.FRAME_SIZE_ERROR


def test_peer_max_frame_size_sizes_our_data_and_header_frames_4_2(engine_cls):
    peer = Peer(engine_cls, settings={Setting.MAX_FRAME_SIZE: 20_000,
                                      Setting.INITIAL_WINDOW_SIZE: 1 << 20})
    peer.recv(peer.ff.window_update(0, 1 << 20))
    peer.open(1)
    big = [(b":status", b"200")] + [(b"x-h%d" % i, b"v" * 900) for i in range(40)]
    assert peer.engine.send_headers(1, big, False)
    assert peer.engine.queue_data(1, b"b" * 50_000, True)
    frames = peer.take()
    headers = [f for f in frames if isinstance(f, (HeadersFrame, ContinuationFrame))]
    assert len(headers) >= 2 and all(len(f.data) <= 20_000 for f in headers)
    assert [type(f) for f in headers] == [HeadersFrame] + [ContinuationFrame] * (len(headers) - 1)
    assert headers[0].decoded == big
    data = [len(f.data) for f in frames if isinstance(f, DataFrame)]
    assert data == [20_000, 20_000, 10_000]


def test_peer_header_table_size_drives_our_encoder_6_5_2(engine_cls):
    """SETTINGS_HEADER_TABLE_SIZE 0: our next block starts with a size update to 0 and then
    never indexes (RFC 7541 §4.2, §6.3)."""
    peer = Peer(engine_cls, settings={Setting.HEADER_TABLE_SIZE: 0})
    for sid in (1, 3):
        peer.open(sid)
        assert peer.respond(sid, status=b"200", extra=[(b"x-custom", b"value")])
        frames = peer.take()
        block = frames[0].data
        if sid == 1:
            assert block[0] == 0x20          # dynamic table size update: 0
        assert frames[0].decoded == [(b":status", b"200"), (b"x-custom", b"value")]
    assert peer.decoder.header_table_size == 0


def test_ping_is_answered_with_its_payload_and_acks_are_not_6_7(engine_cls):
    peer = Peer(engine_cls)
    peer.recv(peer.ff.ping(b"unasked!", ack=True),
              peer.ff.ping(b"\x00\x01\x02\x03\xfc\xfd\xfe\xff"))
    frames = peer.take()
    assert [(f.opaque_data, sorted(f.flags)) for f in frames if isinstance(f, PingFrame)] == [
        (b"\x00\x01\x02\x03\xfc\xfd\xfe\xff", ["ACK"])]


@pytest.mark.parametrize("length", [7, 9])
def test_ping_of_the_wrong_length_is_a_frame_size_error_6_7(engine_cls, length):
    peer = Peer(engine_cls)
    assert peer.recv_error(raw_frame(FrameType.PING, 0, 0, b"p" * length)) == \
        ErrorCode.FRAME_SIZE_ERROR


def test_bad_client_preface_is_a_protocol_error_3_4(engine_cls):
    """§3.4: a connection error PROTOCOL_ERROR ("A GOAWAY frame MAY be omitted")."""
    peer = Peer(engine_cls, handshake=False)
    peer.take()
    with pytest.raises(ConnectionFailed) as info:
        peer.recv(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    assert info.value.error_code == ErrorCode.PROTOCOL_ERROR
    assert all(isinstance(f, GoAwayFrame) and f.error_code == ErrorCode.PROTOCOL_ERROR
               for f in peer.take())
    assert peer.engine.receive(CLIENT_PREFACE) == []        # closed: ignored


def test_client_preface_split_anywhere_is_accepted_3_4(engine_cls):
    peer = Peer(engine_cls, handshake=False)
    peer.take()
    stream = peer.ff.preface() + peer.ff.request(1)
    events = []
    for i in range(len(stream)):
        events += peer.recv(stream[i:i + 1])
    assert [type(e) for e in events] == [RequestReceived]


def test_our_header_table_size_limits_the_peer_once_acknowledged_6_5_2(engine_cls):
    """Before the ACK the peer's encoder may still use 4,096 bytes (the default); after it, a
    table size update above our setting is a COMPRESSION_ERROR (RFC 7541 §6.3)."""
    peer = Peer(engine_cls, ServerConfig(header_table_size=256), handshake=False)
    peer.take()
    peer.recv(peer.ff.preface())
    block = b"\x3f\xe1\x1f" + peer.ff.block([(":method", "GET"), (":path", "/"),
                                              (":scheme", "https"), (":authority", "a")])
    assert [type(e) for e in peer.recv(peer.ff.headers_block(1, block, True))] == \
        [RequestReceived]                                     # 4,096 is still allowed
    peer.recv(peer.ff.settings(ack=True), peer.ff.settings(ack=True))
    block = b"\x3f\xe1\x1f" + peer.ff.block([(":method", "GET"), (":path", "/"),
                                              (":scheme", "https"), (":authority", "a")])
    assert peer.recv_error(peer.ff.headers_block(3, block, True)) == ErrorCode.COMPRESSION_ERROR


@pytest.mark.parametrize("first", ["ping", "settings-ack", "headers", "window-update"])
def test_the_client_preface_must_be_followed_by_settings_3_4(engine_cls, first):
    peer = Peer(engine_cls, handshake=False)
    peer.take()
    frame = {"ping": peer.ff.ping(), "settings-ack": peer.ff.settings(ack=True),
             "headers": peer.ff.request(1), "window-update": peer.ff.window_update(0, 1)}[first]
    assert peer.recv_error(CLIENT_PREFACE + frame) == ErrorCode.PROTOCOL_ERROR


def test_settings_values_are_processed_in_the_order_they_appear_6_5_3(engine_cls):
    """An invalid value is an error even when a later entry of the same frame repeats the
    setting with a valid one."""
    peer = Peer(engine_cls)
    frame = peer.ff.settings_raw([(Setting.INITIAL_WINDOW_SIZE, 2**31),
                                  (Setting.INITIAL_WINDOW_SIZE, 100)])
    if twin_fault(engine_cls, "settings-in-order"):
        peer.recv(frame)
        return
    assert peer.recv_error(frame) == ErrorCode.FLOW_CONTROL_ERROR


def test_no_rfc7540_priorities_is_0_or_1_rfc9218_2_1(engine_cls):
    peer = Peer(engine_cls)
    peer.recv(peer.ff.settings_raw([(Setting.NO_RFC7540_PRIORITIES, 1)]))
    assert peer.recv_error(peer.ff.settings_raw([(Setting.NO_RFC7540_PRIORITIES, 2)])) == \
        ErrorCode.PROTOCOL_ERROR
