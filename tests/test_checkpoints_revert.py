"""Reverting a call from its checkpoints, and records that cannot be trusted."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lingma_mcp.workspace import UnknownChangeRecord, checkpoint_changes
from lingma_mcp.workspace.beneath import split_relative
from lingma_mcp.workspace.checkpoint_records import CallRecord, FileEntry
from lingma_mcp.workspace.checkpoint_store import request_key, workspace_key
from lingma_mcp.workspace.checkpoints import (
    CheckpointError,
    Checkpoints,
    DamagedRecord,
    WorkspaceBusy,
)
from lingma_mcp.workspace.shadow_git import Snapshot

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not on PATH")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    (folder / "src").mkdir(parents=True)
    (folder / "keep.txt").write_text("one\ntwo\nthree\n")
    (folder / "gone.txt").write_text("bye\n")
    (folder / "src" / "main.py").write_text("print('hi')\n")
    return folder.resolve()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path / "work"


def make_changes(checkpoints: Checkpoints, ws: Path, request_id: str = "r1") -> None:
    call = checkpoints.begin(request_id, ws)
    (ws / "notes" / "deep").mkdir(parents=True)
    (ws / "notes" / "deep" / "new.txt").write_text("hello\n")
    (ws / "keep.txt").write_text("one\n2\nthree\n")
    (ws / "gone.txt").unlink()
    (ws / "src" / "main.py").write_text("print('bye')\n")
    call.mark("Edit")
    call.finish()


def record_path(work: Path, request_id: str) -> Path:
    return next((work / "checkpoints").glob(f"*/records/*-{request_key(request_id)}.json"))


def test_revert_puts_every_file_back_and_removes_what_the_call_made(work: Path, ws: Path) -> None:
    (ws / "keep.txt").chmod(0o640)
    checkpoints = Checkpoints(work)
    make_changes(checkpoints, ws)
    result = checkpoints.revert("r1", ws)
    assert result == {
        "request_id": "r1",
        "restored": ["gone.txt", "keep.txt", "notes/deep/new.txt", "src/main.py"],
        "refused": [],
    }
    assert (ws / "keep.txt").read_text() == "one\ntwo\nthree\n"
    assert stat.S_IMODE(os.stat(ws / "keep.txt").st_mode) == 0o640
    assert (ws / "gone.txt").read_text() == "bye\n"
    assert (ws / "src" / "main.py").read_text() == "print('hi')\n"
    assert not (ws / "notes").exists()  # the folders the call made went too
    again = checkpoints.revert("r1", ws)
    assert again["restored"] == []
    assert {"path": "keep.txt", "reason": "already reverted"} in again["refused"]


def test_revert_works_after_a_restart(work: Path, ws: Path) -> None:
    make_changes(Checkpoints(work), ws)
    reopened = Checkpoints(work)  # a new server on the same work dir
    assert reopened.request_ids() == ["r1"]
    assert "-two\n+2\n" in reopened.diff("r1")
    assert len(reopened.revert("r1", ws)["restored"]) == 4
    assert (ws / "keep.txt").read_text() == "one\ntwo\nthree\n"


def test_revert_refuses_and_names_files_changed_since(work: Path, ws: Path) -> None:
    checkpoints = Checkpoints(work)
    make_changes(checkpoints, ws)
    (ws / "keep.txt").write_text("edited by hand\n")
    (ws / "gone.txt").write_text("back again\n")
    (ws / "notes" / "deep" / "new.txt").unlink()
    (ws / "src" / "main.py").chmod(0o755)
    result = checkpoints.revert("r1", ws)
    refused = {r["path"]: r["reason"] for r in result["refused"]}
    assert refused == {
        "gone.txt": "created again since this call deleted it",
        "keep.txt": "changed since this call changed it",
        "notes/deep/new.txt": "already gone: deleted since this call created it",
        "src/main.py": "its executable bit changed since this call changed it",
    }
    assert result["restored"] == []
    assert (ws / "keep.txt").read_text() == "edited by hand\n"
    assert (ws / "gone.txt").read_text() == "back again\n"


def test_revert_of_selected_paths_leaves_the_others(work: Path, ws: Path) -> None:
    checkpoints = Checkpoints(work)
    make_changes(checkpoints, ws)
    result = checkpoints.revert("r1", ws, paths=["keep.txt", "never-touched.txt"])
    assert result["restored"] == ["keep.txt"]
    assert result["refused"] == [
        {"path": "never-touched.txt", "reason": "this call did not change it"}
    ]
    assert (ws / "keep.txt").read_text() == "one\ntwo\nthree\n"
    assert (ws / "src" / "main.py").read_text() == "print('bye')\n"
    rest = checkpoints.revert("r1", ws)
    assert rest["restored"] == ["gone.txt", "notes/deep/new.txt", "src/main.py"]


def test_links_and_executable_bits_come_back_as_they_were(
    work: Path, ws: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours\n")
    (ws / "tool.sh").write_text("#!/bin/sh\n")
    (ws / "tool.sh").chmod(0o755)
    (ws / "link").symlink_to("keep.txt")
    checkpoints = Checkpoints(work)
    call = checkpoints.begin("r1", ws)
    (ws / "keep.txt").unlink()
    (ws / "keep.txt").symlink_to(outside)  # a file turned into a link leading out
    (ws / "link").unlink()
    (ws / "link").write_text("a file now\n")  # a link turned into a file
    (ws / "tool.sh").chmod(0o644)
    call.finish()
    result = checkpoints.revert("r1", ws)
    assert sorted(result["restored"]) == ["keep.txt", "link", "tool.sh"]
    assert not (ws / "keep.txt").is_symlink()
    assert (ws / "keep.txt").read_text() == "one\ntwo\nthree\n"
    assert outside.read_text() == "not ours\n"  # replaced the link, never wrote through it
    assert os.readlink(ws / "link") == "keep.txt"
    assert os.stat(ws / "tool.sh").st_mode & 0o111


def test_a_folder_swapped_for_a_link_before_revert_is_not_followed(
    work: Path, ws: Path, tmp_path: Path
) -> None:
    checkpoints = Checkpoints(work)
    make_changes(checkpoints, ws)
    outside = tmp_path / "outside"
    shutil.copytree(ws / "src", outside)  # the same content, so only the link can stop it
    (ws / "src").rename(ws / "src-moved")
    (ws / "src").symlink_to(outside)
    result = checkpoints.revert("r1", ws)
    refused = {r["path"]: r["reason"] for r in result["refused"]}
    assert "symbolic link" in refused["src/main.py"]
    assert (outside / "main.py").read_text() == "print('bye')\n"


def test_a_folder_swapped_for_a_link_during_revert_is_not_followed(
    work: Path, ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints = Checkpoints(work)
    make_changes(checkpoints, ws)
    outside = tmp_path / "outside"
    outside.mkdir()
    real_why_not = checkpoint_changes._why_not
    checked: list[str] = []

    def check_then_swap(*args: object) -> str | None:
        reason = real_why_not(*args)  # type: ignore[arg-type]
        checked.append(args[1].path)  # type: ignore[attr-defined]
        if len(checked) == 4:  # every check passed; now, before any write, swap the folder
            (ws / "src").rename(ws / "src-moved")
            (ws / "src").symlink_to(outside)
        return reason

    monkeypatch.setattr(checkpoint_changes, "_why_not", check_then_swap)
    result = checkpoints.revert("r1", ws)
    refused = {r["path"]: r["reason"] for r in result["refused"]}
    assert "symbolic link" in refused["src/main.py"]
    assert list(outside.iterdir()) == []
    assert "keep.txt" in result["restored"]


def test_revert_refuses_a_workspace_other_than_the_calls(work: Path, ws: Path, tmp_path: Path):
    checkpoints = Checkpoints(work)
    make_changes(checkpoints, ws)
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(CheckpointError, match=r"was made in .*proj, not in the workspace"):
        checkpoints.revert("r1", other)
    assert checkpoints.workspace_of("r1") == ws


def test_a_running_call_and_a_busy_workspace_are_not_reverted(work: Path, ws: Path) -> None:
    checkpoints = Checkpoints(work)
    make_changes(checkpoints, ws, "r1")
    running = checkpoints.begin("r2", ws)
    with pytest.raises(CheckpointError, match="still running"):
        checkpoints.revert("r2", ws)
    with pytest.raises(WorkspaceBusy, match="revert r1 once it ends"):
        checkpoints.revert("r1", ws)
    running.finish()
    assert checkpoints.revert("r1", ws)["refused"] == []


def test_an_unknown_request_id_is_a_typed_error(work: Path, ws: Path) -> None:
    checkpoints = Checkpoints(work)
    for call in (checkpoints.changes, checkpoints.diff, checkpoints.workspace_of):
        with pytest.raises(UnknownChangeRecord):
            call("nope")
    with pytest.raises(UnknownChangeRecord):
        checkpoints.revert("nope", ws)


def test_a_crashed_calls_record_keeps_what_its_marks_saw(work: Path, ws: Path) -> None:
    call = Checkpoints(work).begin("r1", ws)
    (ws / "keep.txt").write_text("edited\n")
    call.mark("Edit")
    (ws / "after-the-last-mark.txt").write_text("x\n")
    call.release()  # what the kernel does to its locks when the server dies
    reopened = Checkpoints(work)
    assert reopened.changes("r1") == [
        {"path": "keep.txt", "action": "modified", "lines_added": 1, "lines_removed": 3,
         "by": "Edit"}
    ]  # fmt: skip
    record = json.loads(record_path(work, "r1").read_text())
    assert record["state"] == "interrupted" and "last checkpoint" in record["error"]
    assert reopened.revert("r1", ws)["restored"] == ["keep.txt"]
    reopened.begin("r2", ws).finish()  # the workspace is not held by the dead call


# -- records that cannot be trusted ----------------------------------------------------------


def damage_id(record: dict) -> None:
    record["request_id"] = 12345


def damage_path(record: dict) -> None:
    record["entries"][0]["path"] = "../../outside.txt"


def damage_workspace(record: dict) -> None:
    record["workspace"] = "/"


def damage_object(record: dict) -> None:
    record["entries"][1]["before"][1] = "not-an-object-id"


def damage_mode(record: dict) -> None:
    record["entries"][1]["before"][0] = "160000"


@pytest.mark.parametrize(
    "damage",
    [damage_id, damage_path, damage_workspace, damage_object, damage_mode, None],
    ids=["non-string id", "path with ..", "workspace /", "bad object id", "gitlink mode",
         "not JSON"],
)  # fmt: skip
def test_a_damaged_record_affects_only_its_own_call(
    work: Path, ws: Path, tmp_path: Path, damage: object
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched\n")
    checkpoints = Checkpoints(work)
    make_changes(checkpoints, ws, "bad")
    call = checkpoints.begin("good", ws)
    (ws / "good.txt").write_text("good\n")
    call.finish()
    path = record_path(work, "bad")
    if damage is None:
        path.write_text("{not json")
    else:
        record = json.loads(path.read_text())
        damage(record)  # type: ignore[operator]
        path.write_text(json.dumps(record))
    assert checkpoints.request_ids() == ["good"]
    for operation in (
        lambda: checkpoints.changes("bad"),
        lambda: checkpoints.diff("bad"),
        lambda: checkpoints.revert("bad", ws),
    ):
        with pytest.raises(DamagedRecord, match="is damaged"):
            operation()
    assert outside.read_text() == "untouched\n"
    assert checkpoints.revert("good", ws)["restored"] == ["good.txt"]
    checkpoints.begin("next", ws).finish()  # new calls are not held up by it either


def test_a_missing_object_refuses_only_its_own_file(work: Path, ws: Path) -> None:
    checkpoints = Checkpoints(work)
    make_changes(checkpoints, ws)
    record = json.loads(record_path(work, "r1").read_text())
    keep = next(e for e in record["entries"] if e["path"] == "keep.txt")
    store = next((work / "checkpoints").glob("*/git"))
    blob = store / "objects" / keep["before"][1][:2] / keep["before"][1][2:]
    blob.unlink()
    result = checkpoints.revert("r1", ws)
    assert result["refused"] == [
        {"path": "keep.txt", "reason": "its earlier content is missing from the checkpoint store"}
    ]
    assert "gone.txt" in result["restored"]
    assert (ws / "keep.txt").read_text() == "one\n2\nthree\n"


def test_a_forged_record_naming_another_workspace_never_writes_there(
    work: Path, ws: Path, tmp_path: Path
) -> None:
    """Issue 14: a record planted with the workspace `/` made revert write outside."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "target.txt").write_text("original\n")
    checkpoints = Checkpoints(work)
    make_changes(checkpoints, ws)
    genuine = json.loads(record_path(work, "r1").read_text())
    keep = next(e for e in genuine["entries"] if e["path"] == "keep.txt")
    forged = {**genuine, "request_id": "forged", "workspace": str(victim), "reverted": []}
    forged["entries"] = [{**keep, "path": "target.txt", "after": None}]
    # Planted where the victim's own checkpoints would live, so it reads as consistent.
    folder = work / "checkpoints" / workspace_key(victim) / "records"
    folder.mkdir(parents=True)
    (folder / f"{'9' * 20}-{request_key('forged')}.json").write_text(json.dumps(forged))
    elsewhere = re.escape(f"was made in {victim}, not in the workspace")
    with pytest.raises(CheckpointError, match=elsewhere):
        checkpoints.revert("forged", ws)
    assert (victim / "target.txt").read_text() == "original\n"
    # Planted in the real workspace's folder instead, it does not match that folder.
    own = record_path(work, "r1").parent
    (own / f"{'9' * 20}-{request_key('forged')}.json").write_text(json.dumps(forged))
    (folder / f"{'9' * 20}-{request_key('forged')}.json").unlink()
    with pytest.raises(DamagedRecord, match="not the one of its folder"):
        checkpoints.revert("forged", ws)
    assert (victim / "target.txt").read_text() == "original\n"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
