"""lingma-mcp with the wait for the host's read switched off: the baseline of
``bench_last_progress`` (a message after a progress notification is written at once)."""

from __future__ import annotations

from lingma_mcp.cli.main import main
from lingma_mcp.server import stdio

if __name__ == "__main__":
    stdio.HOST_READ_WAIT_S = 0.0
    raise SystemExit(main())
