"""The face's views: the contract's values shaped into exactly the promised output fields."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from lingma_mcp.asking.results import BridgeState
from lingma_mcp.asking.views import (
    auth_info,
    default_key,
    model_info,
    model_keys,
    models_by_scene,
    newest_first,
    session_detail,
    session_summary,
    tool_event,
)
from lingma_mcp.backend import Login, Model, Session, SessionSummary, ToolCall, Turn

READY = BridgeState(state="ready")


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def test_auth_info_shows_the_login_in_words_with_its_expiry_to_the_second() -> None:
    login = Login(
        logged_in=True,
        state="logged in",
        user_name="me",
        org_name="Org",
        user_type="personal",
        whitelist="whitelisted",
        expires_at=datetime(2027, 1, 15, 8, 0, 0, 123456, tzinfo=timezone.utc),
        quota={"total": 100, "used": 7},
        credential="stored login",
    )
    info = auth_info(login, READY)
    assert info.model_dump(mode="json") == {
        "logged_in": True,
        "status": "logged in",
        "whitelist": "whitelisted",
        "user_name": "me",
        "user_type": "personal",
        "org_name": "Org",
        "expires_at": "2027-01-15T08:00:00+00:00",
        "quota": {"total": 100.0, "used": 7.0},
        "problem": None,
        "credential": "stored login",
        "bridge": READY.model_dump(mode="json"),
    }


def test_an_expired_login_says_to_call_login() -> None:
    info = auth_info(Login(logged_in=False, state="login expired"), READY)
    assert info.logged_in is False and info.status == "login expired"
    assert info.problem is not None and "`login` tool" in info.problem


def test_a_backend_that_logs_in_elsewhere_gives_its_own_instructions() -> None:
    login = Login(logged_in=False, state="not logged in", instructions="run `x login`")
    assert auth_info(login, READY).problem == "run `x login`"
    error = login.not_logged_in()
    assert error.instructions == "run `x login`" and error.status_name == "not logged in"


MODELS = [
    Model("auto", "Auto", scenes=("chat", "developer"), default_in=("chat", "developer")),
    Model("coder", "Coder", reasoning=True, scenes=("chat", "developer")),
    Model("max", "Max", vision=True, scenes=("chat",)),
]


def test_models_group_by_scene_in_the_backends_order() -> None:
    grouped = models_by_scene(MODELS)
    assert list(grouped) == ["chat", "developer"]
    assert [m.key for m in grouped["chat"]] == ["auto", "coder", "max"]
    assert [m.key for m in grouped["developer"]] == ["auto", "coder"]


def test_the_default_model_is_the_one_the_backend_names_for_the_scene() -> None:
    assert default_key(MODELS, "chat") == "auto"
    assert default_key([Model("a", "A", scenes=("chat",))], "chat") is None


def test_a_question_may_name_its_scenes_models_or_any_for_an_unknown_scene() -> None:
    assert model_keys(MODELS, "developer") == ["auto", "coder"]
    assert model_keys(MODELS, "quest") == ["auto", "coder", "max"]


def test_model_info_shows_unknown_flags_as_false() -> None:
    assert model_info(MODELS[1], "auto").model_dump() == {
        "key": "coder",
        "display_name": "Coder",
        "reasoning": True,
        "vision": False,
        "default": False,
    }


def test_tool_event_keeps_the_promised_fields() -> None:
    tool = ToolCall("t1", "read_file", "FINISHED", {"path": "a"}, {"ok": 1}, error=None)
    assert tool_event(tool).model_dump() == {
        "id": "t1",
        "name": "read_file",
        "status": "FINISHED",
        "input": {"path": "a"},
        "result": {"ok": 1},
    }


def test_session_detail_shows_times_in_epoch_milliseconds() -> None:
    summary = SessionSummary(
        "s1", "T", "ide", Path("/p"), created=_at(1_700_000_000_001), updated=_at(1_700_000_123_457)
    )
    detail = session_detail(Session(summary, (Turn("q", "a", "r1", _at(1_700_000_000_001)),)))
    assert detail == {
        "session_id": "s1",
        "title": "T",
        "created": 1_700_000_000_001,
        "modified": 1_700_000_123_457,
        "turns": [
            {"request_id": "r1", "question": "q", "answer": "a", "created": 1_700_000_000_001}
        ],
    }
    json.dumps(detail)  # a resource's body


def test_sessions_come_newest_first_and_those_without_a_time_last() -> None:
    old = SessionSummary("old", None, "cli", updated=_at(1000))
    new = SessionSummary("new", None, "cli", updated=_at(2000))
    unknown = SessionSummary("unknown", None, "cli")
    assert [s.session_id for s in newest_first([unknown, old, new])] == ["new", "old", "unknown"]
    assert session_summary(unknown) == {
        "session_id": "unknown",
        "title": None,
        "created": None,
        "modified": None,
        "turns": None,
    }


def test_every_output_field_has_a_type() -> None:
    # Strict hosts (the Inspector's --strict) flag a schema property without a type.
    from lingma_mcp.asking.results import AskResult, AuthInfo, ModelList
    from lingma_mcp.server.tool_schemas import LoginInfo

    def typed(prop: dict) -> bool:
        if "type" in prop or "$ref" in prop:
            return True
        branches = prop.get("anyOf") or prop.get("allOf") or prop.get("oneOf")
        return bool(branches) and all(typed(b) for b in branches)

    for model in (AskResult, AuthInfo, LoginInfo, ModelList):
        schema = model.model_json_schema()
        for owner in [schema, *schema.get("$defs", {}).values()]:
            for name, prop in owner.get("properties", {}).items():
                assert typed(prop), (model.__name__, name, prop)
