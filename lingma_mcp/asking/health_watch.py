"""Suspicion: telling the backend that Lingma may be wedged, without failing the caller.

A control request that times out, or a chat that hears nothing at all, is the only sign a
wedged Lingma gives. The backend then checks its health (one probe; a failed probe kills
and restarts Lingma). Whoever noticed goes on with its own error or its own wait: a health
check must never become the failure of the call that noticed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from ..backend import Backend
from ..errors import RpcTimeout

log = logging.getLogger(__name__)


class HealthWatch:
    """Passes suspicions on to ``backend`` (its ``suspect`` schedules one health probe)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def suspect(self, reason: str) -> None:
        try:
            self.backend.suspect(reason)
        except Exception:  # a health check must never fail the call that noticed
            log.exception("supervisor.suspect failed")

    @contextmanager
    def control(self) -> Iterator[None]:
        """Around a control request: one that times out means Lingma may be wedged."""
        try:
            yield
        except RpcTimeout as exc:
            self.suspect(str(exc))
            raise
