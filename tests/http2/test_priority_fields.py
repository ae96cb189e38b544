"""Reading priority signals (RFC 9218 §4, §7, §8; Structured Fields, RFC 8941/RFC 9651 §4.2).

Three readers must agree: the pure one (:mod:`kyoukai_h2fast.http2.priority`, used by the h2-based
engine), the compiled engine's (C, field by field while the header block is decoded; reached
here through ``_engine_c.priority_of_lines``/``priority_of_update``/``priority_of_response``),
and an independent Structured Fields parser (``http_sf``) as the oracle of what a Dictionary
is. Values that are not a Dictionary are ignored as a whole, never an error; in one that is,
``u`` counts only as an Integer 0..7 and ``i`` only as a Boolean.
"""
from __future__ import annotations

import http_sf
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kyoukai_h2fast import _engine_c
from kyoukai_h2fast.http2 import priority as pure
from kyoukai_h2fast.http2.priority import DEFAULT, PRIORITIES, UNSIGNALLED


def oracle(value: bytes):
    """(urgency | None, incremental | None) by http_sf, or None when it is no Dictionary."""
    try:
        members = http_sf.parse(value, tltype="dictionary")
    except http_sf.StructuredFieldError as e:
        # RFC 9651 §3.3.7 asks parsers for Dates in years 1..9999 at least; http_sf stops
        # there (Python's datetime), ours take every Integer: no verdict on such values.
        assume("Date value out of range" not in str(e))
        return None
    u = members.get("u", (None,))[0]
    i = members.get("i", (None,))[0]
    urgency = u if type(u) is int and 0 <= u <= 7 else None
    incremental = i if type(i) is bool else None
    return urgency, incremental


# -- what the signals mean ----------------------------------------------------------------------
@pytest.mark.parametrize("lines,expected", [
    ([], UNSIGNALLED),                              # no signal: shared fairly (u=3, i)
    ([b"u=0"], (0, False)),                         # RFC 9218 §4.1: u alone, i defaults false
    ([b"u=5, i"], (5, True)),                       # §4.2 example
    ([b"i"], (3, True)),
    ([b"i=?0"], (3, False)),
    ([b""], DEFAULT),                               # an empty Dictionary: the defaults
    ([b"u=2", b"i"], (2, True)),                    # lines joined with ", "
    ([b"u=2", b"u=6"], (6, False)),                 # the last member of a key wins
    ([b"u=2", b"u=9"], DEFAULT),                    # ... even when it is out of range
    ([b"u=2", b""], UNSIGNALLED),                   # "u=2, " ends with a comma: no Dictionary
    ([b"u=8"], DEFAULT),                            # out of range: ignored (§4)
    ([b"u=-1"], DEFAULT),
    ([b"u=1.0"], DEFAULT),                          # a Decimal, not an Integer
    ([b"u=\"1\""], DEFAULT),                        # a String
    ([b"u=(1)"], DEFAULT),                          # an Inner List
    ([b"u=?1"], DEFAULT),                           # a Boolean
    ([b"i=1"], DEFAULT),                            # an Integer for a Boolean
    ([b"u=1;i"], (1, False)),                       # member parameters are not parameters
    ([b"u=1, foo=bar, x=:AA==:"], (1, False)),      # unknown parameters: ignored (§4)
    ([b"u=1, x=@1659578233, y=%\"caf%c3%a9\""], (1, False)),   # RFC 9651 types
    ([b"u=1,"], UNSIGNALLED),                       # not a Dictionary: the field is ignored
    ([b"U=1"], UNSIGNALLED),                        # keys are lowercase
    ([b"u=1 i"], UNSIGNALLED),
    ([b"u=1, x=%\"%c3\""], UNSIGNALLED),             # a Display String that is not UTF-8
    ([b"u=1, x=:A:"], UNSIGNALLED),                 # base64 with a lone 6-bit digit
    ([b" u=1"], (1, False)),                        # leading and trailing SP are discarded
    ([b"u=1,\ti"], (1, True)),                      # OWS around commas may be HTAB
    ([b"u=1234567890123456"], UNSIGNALLED),         # more than 15 digits
])
def test_request_priority_rfc9218_4(lines, expected):
    assert pure.request_priority(lines) == expected
    assert _engine_c.priority_of_lines(lines) == expected
    assert _engine_c.priority_of_lines(lines) is PRIORITIES[2 * expected[0] + expected[1]]


@pytest.mark.parametrize("value,expected", [
    (b"u=7", (7, False)),
    (b"i", (3, True)),              # a complete set: what it leaves out is the default (§7)
    (b"", DEFAULT),
    (b"u=1,", None),                # does not parse: the frame changes nothing
    (b"u=9, i", (3, True)),
])
def test_update_priority_is_a_complete_set_rfc9218_7(value, expected):
    assert pure.update_priority(value) == expected
    assert _engine_c.priority_of_update(value) == expected


@pytest.mark.parametrize("lines,current,expected", [
    ([b"u=1"], (5, True), (1, True)),       # only what it has changes (§8)
    ([b"i=?0"], (5, True), (5, False)),
    ([b"x=1"], (5, True), (5, True)),
    ([b"u=1,"], (5, True), (5, True)),      # does not parse: no change
    ([], (2, False), (2, False)),
    ([b"u=0", b"i"], (3, False), (0, True)),
])
def test_response_priority_changes_only_what_it_has_rfc9218_8(lines, current, expected):
    assert pure.response_priority(lines, current) == expected
    assert _engine_c.priority_of_response(lines, current) == expected


# -- the readers agree with each other and with an independent parser ---------------------------
_ATOMS = st.sampled_from([
    "u", "i", "x", "*k", "a-b", "u=", "i=", "=", ",", ", ", " ,", ";", "; ", ";q", ";q=1", " ",
    "\t", "0", "3", "7", "8", "-1", "-", "12", ".", "1.5", "1.", "1.2345", "?0", "?1", "?2",
    "\"s\"", "\"a\\\"b\"", "\"\\x\"", "\"", "tok", "tok/x:y", "*", ":AQID:", ":AQ==:", ":A:",
    ":ab=:", ":=:", ":a=b:", ":", "@1", "@-12", "@1.5", "%\"a\"", "%\"%c3%a9\"", "%\"%C3\"",
    "%\"%c3\"", "%", "(", ")", "(1 2)", "(a;b=1 \"x\")", "()", "U", "\x7f", "é", "1234567890123456",
    "123456789012345", "1234567890123.4", "123456789012.345",
])
VALUES = st.lists(_ATOMS, max_size=12).map(lambda parts: "".join(parts).encode("utf-8"))


@settings(max_examples=3000, deadline=None)
@given(value=VALUES)
def test_readers_agree_with_an_independent_structured_fields_parser(value):
    expected = oracle(value)
    assert pure.parse(value) == expected, value
    default = None if expected is None else PRIORITIES[
        2 * (3 if expected[0] is None else expected[0]) + bool(expected[1])]
    assert _engine_c.priority_of_update(value) == default, value
    assert _engine_c.priority_of_lines([value]) == pure.request_priority([value]), value


@settings(max_examples=1500, deadline=None)
@given(lines=st.lists(VALUES, min_size=1, max_size=3), current=st.sampled_from(PRIORITIES))
def test_field_lines_read_one_by_one_equal_the_joined_value(lines, current):
    """The compiled reader takes the lines as the decoder delivers them; joining them first
    (RFC 9651 §4.2) must give the same."""
    assert _engine_c.priority_of_lines(lines) == pure.request_priority(lines), lines
    assert _engine_c.priority_of_response(lines, current) == \
        pure.response_priority(lines, current), lines
