"""The generic supervisor machine with a fake attempt: no Lingma, no process, no socket.

This is how a second kind of child plugs in (see ``lingma_mcp.process``): an attempt that
returns a handle. Every behaviour here is the machine's own: states, waiters, backoff,
loss, health probe, close.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from lingma_mcp.errors import LingmaClosed, LingmaConnectionLost, LingmaNotFound
from lingma_mcp.process import IllegalTransition, Progress, State, Supervised
from lingma_mcp.process.states import TRANSITIONS, check

pytestmark = pytest.mark.timeout(30)

# Pauses no test may sit through: a test that passes did not wait them out.
FOREVER = 3600.0


class FakeHandle:
    def __init__(self, number: int, *, lost_already: bool = False) -> None:
        self.client = f"client-{number}"
        self.number = number
        self.closed = False
        self.aborted = False
        self._callbacks: list[Callable[[BaseException], None]] = []
        self._lost: BaseException | None = (
            LingmaConnectionLost("Lingma stopped: gone at once") if lost_already else None
        )

    def on_lost(self, callback: Callable[[BaseException], None]) -> None:
        if self._lost is not None:
            callback(self._lost)
        else:
            self._callbacks.append(callback)

    def lose(self) -> None:
        self._lost = LingmaConnectionLost("Lingma stopped: dropped")
        for callback in self._callbacks:
            callback(self._lost)

    async def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class FakeAttempt:
    """Plays each call from a script: a handle, an error, or "block" (never returns)."""

    def __init__(self, *script: object) -> None:
        self.script = list(script)
        self.calls: list[FakeHandle | None] = []  # the ``previous`` each call was given
        self.made: list[FakeHandle] = []
        self.entered = asyncio.Event()
        self.cancelled = False

    async def __call__(self, progress: Progress, previous: FakeHandle | None) -> FakeHandle:
        self.calls.append(previous)
        progress.step = f"call {len(self.calls)}"
        self.entered.set()
        step = self.script.pop(0) if self.script else "ok"
        if step == "block":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        if isinstance(step, BaseException):
            raise step
        handle = FakeHandle(len(self.made) + 1, lost_already=step == "lost")
        self.made.append(handle)
        return handle


def machine(attempt: FakeAttempt, **kwargs: object) -> Supervised[str]:
    kwargs.setdefault("backoff_initial", 0.001)
    kwargs.setdefault("backoff_max", 0.002)
    return Supervised(attempt, name="fake", startup_timeout=5.0, **kwargs)  # type: ignore[arg-type]


def test_every_transition_outside_the_table_raises() -> None:
    for old in State:
        for new in State:
            if new in TRANSITIONS[old]:
                check(old, new)
            else:
                with pytest.raises(IllegalTransition):
                    check(old, new)
    with pytest.raises(IllegalTransition):
        check(State.READY, State.STARTING)


async def test_a_fake_attempt_plugs_in_and_callers_share_its_outcome() -> None:
    attempt = FakeAttempt()
    sup = machine(attempt)
    assert sup.state is State.STOPPED
    sup.start()
    assert sup.state is State.STARTING
    clients = await asyncio.gather(sup.client(), sup.client())
    assert clients == ["client-1", "client-1"]
    assert sup.state is State.READY and sup.generation == 1 and attempt.calls == [None]
    assert await sup.client() == "client-1"  # ready: no second attempt
    await sup.close()
    assert attempt.made[0].closed and sup.state is State.CLOSED


async def test_a_failed_attempt_reaches_every_waiter_and_the_next_call_retries() -> None:
    attempt = FakeAttempt(RuntimeError("no luck"), "ok")
    sup = machine(attempt)
    with pytest.raises(RuntimeError, match="no luck"):
        await sup.client()
    assert sup.state is State.FAILED and isinstance(sup.last_error, RuntimeError)
    assert await sup.client() == "client-1"
    await sup.close()


async def test_a_loss_reconnects_by_itself_offering_the_lost_handle_for_reuse() -> None:
    attempt = FakeAttempt()
    sup = machine(attempt)
    await sup.client()
    first = attempt.made[0]
    first.lose()
    assert sup.state is State.RECONNECTING and sup.running()
    assert await sup.client() == "client-2"
    assert attempt.calls == [None, first] and sup.generation == 2
    await sup.close()


async def test_a_loss_inside_the_hand_over_is_carried_on_by_the_same_runner() -> None:
    attempt = FakeAttempt("lost", "ok")
    sup = machine(attempt)
    first = await sup.client()  # the waiters hear of the ready client first
    assert first == "client-1"
    assert sup.state is State.RECONNECTING and sup.running()
    assert await sup.client() == "client-2"
    assert sup.state is State.READY and sup.generation == 2
    await sup.close()


async def test_a_caller_cuts_a_backoff_pause_short() -> None:
    attempt = FakeAttempt()
    sup = machine(attempt, backoff_initial=FOREVER, backoff_max=FOREVER)
    await sup.client()
    attempt.made[0].lose()
    assert await sup.client() == "client-2"  # the test's 30 s bound is far below FOREVER
    await sup.close()


async def test_reconnects_are_bounded_then_the_state_is_failed() -> None:
    errors = [RuntimeError(f"down {i}") for i in range(3)]
    attempt = FakeAttempt("ok", *errors)
    sup = machine(attempt, max_attempts=3)
    await sup.client()
    attempt.made[0].lose()
    for error in errors:
        with pytest.raises(RuntimeError) as caught:
            await sup.client()
        assert caught.value is error
    assert sup.state is State.FAILED


async def test_an_error_that_retrying_cannot_fix_gives_up_at_once() -> None:
    attempt = FakeAttempt("ok", LingmaNotFound(["nowhere"]))
    sup = machine(attempt, max_attempts=5, give_up_on=(LingmaNotFound,))
    await sup.client()
    attempt.made[0].lose()
    with pytest.raises(LingmaNotFound):
        await sup.client()
    assert sup.state is State.FAILED and len(attempt.calls) == 2


async def test_a_failed_probe_closes_the_wedged_handle_and_starts_afresh() -> None:
    answers = asyncio.Event()

    async def probe(client: str) -> None:
        if client == "client-1":
            await asyncio.Event().wait()  # wedged: never answers
        answers.set()

    attempt = FakeAttempt()
    sup = machine(attempt, probe=probe, probe_timeout=0.01)
    await sup.client()
    wedged = attempt.made[0]
    sup.suspect("a control call timed out")  # returns at once
    assert await sup.check_health("again") is False
    assert sup.state is State.RECONNECTING
    assert "a control call timed out" in str(sup.last_error)
    assert "health check: no answer" in str(sup.last_error)
    assert await sup.client() == "client-2"
    assert wedged.closed and attempt.calls == [None, None]  # not offered for reuse
    assert await sup.check_health("after the restart") is True and answers.is_set()
    await sup.close()


async def test_close_cancels_the_attempt_and_answers_every_waiter() -> None:
    attempt = FakeAttempt("block")
    sup = machine(attempt)
    waiter = asyncio.ensure_future(sup.client())
    await attempt.entered.wait()
    await asyncio.gather(sup.close(), sup.close())  # concurrent closes share one
    with pytest.raises(LingmaClosed):
        await waiter
    assert attempt.cancelled and sup.state is State.CLOSED
    with pytest.raises(LingmaClosed):
        await sup.client()
    await sup.close()  # idempotent


async def test_a_caller_with_a_short_wait_hears_the_step_in_progress() -> None:
    from lingma_mcp.errors import LingmaStartupError

    attempt = FakeAttempt("block")
    sup = machine(attempt, log_hint="see the logs")
    with pytest.raises(LingmaStartupError) as caught:
        await sup.client(timeout=0.01)
    assert "call 1" in str(caught.value) and caught.value.log_hint == "see the logs"
    assert sup.state is State.STARTING  # the attempt goes on
    await sup.close()


async def test_a_close_cancelled_mid_way_still_kills_at_once() -> None:
    class SlowToClose(FakeHandle):
        async def close(self) -> None:
            await asyncio.Event().wait()  # a child slow to stop

    class Attempt(FakeAttempt):
        async def __call__(self, progress: Progress, previous: FakeHandle | None) -> FakeHandle:
            handle = SlowToClose(1)
            self.made.append(handle)
            return handle

    attempt = Attempt()
    sup = machine(attempt)
    await sup.client()
    closing = asyncio.ensure_future(sup.close())
    await asyncio.sleep(0)  # let the shutdown reach the handle's close
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert attempt.made[0].aborted and sup.state is State.CLOSED
