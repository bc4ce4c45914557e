"""Supervised child processes, whatever protocol they speak.

- :mod:`.child`: spawn a child in its own process group, drain and redact its stderr,
  keep the tail, optionally keep stdin/stdout for a protocol, and reap the whole group
  (SIGTERM, grace, SIGKILL).
- :mod:`.states`: the states and the table of allowed transitions.
- :mod:`.machine`: :class:`Supervised`, the one owner of state: waiters, backoff, loss,
  health probe, close. It runs an :class:`Attempt` the backend supplies.
- :mod:`.instance`: a private, locked folder per server under a shared work dir.

How a second kind of child plugs in (the official CLI speaking ACP over stdio, say):

1. Write its attempt: an ``async def __call__(progress, previous) -> Handle``. Spawn with
   ``ChildProcess.spawn(argv, pipes=True)``, set ``progress.process`` and
   ``progress.step`` as it goes, race each step against ``process.exited``, speak the
   protocol's handshake over ``process.stdout`` / ``process.write``, and on any failure
   terminate what it spawned before raising. ``previous`` is a lost handle whose process
   may be reused; a stdio child dies with its pipes, so such an attempt just closes it.
2. Return a handle: ``client`` (the protocol client), ``on_lost(callback)`` (call it once
   when the pipes close or the process exits), ``close()`` (close the client, then
   ``process.terminate()``) and ``abort()`` (``process.kill_now()``).
3. Wrap it: ``Supervised(attempt, name=..., startup_timeout=..., probe=...)``. The
   states, backoff, waiters, health probe and reaping come with it; nothing is copied.
"""

from __future__ import annotations

from .child import ChildProcess
from .machine import Attempt, Handle, Progress, Supervised
from .states import IllegalTransition, State

__all__ = [
    "Attempt",
    "ChildProcess",
    "Handle",
    "IllegalTransition",
    "Progress",
    "State",
    "Supervised",
]
