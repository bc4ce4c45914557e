"""The supervisor's state machine: one owner of state, waiters, backoff, loss, health, close.

It knows no protocol and no binary. A backend supplies an :class:`Attempt` (one try at
starting and connecting, with no lasting state) and gets back a :class:`Handle` (the
client, a way to hear of its loss, a way to close it). The machine decides everything
else: when to try, how long to pause, who hears the outcome, when to give up.

One owner: every state change is made here, through :meth:`Supervised._to`, which checks
the transition table of :mod:`.states`. Attempts run in one *runner* task at a time. A loss
(a callback from the handle, or a failed health probe) either starts the runner or, when
it happens inside the runner's hand-over to ``ready``, is picked up by the runner itself,
so a loss can never leave ``reconnecting`` with nothing running.

Cost: nothing polls. The runner sleeps on an event during a backoff pause, and a caller
who asks meanwhile sets that event, so a user never waits on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from ..errors import LingmaClosed, LingmaConnectionLost, LingmaStartupError
from .child import ChildProcess
from .states import State, check

log = logging.getLogger(__name__)

C = TypeVar("C")
C_co = TypeVar("C_co", covariant=True)

BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 30.0
MAX_RECONNECT_ATTEMPTS = 8
PROBE_TIMEOUT = 5.0


class Handle(Protocol[C_co]):
    """What one successful attempt hands over: a connected client and how to let it go."""

    @property
    def client(self) -> C_co: ...

    def on_lost(self, callback: Callable[[BaseException], None]) -> None:
        """Call ``callback(reason)`` once when the connection or the process is lost; at
        once if that already happened."""

    async def close(self) -> None:
        """Close the connection and stop the process this handle owns (if any)."""

    def abort(self) -> None:
        """Kill at once, without waiting: for a close that is itself being cancelled."""


@dataclass
class Progress:
    """What the attempt in progress is waiting for; read by errors and ``status()``."""

    step: str = "start-up to begin"
    process: ChildProcess | None = None

    def stderr_tail(self) -> list[str] | None:
        return self.process.stderr_tail() if self.process is not None else None


class Attempt(Protocol[C]):
    """One try at starting and connecting. Keeps no state between calls.

    Args:
        progress: updated as the attempt goes (``step``, and ``process`` once spawned).
        previous: the handle whose connection was lost, when its process may still be
            usable; the attempt reuses it or closes it. ``None`` means start afresh.

    Raises whatever typed error says what failed; it must leave nothing running behind.
    """

    async def __call__(self, progress: Progress, previous: Handle[C] | None) -> Handle[C]: ...


class Supervised(Generic[C]):
    """Keeps one :class:`Handle` alive: start, wait, retry with backoff, replace, close.

    Args:
        attempt: the backend's start-up attempt.
        name: a label for log lines.
        startup_timeout: a caller's default wait, a little over one attempt's bound.
        probe: a cheap health check on the client (a control request); ``None`` disables
            :meth:`suspect`.
        give_up_on: errors after which retrying cannot help (a missing binary).
        log_hint: where the user finds more, added to timeout errors.
    """

    def __init__(
        self,
        attempt: Attempt[C],
        *,
        name: str,
        startup_timeout: float,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
        max_attempts: int = MAX_RECONNECT_ATTEMPTS,
        probe: Callable[[C], Awaitable[object]] | None = None,
        probe_timeout: float = PROBE_TIMEOUT,
        give_up_on: tuple[type[BaseException], ...] = (),
        log_hint: str | None = None,
    ) -> None:
        self._attempt = attempt
        self.name = name
        self.startup_timeout = startup_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_attempts = max(1, max_attempts)
        self._probe = probe
        self.probe_timeout = probe_timeout
        self._give_up_on = give_up_on
        self.log_hint = log_hint

        self._state = State.STOPPED
        self.generation = 0
        self.last_error: BaseException | None = None
        self.progress = Progress()
        self._handle: Handle[C] | None = None
        self._previous: Handle[C] | None = None  # lost, its process maybe reusable
        self._doomed: Handle[C] | None = None  # wedged: closed before the next attempt
        self._runner: asyncio.Task[None] | None = None
        self._probing: asyncio.Task[bool] | None = None
        self._waiters: list[asyncio.Future[C]] = []
        self._wake = asyncio.Event()
        self._close_task: asyncio.Task[None] | None = None
        self._closing: list[Handle[C]] = []  # being closed by close(): abort if cut short

    # ------------------------------------------------------------------ reading

    @property
    def state(self) -> State:
        return self._state

    @property
    def handle(self) -> Handle[C] | None:
        """The ready handle, or ``None`` when not ready."""
        return self._handle

    def running(self) -> bool:
        """Whether an attempt (or the pause before one) is under way."""
        return self._runner is not None and not self._runner.done()

    # ------------------------------------------------------------------ asking

    def start(self) -> None:
        """Begin start-up in the background and return at once (from the event loop)."""
        if self._state in (State.STOPPED, State.FAILED) and not self.running():
            self._begin(State.STARTING, attempts=1, delay=0.0)

    async def client(self, timeout: float | None = None) -> C:
        """The ready client, starting, waiting or restarting as needed.

        Raises:
            LingmaClosed: :meth:`close` was called.
            LingmaStartupError: nothing was ready within ``timeout`` (names the step).
            Whatever the attempt raised, when the attempt this call waited for failed.
        """
        if self._state is State.CLOSED:
            raise LingmaClosed("the Lingma supervisor is closed")
        if self._state is State.READY and self._handle is not None:
            return self._handle.client
        if self.running():
            self._wake.set()  # cut a backoff pause short
        elif self._state is State.RECONNECTING:  # pragma: no cover - guarded by design
            self._begin(State.RECONNECTING, attempts=self.max_attempts, delay=0.0)
        else:
            self._begin(State.STARTING, attempts=1, delay=0.0)
        waiter: asyncio.Future[C] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        wait = timeout if timeout is not None else self.startup_timeout + 1.0
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), wait)
        except asyncio.TimeoutError:
            if waiter.done():
                raise  # the attempt's own error (an RPC timeout is a TimeoutError too)
            step = self.progress.step
            raise LingmaStartupError(
                f"Lingma was not ready within {wait:g} s (state {self._state}): waited for {step}",
                waited_for=step,
                stderr_tail=self.progress.stderr_tail(),
                log_hint=self.log_hint,
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if not waiter.done():
                waiter.cancel()

    def suspect(self, reason: str) -> None:
        """Lingma may be wedged: probe its health once, and replace it if the probe fails.

        Non-blocking. A probe already running covers this call too. Without a probe, or
        when not ready, there is nothing to check.
        """
        self._probe_task(reason)

    async def check_health(self, reason: str) -> bool:
        """Probe now (or join the probe running) and wait for its verdict.

        Returns True when the client answered (or is ready and there is no probe); False
        when it did not, and is being replaced, or when nothing is ready to be asked.
        """
        task = self._probe_task(reason)
        if task is None:
            return self._state is State.READY
        return await asyncio.shield(task)

    def _probe_task(self, reason: str) -> asyncio.Task[bool] | None:
        handle = self._handle
        if self._probe is None or self._state is not State.READY or handle is None:
            return None
        if self._probing is None or self._probing.done():
            log.info("[%s] checking Lingma's health: %s", self.name, reason)
            self._probing = asyncio.get_running_loop().create_task(
                self._check(handle, reason), name=f"{self.name}-probe"
            )
        return self._probing

    async def close(self) -> None:
        """Stop everything. Idempotent; concurrent calls share one shutdown.

        Cancelled mid-way, it still kills the child at once, so a ``finally`` may call it.
        """
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close())
        try:
            await asyncio.shield(self._close_task)
        except asyncio.CancelledError:
            for handle in (self._handle, self._previous, self._doomed, *self._closing):
                if handle is not None:
                    handle.abort()
            if self.progress.process is not None:
                self.progress.process.kill_now()
            raise

    # ------------------------------------------------------------------ the one owner

    def _to(self, state: State) -> None:
        check(self._state, state)
        log.info("[%s] state %s -> %s", self.name, self._state, state)
        self._state = state

    def _begin(self, state: State, *, attempts: int, delay: float) -> None:
        if state is not self._state:
            self._to(state)  # visible at once, before the runner first runs
        self._wake = asyncio.Event()
        self._runner = asyncio.get_running_loop().create_task(
            self._run(attempts, delay), name=f"{self.name}-runner"
        )

    async def _run(self, attempts: int, delay: float) -> None:
        attempt = 0
        while True:
            attempt += 1
            doomed, self._doomed = self._doomed, None
            if doomed is not None:
                await doomed.close()
            if delay > 0:
                await self._pause(delay)
            self._wake.clear()  # this attempt answers everyone who asked so far
            previous, self._previous = self._previous, None
            self.progress = Progress()
            try:
                handle = await self._attempt(self.progress, previous)
            except Exception as exc:
                self.last_error = exc
                self._settle(exc)
                if isinstance(exc, self._give_up_on) or attempt >= attempts:
                    self._to(State.FAILED)
                    log.warning("[%s] giving up: %s", self.name, exc)
                    return
                delay = min(delay * 2, self.backoff_max) if delay > 0 else self.backoff_initial
                log.warning(
                    "[%s] attempt %d/%d failed: %s; next in %g s",
                    self.name,
                    attempt,
                    attempts,
                    exc,
                    delay,
                )
                continue
            self._ready(handle)
            if self._state is State.READY:
                return
            # Lost in the very hand-over (the connection dropped right after initialize):
            # this runner carries on as the reconnect loop; no other will be started.
            attempt, attempts, delay = 0, self.max_attempts, self.backoff_initial

    def _ready(self, handle: Handle[C]) -> None:
        self._handle = handle
        self.generation += 1
        self.last_error = None
        self.progress = Progress(step="nothing: ready", process=self.progress.process)
        self._to(State.READY)
        self._settle(handle.client)
        # Registered last: if the loss already happened, _lost runs now, inside the runner.
        handle.on_lost(lambda reason: self._lost(handle, reason, kill=False))

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if a caller asks meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    def _settle(self, outcome: C | BaseException) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if isinstance(outcome, BaseException):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)

    def _lost(self, handle: Handle[C], reason: BaseException, *, kill: bool) -> None:
        """The ready handle went away: reconnect (reusing its process unless ``kill``)."""
        if handle is not self._handle or self._state is not State.READY:
            return
        self._handle = None
        error = reason if isinstance(reason, LingmaConnectionLost) else None
        self.last_error = error or LingmaConnectionLost(f"Lingma stopped: {reason}")
        log.warning("[%s] %s; reconnecting", self.name, self.last_error)
        if kill:
            self._doomed = handle
        else:
            self._previous = handle
        self._to(State.RECONNECTING)
        if not self.running():
            self._begin(State.RECONNECTING, attempts=self.max_attempts, delay=self.backoff_initial)
        # else: we are inside the runner's hand-over, and it carries on (see _run).

    async def _check(self, handle: Handle[C], reason: str) -> bool:
        assert self._probe is not None
        try:
            await asyncio.wait_for(self._probe(handle.client), self.probe_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            what = "no answer" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            self._lost(
                handle,
                LingmaConnectionLost(
                    f"Lingma stopped answering ({reason}; health check: {what}); restarting it"
                ),
                kill=True,
            )
            return False
        log.info("[%s] Lingma answered its health check", self.name)
        return True

    async def _close(self) -> None:
        if self._state is not State.CLOSED:
            self._to(State.CLOSED)
        tasks = [t for t in (self._runner, self._probing) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._settle(LingmaClosed("the Lingma supervisor is closed"))
        handles = [h for h in (self._handle, self._previous, self._doomed) if h is not None]
        self._handle = self._previous = self._doomed = None
        self._closing = handles
        for handle in handles:
            try:
                await handle.close()
            except BaseException:
                handle.abort()
                raise
        log.info("[%s] closed", self.name)
