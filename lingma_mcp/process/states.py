"""The states of a supervised child and the transitions allowed between them.

Every change of state goes through :func:`check`, which raises on a transition the table
does not list: an illegal transition is a bug in the supervisor, and failing loudly at the
point it happens beats a state that silently stops matching what is running (as when a
loss during start-up left ``reconnecting`` with nothing scheduled).

::

    stopped ──start──▶ starting ──ok──▶ ready ──lost──▶ reconnecting ──ok──▶ ready
                          │                                  │
                          └──failed──▶ failed ◀──given up────┘
    failed ──start──▶ starting          reconnecting ──pause cut short──▶ reconnecting
    any ──close──▶ closed
"""

from __future__ import annotations

import enum


class State(str, enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    CLOSED = "closed"

    def __str__(self) -> str:
        return self.value


TRANSITIONS: dict[State, frozenset[State]] = {
    State.STOPPED: frozenset({State.STARTING, State.CLOSED}),
    State.STARTING: frozenset({State.READY, State.FAILED, State.CLOSED}),
    State.READY: frozenset({State.RECONNECTING, State.CLOSED}),
    State.RECONNECTING: frozenset({State.READY, State.FAILED, State.CLOSED}),
    State.FAILED: frozenset({State.STARTING, State.CLOSED}),
    State.CLOSED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A supervisor tried a transition the table forbids: a bug, not a runtime condition."""


def check(old: State, new: State) -> None:
    """Raise :class:`IllegalTransition` unless ``old -> new`` is in :data:`TRANSITIONS`."""
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"illegal supervisor transition {old} -> {new}")
