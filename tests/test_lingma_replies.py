"""The IDE backend's replies read into the contract's values: login, models, conversations.

Pure functions, fed the shapes Lingma sends (PROTOCOL.md section 5), including the parts
that must never get through: tokens, unexpected fields, text where numbers belong.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from lingma_mcp.backend import Model, Session, SessionSummary, Turn
from lingma_mcp.lingma.auth import login_from_status
from lingma_mcp.lingma.catalog import models_from_scenes
from lingma_mcp.lingma.conversations import session_from_record, summary_from_record

RAW_AUTH = {
    "status": 2,
    "whitelist": 3,
    "name": "me",
    "id": "42",
    "token": "live-token-value",
    "refreshToken": "live-refresh-value",
    "expireTime": 1_800_000_000_000,
    "quota": {"total": 100, "used": 7, "note": "token=live-token-value", "flag": True},
    "orgName": "Org",
    "userType": "personal",
}


def test_the_login_holds_the_account_in_words_and_no_token() -> None:
    login = login_from_status(RAW_AUTH)
    assert "live-" not in repr(asdict(login)) and "refresh" not in repr(asdict(login)).lower()
    assert (login.logged_in, login.state, login.whitelist) == (True, "logged in", "whitelisted")
    assert (login.user_name, login.user_id, login.org_name) == ("me", "42", "Org")
    assert login.expires_at == datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)
    assert login.quota == {"total": 100, "used": 7}  # numbers only
    assert login.instructions is None  # the login tool's URL is how this backend logs in


def test_each_login_status_has_its_words_and_only_2_is_logged_in() -> None:
    states = {n: login_from_status({"status": n}) for n in range(1, 8)}
    assert [n for n, login in states.items() if login.logged_in] == [2]
    assert states[3].state == "login expired" and states[6].state == "IP banned"
    assert login_from_status({"status": 9}).state == "unknown status 9"
    assert login_from_status("garbage").logged_in is False


def test_an_expiry_in_seconds_is_read_as_seconds() -> None:
    login = login_from_status({"status": 2, "expireTime": 1_800_000_000})
    assert login.expires_at == datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)


def test_models_come_once_each_with_every_scene_that_lists_them() -> None:
    reply = {
        "chat": [
            {"key": "auto", "displayName": "Auto", "isReasoning": False, "isVl": False},
            {"key": "max", "displayName": "Max", "isVl": True, "secret": "s"},
        ],
        "developer": [{"key": "auto", "displayName": "Auto"}, {"key": "think"}],
        "inline": "not a list",
    }
    assert models_from_scenes(reply) == [
        Model("auto", "Auto", "", False, False, ("chat", "developer"), ("chat", "developer")),
        Model("max", "Max", "", None, True, ("chat",), ()),
        Model("think", "think", "", None, None, ("developer",), ()),
    ]


def test_a_flagged_default_wins_over_auto_in_its_scene_only() -> None:
    reply = {
        "chat": [{"key": "auto"}, {"key": "b", "isDefault": True}],
        "developer": [{"key": "auto"}, {"key": "b"}],
        "quest": [{"key": "x"}],
    }
    defaults = {m.key: m.default_in for m in models_from_scenes(reply)}
    assert defaults == {"auto": ("developer",), "b": ("chat",), "x": ()}


def test_a_logged_out_lingma_lists_no_models() -> None:
    assert models_from_scenes({}) == [] and models_from_scenes(None) == []


def test_a_listed_conversation_keeps_only_the_promised_fields() -> None:
    raw = {
        "sessionId": "s1",
        "sessionTitle": "T",
        "projectUri": "file:///home/me/project%20one",
        "gmtCreate": 1_700_000_000_000,
        "gmtModified": "1700000100000",
        "internal": "x",
        "chatRecords": [
            {"requestId": "r1", "question": "q", "answer": "a", "gmtCreate": 1_700_000_000_000}
        ],
    }
    created = datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)
    summary = SessionSummary(
        session_id="s1",
        title="T",
        backend="ide",
        workspace=Path("/home/me/project one"),
        created=created,
        updated=datetime.fromtimestamp(1_700_000_100, tz=timezone.utc),
        turns=1,
    )
    assert summary_from_record(raw) == summary
    assert session_from_record(raw) == Session(summary, (Turn("q", "a", "r1", created),))


def test_an_entry_without_a_session_id_is_no_conversation() -> None:
    assert summary_from_record({"sessionTitle": "T"}) is None
    assert session_from_record({}) is None and session_from_record(None) is None
