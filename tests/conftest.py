"""The tests' shared modules, by what they hold (import them by name, ``from servers import
mcp_server``); this file makes them importable.

- ``servers.py``: lingma-mcp started for a test, in this process or as a stdio process,
  on the simulators; what the simulators were sent.
- ``fakes.py``: test doubles: Lingma's end of a socket, a tool handler, a scripted Lingma
  behind the real MCP face, the person asked through elicitation, a host's progress.
- ``procs.py``: waiting on what is no event (processes, files, ``/proc``).
- ``simclient.py``: the IDE simulator as a process and a raw client of its wire.
- ``acp_fakes.py``: the ACP side: a workspace and gate for the client, a raw peer of the
  wire, scripted model turns (``--fake-responses``).
- ``real_cli.py``: the real Lingma CLI, installed once into a cache.
- ``task_clients.py``, ``review_host.py``, ``sup_server.py``, ``ts_client/``: clients and
  stand-ins a few tests use.

The fixtures here: ``project``, the workspace most agent-mode tests edit, and ``asks``,
which reaches into a server built in this process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import lingma_mcp.server.app as app_module
from lingma_mcp.server.job_tools import AskJobs


@pytest.fixture
def asks(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every :class:`AskJobs` an app builds during the test, in order: the job registry of
    a server in this process, for tests that need its jobs and their questions."""
    built: list[AskJobs] = []

    class Kept(AskJobs):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(app_module, "AskJobs", Kept)
    return built


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A workspace with two files for agent mode to change: ``keep.txt``, ``old.txt``."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "keep.txt").write_text("one\ntwo\n")
    (folder / "old.txt").write_text("bye\n")
    return folder.resolve()
