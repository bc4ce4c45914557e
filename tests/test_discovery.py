"""Finding the Lingma binary: the order of places, per-OS names, and the not-found error."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from lingma_mcp.config import Settings, simulator_command
from lingma_mcp.errors import LingmaNotFound
from lingma_mcp.lingma.binary_discovery import (
    NOT_FOUND_HINT,
    arch_name,
    binary_name,
    find_lingma,
    os_name,
    platform_dir,
    version_key,
)
from lingma_mcp.lingma.launch_options import LaunchOptions

LINUX = {"system": "Linux", "machine": "x86_64"}
WORK = Path("unused-work-dir")


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def _install(home: Path, version: str, pdir: str = "x86_64_linux", name: str = "Lingma") -> Path:
    return _exe(home / ".lingma" / "bin" / version / pdir / name)


def _config(home: Path, version: str) -> None:
    cfg = home / ".lingma" / "bin" / "config.json"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps({"cosy.core.version": version}))


def test_platform_names_cover_linux_macos_and_windows() -> None:
    assert platform_dir("Linux", "x86_64") == "x86_64_linux"
    assert platform_dir("Linux", "aarch64") == "aarch64_linux"
    assert platform_dir("Darwin", "arm64") == "aarch64_darwin"
    assert platform_dir("Darwin", "x86_64") == "x86_64_darwin"
    assert platform_dir("Windows", "AMD64") == "x86_64_windows"
    assert platform_dir("Windows", "x86") == "i686_windows"
    assert arch_name("i386") == "i686"
    assert os_name("win32") == "windows"
    assert binary_name("Windows") == "Lingma.exe"
    assert binary_name("Darwin") == binary_name("Linux") == "Lingma"


def test_versions_compare_numerically_not_as_strings() -> None:
    assert version_key("2.10.0") > version_key("2.9.3")
    assert version_key("10.0") > version_key("9.99.99")
    assert version_key("2.5.0") > version_key("2.5.beta")


def test_explicit_path_wins_over_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _install(home, "2.11.1")
    _config(home, "2.11.1")
    explicit = _exe(tmp_path / "custom" / "Lingma")
    cmd = find_lingma(LaunchOptions(WORK, binary=str(explicit)), home=home, path_env="", **LINUX)
    assert cmd.argv == (str(explicit),)
    assert cmd.cwd == explicit.parent
    assert cmd.source == "LINGMA_BIN"
    assert cmd.start_argv(Path("/w")) == [str(explicit), "start", "--workDir", "/w"]


def test_explicit_folder_is_accepted(tmp_path: Path) -> None:
    exe = _exe(tmp_path / "x86_64_linux" / "Lingma")
    cmd = find_lingma(
        LaunchOptions(WORK, binary=str(exe.parent)), home=tmp_path, path_env="", **LINUX
    )
    assert cmd.argv == (str(exe),)


def test_wrong_explicit_path_is_an_error_not_a_silent_fallback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _install(home, "2.11.1")
    missing = tmp_path / "nope" / "Lingma"
    with pytest.raises(LingmaNotFound) as info:
        find_lingma(LaunchOptions(WORK, binary=str(missing)), home=home, path_env="", **LINUX)
    assert str(missing) in str(info.value)
    assert "LINGMA_BIN" in info.value.places[0]


def test_configured_version_wins_over_newer_folders(tmp_path: Path) -> None:
    _install(tmp_path, "2.9.0")
    _install(tmp_path, "2.10.0")
    _config(tmp_path, "2.9.0")
    cmd = find_lingma(LaunchOptions(WORK), home=tmp_path, path_env="", **LINUX)
    assert cmd.source == "config.json"
    assert "2.9.0" in cmd.argv[0]


def test_newest_folder_is_used_when_config_is_missing_or_stale(tmp_path: Path) -> None:
    _install(tmp_path, "2.9.3")
    _install(tmp_path, "2.10.0")
    _exe(tmp_path / ".lingma" / "bin" / "2.11.0" / "aarch64_darwin" / "Lingma")  # other OS
    cmd = find_lingma(LaunchOptions(WORK), home=tmp_path, path_env="", **LINUX)
    assert cmd.source == "newest version"
    assert Path(cmd.argv[0]) == tmp_path / ".lingma/bin/2.10.0/x86_64_linux/Lingma"

    _config(tmp_path, "1.0.0")  # names a version that is not installed
    assert (
        find_lingma(LaunchOptions(WORK), home=tmp_path, path_env="", **LINUX).source
        == "newest version"
    )


def test_path_is_the_last_resort(tmp_path: Path) -> None:
    exe = _exe(tmp_path / "pathdir" / "Lingma")
    path_env = os.pathsep.join([str(tmp_path / "empty"), str(exe.parent)])
    cmd = find_lingma(LaunchOptions(WORK), home=tmp_path / "home", path_env=path_env, **LINUX)
    assert cmd.source == "PATH"
    assert cmd.argv == (str(exe),)


def test_macos_layout(tmp_path: Path) -> None:
    exe = _install(tmp_path, "2.11.1", "aarch64_darwin")
    _config(tmp_path, "2.11.1")
    cmd = find_lingma(
        LaunchOptions(WORK), home=tmp_path, system="Darwin", machine="arm64", path_env=""
    )
    assert cmd.argv == (str(exe),)


def test_windows_layout_uses_lingma_exe(tmp_path: Path) -> None:
    # Lingma.exe need not carry an executable bit: Windows has none.
    exe = tmp_path / ".lingma/bin/2.11.1/x86_64_windows/Lingma.exe"
    exe.parent.mkdir(parents=True)
    exe.write_text("MZ")
    _config(tmp_path, "2.11.1")
    cmd = find_lingma(
        LaunchOptions(WORK), home=tmp_path, system="Windows", machine="AMD64", path_env=""
    )
    assert cmd.argv == (str(exe),)
    assert cmd.source == "config.json"


def test_not_found_lists_every_place_looked_and_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(LingmaNotFound) as info:
        find_lingma(LaunchOptions(WORK), home=tmp_path, path_env=str(tmp_path), **LINUX)
    err = info.value
    text = str(err)
    assert len(err.places) == 3
    assert str(tmp_path / ".lingma" / "bin" / "config.json") in text
    assert "x86_64_linux/Lingma" in text
    assert "on PATH" in text
    assert err.hint == NOT_FOUND_HINT  # type: ignore[attr-defined]
    assert "LINGMA_BIN" in err.hint and "log in" in err.hint  # type: ignore[attr-defined]


def test_config_version_cannot_escape_the_bin_folder(tmp_path: Path) -> None:
    _exe(tmp_path / ".lingma" / "x86_64_linux" / "Lingma")
    _config(tmp_path, "..")
    with pytest.raises(LingmaNotFound):
        find_lingma(LaunchOptions(WORK), home=tmp_path, path_env="", **LINUX)


def test_an_explicit_command_is_run_as_given_without_a_search(tmp_path: Path) -> None:
    options = LaunchOptions(WORK, command=("prog", "--flag"), command_source="tests")
    cmd = find_lingma(options, home=tmp_path, path_env="", **LINUX)
    assert cmd.argv == ("prog", "--flag") and cmd.source == "tests"


def test_the_core_knows_nothing_of_the_simulator() -> None:
    for module in ("binary_discovery", "startup", "supervisor", "info_reader", "launch_options"):
        text = (Path(__file__).parents[1] / "lingma_mcp" / "lingma" / f"{module}.py").read_text()
        assert "simulat" not in text.lower(), module


def test_simulate_becomes_the_simulator_command_in_its_own_work_dir(tmp_path: Path) -> None:
    options = Settings(simulate=True, lingma_bin="/ignored").launch_options()
    assert options.command == simulator_command() == (sys.executable, "-m", "lingma_mcp.sim")
    assert options.binary is None and options.command_source == "simulator"
    assert options.command_cwd is not None and (options.command_cwd / "lingma_mcp").is_dir()
    real = Settings().launch_options().work_dir
    assert options.work_dir != real and options.work_dir.name == "simulator"
    cmd = find_lingma(options, home=tmp_path)
    assert cmd.argv == simulator_command() and cmd.source == "simulator"
