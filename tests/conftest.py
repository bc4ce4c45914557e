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

The hooks here: how many workers ``-n auto`` starts, and which modules run first.

The fixtures here: ``project``, the workspace most agent-mode tests edit; ``asks``, which
reaches into a server built in this process; ``command``, the command line run in this
process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import lingma_mcp.server.app as app_module
from lingma_mcp.cli.main import main
from lingma_mcp.server.job_tools import AskJobs

# The modules whose tests run programs no one here wrote (the Lingma CLI, Node clients,
# Chromium): seconds each, mostly waiting on those programs. Run first, they overlap with the
# many short tests instead of making the run's tail.
FIRST = (
    "test_sim_acp_real_shapes.py",
    "test_real_cli_mcp.py",
    "test_tasks_clients.py",
    "test_jobs_ts_client.py",
    "test_sandbox_cli.py",
    "test_inspector.py",
    "test_review_browser.py",
)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Half again as many workers as cores, at most four: a third of a run's time is spent
    waiting on processes (a Lingma that ignores SIGTERM, a client's timeout, a CLI
    starting), which a spare worker fills; more would only share the cores."""
    cores = os.cpu_count() or 1
    return max(1, min(4, cores * 3 // 2))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """:data:`FIRST`'s modules first, each module's tests kept together and in order (the
    same order on every worker, as pytest-xdist requires)."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return FIRST.index(name) if name in FIRST else len(FIRST)

    items.sort(key=rank)


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


class Done(NamedTuple):
    """What a command left: its exit code and what it wrote."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Done]:
    """``lingma-mcp ARGS`` run in this process, in an environment of no ``LINGMA_*`` but
    ``env`` (the simulator quick): what a terminal shows of it. The command configures the
    logging as for a process of its own; the test's is put back after each run."""

    def run(*args: str, env: Mapping[str, str] | None = None) -> Done:
        for name in [n for n in os.environ if n.startswith("LINGMA_")]:
            monkeypatch.delenv(name)
        quick = {"LINGMA_SIM_DELTA_DELAY": "0.001", "LINGMA_SIM_ANSWER_SIZE": "120"}
        for name, value in {**quick, **(env or {})}.items():
            monkeypatch.setenv(name, value)
        root, frames = logging.getLogger(), logging.getLogger("websockets")
        kept = list(root.handlers), root.level, frames.level
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's errors and --version, as a process exits
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            for handler in [h for h in root.handlers if h not in kept[0]]:
                root.removeHandler(handler)
            for handler in kept[0]:
                if handler not in root.handlers:
                    root.addHandler(handler)
            root.setLevel(kept[1])
            frames.setLevel(kept[2])
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run
