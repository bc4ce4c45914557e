"""The progress relay: text first at once, coalesced later, keepalives, nothing after close.

Time is a :class:`ManualTimer`: the tests move it forward and assert what went out by then,
so the windows are checked exactly and nothing waits on the wall clock.
"""

from __future__ import annotations

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from lingma_mcp.events import Finish, Step, TextDelta, Thinking, ToolCall, ToolUpdate
from lingma_mcp.server.progress import (
    STATUS_PREFIX,
    EventNarrator,
    ProgressRelay,
    Timer,
    status_line,
)

pytestmark = pytest.mark.timeout(30)


class ManualTimer(Timer):
    """Time that passes only when the test says so."""

    def __init__(self) -> None:
        self.t = 0.0
        self._alarms: list[tuple[float, anyio.Event]] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        alarm = anyio.Event()
        self._alarms.append((self.t + seconds, alarm))
        await alarm.wait()

    async def wait(self, event: anyio.Event, timeout: float) -> None:  # noqa: ASYNC109 - the Timer port
        if timeout <= 0:
            return
        alarm = anyio.Event()
        entry = (self.t + timeout, alarm)
        self._alarms.append(entry)
        async with anyio.create_task_group() as tg:

            async def until(done: anyio.Event) -> None:
                await done.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(until, event)
            tg.start_soon(until, alarm)
        if entry in self._alarms:
            self._alarms.remove(entry)

    async def advance(self, seconds: float) -> None:
        """Let everything run, move time, wake what is due, let everything run again."""
        await wait_all_tasks_blocked()
        target = self.t + seconds
        while True:
            due = [a for a in self._alarms if a[0] <= target]
            if not due:
                break
            when, alarm = min(due, key=lambda a: a[0])
            self._alarms.remove((when, alarm))
            self.t = max(self.t, when)
            alarm.set()
            await wait_all_tasks_blocked()
        self.t = target
        await wait_all_tasks_blocked()


class Recorder:
    """A fake host: records (time, progress, message); a gate makes it slow."""

    def __init__(self, timer: ManualTimer, gate: anyio.Event | None = None) -> None:
        self.timer = timer
        self.sent: list[tuple[float, float, str]] = []
        self.gate = gate
        self.in_flight = 0

    async def __call__(self, progress: float, message: str) -> None:
        self.in_flight += 1
        if self.gate is not None:
            await self.gate.wait()
        self.in_flight -= 1
        self.sent.append((self.timer.now(), progress, message))

    @property
    def messages(self) -> list[str]:
        return [m for _, _, m in self.sent]

    @property
    def texts(self) -> list[str]:
        return [m for _, _, m in self.sent if not m.startswith(STATUS_PREFIX)]

    @property
    def statuses(self) -> list[str]:
        return [m for _, _, m in self.sent if m.startswith(STATUS_PREFIX)]


def relay_for(host: Recorder, **options: float) -> ProgressRelay:
    return ProgressRelay(host, timer=host.timer, **options)


async def test_first_text_goes_out_at_once() -> None:
    host = Recorder(ManualTimer())
    async with relay_for(host, coalesce_s=0.5) as relay:
        relay.text("Hel")
        await wait_all_tasks_blocked()
        assert host.sent == [(0.0, 1.0, "Hel")]  # no time had to pass


async def test_later_deltas_are_coalesced_but_never_held_past_the_window() -> None:
    timer = ManualTimer()
    host = Recorder(timer)
    async with relay_for(host, coalesce_s=0.05) as relay:
        relay.text("a")
        await timer.advance(0.01)
        relay.text("b")
        relay.text("c")
        await timer.advance(0.03)  # t=0.04: still inside the window
        assert host.texts == ["a"]
        await timer.advance(0.01)  # t=0.05: the window is over
        assert host.texts == ["a", "bc"]
        assert host.sent[-1][0] == pytest.approx(0.05)


async def test_progress_strictly_increases_across_text_status_and_keepalive() -> None:
    timer = ManualTimer()
    host = Recorder(timer)
    async with relay_for(host, coalesce_s=0.01, keepalive_s=1) as relay:
        relay.status("thinking")
        relay.text("a")
        await timer.advance(0.02)
        relay.text("b")
        await timer.advance(2.5)  # two keepalives
        relay.status("read_file: RUNNING")
        await timer.advance(0.02)
    values = [p for _, p, _ in host.sent]
    assert values == [float(i) for i in range(1, len(values) + 1)]
    assert len([m for m in host.statuses if "still working" in m]) == 2


async def test_keepalive_goes_out_while_lingma_is_silent() -> None:
    timer = ManualTimer()
    host = Recorder(timer)
    async with relay_for(host, keepalive_s=10):
        await timer.advance(9.9)
        assert host.sent == []
        for _ in range(3):
            await timer.advance(10)
    assert host.statuses == [
        "[lingma] still working (10 s)",
        "[lingma] still working (20 s)",
        "[lingma] still working (30 s)",
    ]


async def test_nothing_is_sent_after_close_even_with_text_pending() -> None:
    timer = ManualTimer()
    host = Recorder(timer)
    async with relay_for(host, coalesce_s=0.2, keepalive_s=0.05) as relay:
        relay.text("first")
        await wait_all_tasks_blocked()
        relay.text("held in the window")
    count = len(host.sent)
    relay.text("after close")
    relay.status("after close")
    await timer.advance(1)
    assert len(host.sent) == count
    assert host.texts == ["first"]


async def test_close_interrupts_a_send_stuck_on_a_slow_host() -> None:
    host = Recorder(ManualTimer(), gate=anyio.Event())  # never opens
    async with relay_for(host) as relay:
        relay.text("x")
        await wait_all_tasks_blocked()
        assert host.in_flight == 1  # the send is in flight, blocked
    # leaving the block did not wait for the host (the test's timeout is the bound)
    assert host.sent == []


