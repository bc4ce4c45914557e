"""The ACP simulator's pure parts: the CLI's shapes and words, scripts, instructions,
prompt blocks, config options and stored conversations. No process, no event loop."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import pytest

from lingma_mcp.sim.acp import session_config as config
from lingma_mcp.sim.acp import shapes
from lingma_mcp.sim.acp.blocks import PNG_SIGNATURE, BlockRefused, image_problem, read_prompt
from lingma_mcp.sim.acp.model import (
    InstructionModel,
    ScriptError,
    ToolCall,
    ToolResult,
    Usage,
    parse_instructions,
    parse_script,
)
from lingma_mcp.sim.acp.options import OptionError, from_env
from lingma_mcp.sim.acp.store import ConversationStore


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# -- commands ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    ["echo hi", "ls -la", "cat a.txt | wc -l", "git status && git diff", "pwd; date"],
)
def test_read_only_commands_run_unasked(command):
    assert shapes.read_only(command)


@pytest.mark.parametrize(
    "command",
    [
        "touch a",
        "rm -rf build",
        "echo z >> a.txt",
        "cat $(echo x)",
        "ls && touch b",
        "false",
        "git commit -m x",
        "sed -i s/a/b/ f",
        "python3 -c 1",
        'echo "unclosed',
    ],
)
def test_anything_that_may_change_something_asks(command):
    assert not shapes.read_only(command)


def test_always_allow_names_every_program_of_a_command_once():
    assert shapes.command_names("touch t1 && ls | wc -l") == ["touch", "ls", "wc"]
    assert shapes.command_names("echo out; echo err >&2; exit 3") == ["echo", "exit"]
    options = shapes.bash_options("sleep 30; touch late")
    assert [(o["optionId"], o["kind"]) for o in options] == [
        ("proceed_always_and_save", "allow_always"),
        ("proceed_once", "allow_once"),
        ("cancel", "reject_once"),
    ]
    assert options[0]["name"] == 'Always allow "sleep, touch"'


# -- shapes --------------------------------------------------------------------------------


def test_a_read_is_shown_numbered_with_its_last_empty_line():
    assert shapes.numbered("alpha\nline2\n") == "1\talpha\n2\tline2\n3\t"
    assert shapes.numbered("a\nb\nc\nd", offset=2, limit=2) == "2\tb\n3\tc"


def test_tool_calls_are_announced_in_the_cli_shapes():
    bash = shapes.tool_call("toolu_1", "Bash", {"command": "ls"})
    order = ["sessionUpdate", "toolCallId", "status", "title", "content", "kind", "rawInput"]
    assert list(bash) == [*order, "_meta"]
    assert bash["_meta"] == {
        "qoder": {"toolName": "Bash"},
        "terminal_info": {"terminal_id": "toolu_1"},
    }
    edit = shapes.tool_call(
        "t", "Edit", {"file_path": "/w/a", "old_string": "x", "new_string": "y"}
    )
    assert edit["content"] == [{"type": "diff", "path": "/w/a", "oldText": "x", "newText": "y"}]
    assert edit["locations"] == [{"path": "/w/a"}]
    write = shapes.tool_call("t", "Write", {"file_path": "a.txt", "content": "c"})
    assert (write["title"], write["content"][0]["oldText"]) == ("Write a.txt", None)
    read = shapes.tool_call("t", "Read", {"file_path": "a.txt"})
    assert read["content"][0]["content"]["text"] == '{\n  "file_path": "a.txt"\n}'
    other = shapes.tool_call("t", "Glob", {"pattern": "*"})
    assert (other["kind"], "locations" in other) == ("other", False)


def test_a_file_permission_names_the_file_and_carries_it_whole():
    asked = shapes.file_permission("t", "Write", {}, "/w/sub/new.txt", None, "text")
    assert asked["title"] == "Edit new.txt"
    assert asked["content"][0]["_meta"] == {"kind": "add"}
    assert "locations" not in asked
    modified = shapes.file_permission("t", "Edit", {}, "/w/a.txt", "old", "new")
    assert modified["content"][0]["_meta"] == {"kind": "modify"}


def test_a_failure_is_fenced_in_the_content_and_plain_in_raw_output():
    failed = shapes.failed("t", shapes.NOT_READ)
    assert failed["status"] == "failed" and failed["rawOutput"] == shapes.NOT_READ
    assert failed["content"][0]["content"]["text"] == f"```\n{shapes.NOT_READ}\n```"


# -- scripts -------------------------------------------------------------------------------


def test_a_script_line_gives_text_calls_and_the_last_usage_thoughts_dropped():
    line = {
        "method": "generateContentStream",
        "response": [
            {
                "candidates": [{"content": {"parts": [{"text": "hmm", "thought": True}]}}],
                "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1},
            },
            {
                "candidates": [
                    {
                        "content": {
                            "parts": [
                                {"text": "Let me look."},
                                {"functionCall": {"name": "Read", "args": {"file_path": "a"}}},
                            ]
                        }
                    }
                ],
                "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
            },
        ],
    }
    [response] = parse_script(json.dumps(line) + "\n\n")
    assert response.chunks == ("Let me look.",)
    assert response.calls == (ToolCall("Read", {"file_path": "a"}),)
    assert response.usage == Usage(3, 2)


def test_a_bad_script_line_is_named():
    with pytest.raises(ScriptError, match="script line 2"):
        parse_script('{"response": []}\n{"nope": 1}\n')


def test_a_script_file_that_is_not_json_stops_the_simulator_with_its_name(tmp_path: Path):
    from lingma_mcp.sim.acp import _script

    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(OptionError, match=r"bad\.jsonl: script line 1"):
        _script(bad)
    with pytest.raises(OptionError, match="cannot read the script"):
        _script(tmp_path / "missing.jsonl")


# -- instructions --------------------------------------------------------------------------


def test_instructions_become_the_cli_tools_calls():
    instructions, chat = parse_instructions(
        'please\n@read a.txt\n@edit a.txt alpha "be ta"\n@create b.txt one\\ntwo\n'
        '@run touch c\n@call Write {"file_path": "d", "content": "x"}\n@bogus\n@wait'
    )
    assert chat == "please"
    calls = [i.call for i in instructions]
    assert calls[:5] == [
        ToolCall("Read", {"file_path": "a.txt"}),
        ToolCall("Edit", {"file_path": "a.txt", "old_string": "alpha", "new_string": "be ta"}),
        ToolCall("Write", {"file_path": "b.txt", "content": "one\ntwo"}),
        ToolCall("Bash", {"command": "touch c"}),
        ToolCall("Write", {"file_path": "d", "content": "x"}),
    ]
    assert instructions[5].text == "unknown instruction @bogus"
    assert instructions[6].control == "wait"


def test_the_instruction_model_calls_one_tool_at_a_time_then_answers_with_what_it_saw():
    instructions, chat = parse_instructions("hello\n@run ls\n@nonsense")
    model = InstructionModel(
        instructions, chat, "hello", earlier="before", attached=["image image/png (3 bytes)"]
    )
    first = model.next([])
    assert first is not None and first.calls == (ToolCall("Bash", {"command": "ls"}),)
    final = model.next([ToolResult("Bash", True, "exit 0, output: a.txt")])
    assert final is not None and not final.calls
    answer = "".join(final.chunks)
    assert answer == (
        "Earlier you said: before. Answer to: hello Attached: image image/png (3 bytes). "
        "exit 0, output: a.txt @nonsense: unknown instruction @nonsense."
    )
    assert final.usage == Usage(2, -(-len(answer) // 4))  # a token per four characters
    assert model.next([]) is None


# -- prompt blocks -------------------------------------------------------------------------


def test_resources_are_mentioned_and_their_contents_follow_as_the_cli_expands_them():
    prompt = read_prompt(
        [
            {"type": "text", "text": "look at these"},
            {"type": "resource", "resource": {"uri": "file:///w/a.txt", "text": "alpha\n"}},
            {"type": "resource_link", "uri": "file:///w/b.txt", "name": "b.txt"},
        ],
        {"/w/b.txt": "bravo\n"}.get,
    )
    assert prompt.text == "look at these"
    assert prompt.expanded == (  # each part trimmed, as the CLI keeps the message
        "look at these @file:///w/a.txt @/w/b.txt\n"
        "--- Content from referenced files ---\n"
        "Content from @/w/b.txt:\n1\tbravo\n2\n"
        "--- Content from referenced context ---\n"
        "Content from @file:///w/a.txt:\nalpha"
    )
    assert prompt.attached == [
        "resource file:///w/a.txt (6 characters)",
        "resource_link b.txt file:///w/b.txt (6 characters)",
    ]


def test_a_whole_image_is_attached_and_a_damaged_one_is_refused_as_the_cli_does():
    data = png()
    good = read_prompt([{"type": "image", "mimeType": "image/png", "data": _b64(data)}], _none)
    assert good.image_error is None and good.attached == [f"image image/png ({len(data)} bytes)"]
    damaged = data[:-5] + b"\x00" * 5
    bad = read_prompt([{"type": "image", "mimeType": "image/png", "data": _b64(damaged)}], _none)
    assert bad.image_error is not None
    assert bad.image_error.startswith("Unable to attach image because it could not be decoded")
    assert image_problem("image/jpeg", b"\xff\xd8\xff\xe0rest\xff\xd9") is None
    assert image_problem("image/gif", b"GIF89a...;") is None
    assert image_problem("image/svg+xml", b"<svg/>") is not None
    not_base64 = read_prompt([{"type": "image", "mimeType": "image/png", "data": "@@"}], _none)
    assert "not base64" in (not_base64.image_error or "")


def test_audio_is_refused_with_the_cli_words():
    with pytest.raises(BlockRefused) as refused:
        read_prompt([{"type": "audio", "data": "AAAA", "mimeType": "audio/wav"}], _none)
    assert str(refused.value) == "Audio prompts are not supported by the selected Qoder runtime."
    assert refused.value.data == {"mimeType": "audio/wav"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _none(path: str) -> None:
    return None


# -- config options ------------------------------------------------------------------------


def test_sessions_declare_modes_models_and_effort_as_the_cli():
    state = config.session_state(config.Offer(), config.Choice(model="auto"))
    assert state["modes"]["currentModeId"] == "default"
    assert state["models"]["currentModelId"] == "auto"
    assert [o["id"] for o in state["configOptions"]] == ["mode", "model", "reasoning_effort"]
    legacy = config.session_state(config.Offer(models="legacy"), config.Choice(model="auto"))
    assert "configOptions" not in legacy and "models" in legacy
    assert config.session_state(config.Offer(models="none"), config.Choice(model="auto")) == {}


def test_an_unknown_option_or_value_is_refused_with_the_cli_words():
    offer, choice = config.Offer(efforts=()), config.Choice(model="auto")
    with pytest.raises(config.ConfigRefused) as unknown:
        config.set_option(offer, choice, "reasoning_effort", "high")
    assert str(unknown.value) == "Invalid params: Unknown config option: reasoning_effort"
    with pytest.raises(config.ConfigRefused) as bad_model:
        config.set_option(offer, choice, "model", "nonexistent")
    assert (
        str(bad_model.value) == "Invalid params: Invalid value for config option model: nonexistent"
    )
    assert bad_model.value.data == {"configId": "model", "value": "nonexistent"}
    with pytest.raises(config.ConfigRefused, match="Invalid or unavailable model: zzz"):
        config.set_model(choice, "zzz")
    config.set_option(offer, choice, "mode", "yolo")
    assert choice.mode == "yolo"


# -- options -------------------------------------------------------------------------------


def test_a_token_variable_logs_the_simulator_in_and_only_its_name_is_kept():
    opts = from_env({"LINGMA_SIM_ACP_AUTH": "logged_out", "QODERCN_JOB_TOKEN": "secret-value"})
    assert opts.logged_in and opts.credential == "QODERCN_JOB_TOKEN"
    assert "secret-value" not in repr(opts)
    assert not from_env({"LINGMA_SIM_ACP_AUTH": "logged_out"}).logged_in


def test_switches_are_read_and_a_bad_one_is_named():
    opts = from_env(
        {
            "LINGMA_SIM_ACP_CLIENT_TOOLS": "1",
            "LINGMA_SIM_ACP_EFFORTS": "low, max",
            "LINGMA_SIM_ACP_LOAD_REPLAY": "before",
            "QODERCN_EXPOSE_TOKEN_USAGE": "1",
        }
    )
    assert opts.client_tools and opts.efforts == ("low", "max") and opts.replay == "before"
    assert opts.expose_usage
    with pytest.raises(OptionError, match="LOAD_REPLAY"):
        from_env({"LINGMA_SIM_ACP_LOAD_REPLAY": "sometimes"})


# -- stored conversations ------------------------------------------------------------------


def test_a_conversation_written_before_tool_calls_were_kept_still_loads(tmp_path: Path):
    store = ConversationStore(tmp_path)
    store.folder.mkdir(parents=True)
    old = {
        "session_id": "s1",
        "cwd": "/w",
        "title": "hi",
        "updated_at": "2025-01-01T00:00:00Z",
        "model": "auto",
        "history": [{"role": "user", "text": "hi"}, {"role": "agent", "text": "hello"}],
    }
    (store.folder / "s1.json").write_text(json.dumps(old))
    conversation = store.get("s1")
    assert conversation is not None
    assert [(e["kind"], e["text"]) for e in conversation.history] == [
        ("user", "hi"),
        ("agent", "hello"),
    ]
    assert conversation.last_prompt() == "hi"


def test_fork_copies_delete_removes_and_the_title_follows_the_latest_prompt(tmp_path: Path):
    store = ConversationStore(tmp_path)
    source = store.create("/w")
    store.remember(source, [{"kind": "user", "id": "u1", "text": "first\nmore"}])
    store.remember(source, [{"kind": "user", "id": "u2", "text": "second"}])
    assert source.title == "second"
    copy = store.fork(source, "/w")
    assert copy.session_id != source.session_id and copy.history == source.history
    copy.history.append({"kind": "agent", "id": "a", "text": "x"})
    assert len(source.history) == 2  # a copy, not the same list
    assert store.delete(copy.session_id) and not store.delete(copy.session_id)
    assert [c.session_id for c in store.all()] == [source.session_id]
    assert store.get("../escape") is None
