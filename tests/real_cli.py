"""The real Lingma CLI (``@qodercn-ai/qoderclicn``) for tests, installed once into a cache.

Tests call :func:`installed_cli` (it skips, saying why, where Node, npm or the registry is
not available) and :func:`empty_home_env` (a HOME with no login in it). CI prepares the
cache ahead of the tests with ``python tests/real_cli.py``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

# Pinned: 1.1.52 runs offline with --fake-responses; 1.1.76 fails at session/new that way.
VERSION = "1.1.52"
PACKAGE = "@qodercn-ai/qoderclicn"
CACHE = (
    Path(os.environ.get("LINGMA_TEST_CACHE") or Path.home() / ".cache" / "lingma-mcp-tests")
    / "qoderclicn"
)
BIN = CACHE / "node_modules" / ".bin" / "qoderclicn"
INSTALL_TIMEOUT = 300


MANIFEST = CACHE / "node_modules" / "@qodercn-ai" / "qoderclicn" / "package.json"


def _installed_version() -> str:
    """The version the cache holds, by its manifest, where Node can run it: what
    ``qoderclicn --version`` would say, without the second of CPU that costs."""
    try:
        version = str(json.loads(MANIFEST.read_text(encoding="utf-8"))["version"])
        node = subprocess.run(
            ["node", "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return ""
    major = node.stdout.strip().lstrip("v").split(".")[0]
    return version if BIN.exists() and major.isdigit() and int(major) >= 20 else ""


def _works(binary: Path) -> str:
    """The version ``binary --version`` prints, or "" when it does not run."""
    try:
        probe = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return probe.stdout.strip() if probe.returncode == 0 else ""


@functools.cache
def install() -> tuple[Path | None, str]:
    """The CLI's path, installing it into the cache if needed; else (None, why not)."""
    if _installed_version() == VERSION:
        return BIN, ""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        return None, f"Node.js and npm are needed to install {PACKAGE}"
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(CACHE),
                "--no-audit",
                "--no-fund",
                f"{PACKAGE}@{VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"npm install {PACKAGE} took over {INSTALL_TIMEOUT} s (no registry?)"
    if done.returncode != 0:
        return None, f"npm install {PACKAGE} failed: {done.stderr.strip()[-300:]}"
    version = _works(BIN)
    if version != VERSION:
        return None, (
            f"{PACKAGE}@{VERSION} installed but `qoderclicn --version` says {version or 'nothing'}"
            " (Node >= 20 needed)"
        )
    return BIN, ""


def installed_cli() -> Path:
    """The installed CLI, or a pytest skip that says why there is none."""
    import pytest

    binary, why = install()
    if binary is None:
        pytest.skip(why)
    return binary


def empty_home_env(home: Path) -> dict[str, str]:
    """An environment whose HOME holds no login (and no token variable)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QODERCN_")}
    env["HOME"] = str(home)
    env.pop("XDG_CONFIG_HOME", None)
    return env


def use_empty_home(patch: Any, home: Path) -> None:
    """This process's environment (through ``patch``, a ``pytest.MonkeyPatch``) made the one
    :func:`empty_home_env` gives: what a server here hands the CLI it starts."""
    env = empty_home_env(home)
    for name in [n for n in os.environ if n not in env]:
        patch.delenv(name)
    patch.setenv("HOME", env["HOME"])


def processes_with_home(home: Path) -> list[int]:
    """Pids of live processes whose environment has HOME=``home`` (Linux /proc)."""
    needle = f"HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if needle in environ.split(b"\0") and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


if __name__ == "__main__":  # CI: fetch it once, never fail the build over it
    path, reason = install()
    print(path or f"skipped: {reason}", file=sys.stderr)