async def test_a_slow_host_gets_few_large_notifications_not_a_queue() -> None:
    timer = ManualTimer()
    gate = anyio.Event()
    host = Recorder(timer, gate=gate)
    async with relay_for(host, coalesce_s=0.01) as relay:
        relay.text("0")
        await wait_all_tasks_blocked()  # the first send is stuck on the host
        for i in range(1, 2000):
            relay.text(str(i % 10))
        await timer.advance(1)
        gate.set()
        await timer.advance(1)
        await relay.flush()
    assert "".join(host.texts) == "".join(str(i % 10) for i in range(2000))
    assert len(host.sent) == 2


async def test_flush_sends_the_tail_before_the_result() -> None:
    host = Recorder(ManualTimer())
    async with relay_for(host, coalesce_s=5) as relay:
        relay.text("a")
        await wait_all_tasks_blocked()
        relay.text("b")  # would wait 5 s for the window
        await relay.flush()
        assert host.texts == ["a", "b"]


async def test_a_failing_host_stops_the_relay_quietly() -> None:
    calls = 0
    timer = ManualTimer()

    async def broken(progress: float, message: str) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("host went away")

    async with ProgressRelay(broken, coalesce_s=0.01, timer=timer) as relay:
        relay.text("a")
        await timer.advance(0.05)
        relay.text("b")
        await timer.advance(0.05)
    assert calls == 1


async def test_status_and_text_go_out_in_the_order_they_came() -> None:
    host = Recorder(ManualTimer())
    async with relay_for(host, coalesce_s=5) as relay:
        relay.status("thinking")
        relay.text("Hello ")
        relay.status("read_file: RUNNING")
        relay.text("world")
        await relay.flush()
    assert host.messages == [
        "[lingma] thinking",
        "Hello ",
        "[lingma] read_file: RUNNING",
        "world",
    ]


async def test_the_answer_ends_with_its_text_and_no_closing_status() -> None:
    # The simulator (like Lingma) sends its closing step before the last text arrives at
    # the host's side; a closing status is never sent (typescript-sdk#2580).
    host = Recorder(ManualTimer())
    async with relay_for(host, coalesce_s=5) as relay:
        narrate = EventNarrator(relay)
        narrate(Step("step_start", "Understanding the question", "doing"))
        narrate(TextDelta("first "))
        narrate(TextDelta("last"))
        narrate(Step("step_end", "Answer complete", "done"))
        narrate(Finish("success", 200, "s1"))
        await relay.flush()
    assert host.messages[-1] == "first last"
    assert not any("Answer complete" in m for m in host.messages)


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
    host = Recorder(ManualTimer())
    async with relay_for(host, coalesce_s=0.01) as relay:
        EventNarrator(relay)(event)  # type: ignore[arg-type]
        await relay.flush()
    assert host.statuses == expected


async def test_thinking_is_announced_once_and_answer_text_passes_through() -> None:
    host = Recorder(ManualTimer())
    async with relay_for(host, coalesce_s=0.01) as relay:
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


async def test_an_overwrite_drops_the_unsent_draft_and_sends_only_its_replacement() -> None:
    host = Recorder(ManualTimer())
    async with relay_for(host, coalesce_s=5) as relay:
        narrate = EventNarrator(relay)
        narrate(TextDelta("sent "))
        await wait_all_tasks_blocked()  # the first text goes at once
        narrate(TextDelta("a draft still waiting"))
        narrate(TextDelta("The answer", overwrite=True))
        await relay.flush()
    assert host.texts == ["sent ", "The answer"]
    assert host.statuses == ["[lingma] answer restarted; the text below replaces what came before"]


async def test_an_overwrite_before_any_text_went_out_says_nothing_of_a_restart() -> None:
    host = Recorder(ManualTimer())
    async with relay_for(host, coalesce_s=5) as relay:
        relay.status("thinking")
        relay.text("a draft")
        EventNarrator(relay)(TextDelta("The answer", overwrite=True))
        await relay.flush()
    assert host.messages == ["[lingma] thinking", "The answer"]


async def test_lines_about_approvals_and_changes_are_never_dropped_behind_a_slow_host() -> None:
    timer = ManualTimer()
    gate = anyio.Event()
    host = Recorder(timer, gate=gate)
    async with relay_for(host, coalesce_s=0.01) as relay:
        relay.text("working")
        await wait_all_tasks_blocked()  # the first send is stuck on the host
        for action in range(5):
            relay.note(f"allowed write f{action}.txt")
            relay.note(f"created f{action}.txt (+1 -0)")
            for update in range(30):  # a chatty tool between the actions
                relay.status(f"write_file: RUNNING {action}.{update}")
        gate.set()
        await relay.flush()
    notes = [m for m in host.statuses if "f" in m and ".txt" in m]
    assert notes == [
        f"[lingma] {line}"
        for action in range(5)
        for line in (f"allowed write f{action}.txt", f"created f{action}.txt (+1 -0)")
    ]
    # The chatty ones are still bounded, oldest dropped first.
    chatty = [m for m in host.statuses if "RUNNING" in m]
    assert len(chatty) == 20 and chatty[-1].endswith("RUNNING 4.29")


async def test_a_repeated_note_is_sent_each_time() -> None:
    host = Recorder(ManualTimer())
    async with relay_for(host, coalesce_s=5) as relay:
        relay.note("running ls")
        relay.note("running ls")
        await relay.flush()
    assert host.statuses == ["[lingma] running ls", "[lingma] running ls"]
