"""The change journal: every change of a call, shown as a diff, revertible, kept on disk."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from lingma_mcp.workspace import (
    ApprovalGate,
    ChangeJournal,
    UnknownChangeRecord,
    WorkspaceHost,
    parse_policy,
)

ALLOW = "write=allow,delete=allow,run=allow"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "keep.txt").write_text("one\ntwo\nthree\n")
    (folder / "gone.txt").write_text("bye\n")
    return folder.resolve()


def host_for(journal: ChangeJournal, root: Path, request_id: str) -> WorkspaceHost:
    return WorkspaceHost(root, ApprovalGate(parse_policy(ALLOW)), journal.begin(request_id, root))


async def make_changes(journal: ChangeJournal, root: Path, request_id: str = "req-1") -> None:
    host = host_for(journal, root, request_id)
    await host.write_text("notes/new.txt", "hello\nworld\n")
    await host.write_text("keep.txt", "one\n2\nthree\nfour\n")
    await host.delete("gone.txt")
    await host.close()


async def test_changes_are_listed_with_their_line_counts(tmp_path: Path, root: Path) -> None:
    journal = ChangeJournal(tmp_path / "work")
    await make_changes(journal, root)
    assert journal.changes("req-1") == [
        {"path": "notes/new.txt", "action": "created", "lines_added": 2, "lines_removed": 0},
        {"path": "keep.txt", "action": "modified", "lines_added": 2, "lines_removed": 1},
        {"path": "gone.txt", "action": "deleted", "lines_added": 0, "lines_removed": 1},
    ]


async def test_diff_is_one_unified_diff(tmp_path: Path, root: Path) -> None:
    journal = ChangeJournal(tmp_path / "work")
    await make_changes(journal, root)
    diff = journal.diff("req-1")
    assert "--- /dev/null\n+++ b/notes/new.txt\n" in diff
    assert "--- a/keep.txt\n+++ b/keep.txt\n" in diff and "-two\n+2\n" in diff
    assert "--- a/gone.txt\n+++ /dev/null\n" in diff and "-bye\n" in diff


async def test_several_writes_to_one_file_are_one_change(tmp_path: Path, root: Path) -> None:
    journal = ChangeJournal(tmp_path / "work")
    host = host_for(journal, root, "r")
    await host.write_text("keep.txt", "a\n")
    await host.write_text("keep.txt", "b\n")
    await host.write_text("tmp.txt", "x\n")
    await host.delete("tmp.txt")  # created then deleted: no change at all
    await host.write_text("gone.txt", "changed\n")
    await host.write_text("gone.txt", "bye\n")  # put back as it was: no change either
    assert journal.changes("r") == [
        {"path": "keep.txt", "action": "modified", "lines_added": 1, "lines_removed": 3}
    ]
    assert host.changes == journal.changes("r")


async def test_revert_puts_every_file_back(tmp_path: Path, root: Path) -> None:
    journal = ChangeJournal(tmp_path / "work")
    (root / "keep.txt").chmod(0o640)
    await make_changes(journal, root)
    result = journal.revert("req-1")
    assert result == {
        "request_id": "req-1",
        "restored": ["notes/new.txt", "keep.txt", "gone.txt"],
        "refused": [],
    }
    assert (root / "keep.txt").read_text() == "one\ntwo\nthree\n"
    assert stat.S_IMODE(os.stat(root / "keep.txt").st_mode) == 0o640
    assert (root / "gone.txt").read_text() == "bye\n"
    assert not (root / "notes").exists()  # the folder made for the new file is gone too


async def test_revert_refuses_and_names_a_file_changed_since(tmp_path: Path, root: Path) -> None:
    journal = ChangeJournal(tmp_path / "work")
    await make_changes(journal, root)
    (root / "keep.txt").write_text("edited by hand\n")
    (root / "gone.txt").write_text("back again\n")
    result = journal.revert("req-1")
    assert result["restored"] == ["notes/new.txt"]
    refused = {r["path"]: r["reason"] for r in result["refused"]}
    assert set(refused) == {"keep.txt", "gone.txt"}
    assert "changed since" in refused["keep.txt"]
    assert "created again" in refused["gone.txt"]
    assert (root / "keep.txt").read_text() == "edited by hand\n"
    again = journal.revert("req-1")
    assert {"path": "notes/new.txt", "reason": "already reverted"} in again["refused"]


async def test_unknown_request_id_is_a_typed_error_that_says_so(tmp_path: Path) -> None:
    journal = ChangeJournal(tmp_path / "work")
    for call in (journal.changes, journal.diff, journal.revert):
        with pytest.raises(UnknownChangeRecord, match="no changes are recorded for request id"):
            call("nope")


async def test_the_record_survives_a_reopen(tmp_path: Path, root: Path) -> None:
    journal = ChangeJournal(tmp_path / "work")
    await make_changes(journal, root)
    reopened = ChangeJournal(tmp_path / "work")
    assert reopened.changes("req-1") == journal.changes("req-1")
    assert reopened.diff("req-1") == journal.diff("req-1")
    assert reopened.revert("req-1")["refused"] == []
    assert (root / "gone.txt").read_text() == "bye\n"


async def test_folders_are_private_and_files_0600(tmp_path: Path, root: Path) -> None:
    journal = ChangeJournal(tmp_path / "work")
    await make_changes(journal, root)
    assert stat.S_IMODE(os.stat(journal.directory).st_mode) == 0o700
    entries = list(journal.directory.rglob("*"))
    assert entries
    for entry in entries:
        expected = 0o700 if entry.is_dir() else 0o600
        assert stat.S_IMODE(os.stat(entry).st_mode) == expected, entry


async def test_only_the_last_calls_are_kept(tmp_path: Path, root: Path) -> None:
    journal = ChangeJournal(tmp_path / "work", max_calls=3)
    for n in range(5):
        host = host_for(journal, root, f"r{n}")
        await host.write_text(f"f{n}.txt", f"{n}\n")
    assert journal.request_ids() == ["r2", "r3", "r4"]
    assert len(list(journal.directory.iterdir())) == 3
    with pytest.raises(UnknownChangeRecord):
        journal.diff("r0")
    assert ChangeJournal(tmp_path / "work", max_calls=3).request_ids() == ["r2", "r3", "r4"]


async def test_the_size_bound_drops_the_oldest_first(tmp_path: Path, root: Path) -> None:
    journal = ChangeJournal(tmp_path / "work", max_bytes=2500)
    for n in range(3):
        host = host_for(journal, root, f"r{n}")
        await host.write_text(f"f{n}.txt", "x" * 1000)
    assert journal.request_ids() == ["r1", "r2"]


async def test_a_failed_write_takes_its_record_back(
    tmp_path: Path, root: Path, monkeypatch
) -> None:
    from lingma_mcp.workspace import WorkspaceError
    from lingma_mcp.workspace import files as files_mod

    journal = ChangeJournal(tmp_path / "work")
    host = host_for(journal, root, "r")

    real_replace = os.replace

    def fail_in_workspace(src: str, dst: str, **where: object) -> None:
        # The workspace's writes rename beneath its folder's descriptor; the journal's own
        # writes (whole paths) go through.
        if where.get("dst_dir_fd") is not None:
            raise OSError(28, "No space left on device")
        real_replace(src, dst, **where)

    monkeypatch.setattr(files_mod.os, "replace", fail_in_workspace)
    with pytest.raises(WorkspaceError, match="No space left"):
        await host.write_text("keep.txt", "new\n")
    assert journal.changes("r") == []
    assert (root / "keep.txt").read_text() == "one\ntwo\nthree\n"


async def test_an_undone_second_write_keeps_the_first_one_revertible(
    tmp_path: Path, root: Path, monkeypatch
) -> None:
    from lingma_mcp.workspace import WorkspaceError
    from lingma_mcp.workspace import files as files_mod

    journal = ChangeJournal(tmp_path / "work")
    host = host_for(journal, root, "r")
    await host.write_text("keep.txt", "first\n")
    real_replace = os.replace

    def fail_in_workspace(src: str, dst: str, **where: object) -> None:
        if where.get("dst_dir_fd") is not None:
            raise OSError(28, "No space left on device")
        real_replace(src, dst, **where)

    monkeypatch.setattr(files_mod.os, "replace", fail_in_workspace)
    with pytest.raises(WorkspaceError):
        await host.write_text("keep.txt", "second\n")
    monkeypatch.undo()
    assert "+first\n" in journal.diff("r")
    assert journal.revert("r")["restored"] == ["keep.txt"]
    assert (root / "keep.txt").read_text() == "one\ntwo\nthree\n"


# -- nothing read back is trusted ------------------------------------------------------------


def record_file(journal: ChangeJournal, request_id: str) -> Path:
    for folder in journal.directory.iterdir():
        payload = json.loads((folder / "record.json").read_text())
        if payload["request_id"] == request_id:
            return folder / "record.json"
    raise AssertionError(f"no record for {request_id}")


def spoil_id(payload: dict) -> None:
    payload["request_id"] = 12345


def spoil_path(payload: dict) -> None:
    payload["changes"][0]["path"] = "../../outside.txt"


def spoil_blob_name(payload: dict) -> None:
    payload["changes"][1]["before"] = "../../../etc/passwd"


def spoil_workspace(payload: dict) -> None:
    payload["workspace"] = "relative/folder"


@pytest.mark.parametrize(
    "spoil",
    [spoil_id, spoil_path, spoil_blob_name, spoil_workspace],
    ids=["non-string id", "path with ..", "blob name a path", "relative workspace"],
)
async def test_a_damaged_record_is_skipped_alone(tmp_path: Path, root: Path, spoil: object) -> None:
    journal = ChangeJournal(tmp_path / "work")
    await make_changes(journal, root, "bad")
    host = host_for(journal, root, "good")
    await host.write_text("good.txt", "good\n")
    path = record_file(journal, "bad")
    payload = json.loads(path.read_text())
    spoil(payload)  # type: ignore[operator]
    path.write_text(json.dumps(payload))
    reopened = ChangeJournal(tmp_path / "work")
    assert reopened.request_ids() == ["good"]
    with pytest.raises(UnknownChangeRecord):
        reopened.revert("bad")
    assert reopened.revert("good", root)["restored"] == ["good.txt"]
    await host_for(reopened, root, "next").write_text("next.txt", "x\n")  # nor new calls
    assert reopened.request_ids() == ["good", "next"]


async def test_a_missing_blob_refuses_only_its_own_file(tmp_path: Path, root: Path) -> None:
    journal = ChangeJournal(tmp_path / "work")
    await make_changes(journal, root)
    payload = json.loads(record_file(journal, "req-1").read_text())
    keep = next(c for c in payload["changes"] if c["path"] == "keep.txt")
    (record_file(journal, "req-1").parent / f"{keep['before']}.blob").unlink()
    reopened = ChangeJournal(tmp_path / "work")
    assert "# keep.txt: its recorded content is missing" in reopened.diff("req-1")
    result = reopened.revert("req-1", root)
    assert result["refused"] == [
        {"path": "keep.txt", "reason": "its recorded content is missing from the change journal"}
    ]
    assert result["restored"] == ["notes/new.txt", "gone.txt"]


async def test_a_record_naming_another_workspace_is_not_reverted_there(
    tmp_path: Path, root: Path
) -> None:
    """Issue 14: a record planted with the workspace `/` made revert write outside."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("one\n2\nthree\nfour\n")  # what the call left
    journal = ChangeJournal(tmp_path / "work")
    await make_changes(journal, root)
    path = record_file(journal, "req-1")
    payload = json.loads(path.read_text())
    payload["workspace"] = str(victim)
    path.write_text(json.dumps(payload))
    reopened = ChangeJournal(tmp_path / "work")
    result = reopened.revert("req-1", root)
    assert result["restored"] == []
    assert all("not in the workspace" in r["reason"] for r in result["refused"])
    assert (victim / "keep.txt").read_text() == "one\n2\nthree\nfour\n"


async def test_revert_does_not_write_through_a_folder_swapped_for_a_link(
    tmp_path: Path, root: Path
) -> None:
    journal = ChangeJournal(tmp_path / "work")
    host = host_for(journal, root, "r")
    await host.write_text("notes/a.txt", "mine\n")
    (root / "notes" / "b.txt").write_text("other\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.txt").write_text("mine\n")  # the same content: only the link can stop it
    (root / "notes").rename(root / "notes-moved")
    (root / "notes").symlink_to(outside)
    result = journal.revert("r", root)
    assert result["restored"] == []
    assert "symbolic link" in result["refused"][0]["reason"]
    assert (outside / "a.txt").read_text() == "mine\n"