FIELDS = st.sampled_from(
    ["request_id", "workspace", "state", "before", "last", "attribution", "entries",
     "reverted", "stored_bytes", "version", "began_at"]
)  # fmt: skip
ENTRY_FIELDS = st.sampled_from(
    ["path", "action", "by", "before", "after", "before_stat", "after_stat", "lines_added",
     "binary", "skipped"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(field=FIELDS, entry_field=ENTRY_FIELDS, value=JSON, in_entry=st.booleans())
def test_no_hand_edited_record_is_read_as_anything_but_damaged_or_sound(
    field: str, entry_field: str, value: object, in_entry: bool
) -> None:
    before = Snapshot("a" * 40, {"big.bin": (1, 2, 3)})
    sound = CallRecord("r1", "/work/proj", before, before, state="finished", entries=[
        FileEntry("src/a.txt", "modified", 1, 1, "Edit", before=("100644", "b" * 40),
                  after=("100644", "c" * 40))
    ])  # fmt: skip
    payload = json.loads(sound.to_json())
    if in_entry:
        payload["entries"][0][entry_field] = value
    else:
        payload[field] = value
    try:
        record = CallRecord.from_json(json.dumps(payload).encode(), "r")
    except DamagedRecord:
        return
    for path in [*(e.path for e in record.entries or []), *record.attribution, *record.reverted]:
        split_relative(path)  # every path still plain and relative
    assert isinstance(record.request_id, str) and os.path.isabs(record.workspace)
