"""The simulator's pure parts, without a process or a socket."""

from __future__ import annotations

import asyncio
import json
import os
import random
import stat
from pathlib import Path

import pytest

from lingma_mcp.lingma.framing import FrameDecoder, FrameError, encode_frame
from lingma_mcp.sim import instructions, script
from lingma_mcp.sim.account import Account
from lingma_mcp.sim.context import attachments
from lingma_mcp.sim.conversation_store import ConversationStore, parse_store
from lingma_mcp.sim.edits import edit_of
from lingma_mcp.sim.info_writer import render_info
from lingma_mcp.sim.outbox import MALFORMED_FRAMES, Outbox
from lingma_mcp.sim.private_files import remove_leftovers, write_durably
from lingma_mcp.sim.start_options import OptionError, build_options
from lingma_mcp.sim.state import MessageLog


def test_environment_sets_options_and_flags_win(tmp_path: Path) -> None:
    env = {"LINGMA_SIM_CHUNK": "3", "LINGMA_SIM_AUTH": "expired", "LINGMA_SIM_SPLIT": "0"}
    options = build_options(tmp_path, env, flags={"chunk": 5, "hang": None})
    assert (options.chunk, options.auth, options.split, options.hang) == (
        5,
        "expired",
        False,
        False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LINGMA_SIM_CHUNK", "0"), ("LINGMA_SIM_AUTH", "maybe"), ("LINGMA_SIM_DELTA_DELAY", "-1")],
)
def test_a_bad_environment_value_names_its_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(OptionError, match=variable):
        build_options(tmp_path, {variable: value})


def test_answers_mention_question_model_and_turn() -> None:
    first = script.compose_answer("为什么 why?", "auto", 1)
    second = script.compose_answer("为什么 why?", "auto", 2)
    assert "为什么 why?" in first and "auto" in first and first != second
    assert not first.isascii()


def test_padding_is_deterministic_and_exact() -> None:
    padded = script.pad("abc", 100)
    assert len(padded) == 100 and padded == script.pad("abc", 100)
    assert script.pad("abcdef", 3) == "abc"


def test_deltas_join_back_and_include_empty_ones() -> None:
    text = script.compose_answer("q", "auto", 1, size=100)
    deltas = script.cut_deltas(text, 8)
    assert "".join(deltas) == text and "" in deltas
    assert len(script.cut_exactly(text, 37)) == 37 and "".join(script.cut_exactly(text, 37)) == text


def test_info_formats_render_as_clients_read_them(tmp_path: Path) -> None:
    assert render_info(5, 7, "two", tmp_path) == "5\n7\n"
    assert render_info(5, 7, "three", tmp_path).split("\n")[2].endswith(".sock")
    assert json.loads(render_info(5, 7, "json", tmp_path))["websocketPort"] == 5


def test_auth_status_carries_fake_secrets_and_models_need_a_login() -> None:
    account = Account("logged_in")
    status = account.status()
    assert status["status"] == 2 and status["whitelist"] == 3
    assert status["token"].startswith("sim-secret-token-")
    assert set(account.models()) == {"assistant", "chat", "developer", "inline", "quest"}
    account.logout()
    assert account.status()["status"] == 1 and account.models() == {}
    assert Account("expired").status()["status"] == 3


def test_conversations_survive_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    store = ConversationStore(path)
    turn = store.begin("client-hint", False, "file:///p", "first question")
    assert turn.is_new and turn.session_id != "client-hint"
    store.record(turn.session_id, "r1", "FREE_INPUT", "first question", "answer")
    again = ConversationStore(path)
    assert again.begin(turn.session_id, True, "file:///p", "next").number == 2
    assert [s["sessionId"] for s in again.list("file:///p")] == [turn.session_id]
    assert again.list("file:///other") == []


