"""Redaction: what it masks, what it leaves, and that it stays linear on hostile input."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lingma_mcp.redact import MASK, SecretFilter, redact, redact_lines

SECRET = "s3cr3tV4lu3xyz"


@pytest.mark.parametrize(
    "line",
    [
        f'{{"password": "my {SECRET} phrase"}}',  # quoted, with spaces
        f"Authorization: Bearer {SECRET}.abc-def",
        f'{{"authorization": "Bearer {SECRET}"}}',
        f"headers={{'Cookie': 'sid={SECRET}'}}",
        f"x-api-key={SECRET}",
        f'\\"token\\":\\"{SECRET}\\"',  # a frame quoted inside a log string
        f"'refreshToken': '{SECRET}",  # unclosed: masked to the end of the line
    ],
)
def test_secret_values_are_masked_whatever_their_quoting(line: str) -> None:
    masked = redact(line)
    assert SECRET not in masked and "3cr3t" not in masked
    assert MASK in masked


@pytest.mark.parametrize(
    "line",
    [
        "login ok, token pt-9f8e7d6c5b4a3928 stored",
        "refresh with rt-AbCdEf0123456789_-xyz",
        "value on its own line: 3cde2058d3158668aaddaf479c815863",
        "sim-secret-refresh-3cde2058d3158668aaddaf479c81...",
    ],
)
def test_token_shaped_values_are_masked_whatever_their_key(line: str) -> None:
    masked = redact(line)
    for fragment in ("9f8e7d6c", "AbCdEf01", "3cde2058", "8668aadd"):
        assert fragment not in masked


def test_a_key_at_the_end_of_one_line_masks_the_value_on_the_next() -> None:
    lines = ['{"jsonrpc":"2.0","refreshToken":"', 'abcdefgh","name":"me"}']
    assert "abcdefgh" not in "\n".join(redact_lines(lines))


@pytest.mark.parametrize(
    "line",
    [
        "chat/ask accepted for request 1234 with 20 tokens of context",
        "session 5b0c6a0e-8d6a-4f1c-9a41-3c2f1e0d9b7a continued",  # uuids stay readable
        "expireTime 1782107060847 and a word Internationalization",
        "language pt-BR, sort-order rt-1",
        "/tmp/pytest-of-root/pytest-12/test_x0/work",
    ],
)
def test_plain_text_is_left_alone(line: str) -> None:
    assert redact(line) == line


def test_redaction_is_idempotent() -> None:
    line = f'token={SECRET} "password": "a b" Bearer {SECRET} pt-{SECRET}'
    once = redact(line)
    assert redact(once) == once


def test_the_log_filter_masks_tracebacks() -> None:
    try:
        raise ValueError(f"bad reply {{'token': '{SECRET}'}}")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.getLogger("t").makeRecord(
        "t", logging.ERROR, __file__, 1, "failed", (), exc_info
    )
    assert SecretFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "bad reply" in formatted and SECRET not in formatted


_ADVERSARIAL = st.lists(
    st.sampled_from(
        [*"aT0:=\"' \n\\-_.", '\\"', "token", "Token", "Bearer ", "pt-", "password", "ke"]
    ),
    max_size=200,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(_ADVERSARIAL)
def test_any_text_redacts_without_error_and_stays_masked(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


# Quadratic behaviour on these inputs took minutes per megabyte; linear takes well under a
# second. The test's timeout is the bound (no wall-clock assertion in the test itself).
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "unit",
    [
        *("a", "token", "token:", 'token:"', "Bearer ", "pt-", "a1", "tokentoken", "x" * 19 + "-"),
        *('token:"\\', 'token:\\"\\\\', '"token":"' + '\\"' * 10, "token:'\\'"),
    ],
)
def test_a_megabyte_of_repetitive_input_redacts_in_linear_time(unit: str) -> None:
    text = unit * (1_000_000 // len(unit))
    assert len(redact(text)) <= len(text) + len(MASK)


def test_a_megabyte_of_letters_is_handled() -> None:
    # The unknown-tool-name attack: one huge identifier. Linear means it simply returns.
    text = "x" * 1_000_000 + "token=abc"
    assert redact(text).endswith(f"token={MASK}")


# A secret as any JSON or Python writer would quote it: escaped quotes and backslashes,
# the other kind of quote, escape sequences, and text that looks like another key.
_SECRETS = st.lists(
    st.sampled_from([*"aZ09 -_.:,{}", '"', "'", "\\", "\n", "\t", "é", '", "token": "']),
    min_size=1,
    max_size=80,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_SECRETS)
def test_a_quoted_secret_is_masked_whole_whatever_it_escapes(secret: str) -> None:
    payload = {"token": secret, "name": "me"}
    assert redact(json.dumps(payload)) == json.dumps({"token": MASK, "name": "me"})
    # A frame quoted inside a log string: every quote and backslash escaped once more.
    assert redact(json.dumps(json.dumps(payload))) == json.dumps(
        json.dumps({"token": MASK, "name": "me"})
    )
    assert redact(repr(payload)) in (
        repr({"token": MASK, "name": "me"}),
        repr({"token": MASK, "name": "me"}).replace("'***'", '"***"'),
    )


def test_an_escaped_quote_does_not_end_the_secret() -> None:
    assert redact('{"token":"ab\\"cd"}') == '{"token":"***"}'
