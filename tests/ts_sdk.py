"""The TypeScript SDK's client for the tests: ``node`` and ``@modelcontextprotocol/sdk``.

The SDK is installed once into a cache folder outside the project (``.ci/run`` does it
ahead of the tests; :func:`node_with_sdk` does it itself when the folder is empty). Tests
skip, saying why, where Node, npm or the registry is not available. The client scripts
are in ``ts_client/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SDK = "@modelcontextprotocol/sdk"
SCRIPTS = Path(__file__).parent / "ts_client"


def sdk_dir() -> Path:
    """Where CI installs the SDK (``.ci/run``): one folder per user, outside the project."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "lingma-mcp-tests" / "mcp-sdk"


def node_with_sdk() -> tuple[str, Path]:
    """``node`` and the folder holding the SDK, installing it if needed; skips if not."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js (node and npm) is not installed: the TypeScript SDK test needs it")
    folder = sdk_dir()
    if not (folder / "node_modules" / SDK / "package.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", SDK],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"installing {SDK} with npm took over 180 s (no registry?)")
        if done.returncode != 0:
            pytest.skip(f"{SDK} could not be installed with npm: {done.stderr.strip()[-300:]}")
    return node, folder