async def test_saves_inside_an_event_loop_are_batched(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    store = ConversationStore(path)
    for n in range(20):
        turn = store.begin(None, False, "file:///p", f"question {n}")
        store.record(turn.session_id, f"r{n}", "FREE_INPUT", f"question {n}", "answer")
    assert not path.exists()  # one write is scheduled, none done yet
    store.flush()
    assert len(ConversationStore(path).list(None)) == 20


def test_a_damaged_store_is_moved_aside_and_an_empty_one_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sessions.json"
    store = ConversationStore(path)
    for n in range(5):
        turn = store.begin(None, False, "file:///p", f"question {n}")
        store.record(turn.session_id, f"r{n}", "FREE_INPUT", f"question {n}", "answer")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # a crash mid-write by a careless writer

    again = ConversationStore(path)

    assert again.list(None) == []
    assert again.set_aside is not None and again.set_aside.name.startswith("sessions.json.corrupt-")
    assert again.set_aside.read_bytes() == whole[: len(whole) // 2]
    assert not path.exists()
    assert "damaged" in caplog.text and str(again.set_aside) in caplog.text
    again.begin(None, False, "file:///p", "after")
    assert len(ConversationStore(path).list(None)) == 1
    assert again.set_aside.exists()  # the damaged file is never overwritten


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"sessions": {}}',
        '{"sessions": [{"sessionId": 1}]}',
        '{"sessions": [{"sessionId": "s", "sessionTitle": "t", "projectUri": "", '
        '"gmtModified": 1, "chatRecords": [{"question": "no id"}]}]}',
    ],
)
def test_every_kind_of_damage_is_named(text: str) -> None:
    with pytest.raises(ValueError):
        parse_store(text.encode())


def test_the_store_is_private_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir(mode=0o755)
    (folder / "sessions.json.999999997.tmp").write_text("half a write")
    store = ConversationStore(folder / "sessions.json")
    store.begin(None, False, "file:///p", "q")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "sessions.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == ["sessions.json"]


def test_a_temporary_file_of_a_running_writer_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    live = tmp_path / f"sessions.json.{os.getppid()}.tmp"  # our parent still runs
    dead = tmp_path / "sessions.json.999999999.tmp"
    live.write_text("in progress")
    dead.write_text("left behind")
    assert remove_leftovers(path) == [dead]
    assert live.exists()


def test_a_durable_write_replaces_the_file_whole_and_keeps_it_private(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_text("old")
    path.chmod(0o644)
    write_durably(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_the_message_log_is_private(tmp_path: Path) -> None:
    log = MessageLog(str(tmp_path / "log.jsonl"))
    log.write("event", 1, event="x")
    log.close()
    assert stat.S_IMODE((tmp_path / "log.jsonl").stat().st_mode) == 0o600


async def _through_outbox(frames: list[bytes], split: bool, seed: int = 1) -> list[str | bytes]:
    sent: list[str | bytes] = []
    outbox = Outbox(sent.append, split=split, rng=random.Random(seed))
    writer = asyncio.create_task(outbox.run())
    for index, frame in enumerate(frames, 1):
        outbox.put(frame)
        if index % 10 == 0:
            await asyncio.sleep(0)  # let the writer take a batch, as between chat yields
    await outbox.drained()
    outbox.close()
    await writer
    return sent


async def test_outbox_splits_merges_and_cuts_inside_characters() -> None:
    messages = [{"id": i, "text": "通义灵码 frame " * (i % 5 + 1)} for i in range(200)]
    sent = await _through_outbox([encode_frame(m) for m in messages], split=True)
    decoder = FrameDecoder()
    decoded = [m for piece in sent for m in decoder.feed(piece)]
    assert decoded == messages
    assert len(sent) != len(messages)
    assert any(isinstance(m, str) for m in sent) and any(isinstance(m, bytes) for m in sent)
    mid_character = [m for m in sent if isinstance(m, bytes) and _is_cut_utf8(m)]
    assert mid_character, "no message ended or started inside a multi-byte character"


async def test_split_points_are_reproducible_from_the_seed() -> None:
    frames = [encode_frame({"id": i, "text": "灵码" * i}) for i in range(60)]
    first = await _through_outbox(frames, split=True, seed=7)
    assert first == await _through_outbox(frames, split=True, seed=7)
    assert first != await _through_outbox(frames, split=True, seed=8)


async def test_outbox_without_splitting_sends_one_text_frame_per_message() -> None:
    frames = [encode_frame({"id": i}) for i in range(5)]
    sent = await _through_outbox([*frames, MALFORMED_FRAMES[3]], split=False)
    assert sent[:5] == [f.decode() for f in frames] and sent[5] == MALFORMED_FRAMES[3]


def test_each_malformed_frame_is_skipped_without_losing_its_neighbours() -> None:
    good = [encode_frame({"id": i}) for i in range(len(MALFORMED_FRAMES) + 1)]
    stream = b"".join(g + bad for g, bad in zip(good, [*MALFORMED_FRAMES, b""], strict=True))
    out = FrameDecoder().feed(stream)
    assert [m for m in out if not isinstance(m, FrameError)] == [
        {"id": i} for i in range(len(good))
    ]
    assert len([m for m in out if isinstance(m, FrameError)]) >= len(MALFORMED_FRAMES)


def _is_cut_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


# -- the agent-mode instruction language ----------------------------------------------------


def test_only_lines_starting_with_at_are_instructions() -> None:
    parsed = instructions.parse("Fix it.\n  @read a.txt\nemail me @ noon\n@\n@run  ls  -l ")
    assert [(i.verb, i.paths, i.text) for i in parsed] == [
        ("read", ("a.txt",), ""),
        ("run", (), "ls  -l"),
    ]


def test_text_runs_to_the_end_of_the_line_with_escapes() -> None:
    (create,) = instructions.parse(r'@create "a b.txt" x\ny\tz\\n and \q')
    assert create.paths == ("a b.txt",) and create.text == "x\ny\tz\\n and \\q"
    (empty,) = instructions.parse("@create empty.txt")
    assert empty.text == ""


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("@nope x", "unknown instruction"),
        ("@read", "PATH is missing"),
        ("@read a b", "one PATH"),
        ('@read "unterminated', "not a JSON string"),
        ("@problems", "at least one PATH"),
        ("@run", "needs a COMMAND"),
        ("@tool", "needs a NAME"),
        ("@tool x {bad", "not JSON"),
        ("@pending x [1]", "JSON object"),
        ("@async yes", "one of on, off, absent"),
        ("@spell loud", "one of content"),
    ],
)
def test_a_bad_line_becomes_an_invalid_instruction_that_says_why(line: str, why: str) -> None:
    (parsed,) = instructions.parse(line)
    assert parsed.verb == "invalid" and why in parsed.text and parsed.source == line


