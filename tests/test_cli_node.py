"""The Lingma CLI is a Node script: where the PATH a host gives lacks node (a desktop host,
nvm), the CLI is run with a node found beside it, or refused with how to give the PATH,
never left to fail with ``/usr/bin/env: 'node': No such file or directory``."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from lingma_mcp.acp import cli_discovery
from lingma_mcp.acp.attempt import start_agent
from lingma_mcp.acp.cli_discovery import NodeMissing, node_path
from lingma_mcp.asking.error_texts import error_text
from lingma_mcp.cli.doctor import run_doctor
from lingma_mcp.config import Settings

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _no_machine_node_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    # The usual npm prefixes (/usr/local, /opt/homebrew ...) are this machine's: out of
    # sight, so only the folders a test makes can hold a node.
    monkeypatch.setattr(cli_discovery, "npm_prefixes", lambda env, home: [])


def _program(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def no_node(tmp_path: Path) -> str:
    """A PATH with no node on it."""
    folder = tmp_path / "no-node"
    folder.mkdir()
    return str(folder)


def test_a_node_script_without_node_on_path_is_refused_saying_how_to_give_the_path(
    tmp_path: Path, no_node: str
) -> None:
    cli = _program(tmp_path / "cli" / "qoderclicn", "#!/usr/bin/env node\n")
    with pytest.raises(NodeMissing) as caught:
        node_path(cli, {"PATH": no_node})
    text = error_text(caught.value)
    assert "is a Node program" in text and "`node` is not on the PATH" in text
    assert no_node in text  # the PATH it had
    assert '"env": {"PATH":' in text and "--cli-bin" in text


def test_a_node_beside_the_cli_is_put_first_on_its_path(tmp_path: Path, no_node: str) -> None:
    folder = tmp_path / "nvm" / "bin"
    cli = _program(folder / "qoderclicn", "#!/usr/bin/env -S node --no-warnings\n")
    _program(folder / "node", "#!/bin/sh\n")
    assert node_path(cli, {"PATH": no_node}) == f"{folder}:{no_node}"


@pytest.mark.parametrize("first_line", ["#!/bin/sh\n", "#!/opt/node/bin/node\n", "\x7fELF"])
def test_a_cli_that_does_not_ask_env_for_node_needs_nothing(
    tmp_path: Path, no_node: str, first_line: str
) -> None:
    cli = _program(tmp_path / "qoderclicn", first_line)
    assert node_path(cli, {"PATH": no_node}) is None


def test_node_on_the_path_needs_nothing(tmp_path: Path) -> None:
    cli = _program(tmp_path / "cli" / "qoderclicn", "#!/usr/bin/env node\n")
    node = _program(tmp_path / "bin" / "node", "#!/bin/sh\n")
    assert node_path(cli, {"PATH": str(node.parent)}) is None


async def test_starting_it_without_node_fails_before_spawning_with_the_fix(
    tmp_path: Path, no_node: str
) -> None:
    cli = _program(tmp_path / "qoderclicn", "#!/usr/bin/env node\n")
    with pytest.raises(NodeMissing):
        await start_agent(cli, env={"PATH": no_node}, startup_timeout=10)


async def test_a_cli_whose_env_cannot_find_node_is_told_apart_from_other_exits(
    tmp_path: Path,
) -> None:
    # What env prints when node is missing however the script was started.
    cli = _program(
        tmp_path / "qoderclicn",
        "#!/bin/sh\necho \"/usr/bin/env: 'node': No such file or directory\" >&2\nexit 127\n",
    )
    with pytest.raises(NodeMissing) as caught:
        await start_agent(cli, startup_timeout=10)
    assert "is a Node program" in error_text(caught.value)


def test_doctor_names_node_as_the_missing_step(
    tmp_path: Path, no_node: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = _program(tmp_path / "qoderclicn", "#!/usr/bin/env node\n")
    monkeypatch.setenv("PATH", no_node)
    out = io.StringIO()
    settings = Settings(backend="cli", cli_bin=str(cli), work_dir=tmp_path / "work")
    assert run_doctor(settings, out) == 1
    report = out.getvalue()
    assert "Lingma CLI: The Lingma CLI" in report and "is a Node program" in report
