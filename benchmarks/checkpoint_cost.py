"""Checkpoint cost: what a snapshot, a call's end and a revert cost, against plain git.

Workspaces of 1,000 and 20,000 small files (100 per folder) and of one 50 MB file. For
each: the first snapshot (``Checkpoints.begin`` on a new work dir: the store is created
and every file hashed), a warm one after one file changed (``CallCheckpoint.mark``), and
the call's end (``finish``: a last snapshot, the changes with their line counts, and the
bounds, which pack the store when the first snapshot left many loose objects), and what a
later pack and prune of the store costs (``git gc --prune=now``, every 10 dropped calls). The
baselines, measured in the same run on the same files: ``git add -A`` into a fresh
repository (first) and ``git status`` on it afterwards (warm). Then a revert of a call
that changed 2,000 and 20,000 files, to show its cost grows linearly.

Run alone: ``.venv/bin/python -m benchmarks.checkpoint_cost``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lingma_mcp.workspace.checkpoints import Checkpoints
from lingma_mcp.workspace.shadow_git import ShadowGit

ROUNDS = 5
WARM_GOAL_MS = 150.0
FIRST_GOAL_S = 5.0


def make_tree(root: Path, files: int) -> None:
    for n in range(files):
        folder = root / f"d{n // 100:03}"
        if n % 100 == 0:
            folder.mkdir(parents=True)
        (folder / f"f{n % 100:02}.txt").write_text(f"file {n}\n" * 4)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def plain_git(root: Path, git_dir: Path, *args: str) -> None:
    env = {**os.environ, "GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(root)}
    subprocess.run(["git", *args], env=env, cwd=root, check=True, capture_output=True)


def measure(root: Path, tmp: Path, label: str, **bounds: int) -> dict:
    """First, warm and end-of-call cost in ``root``, and plain git's on the same files."""
    work = tmp / f"work-{label}"
    checkpoints = Checkpoints(work, **bounds)
    calls = iter(range(1_000_000))
    first_call: list = []
    first = timed(lambda: first_call.append(checkpoints.begin(f"{label}-{next(calls)}", root)))
    call = first_call[0]
    target = next(p for p in sorted(root.rglob("*")) if p.is_file())
    warm: list[float] = []
    for n in range(ROUNDS):
        with open(target, "ab") as f:
            f.write(f"change {n}\n".encode())
        warm.append(timed(lambda: call.mark("Edit")))
    end_first = timed(call.finish)  # packs the loose objects the first snapshot left
    ends: list[float] = []
    begins: list[float] = []
    for _ in range(ROUNDS):
        holder: list = []
        name = f"{label}-{next(calls)}"
        begins.append(timed(lambda h=holder, n=name: h.append(checkpoints.begin(n, root))))
        with open(target, "ab") as f:
            f.write(b"more\n")
        ends.append(timed(holder[0].finish))
    # What upkeep pays every 10 dropped calls: pack and prune the whole store.
    store = next((work / "checkpoints").glob("*/git"))
    repo = ShadowGit("git", store, root, work / "checkpoints" / "home")
    gc = timed(repo.gc)
    git_dir = tmp / f"plain-{label}"
    plain_git(root, git_dir, "init", "-q")
    plain_first = timed(lambda: plain_git(root, git_dir, "add", "-A"))
    plain_warm = statistics.median(
        timed(lambda: plain_git(root, git_dir, "status", "--porcelain")) for _ in range(ROUNDS)
    )
    return {
        "first_s": first,
        "warm_ms": statistics.median(warm) * 1000,
        "begin_ms": statistics.median(begins) * 1000,
        "end_first_s": end_first,
        "end_ms": statistics.median(ends) * 1000,
        "plain_first_s": plain_first,
        "plain_warm_ms": plain_warm * 1000,
        "gc_s": gc,
    }


def measure_revert(tmp: Path, files: int) -> float:
    """Seconds to revert a call that modified ``files`` files."""
    root = tmp / f"revert-{files}"
    make_tree(root, files)
    checkpoints = Checkpoints(tmp / f"work-revert-{files}")
    call = checkpoints.begin("r", root)
    for path in root.rglob("*.txt"):
        with open(path, "a") as f:
            f.write("changed\n")
    call.finish()
    return timed(lambda: checkpoints.revert("r", root))


def run() -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for files in (1_000, 20_000):
            root = tmp / f"ws-{files}"
            make_tree(root, files)
            results[f"{files:,} small files"] = measure(root, tmp, f"s{files}")
        big = tmp / "ws-big"
        big.mkdir()
        (big / "big.bin").write_bytes(os.urandom(50 * 2**20))
        results["one 50 MB file, over the bound"] = measure(big, tmp, "big")
        results["one 50 MB file, bound raised to 64 MB"] = measure(
            big, tmp, "bigkept", max_file_bytes=64 * 2**20
        )
        results["revert"] = {n: measure_revert(tmp, n) for n in (2_000, 20_000)}
    return results


def report(r: dict) -> list[str]:
    revert = r.pop("revert")
    lines = [
        "| workspace | first | git add -A | warm (1 file changed) | git status "
        "| warm ÷ status | begin + end of a call |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in r.items():
        lines.append(
            f"| {name} | {m['first_s']:.2f} s | {m['plain_first_s']:.2f} s "
            f"| {m['warm_ms']:.0f} ms | {m['plain_warm_ms']:.0f} ms "
            f"| {m['warm_ms'] / m['plain_warm_ms']:.1f}× "
            f"| {m['begin_ms']:.0f} + {m['end_ms']:.0f} ms |"
        )
    small = r["20,000 small files"]
    per_file = {n: s / n * 1e6 for n, s in revert.items()}
    lines += [
        "",
        f"- end of the first call at 20,000 files, packing its loose objects: "
        f"{small['end_first_s']:.2f} s (once per store); a later pack and prune of that "
        f"store, as upkeep runs it every 10 dropped calls: {small['gc_s']:.2f} s",
        f"- revert of a call that changed 2,000 / 20,000 files: {revert[2_000]:.2f} s / "
        f"{revert[20_000]:.2f} s ({per_file[2_000]:.0f} / {per_file[20_000]:.0f} µs a file; "
        f"per-file cost 20,000 ÷ 2,000: {per_file[20_000] / per_file[2_000]:.2f}, where "
        "quadratic would be 10)",
        f"- warm checkpoint at 20,000 files: {small['warm_ms']:.0f} ms (goal < "
        f"{WARM_GOAL_MS:.0f} ms) {'met' if small['warm_ms'] < WARM_GOAL_MS else 'MISSED'}",
        f"- first checkpoint at 20,000 files: {small['first_s']:.2f} s (goal < "
        f"{FIRST_GOAL_S:.0f} s) {'met' if small['first_s'] < FIRST_GOAL_S else 'MISSED'}",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
