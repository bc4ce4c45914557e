"""Reading and awaiting Lingma's ``.info`` file: how a client learns the port.

Lingma writes it in its work dir once its servers are up, in one of three formats:

- ``.info``, two lines: port, pid;
- ``.info``, three lines: port, pid, IPC pipe or socket path;
- ``.info.json``: ``{"websocketPort": 36510, "pid": 14060, "ipcServerPath": "...",
  "isDev": false}``.

Lingma may be caught mid-write. A torn JSON file does not parse, so it is never taken. A
torn line file can look whole (``37010\\n140`` of ``37010\\n14060``), so the waiter takes a
line file only once two reads a poll apart agree, or at once when its pid is the one we
spawned. That costs one poll interval (~15 ms), well inside the 100 ms budget.

Whose file it is: when we spawned the Lingma, a file is taken only if its pid is our child
or a process in our child's process group (a binary that forks its server keeps the
group); any other pid is another Lingma's, however it got there. A ``.info`` is deleted
only when the process it names no longer runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..process.child import pid_alive

INFO_NAMES = (".info", ".info.json")
POLL_INTERVAL = 0.015


@dataclass(frozen=True)
class LingmaInfo:
    port: int
    pid: int | None = None
    ipc_path: str | None = None
    is_dev: bool | None = None
    path: Path | None = None  # the file it came from


def info_paths(work_dir: Path) -> list[Path]:
    return [work_dir / name for name in INFO_NAMES]


def remove_stale_info(work_dir: Path) -> list[Path]:
    """Delete ``.info`` files a dead Lingma left, so we never read its port; return them.

    A file whose pid still runs is kept: it is some live Lingma's, not ours to break.
    """
    removed: list[Path] = []
    for path in info_paths(work_dir):
        info = read_info(path)
        if info is not None and info.pid is not None and pid_alive(info.pid):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def info_process_alive(work_dir: Path) -> bool:
    """Whether a ``.info`` in ``work_dir`` names a process that still runs."""
    for path in info_paths(work_dir):
        info = read_info(path)
        if info is not None and info.pid is not None and pid_alive(info.pid):
            return True
    return False


def is_ours(pid: int | None, child: int) -> bool:
    """Whether ``pid`` is our ``child`` or in its process group (the child leads one)."""
    if pid is None:
        return False
    if pid == child:
        return True
    if sys.platform == "win32":
        return False
    try:
        return os.getpgid(pid) == child
    except OSError:
        return False


def _port(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        port = int(str(value).strip())
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def _pid(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        pid = int(str(value).strip())
    except ValueError:
        return None
    return pid if pid > 0 else None


def parse_info(text: str, path: Path | None = None) -> LingmaInfo | None:
    """Parse any of the three formats; ``None`` when the text is not (yet) a whole file."""
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        port = _port(data.get("websocketPort", data.get("port")))
        if port is None:
            return None
        ipc = data.get("ipcServerPath")
        is_dev = data.get("isDev")
        return LingmaInfo(
            port=port,
            pid=_pid(data.get("pid")),
            ipc_path=ipc if isinstance(ipc, str) and ipc else None,
            is_dev=is_dev if isinstance(is_dev, bool) else None,
            path=path,
        )
    lines = [line.strip() for line in stripped.splitlines()]
    if len(lines) < 2:
        return None
    port, pid = _port(lines[0]), _pid(lines[1])
    if port is None or pid is None:
        return None
    ipc = lines[2] if len(lines) > 2 and lines[2] else None
    return LingmaInfo(port=port, pid=pid, ipc_path=ipc, path=path)


def read_info(path: Path) -> LingmaInfo | None:
    """Read and parse one file; ``None`` when it is missing, unreadable or incomplete."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return parse_info(text, path)


def shared_info_paths(home: Path | None = None) -> list[Path]:
    """``~/.lingma/.info``: some versions write there too, shared by every instance."""
    return info_paths((home if home is not None else Path.home()) / ".lingma")


async def wait_for_info(
    work_dir: Path,
    *,
    expected_pid: int | None = None,
    shared: list[Path] | tuple[Path, ...] = (),
    interval: float = POLL_INTERVAL,
) -> LingmaInfo:
    """Wait until Lingma's ``.info`` (any format) in ``work_dir`` is complete; return it.

    Args:
        work_dir: the ``--workDir`` Lingma was started with.
        expected_pid: the pid we spawned. When given, a file is taken only if its pid is
            this child or in its process group (another Lingma's port is never used), and
            then at once.
        shared: files other instances may write too (``~/.lingma/.info``); read only with
            ``expected_pid``, under the same rule. They are never deleted: they may
            belong to an IDE's Lingma.
        interval: seconds between polls.

    Never returns on its own if the file never comes: the caller bounds it (a timeout, or a
    race against the process exiting). Each poll is one ``stat`` per name; a file is read
    only when its size or mtime moved since the last poll, so waiting costs next to nothing.
    """
    seen: dict[Path, tuple[int, int]] = {}
    candidate: dict[Path, LingmaInfo] = {}
    own = info_paths(work_dir)
    paths = own + ([p for p in shared if p not in own] if expected_pid is not None else [])
    while True:
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                seen.pop(path, None)
                candidate.pop(path, None)
                continue
            stamp = (st.st_size, st.st_mtime_ns)
            if seen.get(path) == stamp and path in candidate:
                # Unchanged since the last poll: the write is finished.
                return candidate[path]
            seen[path] = stamp
            info = read_info(path)
            if info is None or (expected_pid is not None and not is_ours(info.pid, expected_pid)):
                candidate.pop(path, None)
                continue
            if path.suffix == ".json" or expected_pid is not None:
                return info
            candidate[path] = info
        await asyncio.sleep(interval)
