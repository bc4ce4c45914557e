"""Writing the ``.info`` file that tells a client which port the simulator listens on.

The binary writes it once its servers are up; clients poll for it. Three formats are seen
in the wild (PROTOCOL.md section 2), and the simulator can write each. It writes
atomically (temp file + rename) unless asked to tear the write, as the binary may not be
so careful: then a reader can see the port line alone for a moment and must cope.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from lingma_mcp.sim.private_files import remove_leftovers, write_durably
from lingma_mcp.sim.start_options import InfoFormat

# Long enough that a reader polling every few tens of milliseconds sees the half file.
TORN_PAUSE = 0.3
# A port and a pid, no secret: readable as the binary leaves it.
INFO_MODE = 0o644


def info_path(work_dir: Path, info_format: InfoFormat) -> Path:
    """Where a given format lives: ``.info.json`` for JSON, ``.info`` otherwise."""
    return work_dir / (".info.json" if info_format == "json" else ".info")


def ipc_path(work_dir: Path, pid: int) -> str:
    """A plausible (never created) IPC socket path for the three-line and JSON formats."""
    return str(work_dir / f"lingma-sim-{pid}.sock")


def render_info(port: int, pid: int, info_format: InfoFormat, work_dir: Path) -> str:
    """The text of the info file in the given format."""
    if info_format == "json":
        return json.dumps(
            {
                "websocketPort": port,
                "pid": pid,
                "ipcServerPath": ipc_path(work_dir, pid),
                "isDev": False,
            }
        )
    lines = [str(port), str(pid)]
    if info_format == "three":
        lines.append(ipc_path(work_dir, pid))
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` so that a reader sees either no file or the whole of it."""
    remove_leftovers(path)
    write_durably(path, text, mode=INFO_MODE)


async def write_info(
    work_dir: Path, port: int, pid: int, info_format: InfoFormat, *, torn: bool = False
) -> Path:
    """Write the info file for a server listening on ``port``; return its path.

    With ``torn`` (two-line format only) the port line is written and flushed, then the pid
    line follows after :data:`TORN_PAUSE`, in place, as a careless writer would.
    """
    path = info_path(work_dir, info_format)
    if torn and info_format != "json":
        text = render_info(port, pid, info_format, work_dir)
        first, rest = text.split("\n", 1)
        with path.open("w", encoding="utf-8") as fh:
            fh.write(first + "\n")
            fh.flush()
            await asyncio.sleep(TORN_PAUSE)
            fh.write(rest)
        return path
    write_atomically(path, render_info(port, pid, info_format, work_dir))
    return path
