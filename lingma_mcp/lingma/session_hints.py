"""Which upstream session each new conversation's hint became.

A new conversation is asked with a session id of ours (the hint); Lingma may file it under
another id, which only its ``chat/finish`` names (PROTOCOL.md section 5). A finished chat
reports that id, but a chat stopped before its end (a timeout) can only report the hint,
and Lingma's finish for it arrives after the call is over. This book remembers hint ->
upstream from every finish, the late ones included, so a later question naming the hint
is asked in the conversation Lingma really has; and such a question waits (bounded) for a
finish still on its way. Both tables are bounded, oldest dropped first: a finish that
never comes costs the next question naming that hint one bounded wait, nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

log = logging.getLogger(__name__)

MAX_TRACKED = 256
MAX_ALIASES = 256


class SessionHints:
    """Hints of new conversations awaiting Lingma's finish, and the upstream ids learned."""

    def __init__(self, *, max_tracked: int = MAX_TRACKED, max_aliases: int = MAX_ALIASES) -> None:
        self._max_tracked = max_tracked
        self._max_aliases = max_aliases
        # request id -> (hint, resolved with the upstream id, or None if none will come)
        self._waiting: OrderedDict[str, tuple[str, asyncio.Future[str | None]]] = OrderedDict()
        self._upstream: OrderedDict[str, str] = OrderedDict()  # hint -> upstream id

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._waiting

    def track(self, request_id: str, hint: str) -> None:
        """A new conversation was asked as ``hint`` in chat ``request_id``."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = (hint, future)
        while len(self._waiting) > self._max_tracked:
            self._settle(*self._waiting.popitem(last=False)[1], None)

    def confirm(self, request_id: str, upstream: str | None) -> None:
        """Lingma finished chat ``request_id`` in session ``upstream``."""
        entry = self._waiting.pop(request_id, None)
        if entry is None:
            return
        hint, future = entry
        if upstream and upstream != hint:
            self._upstream[hint] = upstream
            self._upstream.move_to_end(hint)
            while len(self._upstream) > self._max_aliases:
                self._upstream.popitem(last=False)
        self._settle(hint, future, upstream)

    def drop(self, request_id: str) -> None:
        """No finish will come for chat ``request_id`` (refused, failed, never sent)."""
        entry = self._waiting.pop(request_id, None)
        if entry is not None:
            self._settle(*entry, None)

    def drop_all(self) -> None:
        """The connection is gone: no finish will come for any of them."""
        while self._waiting:
            self._settle(*self._waiting.popitem(last=False)[1], None)

    async def upstream(self, session_id: str, *, wait: float) -> str:
        """The session to ask in for a question naming ``session_id``.

        If ``session_id`` is the hint of a chat whose finish is still to come, wait for it
        at most ``wait`` seconds. Returns the upstream id learned for it, else the id as
        given.
        """
        pending = [future for hint, future in self._waiting.values() if hint == session_id]
        if pending:
            _, late = await asyncio.wait(pending, timeout=wait)
            if late:
                log.info("Lingma did not finish the chats of session %s in time", session_id)
                for request_id in [r for r, (h, _) in self._waiting.items() if h == session_id]:
                    self.drop(request_id)
        return self._upstream.get(session_id, session_id)

    @staticmethod
    def _settle(hint: str, future: asyncio.Future[str | None], upstream: str | None) -> None:
        if not future.done():
            future.set_result(upstream)
