"""Memory behaviour of the frame layer's buffers (issue 14: RSS that plateaus under bad input).

* The object given to ``FrameBuffer.add_data`` (a whole socket read) is not referenced after the
  consumer stops: h2 stops iterating at the first frame it rejects and never comes back, and a
  read kept alive for the rest of the connection's life fragmented the heap (both twins).
* Compiled only: the read buffer holds at most one incomplete frame (missing bytes are copied
  from the next read, not the whole read), buffers come in fixed size classes from a pool, an
  emptied buffer goes back at once, and the pool keeps a bounded number of idle buffers.
"""
from __future__ import annotations

import random
import sys

import h2.config
import h2.connection
import h2.exceptions
import pytest
from hyperframe.frame import DataFrame, PingFrame, SettingsFrame, WindowUpdateFrame

from kyoukai_h2fast import _switch
from tests.helpers.builds import implementations

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.fixture(params=implementations("frames"))
def impl(request):
    return request.param


def pings(n: int) -> bytes:
    return b"".join(PingFrame(0, opaque_data=b"%08d" % i).serialize() for i in range(n))


def fresh(data: bytes) -> bytes:
    """A bytes object nobody else references (so its reference count means something)."""
    return bytes(bytearray(data))


def test_stopped_iteration_does_not_keep_the_received_object(impl):
    data = fresh(pings(5))
    baseline = sys.getrefcount(data)
    buf = impl.FrameBuffer()
    buf.max_frame_size = 16384
    buf.add_data(data)
    for frame in buf:
        assert frame.opaque_data == b"00000000"
        break                                   # the consumer stops after one frame
    assert sys.getrefcount(data) == baseline
    rest = list(buf)                            # nothing was lost
    assert [f.opaque_data for f in rest] == [b"%08d" % i for i in range(1, 5)]


def test_next_does_not_keep_the_received_object(impl):
    data = fresh(pings(3))
    baseline = sys.getrefcount(data)
    buf = impl.FrameBuffer()
    buf.max_frame_size = 16384
    buf.add_data(data)
    assert next(buf).opaque_data == b"00000000"
    assert sys.getrefcount(data) == baseline
    assert [f.opaque_data for f in buf] == [b"00000001", b"00000002"]


def test_h2_connection_error_mid_read_releases_the_read(impl):
    """h2 rejects the second frame of a read (WINDOW_UPDATE 0 on the connection, RFC 9113
    §6.9): the read, with frames after it, is not kept by the connection's buffer."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.incoming_buffer = impl.FrameBuffer(server=True)
    conn.initiate_connection()
    data = fresh(PREFACE + SettingsFrame(0).serialize()
                 + b"\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00" + pings(50))
    baseline = sys.getrefcount(data)
    with pytest.raises(h2.exceptions.ProtocolError):
        conn.receive_data(data)
    assert sys.getrefcount(data) == baseline


# ---- compiled: one frame at most, size classes, a bounded pool ---------------------------------

@pytest.fixture
def compiled():
    """The compiled module; its buffers have no pure twin (skipped only in pure builds)."""
    module = _switch.compiled("frames")
    if module is None:
        if _switch.NO_EXTENSIONS:
            pytest.skip("pure build (KYOUKAI_H2FAST_NO_EXTENSIONS): no compiled buffers")
        pytest.fail("kyoukai_h2fast._frames_c is not built")
    return module


def data_stream(sizes, seed=1) -> bytes:
    rng = random.Random(seed)
    return b"".join(DataFrame(1 + 2 * i, data=rng.randbytes(n)).serialize()
                    for i, n in enumerate(sizes))


def cut(data: bytes, reads) -> list[bytes]:
    chunks, position, i = [], 0, 0
    while position < len(data):
        size = reads[i % len(reads)]
        chunks.append(data[position:position + size])
        position += size
        i += 1
    return chunks


@pytest.mark.parametrize("copy", [False, True], ids=["add_data", "add_bytes"])
def test_c_path_with_any_reads_delivers_what_one_read_does(compiled, copy):
    rng = random.Random(7)
    for _ in range(60):
        sizes = [rng.choice([0, 1, 100, 9000, 16384]) for _ in range(rng.randint(1, 12))]
        data = data_stream(sizes, rng.randrange(1000))
        data += WindowUpdateFrame(0, window_increment=5).serialize()
        reads = [rng.choice([1, 8, 9, 10, 700, 16393, 40000]) for _ in range(5)]
        whole, _ = compiled._capi_scan_chunks([data])
        pieces, _ = compiled._capi_scan_chunks(cut(data, reads), copy=copy)
        assert pieces == whole


def test_read_buffer_holds_one_frame_not_the_whole_read(compiled):
    """A frame cut by the read boundary is completed from the next 200 KB read by copying only
    its missing bytes: the buffer stays in the class of one maximum-size frame."""
    data = data_stream([16384] * 40)
    chunks = [data[:5000], data[5000:205000], data[205000:]]
    frames, largest = compiled._capi_scan_chunks(chunks)
    assert len(frames) == 40
    limits = compiled.buffer_pool_limits()
    assert largest == min(size for size in limits if size >= 9 + 16384)


def test_emptied_buffers_are_released_at_once(compiled):
    buf = compiled.FrameBuffer()
    buf.max_frame_size = 16384
    frame = DataFrame(1, data=b"x" * 10000).serialize()
    buf.add_data(frame[:3000])
    assert list(buf) == [] and compiled._capi_capacities(buf)[0] > 0     # a partial frame
    buf.add_data(frame[3000:])
    assert len(list(buf)) == 1
    assert compiled._capi_capacities(buf) == (0, 0)                       # idle: holds nothing
    writer = compiled.WriteBuffer()
    writer.write(b"w" * 200_000)
    assert compiled._capi_capacities(writer)[0] >= 200_000
    assert len(writer.take()) == 200_000
    assert compiled._capi_capacities(writer) == (0,)                      # oversized: given back
    writer.write(b"small")
    writer.take()
    assert 0 < compiled._capi_capacities(writer)[0] <= 5 * 1024           # a standard one kept


def test_header_block_buffer_is_released_after_delivery(compiled):
    from hyperframe.frame import ContinuationFrame, HeadersFrame
    buf = compiled.FrameBuffer()
    buf.max_frame_size = 16384
    buf.add_data(HeadersFrame(1, data=b"a" * 3000).serialize()
                 + ContinuationFrame(1, data=b"b" * 3000, flags=["END_HEADERS"]).serialize())
    (headers,) = list(buf)
    assert headers.data == b"a" * 3000 + b"b" * 3000
    assert compiled._capi_capacities(buf) == (0, 0)


def test_pool_keeps_a_bounded_number_of_idle_buffers(compiled):
    limits = compiled.buffer_pool_limits()
    assert sum(size * count for size, count in limits.items()) <= 2 * 1024 * 1024
    large_before = compiled.buffer_pool_stats()["large"]
    buffers = []
    for size in (500, 1500, 3000, 5000, 9000, 17_000, 33_000, 60_000, 100_000):
        for _ in range(150):                   # more than any class keeps
            buf = compiled.FrameBuffer()
            buf.max_frame_size = 1 << 20
            buf.add_data(DataFrame(1, data=b"p" * size).serialize()[:-1])   # one byte short
            assert list(buf) == []
            buffers.append(buf)
    assert compiled.buffer_pool_stats()["large"] == large_before + 150
    del buf, buffers                            # every buffer goes back (or is freed)
    stats = compiled.buffer_pool_stats()
    assert stats.pop("large") == large_before
    assert stats == limits                      # every class full, none above its bound
