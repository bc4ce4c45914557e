"""The progress relay: text first at once, coalesced later, keepalives, nothing after close."""

from __future__ import annotations

import time

import anyio
import pytest

from lingma_mcp.events import Finish, Step, TextDelta, Thinking, ToolCall, ToolUpdate
from lingma_mcp.server.progress import STATUS_PREFIX, EventNarrator, ProgressRelay, status_line

# Scheduling noise a loaded CI machine may add on top of the windows under test.
SLACK = 0.1


class Recorder:
    """A fake host: records (time, progress, message); optionally slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.sent: list[tuple[float, float, str]] = []
        self.delay = delay
        self.first = anyio.Event()

    async def __call__(self, progress: float, message: str) -> None:
        if self.delay:
            await anyio.sleep(self.delay)
        self.sent.append((time.monotonic(), progress, message))
        self.first.set()

    @property
    def texts(self) -> list[str]:
        return [m for _, _, m in self.sent if not m.startswith(STATUS_PREFIX)]

    @property
    def statuses(self) -> list[str]:
        return [m for _, _, m in self.sent if m.startswith(STATUS_PREFIX)]


async def test_first_text_goes_out_at_once() -> None:
    host = Recorder()
    async with ProgressRelay(host, coalesce_s=0.5) as relay:
        fed = time.monotonic()
        relay.text("Hel")
        with anyio.fail_after(1):
            await host.first.wait()
    assert host.texts == ["Hel"]
    assert host.sent[0][0] - fed < SLACK  # far less than the 0.5 s window


async def test_later_deltas_are_coalesced_but_never_held_past_the_window() -> None:
    host = Recorder()
    fed_at: list[tuple[float, int]] = []  # (time, total chars fed so far)
    total = 0
    async with ProgressRelay(host, coalesce_s=0.05) as relay:
        for i in range(60):
            piece = f"{i:02d}|"
            relay.text(piece)
            total += len(piece)
            fed_at.append((time.monotonic(), total))
            await anyio.sleep(0.005)
        await anyio.sleep(0.15)
    joined = "".join(host.texts)
    assert joined == "".join(f"{i:02d}|" for i in range(60))
    assert len(host.texts) < 30, "deltas were not coalesced"
    # Every piece of text reached the host within the window (plus scheduling slack).
    for fed, chars in fed_at:
        delivered = next(t for t, sent_chars, _ in _cumulative(host.sent) if sent_chars >= chars)
        assert delivered - fed < 0.05 + SLACK


def _cumulative(sent: list[tuple[float, float, str]]) -> list[tuple[float, int, str]]:
    out, chars = [], 0
    for t, _, m in sent:
        if not m.startswith(STATUS_PREFIX):
            chars += len(m)
        out.append((t, chars, m))
    return out


async def test_progress_strictly_increases_across_text_status_and_keepalive() -> None:
    host = Recorder()
    async with ProgressRelay(host, coalesce_s=0.01, keepalive_s=0.05) as relay:
        relay.status("thinking")
        relay.text("a")
        await anyio.sleep(0.02)
        relay.text("b")
        await anyio.sleep(0.15)  # long enough for keepalives
        relay.status("read_file: RUNNING")
        await anyio.sleep(0.03)
    values = [p for _, p, _ in host.sent]
    assert values == sorted(set(values)), values
    assert values[0] == 1.0


async def test_keepalive_goes_out_while_lingma_is_silent() -> None:
    host = Recorder()
    async with ProgressRelay(host, keepalive_s=0.05):
        await anyio.sleep(0.28)
    keepalives = [m for m in host.statuses if "still working" in m]
    assert len(keepalives) >= 3
    gaps = [b[0] - a[0] for a, b in zip(host.sent, host.sent[1:], strict=False)]
    assert max(gaps) < 0.05 + SLACK


async def test_nothing_is_sent_after_close_even_with_text_pending() -> None:
    host = Recorder()
    async with ProgressRelay(host, coalesce_s=0.2, keepalive_s=0.05) as relay:
        relay.text("first")
        with anyio.fail_after(1):
            await host.first.wait()
        relay.text("held in the window")
    count = len(host.sent)
    relay.text("after close")
    relay.status("after close")
    await anyio.sleep(0.2)
    assert len(host.sent) == count
    assert host.texts == ["first"]


async def test_close_interrupts_a_send_stuck_on_a_slow_host() -> None:
    host = Recorder(delay=10)
    started = time.monotonic()
    async with ProgressRelay(host) as relay:
        relay.text("x")
        await anyio.sleep(0.05)  # the send is now in flight, blocked
    assert time.monotonic() - started < 1
    assert host.sent == []


async def test_a_slow_host_gets_few_large_notifications_not_a_queue() -> None:
    host = Recorder(delay=0.1)
    async with ProgressRelay(host, coalesce_s=0.01) as relay:
        for i in range(2000):
            relay.text(str(i % 10))
            if i % 100 == 0:
                await anyio.sleep(0.01)
        await relay.flush()
    assert "".join(host.texts) == "".join(str(i % 10) for i in range(2000))
    assert len(host.sent) <= 6


async def test_flush_sends_the_tail_before_the_result() -> None:
    host = Recorder()
    async with ProgressRelay(host, coalesce_s=5) as relay:
        relay.text("a")
        with anyio.fail_after(1):
            await host.first.wait()
        relay.text("b")  # would wait 5 s for the window
        with anyio.fail_after(1):
            await relay.flush()
    assert host.texts == ["a", "b"]


async def test_a_failing_host_stops_the_relay_quietly() -> None:
    calls = 0

    async def broken(progress: float, message: str) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("host went away")

    async with ProgressRelay(broken, coalesce_s=0.01) as relay:
        relay.text("a")
        await anyio.sleep(0.05)
        relay.text("b")
        await anyio.sleep(0.05)
    assert calls == 1


def test_status_lines_are_prefixed_single_line_and_short() -> None:
    line = status_line("tool\nread_file:   RUNNING " + "x" * 500)
    assert line.startswith(STATUS_PREFIX)
    assert "\n" not in line
    assert len(line) <= len(STATUS_PREFIX) + 200


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (Thinking("hmm", "start"), ["[lingma] thinking…"]),
        (Step("step_start", "Understanding", "doing"), ["[lingma] Understanding: doing"]),
        (
            ToolUpdate(ToolCall(id="t1", name="read_file", status="RUNNING")),
            ["[lingma] read_file: RUNNING"],
        ),
        (Finish("success", 200, "s1"), []),
    ],
)
async def test_events_become_short_status_lines(event: object, expected: list[str]) -> None:
    host = Recorder()
    async with ProgressRelay(host, coalesce_s=0.01) as relay:
        EventNarrator(relay)(event)  # type: ignore[arg-type]
        await relay.flush()
    assert host.statuses == expected


async def test_thinking_is_announced_once_and_answer_text_passes_through() -> None:
    host = Recorder()
    async with ProgressRelay(host, coalesce_s=0.01) as relay:
        narrate = EventNarrator(relay)
        for event in [
            Thinking("a", "start"),
            Thinking("b"),
            Thinking("c"),
            Thinking("", "done"),
            TextDelta("Hello "),
            TextDelta("world"),
        ]:
            narrate(event)
        await relay.flush()
    assert host.statuses == ["[lingma] thinking…", "[lingma] done thinking"]
    assert "".join(host.texts) == "Hello world"
