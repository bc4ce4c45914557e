"""Typed errors become text that names the cause and the fix; secrets never reach a log."""

from __future__ import annotations

import logging

import pytest

from lingma_mcp.asking.error_texts import AskTimedOut, InvalidArgument, error_text
from lingma_mcp.asking.results import BridgeState
from lingma_mcp.errors import (
    ChatFailed,
    ChatRejected,
    LingmaClosed,
    LingmaConnectionLost,
    LingmaNotFound,
    LingmaNotLoggedIn,
    LingmaStartupError,
    RpcError,
    RpcTimeout,
    describe_exit,
)
from lingma_mcp.redact import SecretFilter, redact

STATE = BridgeState(
    state="reconnecting",
    last_error="is Lingma running there?",
    log_hint="run with --log-level DEBUG.",
)


@pytest.mark.parametrize(
    ("error", "must_say"),
    [
        (
            LingmaNotFound(["/opt/Lingma (LINGMA_BIN; missing)", "Lingma on PATH"]),
            ["not found", "/opt/Lingma", "Lingma on PATH", "LINGMA_BIN", "JetBrains", "--simulate"],
        ),
        (LingmaNotLoggedIn("login expired"), ["login has expired", "`login` tool"]),
        (ChatFailed("error", 429, "quota exceeded"), ["rate limited", "429", "quota exceeded"]),
        (ChatFailed("error", 500, "boom"), ["ended the answer with an error", "boom", "doctor"]),
        (ChatFailed("error", 401, "no auth"), ["401", "`login` tool"]),
        (
            LingmaStartupError(
                "no .info after 60 s.",
                exit_code=3,
                stderr_tail=["panic: cannot bind"],
                log_hint="~/.lingma/logs",
            ),
            ["did not start", "no .info after 60 s", "code 3", "panic: cannot bind", "~/.lingma"],
        ),
        (
            LingmaConnectionLost("socket closed"),
            ["stopped while answering", "ask again", "reconnecting", "--log-level DEBUG"],
        ),
        (RpcTimeout("auth/status", 30), ["auth/status", "30 s", "stuck"]),
        (RpcError("chat/ask", -32000, "bad"), ["chat/ask", "-32000", "bad"]),
        (ChatRejected("busy"), ["refused", "busy"]),
        (LingmaClosed("closing"), ["shutting down"]),
        (InvalidArgument("Unknown mode 'x'."), ["Unknown mode 'x'."]),
    ],
)
def test_each_error_names_its_cause_and_fix(error: BaseException, must_say: list[str]) -> None:
    text = error_text(error, status=STATE)
    for phrase in must_say:
        assert phrase in text, (phrase, text)
    assert ".." not in text and "?." not in text, text  # sentences end once


def test_a_timeout_carries_the_answer_so_far() -> None:
    text = error_text(AskTimedOut(2.5, "half an answ"), status=STATE)
    assert "timeout_s=2.5" in text and "stopped" in text
    assert text.endswith("half an answ")


def test_a_timeout_before_any_text_says_so() -> None:
    text = error_text(AskTimedOut(1, ""), status=STATE)
    assert "no answer text had arrived" in text


def test_an_unexpected_error_does_not_leak_its_message() -> None:
    text = error_text(KeyError("secret-value"))
    assert "secret-value" not in text
    assert "unexpectedly" in text and "stderr" in text


@pytest.mark.parametrize(
    "line",
    [
        '{"token": "abc123", "name": "me"}',
        "{'refreshToken': 'abc123'}",
        "accessToken=abc123 next",
        '"token":"abc123"}',
    ],
)
def test_secret_named_values_are_masked(line: str) -> None:
    masked = redact(line)
    assert "abc123" not in masked
    assert "***" in masked


def test_plain_text_is_left_alone() -> None:
    line = "chat/ask accepted for request 1234 with 20 tokens of context"
    assert redact(line) == line


def test_the_log_filter_masks_formatted_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    handler_filter = SecretFilter()
    record = logger.makeRecord(
        "test.redact", logging.INFO, __file__, 1, "reply %s", ({"token": "abc123"},), None
    )
    assert handler_filter.filter(record)
    assert "abc123" not in record.getMessage()


def test_login_states_read_as_sentences() -> None:
    assert error_text(LingmaNotLoggedIn("not logged in")).startswith("Lingma is not logged in. ")
    for name in ("not logged in", "login expired", "network error"):
        text = error_text(LingmaNotLoggedIn(name))
        assert "is login" not in text and "(not logged in)" not in text


def test_the_terminal_is_told_a_command_not_a_tool() -> None:
    text = error_text(LingmaNotLoggedIn("not logged in"), audience="terminal")
    assert "`login` tool" not in text and "lingma-mcp doctor" in text
    timeout = error_text(AskTimedOut(10, "", session_id="s-1"), audience="terminal")
    assert "--session-id s-1" in timeout and "--timeout-s" in timeout


def test_a_timeout_names_the_session_to_continue() -> None:
    text = error_text(AskTimedOut(10, "half an answer", session_id="sess-42"))
    assert "session_id='sess-42'" in text and "half an answer" in text


def test_a_crash_says_it_once_with_exit_code_and_redacted_last_output() -> None:
    tail = ["starting", 'fatal: auth failed {"token": "pt-abcdef123456789"}']
    lost = LingmaConnectionLost("Lingma stopped while answering", exit_code=2, stderr_tail=tail)
    text = error_text(lost, status=BridgeState(state="reconnecting"))
    assert text.count("stopped") == 1
    assert "exit code 2" in text and "fatal: auth failed" in text
    assert "abcdef123456789" not in text


def test_a_crash_heard_by_a_chat_takes_its_cause_from_the_backends_loss() -> None:
    # A chat hears only that the connection ended ("no close frame ..."); the backend
    # heard how the process ended, and its status keeps that loss as text.
    heard = LingmaConnectionLost(
        "Lingma stopped while answering (connection to Lingma lost: no close frame received "
        "or sent)"
    )
    loss = LingmaConnectionLost.process_ended(
        "Lingma", -9, ['oom: token="pt-abcdef123456789" killed']
    )
    text = error_text(heard, status=BridgeState(state="reconnecting", last_error=str(loss)))
    assert text.count("stopped") == 1 and "no close frame" not in text
    assert "killed by SIGKILL (exit code -9)" in text and "its last output: oom:" in text
    assert "abcdef123456789" not in text


def test_how_a_process_ended_is_said_in_words() -> None:
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-15) == "killed by SIGTERM (exit code -15)"
    lost = LingmaConnectionLost.process_ended("the Lingma CLI", 1, ["", "Error: boom", ""])
    assert str(lost) == "the Lingma CLI stopped (exit code 1); its last stderr line: Error: boom"
    quiet = LingmaConnectionLost.process_ended("Lingma", None, [])
    assert str(quiet) == "Lingma stopped (its output ended)" and quiet.last_line is None


def test_a_startup_error_redacts_lingmas_stderr() -> None:
    error = LingmaStartupError(
        "Lingma exited", exit_code=1, stderr_tail=["Authorization: Bearer sekr3tt0ken99"]
    )
    assert "sekr3tt0ken99" not in error_text(error)


def test_lingmas_own_failure_words_are_redacted() -> None:
    text = error_text(ChatFailed("error", 500, 'upstream said {"token": "pt-abcdef1234567890"}'))
    assert "abcdef1234567890" not in text and "upstream said" in text
