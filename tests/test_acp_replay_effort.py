"""The CLI backend's pure readings: a load replay as turns, and the model and reasoning effort
options among a session's config options (shapes of qoderclicn 1.1.52)."""

from __future__ import annotations

from typing import Any

from acp.schema import (
    AgentMessageChunk,
    AvailableCommandsUpdate,
    SessionConfigOptionSelect,
    TextContentBlock,
    ToolCallStart,
    UserMessageChunk,
)
from pydantic import TypeAdapter

from lingma_mcp.acp.models import EffortState, effort_from_config, models_from_config
from lingma_mcp.acp.replay import Replay, turns_from
from lingma_mcp.backend import Turn


def user(text: str, message_id: str | None) -> UserMessageChunk:
    return UserMessageChunk(
        session_update="user_message_chunk",
        content=TextContentBlock(type="text", text=text),
        message_id=message_id,
    )


def agent(text: str, message_id: str | None = None) -> AgentMessageChunk:
    return AgentMessageChunk(
        session_update="agent_message_chunk",
        content=TextContentBlock(type="text", text=text),
        message_id=message_id,
    )


READ = ToolCallStart(
    session_update="tool_call", tool_call_id="toolu_1", title="Read a.txt", status="completed"
)


def test_a_replay_reads_as_one_turn_per_user_message_with_the_answer_until_the_next():
    replayed = [
        user("first prompt", "u-1"),
        READ,
        agent("saw ", "m-1"),
        agent("them", "m-1"),
        user("second", "u-2"),
        agent("[Error] The request could not be completed.", "m-2"),
    ]
    assert turns_from(replayed) == (
        Turn(question="first prompt", answer="saw them", request_id="u-1"),
        Turn(
            question="second",
            answer="[Error] The request could not be completed.",
            request_id="u-2",
        ),
    )


def test_chunks_of_one_user_message_join_and_a_question_without_answer_has_none():
    assert turns_from([user("look", "u-1"), user("@/ws/a.txt", "u-1")]) == (
        Turn(question="look\n@/ws/a.txt", answer=None, request_id="u-1"),
    )


def test_the_replay_is_over_at_the_update_the_cli_sends_after_the_history():
    replay = Replay()
    replay.add(user("q", "u-1"))
    assert not replay.over.is_set()
    replay.add(
        AvailableCommandsUpdate(session_update="available_commands_update", available_commands=[])
    )
    assert replay.over.is_set() and replay.updates == [user("q", "u-1")]


OPTIONS: list[dict[str, Any]] = [
    {
        "type": "select",
        "id": "mode",
        "name": "Mode",
        "category": "mode",
        "currentValue": "default",
        "options": [{"value": "default", "name": "Default"}],
    },
    {
        "type": "select",
        "id": "model",
        "name": "Model",
        "category": "model",
        "currentValue": "auto",
        "options": [{"value": "auto", "name": "Auto"}, {"value": "qwen3-coder", "name": "Qwen"}],
    },
    {
        "type": "select",
        "id": "reasoning_effort",
        "name": "Reasoning Effort",
        "category": "model",
        "currentValue": "none",
        "options": [
            {"value": "none", "name": "None"},
            {"value": "high", "name": "High"},
            {"value": "max", "name": "Max"},
        ],
    },
]


def parsed(raw: list[dict[str, Any]]) -> list[SessionConfigOptionSelect]:
    return TypeAdapter(list[SessionConfigOptionSelect]).validate_python(raw)


def test_the_effort_option_is_the_clis_own_values_and_not_taken_for_the_model():
    options = parsed(OPTIONS)
    assert effort_from_config(options) == EffortState(
        "reasoning_effort", ("none", "high", "max"), "none"
    )
    models = models_from_config(options)
    assert models is not None and models.config_id == "model"
    assert [m.key for m in models.options] == ["auto", "qwen3-coder"]


def test_a_model_listed_after_its_effort_is_still_found_by_its_id():
    options = parsed([OPTIONS[2], OPTIONS[1]])
    models = models_from_config(options)
    assert models is not None and models.config_id == "model"


def test_a_session_without_effort_levels_has_no_effort_option():
    assert effort_from_config(parsed(OPTIONS[:2])) is None
