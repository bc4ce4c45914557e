"""Files: reads capped and text-only, writes atomic keeping mode and line endings, checks honest."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lingma_mcp.workspace import WorkspaceError
from lingma_mcp.workspace import files as files_mod
from lingma_mcp.workspace.files import (
    READ_LIMIT,
    atomic_write,
    encode_text,
    read_for_change,
    read_text_file,
)
from lingma_mcp.workspace.problems import check_text


def test_a_file_over_one_mib_is_cut_there_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * (READ_LIMIT + 10))
    text = read_text_file(path, "big.txt")
    assert text.truncated and len(text.content) == READ_LIMIT
    assert "only the first 1024 KiB are shown" in text.with_note()


def test_a_cut_through_a_character_drops_the_half(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * (READ_LIMIT - 1) + "é".encode() * 4)
    text = read_text_file(path, "big.txt")
    assert text.truncated and text.content == "x" * (READ_LIMIT - 1)


def test_a_small_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("héllo\n")
    text = read_text_file(path, "a.txt")
    assert (text.content, text.truncated) == ("héllo\n", False)
    assert text.with_note() == "héllo\n"


def test_line_window(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("".join(f"{i}\n" for i in range(1, 11)))
    assert read_text_file(path, "a.txt", line=3, limit=2).content == "3\n4\n"
    assert read_text_file(path, "a.txt", line=9).content == "9\n10\n"


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n\x00\x00", b"caf\xe9 latin-1"])
def test_binary_or_non_utf8_files_are_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "img.bin"
    path.write_bytes(data)
    with pytest.raises(WorkspaceError, match="binary"):
        read_text_file(path, "img.bin")


def test_a_folder_is_not_read(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="folder"):
        read_text_file(tmp_path, "here")


def test_a_fifo_is_refused_after_opening(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(WorkspaceError, match="fifo"):
        read_text_file(tmp_path / "pipe", "pipe")


def test_a_symlink_swapped_in_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("x")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    with pytest.raises(WorkspaceError, match="cannot open"):
        read_text_file(tmp_path / "link.txt", "link.txt")


def test_replacing_is_a_rename_keeping_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "run.sh"
    path.write_text("old\n")
    path.chmod(0o751)
    before = os.stat(path)
    atomic_write(path, b"new\n", like=before)
    after = os.stat(path)
    assert path.read_bytes() == b"new\n"
    assert stat.S_IMODE(after.st_mode) == 0o751
    assert after.st_ino != before.st_ino  # a new file renamed over the old name
    assert [p.name for p in tmp_path.iterdir()] == ["run.sh"]  # no temporary file left


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old\n")

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files_mod.os, "replace", fail)
    with pytest.raises(WorkspaceError, match="No space left"):
        atomic_write(path, b"new\n", like=os.stat(path))
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_a_new_file_gets_the_usual_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        atomic_write(tmp_path / "n.txt", b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "n.txt").st_mode) == 0o644


def test_crlf_file_stays_crlf_when_the_new_text_uses_lf() -> None:
    assert encode_text("a\nb\n", b"x\r\ny\r\n", "f") == b"a\r\nb\r\n"


def test_new_text_with_crlf_decides_for_itself() -> None:
    assert encode_text("a\r\nb\n", b"x\r\ny\r\n", "f") == b"a\r\nb\n"
    assert encode_text("a\nb\n", b"x\ny\n", "f") == b"a\nb\n"
    assert encode_text("a\nb\n", None, "f") == b"a\nb\n"


def test_read_for_change_refuses_what_could_not_be_reverted(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 100)
    assert read_for_change(tmp_path / "missing", "missing") is None
    with pytest.raises(WorkspaceError, match="could not be kept for a revert"):
        read_for_change(path, "big.bin", max_bytes=10)


def test_python_syntax_errors_are_reported_with_their_place() -> None:
    [problem] = check_text("a.py", ".py", "def f(:\n    pass\n")
    assert problem["file"] == "a.py" and problem["line"] == 1 and problem["severity"] == "error"
    assert check_text("a.py", ".py", "import os\nprint(os.sep)\n") == []


def test_python_is_compiled_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    assert check_text("a.py", ".py", f"open({str(marker)!r}, 'w')\n") == []
    assert not marker.exists()


def test_json_and_toml_errors_are_reported() -> None:
    # A missing colon: every Python from 3.10 places it on line 2 (a trailing comma is put
    # on line 2 before 3.13 and on line 1, at the comma, from 3.13 on).
    [problem] = check_text("a.json", ".json", '{"a": 1,\n"b" 2}')
    assert problem["line"] == 2 and problem["source"] == "json"
    from lingma_mcp.workspace.problems import _toml_parser

    if _toml_parser() is None:  # Python 3.10 without tomli: no TOML check at all
        assert check_text("p.toml", ".toml", "a = = 1") == []
        return
    [problem] = check_text("p.toml", ".toml", "[x]\na = = 1\n")
    assert problem["line"] == 2 and problem["source"] == "toml"
    assert check_text("p.toml", ".toml", "[x]\na = 1\n") == []


def test_other_files_get_no_invented_problems() -> None:
    assert check_text("a.rs", ".rs", "fn main( {") == []
    assert check_text("a.md", ".md", "# whatever") == []


def test_yaml_is_checked_only_when_a_parser_is_at_hand(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "yaml", None)  # as if no YAML parser were installed
    assert check_text("a.yaml", ".yaml", "a: [1, 2\n") == []


def test_yaml_errors_are_reported_with_a_parser() -> None:
    pytest.importorskip("yaml")
    [problem] = check_text("a.yml", ".yml", "a: [1, 2\nb: 3\n")
    assert problem["source"] == "yaml" and problem["line"] is not None
