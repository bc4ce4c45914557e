"""``lingma-mcp ask --mode agent`` in a terminal: the workspace is hosted there too, and
each approval is asked on the terminal (or, with no terminal to ask on, refused up front
unless --approval decides everything)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lingma_mcp.cli.terminal_ask import TerminalAsker, run_ask
from lingma_mcp.config import Settings

pytestmark = pytest.mark.timeout(60)

EDIT = "tidy up\n@create notes/new.txt hello\\n"


class Typed:
    """The person at the terminal: each question gets the next line typed."""

    def __init__(self, *lines: str) -> None:
        self.lines = list(lines)

    async def __call__(self) -> str:
        return self.lines.pop(0) if self.lines else ""  # then end of input


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def ask(
    tmp_path: Path, project: Path, typed: Typed | None, **settings: object
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    options = Settings(
        simulate=True, mode="agent", workspace=project, work_dir=tmp_path / "work", **settings
    )
    code = run_ask(options, EDIT, out=out, err=err, answers=typed)
    return code, out.getvalue(), err.getvalue()


def test_an_edit_lands_after_the_person_approves_it_on_the_terminal(
    tmp_path: Path, project: Path
) -> None:
    code, out, err = ask(tmp_path, project, Typed("y"))
    assert code == 0, err
    assert (project / "notes" / "new.txt").read_text() == "hello\n"
    assert "Lingma wants to change notes/new.txt (create_file_with_text)" in err
    assert "+hello" in err  # the preview
    assert "[y]es" in err and "[a]ll" in err and "[n]o" in err
    assert "created notes/new.txt" in err  # the change, said on stderr
    assert "notes/new.txt: ok" in out  # what Lingma was told


def test_a_denied_edit_changes_nothing(tmp_path: Path, project: Path) -> None:
    code, out, err = ask(tmp_path, project, Typed("n"))
    assert code == 0, err
    assert not (project / "notes").exists()
    assert "notes/new.txt: " in out and "notes/new.txt: ok" not in out
    assert "denied create_file_with_text notes/new.txt by the person" in err


def test_an_unclear_answer_is_asked_again_and_the_end_of_input_denies(
    tmp_path: Path, project: Path
) -> None:
    code, _, err = ask(tmp_path, project, Typed("maybe"))
    assert code == 0, err
    assert err.count("Lingma wants to change notes/new.txt") == 2
    assert not (project / "notes").exists()


async def test_the_asker_reads_yes_all_and_no_in_their_usual_spellings() -> None:
    class Request:
        message = "Lingma wants to run make (run_in_terminal)."

    for typed, decision in [
        ("y", "approve"),
        ("YES", "approve"),
        (" a ", "approve_all"),
        ("all", "approve_all"),
        ("n", "deny"),
        ("", "deny"),
    ]:
        assert await TerminalAsker(io.StringIO(), Typed(typed))(Request()) == decision


def test_without_a_terminal_agent_mode_is_refused_saying_how_to_decide_up_front(
    tmp_path: Path, project: Path
) -> None:
    code, out, err = ask(tmp_path, project, None)
    assert code == 2 and out == ""
    assert "not a terminal" in err and "--approval" in err
    assert not (project / "notes").exists()


def test_without_a_terminal_an_approval_setting_that_never_asks_is_enough(
    tmp_path: Path, project: Path
) -> None:
    code, _, err = ask(tmp_path, project, None, approval="write=allow,delete=deny,run=deny")
    assert code == 0, err
    assert (project / "notes" / "new.txt").read_text() == "hello\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal")
def test_the_command_asks_on_its_terminal_and_reads_the_answer_there(
    tmp_path: Path, project: Path
) -> None:
    import pty

    main_fd, child_fd = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINGMA_")}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "lingma_mcp", "ask", "--simulate", "--mode", "agent"),
            *("--work-dir", str(tmp_path / "work"), "--workspace", str(project), EDIT),
        ],
        stdin=child_fd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(child_fd)
    try:
        assert process.stderr is not None
        seen = b""
        while b"[n]o" not in seen:  # the question, then the answer is typed
            chunk = os.read(process.stderr.fileno(), 4096)
            assert chunk, seen.decode()
            seen += chunk
        os.write(main_fd, b"y\n")
        out, rest = process.communicate(timeout=50)
        assert "notes/new.txt: ok" in out.decode()
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main_fd)
    assert process.returncode == 0, (seen + rest).decode()
    assert (project / "notes" / "new.txt").read_text() == "hello\n"
