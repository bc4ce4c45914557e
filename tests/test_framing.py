"""The LSP frame decoder: bytes in, messages out, whatever the splits."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from lingma_mcp.lingma.framing import (
    DEFAULT_MAX_BODY,
    MAX_HEADER_BYTES,
    MAX_MESSAGE_BYTES,
    FrameDecoder,
    FrameError,
    encode_frame,
    encode_frame_text,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
messages = st.dictionaries(st.text(min_size=1), json_values, min_size=1, max_size=4)


def feed_in_pieces(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list:
    out = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out += decoder.feed(data[start:cut])
        start = cut
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(messages, min_size=1, max_size=8), st.lists(st.integers(min_value=0), max_size=30))
def test_frames_split_and_merged_at_random_points_are_reassembled(batch, cuts):
    data = b"".join(encode_frame(m) for m in batch)
    decoder = FrameDecoder()
    assert feed_in_pieces(decoder, data, cuts) == batch
    assert decoder.buffered == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(messages, min_size=1, max_size=5), st.lists(st.integers(min_value=0), max_size=10))
def test_malformed_frames_between_good_ones_lose_nothing_around_them(batch, cuts):
    garbage = [
        b'{"body":"without a header"}',
        b"Content-Length: abc\r\n\r\n",
        b"Content-Length: 5\r\n\r\nnope!",
        b"Content-Length: 2\r\n\r\n\xff\xfe",
        b"X-Other: 1\r\n\r\n",
    ]
    data = b""
    for i, message in enumerate(batch):
        data += garbage[i % len(garbage)] + encode_frame(message)
    out = feed_in_pieces(FrameDecoder(), data, cuts)
    assert [item for item in out if not isinstance(item, FrameError)] == batch
    assert any(isinstance(item, FrameError) for item in out)


def test_content_length_counts_utf8_bytes_not_characters():
    message = {"text": "中文 and émoji 🙂"}
    text = encode_frame_text(message)
    header, body = text.split("\r\n\r\n", 1)
    assert int(header.split(":")[1]) == len(body.encode("utf-8")) != len(body)
    assert FrameDecoder().feed(text) == [message]
    assert encode_frame(message) == text.encode("utf-8")


def test_a_multibyte_character_split_across_messages_decodes():
    data = encode_frame({"text": "中"})
    cut = data.index("中".encode()) + 1
    decoder = FrameDecoder()
    assert decoder.feed(data[:cut]) == []
    assert decoder.feed(data[cut:]) == [{"text": "中"}]


def test_headers_are_matched_in_any_case_and_other_headers_ignored():
    body = b'{"a":1}'
    data = b"content-type: application/json\r\nCONTENT-LENGTH: 7\r\n\r\n" + body
    assert FrameDecoder().feed(data) == [{"a": 1}]


def test_text_and_binary_messages_mix():
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame_text({"a": 1})) == [{"a": 1}]
    assert decoder.feed(encode_frame({"b": 2})) == [{"b": 2}]


def test_oversized_body_is_skipped_without_buffering_it():
    decoder = FrameDecoder(max_body=100)
    big = b"Content-Length: 1000000\r\n\r\n"
    out = decoder.feed(big + b"x" * 500)
    assert len(out) == 1 and "exceeds" in out[0].reason
    # A connection must not read on after it (see the next test); the decoder still can.
    assert out[0].fatal
    for _ in range(19):
        assert decoder.feed(b"x" * 50_000) == []
        assert decoder.buffered == 0
    # The last 49,500 bytes of the big body arrive together with the next frame.
    tail = b"x" * (1_000_000 - 500 - 19 * 50_000)
    assert decoder.feed(tail + encode_frame({"after": True})) == [{"after": True}]


def test_missing_or_non_numeric_length_is_an_error_not_a_hang():
    decoder = FrameDecoder()
    out = decoder.feed(b"Content-Type: x\r\n\r\n" + encode_frame({"ok": 1}))
    assert isinstance(out[0], FrameError) and "no Content-Length" in out[0].reason
    assert out[-1] == {"ok": 1}
    out = decoder.feed(b"Content-Length: -5\r\n\r\n" + encode_frame({"ok": 2}))
    assert isinstance(out[0], FrameError) and "not a number" in out[0].reason
    assert out[-1] == {"ok": 2}


def test_garbage_without_any_header_is_dropped_once_it_exceeds_the_header_cap():
    decoder = FrameDecoder()
    out = decoder.feed(b"z" * (MAX_HEADER_BYTES + 10))
    assert len(out) == 1 and isinstance(out[0], FrameError)
    assert decoder.buffered < 8
    *skipped, good = decoder.feed(encode_frame({"ok": 1}))
    assert good == {"ok": 1}
    assert all(isinstance(item, FrameError) for item in skipped)


def test_body_that_is_not_json_or_not_utf8_is_reported_and_skipped():
    decoder = FrameDecoder()
    bad_json = b"Content-Length: 3\r\n\r\n{x}"
    bad_utf8 = b'Content-Length: 3\r\n\r\n"\xc3"'
    out = decoder.feed(bad_json + bad_utf8 + encode_frame({"ok": 1}))
    assert [type(o) for o in out] == [FrameError, FrameError, dict]
    assert "not JSON" in out[0].reason and "UTF-8" in out[1].reason


def test_many_frames_fed_byte_by_byte_keep_the_buffer_small():
    decoder = FrameDecoder()
    data = b"".join(encode_frame({"i": i, "pad": "é" * 20}) for i in range(300))
    seen = []
    for i in range(len(data)):
        seen += decoder.feed(data[i : i + 1])
        assert decoder.buffered < 200
    assert [m["i"] for m in seen] == list(range(300))


def test_encoder_output_is_compact_json():
    data = encode_frame({"a": [1, 2]})
    assert data.endswith(b'{"a":[1,2]}')
    assert json.loads(data.split(b"\r\n\r\n")[1]) == {"a": [1, 2]}


def test_bodies_must_be_utf8_not_another_unicode_encoding():
    utf16 = '{"a":1}'.encode("utf-16")
    bom_garbage = b"\xff\xfe\x00"
    out = FrameDecoder().feed(
        b"Content-Length: %d\r\n\r\n%s" % (len(utf16), utf16)
        + b"Content-Length: 3\r\n\r\n"
        + bom_garbage
    )
    assert [type(o) for o in out] == [FrameError, FrameError]
    assert all("UTF-8" in o.reason for o in out)


def test_only_a_length_that_cannot_be_trusted_is_fatal():
    # A length above the cap (garbage or not) would have the decoder discard every later
    # frame; anything it can recover from is not fatal.
    decoder = FrameDecoder()
    out = decoder.feed(
        b"Content-Length: twelve\r\n\r\n"
        + b"Content-Length: 3\r\n\r\n{x}"
        + b"X-Other: 1\r\n\r\n"
        + encode_frame({"ok": 1})
        + b"Content-Length: 123456789012345678901234567890\r\n\r\n"
    )
    errors = [item for item in out if isinstance(item, FrameError)]
    assert [e.fatal for e in errors] == [False, False, False, True]
    assert {"ok": 1} in out


def test_the_largest_websocket_message_fits_one_frame_at_the_cap():
    assert MAX_MESSAGE_BYTES == DEFAULT_MAX_BODY + MAX_HEADER_BYTES


@settings(max_examples=100, deadline=None)
@given(
    st.lists(messages, min_size=1, max_size=5),
    st.integers(min_value=1, max_value=10_000),
    st.lists(st.integers(min_value=0), max_size=10),
)
def test_a_length_longer_than_its_body_does_not_swallow_the_frames_behind_it(batch, extra, cuts):
    body = b'{"short":true}'
    lying = b"Content-Length: %d\r\n\r\n%s" % (len(body) + extra, body)
    data = lying + b"".join(encode_frame(m) for m in batch)
    out = feed_in_pieces(FrameDecoder(), data, cuts)
    assert [item for item in out if not isinstance(item, FrameError)] == batch
    (error,) = [item for item in out if isinstance(item, FrameError)]
    assert "longer than its body" in error.reason and not error.fatal


def test_json_whitespace_in_a_body_is_not_taken_for_a_header():
    body = b'{"a":\r\n\r\n1}'
    decoder = FrameDecoder()
    data = b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    assert decoder.feed(data[:-3]) == []
    assert decoder.feed(data[-3:]) == [{"a": 1}]
