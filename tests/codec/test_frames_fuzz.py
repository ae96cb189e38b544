"""Arbitrary and frame-shaped bytes into the frame buffer (RFC 9113 §4, §6), both twins.

For every input, in random chunkings: no crash and no hang, the buffered bytes stay under one
maximum-size frame, and the frames and error equal h2's ``FrameBuffer`` on the same bytes
(with our documented difference: an oversized frame fails as soon as its header is there).
``scan_frames`` agrees with iteration. ``tests/codec/fuzz_frames.py`` runs the same check under
atheris for as long as you like; ``-s`` prints how many inputs ran here.
"""
from __future__ import annotations

import collections

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.codec.test_frames import PREFACE, chunked, expected_outcome, frame_state, same_error
from tests.helpers.builds import implementations

RUNS: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", params=implementations("frames"))
def impl(request):
    return request.param


@pytest.fixture(scope="module", autouse=True)
def report_runs():
    yield
    print("\nframe fuzz inputs run:", dict(RUNS))


def check_outcome(impl, data: bytes, cuts, server: bool, max_frame_size: int) -> None:
    chunks = chunked(data, cuts)
    ref_frames, ref_exc = expected_outcome(chunks, max_frame_size, server)
    buf = impl.FrameBuffer(server=server)
    frames, exc = [], None
    try:
        for chunk in chunks:
            buf.add_data(chunk)
            buf.max_frame_size = max_frame_size
            frames.extend(frame_state(f) for f in buf)
            assert buf.buffered < 9 + max_frame_size   # at most one partial frame is kept
    except AssertionError:
        raise
    except Exception as error:   # noqa: BLE001 - the class is compared below
        exc = error
    assert frames == ref_frames
    assert same_error(exc, ref_exc), (exc, ref_exc)
    if server and not data.startswith(PREFACE):
        return
    body = data[len(PREFACE):] if server else data
    try:
        scanned = impl.scan_frames(body, max_frame_size)
    except Exception as error:   # noqa: BLE001
        assert same_error(error, ref_exc), (error, ref_exc)
    else:
        assert ref_exc is None and len(scanned) == len(ref_frames)


max_frame_sizes = st.sampled_from([0, 1, 8, 100, 16384])


@settings(max_examples=1500, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 10**4), max_size=6),
       server=st.booleans(), with_preface=st.booleans(), max_frame_size=max_frame_sizes)
def test_arbitrary_bytes_match_h2(impl, data, cuts, server, with_preface, max_frame_size):
    RUNS[f"arbitrary[{impl.__name__}]"] += 1
    check_outcome(impl, (PREFACE if with_preface else b"") + data, cuts, server, max_frame_size)


@st.composite
def shaped_frame(draw):
    """A frame header over a payload of about the announced length: reaches the body checks."""
    ftype = draw(st.one_of(st.integers(0, 10), st.integers(0, 255)))
    flags = draw(st.one_of(st.sampled_from([0, 1, 4, 5, 8, 0x20, 0x2C, 0x0C]), st.integers(0, 255)))
    stream_id = draw(st.sampled_from([0, 1, 2, 3, 0x80000001, 0x7FFFFFFF]))
    payload = bytearray(draw(st.binary(max_size=40)))
    if payload and draw(st.booleans()):   # a Pad Length near the padding bounds
        payload[0] = max(0, min(255, len(payload) + draw(st.integers(-7, 1))))
    length = len(payload) + draw(st.sampled_from([0, 0, 0, 0, -1, 1]))
    length = max(length, 0)
    return (length.to_bytes(3, "big") + bytes([ftype, flags]) + stream_id.to_bytes(4, "big")
            + bytes(payload))


@settings(max_examples=1500, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(frames=st.lists(shaped_frame(), max_size=10),
       cuts=st.lists(st.integers(0, 10**4), max_size=6),
       server=st.booleans(), max_frame_size=max_frame_sizes)
def test_frame_shaped_bytes_match_h2(impl, frames, cuts, server, max_frame_size):
    RUNS[f"shaped[{impl.__name__}]"] += 1
    check_outcome(impl, (PREFACE if server else b"") + b"".join(frames), cuts, server,
                  max_frame_size)