def test_paths_are_joined_to_the_workspace_but_never_normalised() -> None:
    assert instructions.resolve("a/../b", "/ws") == "/ws/a/../b"
    assert instructions.resolve("/etc/passwd", "/ws") == "/etc/passwd"
    assert instructions.resolve("~/x", "/ws") == "~/x"


def test_tool_calls_follow_the_spelling_in_force() -> None:
    spelling = instructions.Spelling()
    (create,) = instructions.parse("@create a.txt hi")
    assert instructions.tool_call(create, spelling, "/ws") == (
        "create_file_with_text",
        {"filePath": "/ws/a.txt", "text": "hi"},
    )
    for line in ("@spell content", "@spell file_path", "@async absent"):
        spelling.apply(instructions.parse(line)[0])
    assert instructions.tool_call(create, spelling, "/ws")[1] == {
        "file_path": "/ws/a.txt",
        "content": "hi",
    }
    assert spelling.use_async is None
    (output,) = instructions.parse("@output")
    assert instructions.tool_call(output, spelling, "/ws", terminal="t9") == (
        "get_terminal_output",
        {"terminalId": "t9"},
    )


def test_outcome_lines_read_as_the_client_answered() -> None:
    (run,) = instructions.parse("@run make test")
    done = {"success": True, "result": {"exitCode": 2, "output": "\n  FAILED x\nmore"}}
    assert instructions.describe(run, done) == "run_in_terminal make test: exit 2: FAILED x"
    failed = {"success": False, "errorMessage": "denied by policy\nsecond line"}
    assert (
        instructions.describe(run, failed) == "run_in_terminal make test: failed: denied by policy"
    )
    assert instructions.describe(run, {}) == "run_in_terminal make test: failed: no errorMessage"
    (read,) = instructions.parse("@read a")
    long_line = {"success": True, "result": {"content": "x" * 500}}
    assert len(instructions.describe(read, long_line)) == len("read_file a: ok: ") + 200


# -- what a chat/ask carries, and edits the binary makes itself ---------------------------


def test_context_items_are_named_in_the_order_the_fields_are_read():
    params = {
        "chatContext": {"activeFilePath": "/p/a.py", "imageUrls": ["data:image/jpeg;base64,AA", 7]},
        "extra": {"context": [{"kind": "selection", "text": "x" * 200}, {"type": "folder"}]},
    }
    assert attachments(params) == (
        "active file /p/a.py",
        "image data:image/jpeg (25 characters)",
        "image (not a URL: int)",
        "context selection " + "x" * 80,
        "context folder",
    )
    assert attachments({"chatContext": "junk", "extra": None}) == ()


def test_an_edit_needs_an_editing_tool_a_path_and_a_text():
    assert edit_of("edit_file", {"target_file": "a.py", "text": ""}, "/w") == ("/w/a.py", "")
    assert edit_of("edit_file", {"file_path": "/abs/b.py", "content": "x"}, "/w") == (
        "/abs/b.py",
        "x",
    )
    assert edit_of("edit_file", {"file_path": "a.py"}, "/w") is None  # nothing to write
    assert edit_of("run_in_terminal", {"file_path": "a", "content": "x"}, "/w") is None
