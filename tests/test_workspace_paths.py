"""Confinement: every way out of the workspace is refused, with a message Lingma can read."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from lingma_mcp.workspace import (
    OutsideWorkspace,
    WorkspaceError,
    WorkspaceNotAllowed,
    check_workspace,
    resolve_path,
)
from lingma_mcp.workspace.paths import final_is_symlink, refuse_special


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "proj"
    outside = tmp_path / "secret"
    root.mkdir()
    outside.mkdir()
    (outside / "key.txt").write_text("secret")
    (root / "src").mkdir()
    (root / "src" / "a.py").write_text("x = 1\n")
    return root.resolve(), outside.resolve()


def test_relative_path_resolves_against_the_workspace(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    assert resolve_path("src/a.py", root) == root / "src" / "a.py"
    assert resolve_path("./src/../src/a.py", root) == root / "src" / "a.py"
    assert resolve_path(str(root / "new" / "b.txt"), root) == root / "new" / "b.txt"


def test_absolute_path_outside_is_refused_naming_the_workspace(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    with pytest.raises(OutsideWorkspace) as info:
        resolve_path(str(outside / "key.txt"), root)
    message = str(info.value)
    assert f"is outside the workspace {root}" in message
    assert "only files inside it can be read or changed" in message


@pytest.mark.parametrize("raw", ["../secret/key.txt", "src/../../secret/key.txt", "/etc/passwd"])
def test_dotdot_and_system_paths_are_refused(layout: tuple[Path, Path], raw: str) -> None:
    root, _ = layout
    with pytest.raises(OutsideWorkspace):
        resolve_path(raw, root)


def test_home_path_outside_is_refused(layout: tuple[Path, Path], monkeypatch) -> None:
    root, outside = layout
    monkeypatch.setenv("HOME", str(outside))
    with pytest.raises(OutsideWorkspace):
        resolve_path("~/key.txt", root)


def test_home_path_inside_is_accepted(layout: tuple[Path, Path], monkeypatch) -> None:
    root, _ = layout
    monkeypatch.setenv("HOME", str(root))
    assert resolve_path("~/src/a.py", root) == root / "src" / "a.py"


def test_unknown_user_gets_a_clear_message(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    with pytest.raises(WorkspaceError, match="no user 'nosuchuser_lingma'"):
        resolve_path("~nosuchuser_lingma/x", root)


def test_symlink_leading_out_is_refused(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "link.txt").symlink_to(outside / "key.txt")
    with pytest.raises(OutsideWorkspace, match="symbolic link leads out"):
        resolve_path("link.txt", root)


def test_symlinked_folder_leading_out_is_refused(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "vendor").symlink_to(outside, target_is_directory=True)
    with pytest.raises(OutsideWorkspace):
        resolve_path("vendor/key.txt", root)
    with pytest.raises(OutsideWorkspace):
        resolve_path("vendor/new-file.txt", root)  # not even creating through it


def test_symlink_inside_is_followed(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    (root / "alias.py").symlink_to(root / "src" / "a.py")
    assert resolve_path("alias.py", root) == root / "src" / "a.py"
    assert final_is_symlink("alias.py", root)
    assert not final_is_symlink("src/a.py", root)


def test_nul_byte_is_refused(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    with pytest.raises(WorkspaceError, match="NUL byte"):
        resolve_path("src/a.py\x00.txt", root)


def test_overlong_paths_get_a_clear_message(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    with pytest.raises(WorkspaceError, match="too long"):
        resolve_path("a" * 300, root)
    with pytest.raises(WorkspaceError, match="too long"):
        resolve_path("/".join(["abcdefgh"] * 600), root)


def test_device_outside_is_refused(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    with pytest.raises(OutsideWorkspace):
        resolve_path("/dev/null", root)
    (root / "null").symlink_to("/dev/null")
    with pytest.raises(OutsideWorkspace):
        resolve_path("null", root)


def test_fifo_inside_is_refused(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    os.mkfifo(root / "pipe")
    path = resolve_path("pipe", root)
    with pytest.raises(OutsideWorkspace, match="fifo"):
        refuse_special("pipe", path)


def test_socket_inside_is_refused(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "sock"))
        with pytest.raises(OutsideWorkspace, match="socket"):
            refuse_special("sock", resolve_path("sock", root))
    finally:
        sock.close()


def test_check_workspace_accepts_an_allowed_folder_or_one_below(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    assert check_workspace(root, [root]) == root
    assert check_workspace(root / "src", [root]) == root / "src"


@pytest.mark.parametrize("candidate", ["/", "/etc"])
def test_check_workspace_refuses_folders_outside_naming_the_allowed(
    layout: tuple[Path, Path], candidate: str
) -> None:
    root, outside = layout
    with pytest.raises(WorkspaceNotAllowed) as info:
        check_workspace(Path(candidate), [root, outside])
    assert str(root) in str(info.value) and str(outside) in str(info.value)


def test_check_workspace_refuses_a_folder_above_the_project(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    with pytest.raises(WorkspaceNotAllowed, match="outside the folders"):
        check_workspace(root.parent, [root])


def test_check_workspace_with_nothing_allowed_says_how(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    with pytest.raises(WorkspaceNotAllowed, match="--workspace"):
        check_workspace(root, [])


def test_check_workspace_refuses_a_missing_folder(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    with pytest.raises(WorkspaceError, match="does not exist"):
        check_workspace(root / "nope", [root])


def test_check_workspace_refuses_an_unknown_user(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    with pytest.raises(WorkspaceError, match="no user"):
        check_workspace(Path("~nosuchuser_lingma"), [root])


def test_containment_is_judged_by_identity_when_the_spelling_differs(
    layout: tuple[Path, Path],
) -> None:
    # What a case-insensitive file system does with /Proj vs /proj: another spelling of the
    # same folder. An alias path stands in for it here; it must count as inside.
    from lingma_mcp.workspace.paths import is_inside

    root, outside = layout
    alias = root.parent / "alias"
    alias.symlink_to(root, target_is_directory=True)
    assert is_inside(alias / "src" / "new.txt", root)
    assert not is_inside(outside / "key.txt", root)


def test_a_device_inside_is_refused(layout: tuple[Path, Path]) -> None:
    import stat

    root, _ = layout
    try:
        os.mknod(root / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs privileges")
    with pytest.raises(OutsideWorkspace, match="a device"):
        refuse_special("null", resolve_path("null", root))
