"""``doctor`` and ``demo`` with two backends: which serves and why, each fix, both tours."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90)


def doctor(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    return run("doctor", "--work-dir", str(tmp_path / "w"), *args, env=env)


def run(*args: str, env: dict[str, str] | None = None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("LINGMA_")}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lingma_mcp", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=full,
        timeout=80,
        check=False,
    )


def test_doctor_on_the_acp_simulator_says_the_cli_serves(tmp_path: Path) -> None:
    done = doctor(tmp_path, "--simulate", "--backend", "cli")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Backend: cli (--backend cli)" in done.stdout
    assert "Lingma CLI starts: version 1.1.52-sim" in done.stdout


def test_doctor_logged_out_names_the_cli_login(tmp_path: Path) -> None:
    env = {"LINGMA_SIM_ACP_AUTH": "logged_out"}
    done = doctor(tmp_path, "--simulate", "--backend", "cli", env=env)
    assert done.returncode == 1
    assert "qoderclicn login" in done.stdout


def test_doctor_with_nothing_installed_names_both_fixes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": str(tmp_path / "empty")}
    done = doctor(tmp_path, env=env)
    assert done.returncode == 1
    assert "Backend: ide (neither" in done.stdout
    assert "Install the Lingma (Tongyi Lingma) plugin" in done.stdout
    assert "npm install -g @qodercn-ai/qoderclicn" in done.stdout


def test_demo_tours_both_backends() -> None:
    done = run("demo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "backend cli, CLI version 1.1.52-sim" in done.stdout
    assert "ok   cli: ask_lingma" in done.stdout and "ok   cli: follow-up" in done.stdout
    assert done.stdout.count("streamed text equals the answer: True") >= 4
