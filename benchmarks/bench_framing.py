"""Framing: the project's decoder against a naive re-slicing decoder and json.loads alone.

The naive decoder is the "before" of PROTOCOL.md section 8: after each frame it re-slices
the whole remaining buffer, so a buffer holding n frames costs O(n^2) bytes copied.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable

from lingma_mcp.lingma.framing import FrameDecoder, encode_frame

SIZES = (1_000, 10_000, 50_000)
# Past this the naive decoder's quadratic copying takes minutes; it is run once with a
# time cap and reported as a lower bound if it does not finish.
NAIVE_TIME_CAP_S = 20.0


def make_bodies(n: int) -> list[dict]:
    """Messages of ~120 bytes like chat/answer deltas; every third one non-ASCII."""
    bodies = []
    for i in range(n):
        text = "增量文本" if i % 3 == 0 else "delta text"
        bodies.append(
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "chat/answer",
                "params": {"requestId": "r-1", "text": text, "overwrite": False},
            }
        )
    return bodies


def naive_decode(buf: bytes, deadline: float) -> int | None:
    """Re-slice the buffer after every frame (the approach to avoid). None if over time."""
    count = 0
    while True:
        header_end = buf.find(b"\r\n\r\n")
        if header_end < 0:
            return count
        length = None
        for line in buf[:header_end].split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        start = header_end + 4
        json.loads(buf[start : start + length].decode("utf-8"))
        buf = buf[start + length :]
        count += 1
        if count % 1000 == 0 and time.perf_counter() > deadline:
            return None


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """Best wall time of ``repeats`` runs, with the cyclic GC paused as timeit does.

    Decoding 50k frames allocates 50k dicts; with the GC on, its scans of that growing heap
    dominate and grow with n for every decoder alike, hiding the decoders' own cost.
    """
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best


def run() -> list[dict]:
    rows = []
    for n in SIZES:
        bodies = make_bodies(n)
        frames = [encode_frame(b) for b in bodies]
        buffer = b"".join(frames)
        raw_bodies = [f.split(b"\r\n\r\n", 1)[1] for f in frames]
        repeats = {1_000: 60, 10_000: 12}.get(n, 5)

        ours = best_of(repeats, lambda buffer=buffer: FrameDecoder().feed(buffer))
        floor = best_of(repeats, lambda raw=raw_bodies: [json.loads(b) for b in raw])

        outcome: list[int | None] = []
        naive = best_of(
            3 if n <= 10_000 else 1,
            lambda buffer=buffer, outcome=outcome: outcome.append(
                naive_decode(buffer, time.perf_counter() + NAIVE_TIME_CAP_S)
            ),
        )
        finished = outcome[-1]
        rows.append(
            {
                "frames": n,
                "bytes": len(buffer),
                "ours_us": ours / n * 1e6,
                "json_us": floor / n * 1e6,
                "naive_us": naive / n * 1e6,
                "naive_complete": finished is not None,
            }
        )
    return rows


def report(rows: list[dict]) -> list[str]:
    lines = [
        "| frames | ours µs/frame | naive µs/frame | naive ÷ ours "
        "| json.loads µs/body | ours ÷ json |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        bound = "" if r["naive_complete"] else "> "
        lines.append(
            f"| {r['frames']:,} | {r['ours_us']:.2f} | {bound}{r['naive_us']:.2f} | "
            f"{bound}{r['naive_us'] / r['ours_us']:.1f}× | {r['json_us']:.2f} | "
            f"{r['ours_us'] / r['json_us']:.2f}× |"
        )
    flat = rows[-1]["ours_us"] / rows[0]["ours_us"]
    by_n = {r["frames"]: r for r in rows}
    speedup = by_n[10_000]["naive_us"] / by_n[10_000]["ours_us"]
    floor = max(r["ours_us"] / r["json_us"] for r in rows)
    lines.append("")
    lines.append(
        f"- per-frame cost 50k ÷ 1k: {flat:.2f} (target within 1.30) "
        f"{'met' if 0.7 <= flat <= 1.3 else 'MISSED'}"
    )
    lines.append(
        f"- at 10k frames, naive ÷ ours: {speedup:.1f}× (target ≥ 10×) "
        f"{'met' if speedup >= 10 else 'MISSED'}"
    )
    lines.append(
        f"- worst ours ÷ json.loads: {floor:.2f}× (target ≤ 2×) {'met' if floor <= 2 else 'MISSED'}"
    )
    return lines


if __name__ == "__main__":
    print("\n".join(report(run())))
