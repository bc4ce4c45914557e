"""The plugin dialect over the workspace host: tool names, spellings and result shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeAsker

from lingma_mcp.lingma.ide_tools import IdeTools
from lingma_mcp.lingma.toolhost import IdeToolHandler
from lingma_mcp.workspace import ApprovalGate, WorkspaceHost, parse_policy


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha\n")
    return folder.resolve()


def tools_for(root: Path, policy: str | None = None, asker: FakeAsker | None = None) -> IdeTools:
    return IdeTools(WorkspaceHost(root, ApprovalGate(parse_policy(policy), asker=asker)))


def test_it_implements_the_port(root: Path) -> None:
    handler: IdeToolHandler = tools_for(root)
    assert handler is not None


async def test_read_file_returns_path_and_content(root: Path) -> None:
    outcome = await tools_for(root).invoke("read_file", {"file_path": str(root / "a.txt")})
    assert outcome.success and outcome.error_message is None
    assert outcome.result["path"] == str(root / "a.txt")
    assert outcome.result["content"] == "alpha\n"


@pytest.mark.parametrize("key", ["filePath", "file_path"])
@pytest.mark.parametrize("text_key", ["text", "content"])
async def test_create_accepts_both_spellings(root: Path, key: str, text_key: str) -> None:
    tools = tools_for(root, "write=allow")
    outcome = await tools.invoke("create_file_with_text", {key: "n/b.txt", text_key: "hi\n"})
    assert outcome.success, outcome.error_message
    assert (root / "n" / "b.txt").read_text() == "hi\n"


async def test_replace_and_delete(root: Path) -> None:
    tools = tools_for(root, "write=allow,delete=allow")
    assert (
        await tools.invoke("replace_text_by_path", {"filePath": "a.txt", "text": "b\n"})
    ).success
    assert (root / "a.txt").read_text() == "b\n"
    assert (await tools.invoke("delete_file_by_path", {"filePath": "a.txt"})).success
    assert not (root / "a.txt").exists()
    assert [c["action"] for c in tools.host.changes] == ["deleted"]


async def test_save_file_succeeds_saying_so(root: Path) -> None:
    outcome = await tools_for(root).invoke("save_file", {"file_path": "a.txt"})
    assert outcome.success and "written to disk at once" in outcome.result["message"]


async def test_get_problems(root: Path) -> None:
    (root / "bad.json").write_text("{")
    outcome = await tools_for(root).invoke("get_problems", {"filePaths": ["bad.json", "a.txt"]})
    assert outcome.success
    [problem] = outcome.result["problems"]
    assert problem["file"] == "bad.json"


async def test_run_in_terminal_in_the_foreground(root: Path) -> None:
    tools = tools_for(root, "run=allow")
    outcome = await tools.invoke(
        "run_in_terminal", {"command": "ls; exit 4", "isBackground": False}
    )
    assert outcome.success
    assert outcome.result["exitCode"] == 4 and "a.txt" in outcome.result["output"]
    assert outcome.result["terminalId"]
    await tools.host.close()


async def test_run_in_the_background_then_get_its_output(root: Path) -> None:
    tools = tools_for(root, "run=allow")
    started = await tools.invoke("run_in_terminal", {"command": "echo hi", "isBackground": True})
    assert started.success and started.result["exitCode"] is None
    terminal_id = started.result["terminalId"]
    await tools.host.wait_for_exit(terminal_id)
    out = await tools.invoke("get_terminal_output", {"terminalId": terminal_id})
    assert out.success
    assert out.result["output"] == "hi\n" and out.result["isRunning"] is False
    assert out.result["exitCode"] == 0
    await tools.host.close()


async def test_unknown_tools_get_the_plugins_words(root: Path) -> None:
    outcome = await tools_for(root).invoke("open_browser", {})
    assert (outcome.success, outcome.error_message) == (False, "tool not support yet")


async def test_an_escape_is_a_readable_failure_not_an_exception(root: Path) -> None:
    outcome = await tools_for(root).invoke("read_file", {"file_path": "/etc/passwd"})
    assert not outcome.success
    assert outcome.error_message == (
        f"/etc/passwd is outside the workspace {root}; only files inside it can be read or changed"
    )


async def test_a_denial_is_a_readable_failure(root: Path) -> None:
    outcome = await tools_for(root).invoke(
        "create_file_with_text", {"filePath": "b.txt", "text": "x"}
    )
    assert not outcome.success and "LINGMA_APPROVAL=write=allow" in (outcome.error_message or "")
    assert not (root / "b.txt").exists()


async def test_missing_parameters_say_what_is_needed(root: Path) -> None:
    outcome = await tools_for(root).invoke("read_file", {})
    assert not outcome.success and "file_path" in (outcome.error_message or "")


@pytest.mark.parametrize(
    ("tool", "params", "action"),
    [
        ("run_in_terminal", {"command": "make test"}, "run"),
        ("edit_file", {"file_path": "a.txt"}, "write"),
        ("delete_file", {"file_path": "a.txt"}, "delete"),
        ("search_codebase", {"query": "foo"}, "read"),
        ("frobnicate", {"x": 1}, "write"),
    ],
)
async def test_confirm_classifies_and_asks_the_gate(
    root: Path, tool: str, params: dict, action: str
) -> None:
    asker = FakeAsker("approve")
    tools = tools_for(root, "read=ask", asker)
    assert await tools.confirm(tool, params, "call-1")
    [request] = asker.requests
    assert (request.action, request.tool) == (action, tool)


async def test_confirm_then_invoke_asks_once(root: Path) -> None:
    asker = FakeAsker("approve")
    tools = tools_for(root, None, asker)
    params = {"filePath": "a.txt", "text": "b\n"}
    assert await tools.confirm("replace_text_by_path", params, "call-1")
    assert (await tools.invoke("replace_text_by_path", params)).success
    assert len(asker.requests) == 1


async def test_confirm_denied_by_the_person(root: Path) -> None:
    tools = tools_for(root, None, FakeAsker("deny"))
    assert not await tools.confirm("run_in_terminal", {"command": "rm -rf /"}, "c")
    assert tools.host.approvals[0]["decision"] == "denied"
