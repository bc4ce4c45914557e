"""``doctor`` with two backends: which serves and why, and each fix.

The command runs in this process (the ``command`` fixture); the CLI backend's simulator is
its child, as the CLI is. The demo's tour of both backends is ``test_cli.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Done

pytestmark = pytest.mark.timeout(90)
Command = Callable[..., Done]


def doctor(command: Command, tmp_path: Path, *args: str, **env: str) -> Done:
    return command("doctor", "--work-dir", str(tmp_path / "w"), *args, env=env)


def test_doctor_on_the_acp_simulator_says_the_cli_serves(command: Command, tmp_path: Path) -> None:
    done = doctor(command, tmp_path, "--simulate", "--backend", "cli")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Backend: cli (--backend cli)" in done.stdout
    assert "Lingma CLI starts: version 1.1.52-sim" in done.stdout


def test_doctor_logged_out_names_the_cli_login(command: Command, tmp_path: Path) -> None:
    done = doctor(
        command, tmp_path, "--simulate", "--backend", "cli", LINGMA_SIM_ACP_AUTH="logged_out"
    )
    assert done.returncode == 1
    assert "qoderclicn login" in done.stdout


def test_doctor_with_nothing_installed_names_both_fixes(command: Command, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = doctor(command, tmp_path, HOME=str(home), PATH=str(tmp_path / "empty"))
    assert done.returncode == 1
    assert "Backend: ide (neither" in done.stdout
    assert "Install the Lingma (Tongyi Lingma) plugin" in done.stdout
    assert "npm install -g @qodercn-ai/qoderclicn" in done.stdout
