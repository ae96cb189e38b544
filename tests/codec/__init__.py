"""Tests of the wire codecs (kyoukai_h2fast.codec): frames, HPACK, header fields."""
