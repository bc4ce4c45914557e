"""Workspace checkpoints: what a call changed, whatever changed it, and who is named for it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lingma_mcp.workspace.checkpoints import (
    CheckpointError,
    Checkpoints,
    CheckpointsUnavailable,
    GitFailed,
    TooManyFiles,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not on PATH")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "keep.txt").write_text("one\ntwo\nthree\n")
    (folder / "gone.txt").write_text("bye\n")
    return folder.resolve()


@pytest.fixture
def checkpoints(tmp_path: Path) -> Checkpoints:
    return Checkpoints(tmp_path / "work")


def by_path(changes: list[dict]) -> dict[str, dict]:
    return {c["path"]: c for c in changes}


def tree_state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's content and modification time below ``folder``."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_created_modified_and_deleted_files_are_listed_with_their_lines(
    checkpoints: Checkpoints, ws: Path
) -> None:
    call = checkpoints.begin("r1", ws)
    (ws / "notes").mkdir()
    (ws / "notes" / "new.txt").write_text("hello\nworld\n")
    (ws / "keep.txt").write_text("one\n2\nthree\nfour\n")
    (ws / "gone.txt").unlink()
    changes = call.finish()
    assert changes == [
        {"path": "gone.txt", "action": "deleted", "lines_added": 0, "lines_removed": 1,
         "by": "unknown"},
        {"path": "keep.txt", "action": "modified", "lines_added": 2, "lines_removed": 1,
         "by": "unknown"},
        {"path": "notes/new.txt", "action": "created", "lines_added": 2, "lines_removed": 0,
         "by": "unknown"},
    ]  # fmt: skip
    assert checkpoints.changes("r1") == changes
    assert checkpoints.request_ids() == ["r1"]


def test_marks_name_what_changed_since_the_mark_before(checkpoints: Checkpoints, ws: Path) -> None:
    call = checkpoints.begin("r1", ws)
    (ws / "keep.txt").write_text("edited\n")
    assert call.mark("Edit") == ["keep.txt"]
    (ws / "made.txt").write_text("x\n")
    (ws / "keep.txt").write_text("edited again\n")
    assert call.mark("Bash: sed -i s/a/b/ keep.txt; touch made.txt") == ["keep.txt", "made.txt"]
    assert call.mark("Read") == []
    (ws / "gone.txt").unlink()  # nothing announced this one
    changes = by_path(call.finish())
    assert changes["keep.txt"]["by"] == "Edit; Bash: sed -i s/a/b/ keep.txt; touch made.txt"
    assert changes["made.txt"]["by"] == "Bash: sed -i s/a/b/ keep.txt; touch made.txt"
    assert changes["gone.txt"]["by"] == "unknown"


def test_a_hosted_write_names_itself_over_the_mark_that_follows(
    checkpoints: Checkpoints, ws: Path
) -> None:
    call = checkpoints.begin("r1", ws)
    (ws / "keep.txt").write_text("written by the host\n")
    call.attribute("keep.txt", "write_text")
    (ws / "other.txt").write_text("written by a command\n")
    call.attribute("gone.txt", "write_text")  # said, but nothing changed there
    call.mark("command: make")
    (ws / "gone.txt").write_text("changed later\n")
    changes = by_path(call.finish())
    assert changes["keep.txt"]["by"] == "write_text"
    assert changes["other.txt"]["by"] == "command: make"
    assert changes["gone.txt"]["by"] == "unknown"


def test_a_file_put_back_as_it_was_is_not_a_change(checkpoints: Checkpoints, ws: Path) -> None:
    call = checkpoints.begin("r1", ws)
    (ws / "keep.txt").write_text("for a moment\n")
    (ws / "tmp.txt").write_text("scratch\n")
    call.mark("Edit")
    (ws / "keep.txt").write_text("one\ntwo\nthree\n")
    (ws / "tmp.txt").unlink()
    assert call.finish() == []


def test_changes_while_the_call_runs_are_those_up_to_its_last_mark(
    checkpoints: Checkpoints, ws: Path
) -> None:
    call = checkpoints.begin("r1", ws)
    (ws / "keep.txt").write_text("x\n")
    call.mark("Edit")
    (ws / "later.txt").write_text("y\n")
    assert [c["path"] for c in call.changes()] == ["keep.txt"]
    assert [c["path"] for c in checkpoints.changes("r1")] == ["keep.txt"]
    assert [c["path"] for c in call.finish()] == ["keep.txt", "later.txt"]


def test_binary_files_are_marked_and_named_in_the_diff(checkpoints: Checkpoints, ws: Path) -> None:
    call = checkpoints.begin("r1", ws)
    (ws / "image.bin").write_bytes(b"\x00\x01\x02" * 10)
    (ws / "keep.txt").write_text("one\nTWO\nthree\n")
    changes = by_path(call.finish())
    assert changes["image.bin"]["binary"] is True
    assert "binary" not in changes["keep.txt"]
    diff = checkpoints.diff("r1")
    assert "Binary files /dev/null and b/image.bin differ" in diff
    assert "-two\n+TWO\n" in diff


def test_a_long_diff_is_cut_with_a_count_of_what_was_cut(
    checkpoints: Checkpoints, ws: Path
) -> None:
    call = checkpoints.begin("r1", ws)
    for n in range(20):
        (ws / f"f{n:02}.txt").write_text("".join(f"line {i}\n" for i in range(50)))
    call.finish()
    whole = checkpoints.diff("r1")
    cut = checkpoints.diff("r1", max_chars=2000)
    assert len(whole) > 10_000
    shown, note = cut.rsplit("\n[lingma-mcp: ", 1)
    assert len(shown) <= 2000 and whole.startswith(shown)
    hidden_lines = whole[len(shown) :].count("\n")
    assert f"{hidden_lines:,} more lines" in note
    assert "more files after the one cut" in note


def test_gitignored_files_are_not_recorded(checkpoints: Checkpoints, ws: Path) -> None:
    (ws / ".gitignore").write_text("*.log\nbuild/\n")
    call = checkpoints.begin("r1", ws)
    (ws / "run.log").write_text("noise\n")
    (ws / "build").mkdir()
    (ws / "build" / "out.o").write_bytes(b"\x7fELF")
    (ws / "kept.txt").write_text("seen\n")
    assert [c["path"] for c in call.finish()] == ["kept.txt"]


def test_git_folders_top_and_nested_are_never_recorded_nor_touched(
    checkpoints: Checkpoints, ws: Path
) -> None:
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    nested = ws / "vendor" / "lib"
    nested.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(nested)], check=True)
    (nested / "lib.c").write_text("int x;\n")
    (nested / ".gitignore").write_text("*.tmp\n")
    before = {d: tree_state(d) for d in (ws / ".git", nested / ".git")}
    call = checkpoints.begin("r1", ws)
    (nested / "lib.c").write_text("int y;\n")
    (nested / "scratch.tmp").write_text("ignored by the nested repository\n")
    (ws / ".git" / "description").write_text("changed inside .git\n")
    (nested / ".git" / "description").write_text("changed inside the nested .git\n")
    changes = call.finish()
    assert [c["path"] for c in changes] == ["vendor/lib/lib.c"]
    assert tree_state(ws / ".git") == {
        **before[ws / ".git"],
        "description": (b"changed inside .git\n", os.stat(ws / ".git/description").st_mtime_ns),
    }
    nested_now = tree_state(nested / ".git")
    nested_now.pop("description")
    before[nested / ".git"].pop("description")
    assert nested_now == before[nested / ".git"]


def test_the_persons_git_config_hooks_and_attributes_never_run(
    checkpoints: Checkpoints, ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    evil = f"touch {marker}"
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    with open(ws / ".git" / "config", "a") as f:
        f.write(
            f'[core]\n\tfsmonitor = "{evil}"\n\thooksPath = hooks\n'
            f'[filter "evil"]\n\tclean = {evil}\n\tsmudge = {evil}\n\trequired = true\n'
            f'[diff "evil"]\n\tcommand = {evil}\n\ttextconv = {evil}\n'
        )
    for hook in ("post-index-change", "pre-commit", "pre-auto-gc", "reference-transaction"):
        script = ws / ".git" / "hooks" / hook
        script.parent.mkdir(exist_ok=True)
        script.write_text(f"#!/bin/sh\n{evil}\n")
        script.chmod(0o755)
    (ws / ".gitattributes").write_text("* filter=evil diff=evil text eol=crlf\n")
    # The server's own environment and the user's config must not reach our git either.
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(f'[core]\n\tfsmonitor = "{evil}"\n[filter "evil"]\n'
                                     f"\tclean = {evil}\n")  # fmt: skip
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'core.fsmonitor={evil}'")
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", evil)
    monkeypatch.setenv("GIT_DIR", str(ws / ".git"))
    lf_bytes = b"line one\nline two\n"
    call = checkpoints.begin("r1", ws)
    (ws / "keep.txt").write_bytes(lf_bytes)
    (ws / "new.txt").write_bytes(b"crlf\r\nkept as is\r\n")
    call.mark("Edit")
    call.finish()
    checkpoints.diff("r1")
    result = checkpoints.revert("r1", ws)
    assert sorted(result["restored"]) == ["keep.txt", "new.txt"]
    assert not marker.exists()
    # No end-of-line conversion either: the bytes went back exactly.
    assert (ws / "keep.txt").read_bytes() == b"one\ntwo\nthree\n"


def test_a_file_over_the_size_bound_is_listed_as_skipped_without_content(
    tmp_path: Path, ws: Path
) -> None:
    checkpoints = Checkpoints(tmp_path / "work", max_file_bytes=100)
    (ws / "big.bin").write_bytes(b"x" * 200)
    (ws / "grows.txt").write_text("small\n")
    call = checkpoints.begin("r1", ws)
    with open(ws / "big.bin", "ab") as f:
        f.write(b"more")
    (ws / "huge.bin").write_bytes(b"y" * 300)
    (ws / "grows.txt").write_text("z" * 150)
    call.mark("Bash: make")
    changes = by_path(call.finish())
    assert changes["big.bin"] == {
        "path": "big.bin", "action": "modified", "lines_added": 0, "lines_removed": 0,
        "by": "Bash: make", "skipped": True,
    }  # fmt: skip
    assert changes["huge.bin"]["action"] == "created" and changes["huge.bin"]["skipped"]
    assert changes["grows.txt"]["action"] == "modified" and changes["grows.txt"]["skipped"]
    diff = checkpoints.diff("r1")
    assert "# big.bin: modified (200 bytes → 204 bytes); not shown" in diff
    assert "diff --git a/grows.txt" not in diff  # no pretend deletion of the whole file
    store = next((tmp_path / "work" / "checkpoints").glob("*/git"))
    blobs = subprocess.run(
        ["git", "--git-dir", str(store), "cat-file", "--batch-all-objects", "--batch-check"],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    assert all(int(line.split()[2]) < 150 for line in blobs.splitlines() if " blob " in line)


def test_a_workspace_over_the_file_count_bound_is_refused_and_not_held(
    tmp_path: Path, ws: Path
) -> None:
    for n in range(10):
        (ws / f"f{n}.txt").write_text("x")
    small = Checkpoints(tmp_path / "work", max_files=5)
    with pytest.raises(TooManyFiles, match="more than 5 files") as refused:
        small.begin("r1", ws)
    assert "gitignore" in str(refused.value)
    assert small.request_ids() == []
    # Nothing was left held: a call with a larger bound starts at once.
    Checkpoints(tmp_path / "work").begin("r2", ws).finish()


def test_without_git_checkpoints_say_why_and_refuse_to_begin(tmp_path: Path, ws: Path) -> None:
    none = Checkpoints(tmp_path / "work", git=None)
    assert none.available is False
    assert "git is not on PATH" in none.why_unavailable
    with pytest.raises(CheckpointsUnavailable, match="git is not on PATH"):
        none.begin("r1", ws)
    broken = Checkpoints(tmp_path / "work", git=str(tmp_path / "no-such-git"))
    assert not broken.available and "does not run" in broken.why_unavailable


def test_a_workspace_holding_the_checkpoint_store_is_refused(ws: Path) -> None:
    inside = Checkpoints(ws / ".lingma-work")
    with pytest.raises(Exception, match="holds the checkpoint store"):
        inside.begin("r1", ws)


def test_a_request_id_is_used_once(checkpoints: Checkpoints, ws: Path) -> None:
    checkpoints.begin("r1", ws).finish()
    with pytest.raises(Exception, match="already has checkpoints"):
        checkpoints.begin("r1", ws)


def test_links_are_recorded_as_links(checkpoints: Checkpoints, ws: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours\n")
    call = checkpoints.begin("r1", ws)
    (ws / "keep.txt").unlink()
    (ws / "keep.txt").symlink_to(outside)
    changes = by_path(call.finish())
    assert changes["keep.txt"]["action"] == "modified"
    digest = hashlib.sha1(b"blob %d\0" % len(str(outside)) + str(outside).encode()).hexdigest()
    record = next((tmp_path / "work" / "checkpoints").glob("*/records/*.json")).read_text()
    assert digest in record  # the link's target, not the outside file's content


def test_a_failed_last_snapshot_keeps_what_the_marks_saw_and_lets_go(
    tmp_path: Path, ws: Path
) -> None:
    checkpoints = Checkpoints(tmp_path / "work", max_files=5)
    call = checkpoints.begin("r1", ws)
    (ws / "keep.txt").write_text("edited\n")
    call.mark("Edit")
    for n in range(10):
        (ws / f"flood{n}.txt").write_text("x")
    with pytest.raises(TooManyFiles):
        call.mark("Bash: make")  # a failed mark: the call goes on
    with pytest.raises(CheckpointError, match=r"the last checkpoint failed: .*more than 5 files"):
        call.finish()
    assert call.finished
    assert [c["path"] for c in checkpoints.changes("r1")] == ["keep.txt"]
    call.close()  # idempotent after finish
    for n in range(10):
        (ws / f"flood{n}.txt").unlink()
    checkpoints.begin("r2", ws).finish()  # the workspace was let go


def test_close_finishes_a_call_left_open(checkpoints: Checkpoints, ws: Path) -> None:
    call = checkpoints.begin("r1", ws)
    (ws / "keep.txt").write_text("edited\n")
    call.close()
    call.close()
    assert [c["path"] for c in checkpoints.changes("r1")] == ["keep.txt"]
    checkpoints.begin("r2", ws).finish()


def test_a_walk_that_takes_too_long_is_given_up(tmp_path: Path, ws: Path) -> None:
    hurried = Checkpoints(tmp_path / "work", scan_timeout=1e-6)
    with pytest.raises(GitFailed, match="took longer than"):
        hurried.begin("r1", ws)
    Checkpoints(tmp_path / "work").begin("r2", ws).finish()  # and nothing was left held


def test_names_git_would_quote_are_listed_diffed_and_reverted_exactly(
    tmp_path: Path, ws: Path
) -> None:
    checkpoints = Checkpoints(tmp_path / "work", max_file_bytes=100)
    names = [":colon", "tab\there", "new\nline", 'quo"te', "back\\slash", "名前.txt", "sp ace"]
    big = "big\tone.bin"
    (ws / big).write_bytes(b"x" * 50)  # crosses the bound during the call
    call = checkpoints.begin("r1", ws)
    for name in names:
        (ws / name).write_text(f"{name}\n")
    (ws / big).write_bytes(b"x" * 500)
    changes = by_path(call.finish())
    assert set(changes) == {*names, big}
    assert changes[big]["skipped"] is True and changes[big]["action"] == "modified"
    diff = checkpoints.diff("r1")
    assert '+++ "b/tab\\there"' in diff and "+++ b/名前.txt" in diff
    assert 'big\\tone.bin"\n' not in diff  # its section is left out, not shown as deleted
    assert '# "big\\tone.bin": modified (now 500 bytes); not shown: files over 100 bytes' in diff
    result = checkpoints.revert("r1", ws)
    # The big file's earlier content was under the bound, so it was kept and comes back.
    assert sorted(result["restored"]) == sorted([*names, big])
    assert result["refused"] == []
    assert sorted(p.name for p in ws.iterdir()) == sorted([big, "gone.txt", "keep.txt"])
    assert (ws / big).read_bytes() == b"x" * 50
