"""The sandbox's added start cost per command.

The same short command (``true``) is run through the workspace host's command runner
(``Terminals``: start, then wait for its end) with the sandbox off and with this machine's
sandbox, interleaved so drift hits all alike; the median of each and the difference are
the figures. A third row narrows the sandbox to Landlock and the subreaper (no
namespaces), to show what the namespaces cost. Target: under 20 ms added per command.

Wall time on a shared machine moves with the load (Python's own start, most of the cost,
takes 6 ms on a quiet core and 20 ms on a busy one), so the CPU time the command's
processes used (their rusage, launcher and init included) is shown beside it: that figure
does not grow with other people's work.

Run alone: ``.venv/bin/python -m benchmarks.sandbox_cost``.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lingma_mcp.workspace.sandbox import SandboxSupport, command_spec, support
from lingma_mcp.workspace.terminals import Terminals

ROUNDS = 100
TARGET_MS = 20.0


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


async def _once(
    terminals: Terminals, cwd: Path, argv: list[str] | None = None
) -> tuple[float, float]:
    """Wall and CPU seconds of one command, start to end."""
    cpu, start = _cpu(), time.perf_counter()
    tid = await terminals.start(argv or ["true"], cwd=cwd)
    out = await terminals.wait(tid)  # reaped by now, so its rusage is counted
    elapsed = time.perf_counter() - start
    assert out.exit_code == 0, out.output  # a failed start would make a cheap figure
    terminals.release(tid)
    return elapsed, _cpu() - cpu


async def _measure(found: SandboxSupport) -> dict[str, list[tuple[float, float]]]:
    with tempfile.TemporaryDirectory() as folder:
        ws = Path(folder)
        (ws / ".git").mkdir()
        runners = {
            "off": Terminals(sandbox=command_spec(ws, mode="off")),
            "sandbox": Terminals(
                sandbox=command_spec(ws, mode="workspace-write"), sandbox_support=found
            ),
            "landlock": Terminals(
                sandbox=command_spec(ws, mode="workspace-write"),
                sandbox_support=SandboxSupport("landlock", landlock_abi=found.landlock_abi),
            ),
        }
        # The launcher's floor: the interpreter starting and doing nothing, unconfined.
        python = [sys.executable, "-I", "-S", "-c", "pass"]
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in (*runners, "python")}
        for runner in runners.values():  # warm up: the probe, the launcher's .pyc
            await _once(runner, ws)
        for _ in range(ROUNDS):
            for name, runner in runners.items():
                times[name].append(await _once(runner, ws))
            times["python"].append(await _once(runners["off"], ws, python))
        for runner in runners.values():
            await runner.close()
    return times


def run() -> dict:
    found = support()
    if found.mechanism != "landlock":
        return {"skipped": f"no Linux sandbox here: {found.reason or found.mechanism}"}
    times = asyncio.run(_measure(found))
    figures: dict = {"found": found}
    for name, samples in times.items():
        figures[f"{name}_ms"] = statistics.median(wall for wall, _ in samples) * 1000
        figures[f"{name}_cpu_ms"] = statistics.median(cpu for _, cpu in samples) * 1000
    return figures


def report(r: dict) -> list[str]:
    if "skipped" in r:
        return [f"skipped: {r['skipped']}"]
    found: SandboxSupport = r["found"]
    layers = [f"Landlock ABI {found.landlock_abi}"]
    layers += [
        name
        for name, on in (
            ("user", found.user_namespaces),
            ("mount", found.mount_namespaces),
            ("PID", found.pid_namespaces),
            ("network", found.network_namespaces),
        )
        if on
    ]
    added = r["sandbox_ms"] - r["off_ms"]
    added_cpu = r["sandbox_cpu_ms"] - r["off_cpu_ms"]
    ratio = r["sandbox_ms"] / r["off_ms"]

    def row(title: str, name: str) -> str:
        wall, cpu = r[f"{name}_ms"], r[f"{name}_cpu_ms"]
        if name == "off":
            return f"| {title} | {wall:.1f} | | {cpu:.1f} | |"
        return (
            f"| {title} | {wall:.1f} | {wall - r['off_ms']:.1f} | {cpu:.1f} "
            f"| {cpu - r['off_cpu_ms']:.1f} |"
        )

    return [
        f"`true` through `Terminals` (start → end), median of {ROUNDS}, interleaved.",
        "",
        "| sandbox | wall ms | added | CPU ms | added |",
        "|---|---:|---:|---:|---:|",
        row("off (baseline)", "off"),
        row(f"workspace-write: {layers[0]} + {', '.join(layers[1:])} namespaces", "sandbox"),
        row("workspace-write: Landlock and a subreaper alone", "landlock"),
        row("for scale: `python -I -S -c pass`, unconfined (the launcher's floor)", "python"),
        "",
        f"- added per command: {added:.1f} ms wall, {ratio:.1f}× the unconfined start "
        f"(target < {TARGET_MS:g} ms) {'met' if added < TARGET_MS else 'MISSED'}; "
        f"{added_cpu:.1f} ms of CPU {'met' if added_cpu < TARGET_MS else 'MISSED'}",
    ]


if __name__ == "__main__":
    print("\n".join(report(run())))
