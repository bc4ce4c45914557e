"""Run every benchmark and print one report; ``--write`` also refreshes benchmarks/README.md.

Benchmarks print figures, they assert nothing: each figure is a ratio against a baseline
measured in the same run, or an absolute figure next to its target, marked met or MISSED.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

from benchmarks import (
    bench_acp_throughput,
    bench_approvals,
    bench_features,
    bench_framing,
    bench_last_progress,
    bench_latency,
    bench_memory,
    bench_startup,
    bench_throughput,
    gate_cost,
    sandbox_cost,
)

SUITES = (
    ("1. Framing", bench_framing),
    ("2. Added latency", bench_latency),
    ("3. Throughput", bench_throughput),
    ("3b. Throughput, CLI backend (ACP)", bench_acp_throughput),
    ("4. Start-up", bench_startup),
    ("5. Memory", bench_memory),
    ("6. Last progress, TypeScript SDK client", bench_last_progress),
    ("7. Approval round trip", bench_approvals),
    ("9. Sandbox start cost", sandbox_cost),
    ("10. The gate's cost per hosted write", gate_cost),
    ("11. Attachments and a conversation's turns, CLI backend", bench_features),
)

README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    parser.add_argument("--only", help="run only suites whose title contains this text")
    args = parser.parse_args()

    started = time.perf_counter()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Run {stamp} on {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}.",
        "",
    ]
    for title, suite in SUITES:
        if args.only and args.only.lower() not in title.lower():
            continue
        print(f"running {title} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        section = [f"### {title}", "", *suite.report(suite.run())]
        section.append(f"\n({time.perf_counter() - t0:.0f} s)")
        lines += [*section, ""]
        print("\n".join(section) + "\n", flush=True)
    lines.append(f"Total {time.perf_counter() - started:.0f} s.")
    print(lines[-1])
    if args.write:
        text = README.read_text()
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        README.write_text(head + BEGIN + "\n" + "\n".join(lines) + "\n" + END + tail)


if __name__ == "__main__":
    main()
