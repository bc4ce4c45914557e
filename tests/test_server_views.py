"""Allow-listed views: only the promised fields of Lingma's payloads reach a host."""

from __future__ import annotations

import json

from lingma_mcp.lingma.auth import AuthStatus
from lingma_mcp.server.models import BridgeState
from lingma_mcp.server.views import auth_info, default_key, model_info, session_detail

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


def test_auth_info_names_states_in_words_and_holds_no_token() -> None:
    info = auth_info(AuthStatus.from_reply(RAW_AUTH), BridgeState(state="ready"))
    dumped = json.dumps(info.model_dump(mode="json"))
    assert "live-" not in dumped and "refresh" not in dumped.lower()
    assert info.logged_in is True and info.status == "logged in"
    assert info.whitelist == "whitelisted"
    assert info.expires_at == "2027-01-15T08:00:00+00:00"
    assert info.quota == {"total": 100, "used": 7}  # numbers only
    assert info.problem is None


def test_an_expired_login_says_to_call_login() -> None:
    info = auth_info(AuthStatus.from_reply({"status": 3}), BridgeState(state="ready"))
    assert info.logged_in is False and info.status == "login expired"
    assert "`login` tool" in (info.problem or "")


def test_the_default_model_is_the_flagged_one_else_auto_else_unknown() -> None:
    assert default_key([{"key": "a"}, {"key": "b", "isDefault": True}]) == "b"
    assert default_key([{"key": "x"}, {"key": "auto"}]) == "auto"
    assert default_key([{"key": "x"}]) is None


def test_model_info_maps_lingma_flags() -> None:
    raw = {"key": "k", "displayName": "K", "isReasoning": True, "isVl": False, "secret": "s"}
    assert model_info(raw, "k").model_dump() == {
        "key": "k",
        "display_name": "K",
        "reasoning": True,
        "vision": False,
        "default": True,
    }


def test_session_detail_keeps_only_the_promised_fields() -> None:
    raw = {
        "sessionId": "s1",
        "sessionTitle": "T",
        "gmtCreate": 1,
        "gmtModified": 2,
        "internal": "x",
        "chatRecords": [
            {"requestId": "r1", "question": "q", "answer": "a", "gmtCreate": 1, "extra": {"k": 1}}
        ],
    }
    assert session_detail(raw) == {
        "session_id": "s1",
        "title": "T",
        "created": 1,
        "modified": 2,
        "turns": [{"request_id": "r1", "question": "q", "answer": "a", "created": 1}],
    }


def test_every_output_field_has_a_type() -> None:
    # Strict hosts (the Inspector's --strict) flag a schema property without a type.
    from lingma_mcp.server.models import AskResult, AuthInfo, LoginInfo, ModelList

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
