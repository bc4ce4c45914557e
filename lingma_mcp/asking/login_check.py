"""The login check before a question, and the cache that spares it.

A question to a logged-out Lingma would fail late and in Lingma's words; checking first
gives the error that says how to log in. A login that was fine this recently, on the same
connection, is not checked again: that would add a round trip to every question.
"""

from __future__ import annotations

import time

from ..backend import BackendClient
from .health_watch import HealthWatch

# A login that was fine this recently is not re-checked before each question.
AUTH_RECHECK_S = 60.0


class LoginCheck:
    """The last good login check, per connection.

    The cache remembers the client it came from by identity (a strong reference): an id()
    could be reused by a new client after a reconnect and match a stale check.
    """

    def __init__(self, watch: HealthWatch) -> None:
        self._watch = watch
        self._ok_at: float | None = None
        self._client: BackendClient | None = None

    async def ensure(self, client: BackendClient, *, force: bool = False) -> None:
        """Return if ``client``'s Lingma is logged in (checked now, or lately).

        Raises:
            LingmaNotLoggedIn: it is not; the error says how to log in.
            LingmaError: the check itself failed.
        """
        fresh = (
            self._ok_at is not None
            and self._client is client
            and time.monotonic() - self._ok_at < AUTH_RECHECK_S
        )
        if fresh and not force:
            return
        with self._watch.control():
            login = await client.login_state()
        if not login.logged_in:
            self._ok_at = None
            raise login.not_logged_in()
        self._ok_at = time.monotonic()
        self._client = client
