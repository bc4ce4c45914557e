"""The workspace host: confinement first, then the gate, then the journal, then the change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakes import FakeAsker

from lingma_mcp.workspace import (
    ApprovalDenied,
    ApprovalGate,
    ChangeJournal,
    OutsideWorkspace,
    WorkspaceError,
    WorkspaceHost,
    parse_policy,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha\n")
    (tmp_path / "secret.txt").write_text("secret\n")
    return folder.resolve()


def make_host(
    root: Path, policy: str | None = None, asker: FakeAsker | None = None, **kw: bool
) -> WorkspaceHost:
    return WorkspaceHost(root, ApprovalGate(parse_policy(policy), asker=asker, **kw))


async def test_reads_are_allowed_by_default_and_recorded(root: Path) -> None:
    host = make_host(root)
    assert await host.read_text("a.txt") == "alpha\n"
    assert host.approvals == [
        {"tool": "read_text", "target": "a.txt", "decision": "allowed", "by": "policy"}
    ]


async def test_a_long_read_says_it_was_cut(root: Path) -> None:
    (root / "big.txt").write_bytes(b"y" * (1024 * 1024 + 1))
    text = await make_host(root).read_text("big.txt")
    assert text.startswith("y" * 100) and text.endswith("Read further with a line offset.]")


@pytest.mark.parametrize("raw", ["../secret.txt", "/etc/passwd", "a.txt\x00", "~nosuchuser_x/a"])
async def test_escapes_touch_nothing_and_ask_nobody(root: Path, raw: str) -> None:
    asker = FakeAsker()
    host = make_host(root, "write=allow,delete=allow", asker)
    for action in (host.read_text(raw), host.write_text(raw, "x"), host.delete(raw)):
        with pytest.raises(WorkspaceError):
            await action
    assert (root.parent / "secret.txt").read_text() == "secret\n"
    assert asker.requests == []
    assert {a["by"] for a in host.approvals} == {"confinement"}
    assert {a["decision"] for a in host.approvals} == {"denied"}


async def test_writing_through_a_symlinked_folder_out_is_refused(root: Path) -> None:
    outside = root.parent / "elsewhere"
    outside.mkdir()
    (root / "out").symlink_to(outside, target_is_directory=True)
    host = make_host(root, "write=allow")
    with pytest.raises(OutsideWorkspace):
        await host.write_text("out/planted.txt", "x")
    assert list(outside.iterdir()) == []


async def test_a_fifo_is_neither_read_nor_written(root: Path) -> None:
    os.mkfifo(root / "pipe")
    host = make_host(root, "write=allow")
    for action in (host.read_text("pipe"), host.write_text("pipe", "x")):
        with pytest.raises(OutsideWorkspace, match="fifo"):
            await action


async def test_a_write_asks_with_a_diff_preview_then_lands(root: Path) -> None:
    notes: list[str] = []
    asker = FakeAsker("approve")
    host = WorkspaceHost(root, ApprovalGate(parse_policy(None), asker=asker, on_note=notes.append))
    await host.write_text("a.txt", "beta\n")
    [request] = asker.requests
    assert request.action == "write" and request.target == "a.txt"
    assert (
        request.preview is not None and "-alpha" in request.preview and "+beta" in request.preview
    )
    assert (root / "a.txt").read_text() == "beta\n"
    assert host.changes == [
        {"path": "a.txt", "action": "modified", "lines_added": 1, "lines_removed": 1}
    ]
    assert "modified a.txt (+1 -1)" in notes


async def test_a_declined_write_leaves_the_file_untouched(root: Path) -> None:
    host = make_host(root, None, FakeAsker("deny"))
    with pytest.raises(ApprovalDenied, match="declined"):
        await host.write_text("a.txt", "beta\n")
    with pytest.raises(ApprovalDenied):
        await make_host(root, None, FakeAsker("deny")).write_text("new/b.txt", "x")
    assert (root / "a.txt").read_text() == "alpha\n"
    assert not (root / "new").exists()
    assert host.changes == []


async def test_without_an_asker_the_default_denies_saying_how_to_allow(root: Path) -> None:
    host = make_host(root)
    with pytest.raises(ApprovalDenied, match="LINGMA_APPROVAL=write=allow"):
        await host.write_text("a.txt", "beta\n")
    with pytest.raises(ApprovalDenied, match="LINGMA_APPROVAL=delete=allow"):
        await host.delete("a.txt")
    with pytest.raises(ApprovalDenied, match="LINGMA_APPROVAL=run=allow"):
        await host.create_terminal("touch ran")
    assert not (root / "ran").exists()
    assert [a["by"] for a in host.approvals] == ["policy (nobody could be asked)"] * 3


async def test_read_only_denies_writes_even_when_allowed(root: Path) -> None:
    host = make_host(root, "write=allow,delete=allow,run=allow", read_only=True)
    with pytest.raises(ApprovalDenied, match="read-only"):
        await host.write_text("a.txt", "beta\n")
    with pytest.raises(ApprovalDenied, match="read-only"):
        await host.delete("a.txt")
    assert (root / "a.txt").read_text() == "alpha\n"


async def test_new_files_get_their_folders_and_crlf_files_stay_crlf(root: Path) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    host = make_host(root, "write=allow")
    await host.write_text("deep/er/c.txt", "x\n")
    await host.write_text("win.txt", "one\nthree\n")
    assert (root / "deep" / "er" / "c.txt").read_text() == "x\n"
    assert (root / "win.txt").read_bytes() == b"one\r\nthree\r\n"


async def test_an_unchanged_write_asks_nothing(root: Path) -> None:
    asker = FakeAsker()
    host = make_host(root, None, asker)
    await host.write_text("a.txt", "alpha\n")
    assert asker.requests == [] and host.changes == []


async def test_deleting_through_a_symlink_is_refused(root: Path) -> None:
    (root / "alias.txt").symlink_to(root / "a.txt")
    host = make_host(root, "delete=allow")
    with pytest.raises(WorkspaceError, match="symbolic link"):
        await host.delete("alias.txt")
    assert (root / "a.txt").exists()


async def test_delete_removes_the_file_and_records_it(root: Path, tmp_path: Path) -> None:
    journal = ChangeJournal(tmp_path / "work")
    host = WorkspaceHost(root, ApprovalGate(parse_policy("delete=allow")), journal.begin("r", root))
    await host.delete("a.txt")
    assert not (root / "a.txt").exists()
    assert journal.changes("r")[0]["action"] == "deleted"
    with pytest.raises(WorkspaceError, match="does not exist"):
        await host.delete("a.txt")


async def test_an_approval_covers_that_tool_call_with_that_content_only(root: Path) -> None:
    asker = FakeAsker("approve", "approve", "approve", "approve")
    host = make_host(root, None, asker)
    assert await host.authorize(
        "write", "edit_file", [str(root / "a.txt")], call_id="t1", content="beta\n"
    )
    await host.write_text("a.txt", "beta\n", call_id="t1")  # what was shown: no question
    assert len(asker.requests) == 1
    await host.write_text("a.txt", "gamma\n", call_id="t1")  # the pass was for one write
    assert len(asker.requests) == 2
    assert await host.authorize("write", "edit_file", ["a.txt"], call_id="t2", content="ok\n")
    await host.write_text("a.txt", "a different payload\n", call_id="t2")
    assert len(asker.requests) == 4  # a different payload is a different question
    assert (root / "a.txt").read_text() == "a different payload\n"


async def test_an_approval_for_one_tool_call_does_not_cover_another(root: Path) -> None:
    asker = FakeAsker("approve", "deny")
    host = make_host(root, None, asker)
    assert await host.authorize("write", "edit_file", ["a.txt"], call_id="t1", content="b\n")
    with pytest.raises(ApprovalDenied):
        await host.write_text("a.txt", "b\n", call_id="t2")
    assert (root / "a.txt").read_text() == "alpha\n"


@pytest.mark.parametrize("raw", ["/etc/x", "../outside.txt", "~/.bashrc"])
async def test_a_pending_tool_outside_the_workspace_is_refused_even_when_allowed(
    root: Path, raw: str
) -> None:
    asker = FakeAsker()
    host = make_host(root, "write=allow", asker)
    assert not await host.authorize("write", "edit_file", [raw], content="x")
    assert asker.requests == []
    assert host.approvals == [
        {"tool": "edit_file", "target": raw, "decision": "denied", "by": "confinement"}
    ]


async def test_every_target_of_an_action_must_be_inside(root: Path) -> None:
    host = make_host(root, "write=allow")
    assert not await host.authorize("write", "move", ["a.txt", "/tmp/elsewhere/a.txt"])
    assert host.approvals[-1]["by"] == "confinement"


async def test_an_action_that_names_no_target_is_asked_with_a_warning(root: Path) -> None:
    asker = FakeAsker("approve")
    host = make_host(root, "write=allow,run=allow", asker)
    assert await host.authorize("write", "mystery", [], content="x")
    assert "did not say which file" in asker.requests[0].message
    nobody = make_host(root, "write=allow,run=allow")
    assert not await nobody.authorize("write", "mystery", [])
    assert not await nobody.authorize("run", "Bash", [], command=None)
    assert {a["by"] for a in nobody.approvals} == {"policy (nobody could be asked)"}


async def test_a_change_inside_git_or_the_work_dir_is_always_asked(root: Path) -> None:
    (root / ".git").mkdir()
    (root / "state").mkdir()
    asker = FakeAsker("approve", "deny")
    host = WorkspaceHost(
        root,
        ApprovalGate(parse_policy("write=allow"), asker=asker),
        guarded=[root / "state"],
    )
    await host.write_text(".git/config", "[core]\n\tfsmonitor = touch /tmp/pwned\n")
    assert ".git folder" in asker.requests[0].message
    with pytest.raises(ApprovalDenied):
        await host.write_text("state/record.json", "{}")
    assert "work dir" in asker.requests[1].message
    assert not (root / "state" / "record.json").exists()
    alone = make_host(root, "write=allow")  # nobody to ask: never by the setting alone
    with pytest.raises(ApprovalDenied):
        await alone.write_text(".git/hooks/pre-commit", "#!/bin/sh\n")
    assert not (root / ".git" / "hooks").exists()


async def test_nothing_lands_once_the_call_has_ended(root: Path) -> None:
    host = make_host(root, None)

    async def ask(request: object) -> str:
        await host.close()  # the call ends while the person reads the question
        return "approve"

    host.gate._asker = ask
    with pytest.raises(WorkspaceError):
        await host.write_text("a.txt", "late\n")
    with pytest.raises(WorkspaceError):
        await host.write_text("b.txt", "after\n")
    assert (root / "a.txt").read_text() == "alpha\n" and not (root / "b.txt").exists()


async def test_a_folder_swapped_for_a_link_while_asking_is_not_followed(root: Path) -> None:
    (root / "sub").mkdir()
    outside = root.parent / "elsewhere"
    outside.mkdir()

    async def ask(request: object) -> str:
        (root / "sub").rmdir()
        (root / "sub").symlink_to(outside, target_is_directory=True)
        return "approve"

    host = make_host(root, None)
    host.gate._asker = ask
    with pytest.raises(OutsideWorkspace):
        await host.write_text("sub/new.txt", "x\n")
    assert list(outside.iterdir()) == []


async def test_authorize_records_a_denial(root: Path) -> None:
    host = make_host(root, "run=deny")
    assert not await host.authorize("run", "run_in_terminal", [], command="rm -rf build")
    assert host.approvals == [
        {"tool": "run_in_terminal", "target": "rm -rf build", "decision": "denied", "by": "policy"}
    ]


async def test_save_succeeds_saying_there_is_nothing_to_save(root: Path) -> None:
    assert "written to disk at once" in await make_host(root).save("a.txt")


async def test_problems_reports_syntax_errors_only(root: Path) -> None:
    (root / "bad.py").write_text("def f(:\n")
    (root / "good.json").write_text("{}")
    (root / "x.rs").write_text("fn (")
    found = await make_host(root).problems(["bad.py", "good.json", "x.rs", "missing.py"])
    assert [(p["file"], p["line"]) for p in found] == [("bad.py", 1)]


async def test_a_closed_host_does_nothing_more(root: Path) -> None:
    host = make_host(root, "write=allow")
    await host.close()
    await host.close()
    with pytest.raises(WorkspaceError, match="ended"):
        await host.write_text("a.txt", "x")


def test_a_missing_workspace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="does not exist"):
        WorkspaceHost(tmp_path / "nope", ApprovalGate(parse_policy(None)))
