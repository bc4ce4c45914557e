"""Finding the Lingma CLI and choosing the backend (``--backend``, ``--cli-bin``)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from lingma_mcp.acp.cli_backend import CliBackend
from lingma_mcp.acp.cli_discovery import CliNotFound, find_cli
from lingma_mcp.asking.backend_choice import choose, cli_options, make_backend
from lingma_mcp.asking.error_texts import error_text
from lingma_mcp.cli.main import build_parser, settings_from
from lingma_mcp.config import Settings
from lingma_mcp.lingma.supervisor import LingmaSupervisor

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX executables")


def program(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_qoderclicn_on_path_comes_before_qodercli(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    program(first, "qodercli")
    cn = program(second, "qoderclicn")
    found = find_cli(env={"PATH": f"{first}:{second}"}, home=tmp_path, run_npm=False)
    assert found.argv == (str(cn),) and found.source == "PATH"


def test_the_international_build_is_taken_when_alone(tmp_path: Path) -> None:
    intl = program(tmp_path / "a", "qodercli")
    found = find_cli(env={"PATH": str(tmp_path / "a")}, home=tmp_path, run_npm=False)
    assert found.argv == (str(intl),)


def test_the_npm_global_bin_is_found_without_running_npm(tmp_path: Path) -> None:
    prefix = tmp_path / "npm-prefix"
    cli = program(prefix / "bin", "qoderclicn")
    found = find_cli(env={"PATH": "", "NPM_CONFIG_PREFIX": str(prefix)}, home=tmp_path)
    assert found.argv == (str(cli),) and found.source == "npm global bin"
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".npmrc").write_text(f"prefix = {prefix}\n")
    found = find_cli(env={"PATH": ""}, home=tmp_path / "home", run_npm=False)
    assert found.argv == (str(cli),)


def test_an_explicit_cli_bin_is_taken_at_its_word(tmp_path: Path) -> None:
    cli = program(tmp_path, "my-cli")
    assert find_cli(str(cli), env={"PATH": ""}, home=tmp_path).argv == (str(cli),)
    with pytest.raises(CliNotFound) as missing:
        find_cli(str(tmp_path / "nope"), env={"PATH": ""}, home=tmp_path)
    assert "--cli-bin" in str(missing.value)


def test_not_found_names_each_place_and_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(CliNotFound) as missing:
        find_cli(env={"PATH": str(tmp_path)}, home=tmp_path, run_npm=False)
    text = error_text(missing.value)
    assert "qoderclicn on PATH" in text and "qodercli on PATH" in text
    assert "npm install -g @qodercn-ai/qoderclicn" in text


def test_explicit_backends_are_taken_at_their_word() -> None:
    assert choose(Settings(backend="cli")).kind == "cli"
    assert choose(Settings(backend="ide")).kind == "ide"
    assert isinstance(make_backend(Settings(backend="cli", cli_bin="/x")), CliBackend)
    assert isinstance(make_backend(Settings(backend="ide")), LingmaSupervisor)


def test_auto_prefers_the_ide_binary_then_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    cli = program(tmp_path / "bin", "qoderclicn")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    choice = choose(Settings(workspace=tmp_path), run_npm=False)
    assert choice.kind == "cli" and str(cli) in choice.reason
    program(tmp_path / "bin", "Lingma")  # the IDE binary, found on PATH
    choice = choose(Settings(workspace=tmp_path), run_npm=False)
    assert choice.kind == "ide" and "IDE plugin" in choice.reason


def test_auto_with_simulate_keeps_the_ide_simulator() -> None:
    assert choose(Settings(simulate=True)).kind == "ide"
    assert choose(Settings(simulate=True, backend="cli")).kind == "cli"


def test_simulate_with_the_cli_backend_runs_the_acp_simulator(tmp_path: Path) -> None:
    options = cli_options(Settings(simulate=True, backend="cli", work_dir=tmp_path))
    command = options.find()
    assert command.argv[-2:] == ("lingma_mcp.sim", "acp") and command.source == "simulator"
    assert options.env is not None
    assert options.env["LINGMA_SIM_ACP_STATE_DIR"] == str(tmp_path / "acp")


def test_flags_and_environment_choose_the_backend() -> None:
    args = build_parser().parse_args(["--backend", "cli", "--cli-bin", "/opt/q"])
    settings = settings_from(args, {"LINGMA_BACKEND": "ide"})
    assert (settings.backend, settings.cli_bin) == ("cli", "/opt/q")
    assert settings_from(build_parser().parse_args([]), {}).backend == "auto"
