"""Keeping checkpoints within their bounds: the last calls, and so many bytes, per work dir.

After each call ends, the oldest calls past ``max_calls`` are dropped (their record and
their refs), never a running call's nor the one that just ended. Dropping frees nothing
by itself: the objects stay until git deletes what no ref reaches. That costs a walk of
everything kept, so it is done now and then: after :data:`GC_AFTER_DROPS` drops in a
store, past :data:`GC_LOOSE_OBJECTS` loose objects (the first snapshot of a large
workspace leaves one per file; packing them takes most of a second per 10,000), or when
the work dir is over ``max_bytes``; then more of the oldest calls go, one at a time, each
followed by ``git gc --prune=now``, until it is under.

A store's size is measured (``git count-objects``) when it is tended and remembered in
its ``upkeep.json``, so that the bound over all stores costs one measurement per call.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .checkpoint_records import FileLock, write_private
from .checkpoint_store import HOME, REFS, all_records, call_refs
from .shadow_git import ShadowGit

log = logging.getLogger("lingma_mcp.workspace.checkpoint_upkeep")

GC_AFTER_DROPS = 10
GC_LOOSE_OBJECTS = 5_000


class Upkeep:
    """The bounds of one work dir's checkpoints.

    Args:
        directory: ``<work_dir>/checkpoints``.
        git: the git program.
        max_calls, max_bytes: the bounds.
    """

    def __init__(self, directory: Path, git: str, *, max_calls: int, max_bytes: int) -> None:
        self.directory = directory
        self.git = git
        self.max_calls = max_calls
        self.max_bytes = max_bytes

    def after_call(self, store: Path, record: Path) -> None:
        """Apply the bounds once the call whose record is ``record`` (in ``store``) ended."""
        records = all_records(self.directory)
        droppable = [
            p for p in records if p != record and FileLock(p.with_suffix(".lock")).is_free()
        ]
        tended: dict[str, int] = {}
        for path in droppable[: max(0, len(records) - self.max_calls)]:
            self._drop(path)
            droppable.remove(path)
            tended.setdefault(path.parent.parent.name, -1)
        folders = {f.name: f for f in self._stores()}
        tended[store.name] = -1
        for name in tended:
            if name in folders:
                tended[name] = self._tend(folders[name])
        total = sum(tended.get(n, self._known_size(f)) for n, f in folders.items())
        while total > self.max_bytes and droppable:
            path = droppable.pop(0)
            folder = path.parent.parent
            self._drop(path)
            old = tended.get(folder.name, self._known_size(folder))
            tended[folder.name] = self._tend(folder, force_gc=True)
            total -= old - tended[folder.name]
            log.info("dropped an old call's checkpoints: over %d bytes were kept", self.max_bytes)

    def _stores(self) -> list[Path]:
        return [p for p in self.directory.iterdir() if (p / "records").is_dir()]

    def _repo(self, folder: Path) -> ShadowGit | None:
        """A store's repository, for upkeep only: no work tree is needed (the store's own
        folder stands in), so no record is trusted to name one."""
        if not (folder / "git" / "HEAD").exists():
            return None
        return ShadowGit(self.git, folder / "git", folder, self.directory / HOME)

    def _drop(self, path: Path) -> None:
        """Forget one finished call: its refs and its record."""
        folder = path.parent.parent
        state = self._state(folder)
        state["drops"] = state.get("drops", 0) + 1
        self._save_state(folder, state)
        repo = self._repo(folder)
        if repo is not None:
            with FileLock(folder / "repo.lock"):
                repo.set_refs(dict.fromkeys(call_refs(path.stem)))
        path.unlink(missing_ok=True)
        path.with_suffix(".lock").unlink(missing_ok=True)

    def _tend(self, folder: Path, *, force_gc: bool = False) -> int:
        """Pack and prune the store if it is due; its size in bytes, remembered."""
        repo = self._repo(folder)
        if repo is None:
            return 0
        state = self._state(folder)
        with FileLock(folder / "repo.lock"):
            loose, size = repo.object_stats()
            due = state.get("drops", 0) >= GC_AFTER_DROPS or loose > GC_LOOSE_OBJECTS
            if force_gc or due:
                # Refs whose record is gone (a crash between the two) would keep objects
                # forever: they go too.
                kept = {f"{REFS}/{p.stem}" for p in (folder / "records").glob("*.json")}
                orphans = [r for r in repo.refs(REFS) if r.rsplit("/", 1)[0] not in kept]
                repo.set_refs(dict.fromkeys(orphans))
                repo.gc()
                _, size = repo.object_stats()
                state["drops"] = 0
        state["size"] = size
        self._save_state(folder, state)
        return size

    def _state(self, folder: Path) -> dict[str, int]:
        """``upkeep.json``, read as untrusted: only non-negative counts are taken."""
        try:
            payload = json.loads((folder / "upkeep.json").read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(payload, dict):
            return {}
        return {
            k: v
            for k, v in payload.items()
            if isinstance(v, int) and not isinstance(v, bool) and v >= 0
        }

    def _save_state(self, folder: Path, state: dict[str, int]) -> None:
        write_private(folder / "upkeep.json", json.dumps(state).encode())

    def _known_size(self, folder: Path) -> int:
        return self._state(folder).get("size", 0)
