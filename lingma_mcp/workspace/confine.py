"""The one confinement decision: is every target of an action inside the workspace?

Every path that may act on files asks this function, whatever shape the action arrived in:
the hosted tools (``fs/*``, ``tool/invoke``), Lingma's own tools awaiting approval (a
PENDING ``tool/call/sync``), the CLI's permission requests, and revert. It fails closed:

- a target that resolves outside the workspace (``..``, an absolute path, ``~``, a symbolic
  link leading out), or that cannot be resolved at all (NUL, empty, over-long, an unknown
  ``~user``) is *outside*: the action is refused before anyone is asked;
- an action that names no target is *unknown*: it is never allowed by policy alone;
- a target inside a folder that must not change behind the person's back (any ``.git``
  folder, the lingma-mcp work dir) is *protected*: it is always asked, with a warning.

Pure apart from reading the file system's links (``os.path.realpath``); no event loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .paths import is_inside, relative_to_root, resolve_path
from .workspace_errors import WorkspaceError

GIT_FOLDER = ".git"
WORK_DIR = "the lingma-mcp work dir"


@dataclass(frozen=True, slots=True)
class Target:
    """One path an action names, as the decision sees it."""

    raw: str
    shown: str  # relative to the workspace when inside; as given otherwise
    inside: bool
    reason: str = ""  # why it is outside (or unresolvable); empty when inside
    protected: str | None = None  # ".git" or WORK_DIR when inside such a folder
    path: Path | None = None  # resolved, when inside


@dataclass(frozen=True, slots=True)
class Confinement:
    """The decision for all of an action's targets."""

    targets: tuple[Target, ...]

    @property
    def outside(self) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if not t.inside)

    @property
    def protected(self) -> tuple[Target, ...]:
        return tuple(t for t in self.targets if t.inside and t.protected)

    @property
    def unknown(self) -> bool:
        """No target at all: the request did not say what it would touch."""
        return not self.targets

    @property
    def allowed(self) -> bool:
        """Every target is inside (protected ones included: those are asked, not refused)."""
        return bool(self.targets) and not self.outside

    @property
    def shown(self) -> str:
        """The targets as one line for a question or a record."""
        return ", ".join(t.shown for t in self.targets)


def _protected_by(path: Path, root: Path, guarded: Sequence[Path]) -> str | None:
    rel = relative_to_root(path, root)
    if GIT_FOLDER in Path(rel).parts:
        return GIT_FOLDER
    for folder in guarded:
        if is_inside(path, folder):
            return WORK_DIR
    return None


def confine_one(raw: str, root: Path, guarded: Sequence[Path] = ()) -> Target:
    """The decision for one path (see :func:`confine`)."""
    text = raw if isinstance(raw, str) else repr(raw)
    try:
        path = resolve_path(text, root)
    except WorkspaceError as exc:  # OutsideWorkspace included: refused either way
        return Target(text, text, inside=False, reason=str(exc))
    return Target(
        text,
        relative_to_root(path, root),
        inside=True,
        protected=_protected_by(path, root, guarded),
        path=path,
    )


def confine(raws: Iterable[str], root: Path, *, guarded: Sequence[Path] = ()) -> Confinement:
    """Decide every target of one action against the workspace ``root`` (resolved).

    Args:
        raws: the paths the action names, as given (relative ones are taken from ``root``).
            Duplicates are decided once.
        root: the call's workspace, already resolved.
        guarded: folders inside the workspace that are protected beyond ``.git`` (the
            lingma-mcp work dir, should it lie there), resolved.
    """
    guarded = [Path(os.path.realpath(g)) for g in guarded]
    seen: dict[str, Target] = {}
    for raw in raws:
        key = raw if isinstance(raw, str) else repr(raw)
        if key not in seen:
            seen[key] = confine_one(key, root, guarded)
    return Confinement(tuple(seen.values()))
