"""What one simulator process shares between its connections.

Options, the account, the conversation store, the one-shot fault flags, the received-
message log (``LINGMA_SIM_LOG``) and the stdout noise the binary is known for.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lingma_mcp.sim.account import Account
from lingma_mcp.sim.conversation_store import ConversationStore
from lingma_mcp.sim.private_files import open_private_log
from lingma_mcp.sim.start_options import SimOptions

log = logging.getLogger("lingma_mcp.sim")


class MessageLog:
    """One JSON line per message received from a client, flushed per line.

    Tests read it to check what the bridge sent (including its replies to our requests),
    and the simulator adds a few lines of its own (``kind: "event"``) for things a test
    needs to await, such as a stall. Without a path it does nothing.
    """

    def __init__(self, path: str | None) -> None:
        self._fh: IO[str] | None = None
        if path:
            # It holds every prompt and answer that crossed the wire: private (0600).
            self._fh = open_private_log(Path(path))

    @property
    def enabled(self) -> bool:
        return self._fh is not None

    def write(self, kind: str, conn: int, **fields: Any) -> None:
        if self._fh is None:
            return
        line = json.dumps(
            {"t": time.time(), "conn": conn, "kind": kind, **fields}, ensure_ascii=False
        )
        try:
            self._fh.write(line + "\n")
            self._fh.flush()
        except (OSError, ValueError) as exc:
            log.warning("cannot write the message log: %s", exc)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def noise(line: str) -> None:
    """Print a log-like line on stdout, as the binary does; a bridge must discard it."""
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass  # nobody is reading stdout: fine, it is noise


@dataclass
class SimState:
    """Process-wide state of the simulator."""

    options: SimOptions
    account: Account
    store: ConversationStore
    messages: MessageLog
    dropped_once: bool = False
    connections: int = 0
    live: set[Any] = field(default_factory=set)  # the open connection.Connection objects

    @classmethod
    def create(cls, options: SimOptions) -> SimState:
        return cls(
            options=options,
            account=Account(options.auth),
            store=ConversationStore(options.work_dir / "sessions.json"),
            messages=MessageLog(str(options.log_path) if options.log_path else None),
        )

    def next_connection_id(self) -> int:
        self.connections += 1
        return self.connections

    def live_connections(self) -> list[Any]:
        """Open connections, oldest first (for broadcasts)."""
        return sorted(self.live, key=lambda conn: conn.id)
