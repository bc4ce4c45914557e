"""Link-safe file operations: nothing walks through a link or leaves the root."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lingma_mcp.workspace import WorkspaceError
from lingma_mcp.workspace.beneath import Beneath, UnsafePath, split_relative


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A root with a folder, a file, and links leading inside and outside; and the outside."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("outside\n")
    (root / "file.txt").write_text("inside\n")
    (root / "link_out").symlink_to(outside)
    (root / "link_in").symlink_to(root / "a")
    (root / "file_link").symlink_to(outside / "secret.txt")
    return root, outside


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_file_is_written_read_and_removed_beneath_the_root(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    with Beneath(root) as ws:
        assert ws.write_bytes("a/b/new.txt", b"hello\n") == []
        assert ws.read_bytes("a/b/new.txt") == b"hello\n"
        assert ws.lstat("a/b/new.txt").st_size == 6
        ws.remove_file("a/b/new.txt")
        assert ws.lstat("a/b/new.txt") is None
        assert ws.read_bytes("a/b/new.txt") is None
    assert not (root / "a" / "b" / "new.txt").exists()


def test_missing_folders_are_made_and_reported_top_first(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    with Beneath(root) as ws:
        made = ws.write_bytes("x/y/z.txt", b"z")
        assert made == ["x", "x/y"]
        assert ws.remove_folder("x") is False  # not empty: kept
        ws.remove_file("x/y/z.txt")
        assert ws.remove_folder("x/y") is True
        assert ws.remove_folder("x") is True
    assert not (root / "x").exists()


def test_a_replaced_file_keeps_its_mode_unless_one_is_given(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    (root / "file.txt").chmod(0o640)
    with Beneath(root) as ws:
        ws.write_bytes("file.txt", b"new\n")
        assert stat.S_IMODE(os.stat(root / "file.txt").st_mode) == 0o640
        ws.write_bytes("file.txt", b"newer\n", mode=0o755)
        assert stat.S_IMODE(os.stat(root / "file.txt").st_mode) == 0o755
    assert (root / "file.txt").read_bytes() == b"newer\n"
    assert [p.name for p in root.iterdir() if p.name.endswith(".lingma-tmp")] == []


@pytest.mark.parametrize(
    "rel",
    [
        "",
        "/etc/passwd",
        "../outside/secret.txt",
        "a/../../x",
        "a//b",
        "./file.txt",
        "a/.",
        "a\x00b",
        "x" * 256,
        "a/" * 2100 + "f",
    ],
)
def test_paths_that_are_not_plain_and_relative_are_refused(
    tree: tuple[Path, Path], rel: str
) -> None:
    root, outside = tree
    before = snapshot(outside)
    with Beneath(root) as ws:
        for operation in (
            lambda: ws.write_bytes(rel, b"x"),
            lambda: ws.read_bytes(rel),
            lambda: ws.lstat(rel),
            lambda: ws.remove_file(rel),
            lambda: ws.remove_folder(rel),
        ):
            with pytest.raises(UnsafePath):
                operation()
    assert snapshot(outside) == before


def test_a_folder_that_is_a_link_is_never_walked_through(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    before = snapshot(outside)
    with Beneath(root) as ws:
        for rel in ("link_out/secret.txt", "link_out/new.txt", "link_in/b/x.txt"):
            with pytest.raises(UnsafePath, match="symbolic link"):
                ws.write_bytes(rel, b"pwned")
            with pytest.raises(UnsafePath, match="symbolic link"):
                ws.read_bytes(rel)
            with pytest.raises(UnsafePath, match="symbolic link"):
                ws.lstat(rel)
            with pytest.raises(UnsafePath, match="symbolic link"):
                ws.remove_file(rel)
        with pytest.raises(UnsafePath):
            ws.remove_folder("link_out/anything")
    assert snapshot(outside) == before
    assert not (root / "a" / "b" / "x.txt").exists()


def test_a_folder_swapped_for_a_link_after_a_check_is_not_followed(
    tree: tuple[Path, Path],
) -> None:
    root, outside = tree
    (root / "a" / "b" / "f.txt").write_text("mine\n")
    with Beneath(root) as ws:
        assert ws.read_bytes("a/b/f.txt") == b"mine\n"  # the check
        (root / "a").rename(root / "a-moved")
        (root / "a").symlink_to(outside)
        (outside / "b").mkdir()
        with pytest.raises(UnsafePath):
            ws.write_bytes("a/b/f.txt", b"pwned")  # the use
    assert not (outside / "b" / "f.txt").exists()


def test_a_folder_swapped_for_a_link_during_the_walk_is_not_followed(
    tree: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = tree
    (outside / "b").mkdir()
    real_open_folder = Beneath._open_folder

    def swap_then_open(self: Beneath, parent: int, name: str, shown: str) -> int:
        if shown == "a":  # the moment after the previous folder was opened
            os.rename(root / "a", root / "a-moved")
            os.symlink(outside, root / "a")
        return real_open_folder(self, parent, name, shown)

    monkeypatch.setattr(Beneath, "_open_folder", swap_then_open)
    with Beneath(root) as ws, pytest.raises(UnsafePath):
        ws.write_bytes("a/b/f.txt", b"pwned")
    assert list((outside / "b").iterdir()) == []


def test_a_final_link_is_replaced_only_when_asked_and_never_written_through(
    tree: tuple[Path, Path],
) -> None:
    root, outside = tree
    with Beneath(root) as ws:
        with pytest.raises(UnsafePath, match="symbolic link"):
            ws.write_bytes("file_link", b"pwned")
        with pytest.raises(UnsafePath, match="symbolic link"):
            ws.read_bytes("file_link")
        ws.write_bytes("file_link", b"a file again\n", replace_link=True)
    assert not (root / "file_link").is_symlink()
    assert (root / "file_link").read_bytes() == b"a file again\n"
    assert (outside / "secret.txt").read_text() == "outside\n"


def test_removing_a_link_removes_the_link_not_its_target(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    with Beneath(root) as ws:
        assert ws.read_link("file_link") == str(outside / "secret.txt")
        ws.remove_file("file_link")
        ws.remove_file("link_out")
    assert (outside / "secret.txt").read_text() == "outside\n"
    assert not os.path.lexists(root / "file_link")
    assert not os.path.lexists(root / "link_out")


def test_a_link_is_made_in_place_of_a_file(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    with Beneath(root) as ws:
        assert ws.write_link("file.txt", "a/b") == []
        assert ws.read_link("file.txt") == "a/b"
        assert ws.write_link("new/link", "../file.txt") == ["new"]
    assert os.readlink(root / "file.txt") == "a/b"
    with Beneath(root) as ws, pytest.raises(WorkspaceError, match="not a symbolic link"):
        ws.read_link("a")


def test_fifos_are_refused_and_folders_are_not_files(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    os.mkfifo(root / "pipe")
    with Beneath(root) as ws:
        for operation in (
            lambda: ws.read_bytes("pipe"),
            lambda: ws.write_bytes("pipe", b"x"),
            lambda: ws.remove_file("pipe"),
        ):
            with pytest.raises(UnsafePath, match="fifo"):
                operation()
        with pytest.raises(WorkspaceError, match="folder"):
            ws.write_bytes("a", b"x")
        with pytest.raises(WorkspaceError, match="folder"):
            ws.read_bytes("a")
        with pytest.raises(WorkspaceError, match="file, not a folder"):
            ws.write_bytes("file.txt/x", b"x")
        assert ws.lstat("file.txt/x") is None
        assert ws.remove_folder("file.txt") is False
    assert stat.S_ISFIFO(os.lstat(root / "pipe").st_mode)


def test_a_larger_file_than_allowed_is_not_read(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    with Beneath(root) as ws, pytest.raises(WorkspaceError, match="more than the 3 allowed"):
        ws.read_bytes("file.txt", max_bytes=3)


def test_unicode_and_the_longest_names_are_fine(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    long_name = "ü" * 127  # 254 bytes
    with Beneath(root) as ws:
        ws.write_bytes(f"名前/{long_name}", b"ok")
        assert ws.read_bytes(f"名前/{long_name}") == b"ok"
    assert split_relative("a/名前/b") == ["a", "名前", "b"]


COMPONENTS = st.sampled_from(
    [
        "a",
        "b",
        "..",
        ".",
        "",
        "link_out",
        "link_in",
        "file_link",
        "file.txt",
        "名",
        "n\x00ul",
        "x" * 255,
        "y" * 256,
        "new",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(COMPONENTS, min_size=1, max_size=5), absolute=st.booleans())
def test_no_generated_path_writes_outside_or_through_a_link(
    parts: list[str], absolute: bool
) -> None:
    rel = ("/" if absolute else "") + "/".join(parts)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        outside = Path(tmp) / "outside"
        (root / "a" / "b").mkdir(parents=True)
        outside.mkdir()
        (outside / "secret.txt").write_text("outside\n")
        (root / "file.txt").write_text("inside\n")
        (root / "link_out").symlink_to(outside)
        (root / "link_in").symlink_to(root / "a")
        (root / "file_link").symlink_to(outside / "secret.txt")
        before = snapshot(outside)
        plain = not absolute and all(p not in ("", ".", "..") for p in parts)
        through_link = plain and any(
            os.path.islink(root.joinpath(*parts[: i + 1])) for i in range(len(parts))
        )
        with Beneath(root) as ws:
            try:
                ws.write_bytes(rel, b"payload")
            except WorkspaceError:
                written = False
            else:
                written = True
            for operation in (ws.read_bytes, ws.lstat, ws.remove_folder):
                try:
                    operation(rel)
                except WorkspaceError:
                    pass
        assert snapshot(outside) == before
        if written:
            # Only a plain path with no link on the way (nor at its end) was written,
            # and exactly where it says.
            assert plain and not through_link
            assert (root / rel).read_bytes() == b"payload"
