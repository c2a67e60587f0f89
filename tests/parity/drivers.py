"""The parity suite's machinery: scripted dependencies, and every driver of every policy.

A behaviour test is written once against a ``Driver`` (the ``drive`` fixture of its
module, parametrized over every driver the policy has): it builds the policy on
``drive.clock``, scripts the dependency with ``drive.script(...)``, and calls through
``drive.call(policy, script, *args)``, which returns the value or raises the error
exactly as the driver delivers it. Three kinds of driver:

- ``SyncDriver``: a ``FakeClock``; calls in the test's thread, background calls in
  threads (``start``), each with a copy of the test's context (so a
  ``stormproof.deadline`` the test set is in force, as for a task).
- ``AsyncDriver``: a ``FakeClock`` (async sleeps are virtual time) and an event loop of
  the driver's own, run by the test's thread: ``call`` runs the loop until the call is
  done; background calls (``start``) are tasks on the same loop.
- ``SimDriver``: a ``Simulation`` and the simulator's drivers (``stormproof.sim._drivers``)
  on its clock; calls are processes (or, for Retry, a chain of calls), and the
  simulation runs event by event until the call is done, so its time stands where the
  call ended, as a FakeClock's does.

Scripted dependencies (``Script``) play one step per call: a value, an error, seconds
taken on the clock, a gate to wait at, an interruption (``drive.interrupted``: a
cancelled task in async code, a ``BaseException`` elsewhere), or hanging forever. Every
call records the time it started, its arguments and ``stormproof.remaining()``.

Concurrency is bounded and deterministic: background calls run until they wait at a
gate (or end) before ``start`` returns, and opening a gate lets them run on until they
wait or end. Background calls must not take time on the clock after a gate (a thread's
sync sleep would move the shared clock while the test runs).
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import sys
import threading
from collections.abc import Callable, Coroutine, Generator, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import stormproof
from stormproof import Backoff, Failover
from stormproof.sim import Signal, Simulation
from stormproof.sim._drivers import (
    RetryCall,
    cached,
    failing_over,
    falling_back,
    guarded,
    hedging,
    retrying,
    throttling,
)
from stormproof.sim._world import PENDING
from stormproof.testing import FakeClock

REAL_LIMIT = 10.0
"""Seconds of real time a background thread may take to reach a wait or end: only a
broken driver (a deadlock) ever comes near it."""


class Interrupted(BaseException):
    """The interruption of sync calls and simulated processes (async calls are cancelled)."""


# -- scripted dependencies -------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """What one call of a scripted dependency does: wait at ``gate`` (if any), take
    ``seconds`` on the clock, then return ``value``, raise ``error``, be interrupted, or
    hang (until cancelled: async calls only, and simulated processes)."""

    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0
    gate: Gate | None = None
    interrupt: bool = False
    hang: bool = False

    @property
    def immediate(self) -> bool:
        return self.gate is None and not self.seconds and not self.hang


def ok(value: Any = None, *, after: float = 0.0, gate: Gate | None = None) -> Step:
    return Step(value=value, seconds=after, gate=gate)


def fail(error: BaseException, *, after: float = 0.0, gate: Gate | None = None) -> Step:
    return Step(error=error, seconds=after, gate=gate)


def interrupt(*, after: float = 0.0, gate: Gate | None = None) -> Step:
    return Step(interrupt=True, seconds=after, gate=gate)


def hang() -> Step:
    return Step(hang=True)


@dataclass
class Call:
    """One call a dependency received."""

    at: float
    args: tuple[Any, ...]
    remaining: float | None
    cancelled: bool = False  # an async call cancelled while it ran (a lost hedge, a timeout)


class Script:
    """A dependency that plays ``steps``, one per call (the last one again once they are
    used up), in the form each driver calls: ``sync``, ``aio``, ``sim`` (a process) or
    ``now`` (the simulator's chain-of-calls form)."""

    def __init__(self, driver: Driver, steps: tuple[Step, ...]) -> None:
        assert steps, "a script needs at least one step"
        self.driver = driver
        self.steps = steps
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    @property
    def times(self) -> list[float]:
        """When each call started."""
        return [call.at for call in self.calls]

    def __len__(self) -> int:
        return len(self.calls)

    def _enter(self, args: tuple[Any, ...]) -> tuple[Call, Step]:
        with self._lock:
            step = self.steps[min(len(self.calls), len(self.steps) - 1)]
            call = Call(self.driver.clock.now(), args, stormproof.remaining())
            self.calls.append(call)
        return call, step

    def sync(self, *args: Any) -> Any:
        _, step = self._enter(args)
        if step.hang:
            raise AssertionError("a sync call cannot hang: hold it at a gate")
        if step.gate is not None:
            step.gate.wait_sync()
        if step.seconds:
            self.driver.clock.sleep(step.seconds)
        return _settle_step(step)

    async def aio(self, *args: Any) -> Any:
        call, step = self._enter(args)
        try:
            if step.gate is not None:
                await step.gate.wait_async()
            if step.seconds:
                await self.driver.clock.asleep(step.seconds)
            if step.hang:
                await asyncio.Event().wait()
            if step.interrupt:
                task = asyncio.current_task()
                assert task is not None
                task.cancel()
                await asyncio.sleep(0)  # the cancellation lands here
        except asyncio.CancelledError:
            call.cancelled = True
            raise
        return _settle_step(step)

    def sim(self, *args: Any) -> Generator[Any, Any, Any]:
        call, step = self._enter(args)
        return self._play(step, call)

    def _play(self, step: Step, call: Call | None = None) -> Generator[Any, Any, Any]:
        try:
            if step.gate is not None:
                yield step.gate.signal()
            if step.seconds:
                yield step.seconds
            if step.hang:
                yield Signal(self.driver.sim)  # nothing ever fires it
        except BaseException:  # interrupted while it ran (a lost hedge): as async's cancel
            if call is not None:
                call.cancelled = True
            raise
        if step.interrupt:
            raise Interrupted
        if step.error is not None:
            return step.error  # failures are values in the simulator
        return step.value

    def now(self, deadline: float | None, receiver: Any, *args: Any) -> Any:
        """The chain-of-calls form (``Route.attempt_now``'s): the outcome at once, or
        ``PENDING`` and ``receiver.answer(outcome)`` later."""
        _, step = self._enter(args)
        if step.immediate:
            if step.interrupt:
                raise Interrupted
            return step.error if step.error is not None else step.value

        def later() -> Generator[Any, Any, None]:
            outcome = yield from self._play(step)
            receiver.answer(outcome)

        self.driver.sim.start(later())
        return PENDING


def _settle_step(step: Step) -> Any:
    if step.interrupt:
        raise Interrupted
    if step.error is not None:
        raise step.error
    return step.value


class Nested:
    """A dependency that calls ``policy`` around ``inner`` through the same driver (a
    Retry inside a Retry)."""

    def __init__(self, driver: Driver, policy: Any, inner: Any) -> None:
        self.driver = driver
        self.policy = policy
        self.inner = inner

    def sync(self, *args: Any) -> Any:
        return self.driver.invoke_sync(self.policy, self.inner, args)

    async def aio(self, *args: Any) -> Any:
        return await self.driver.invoke_async(self.policy, self.inner, args)

    def sim(self, *args: Any) -> Generator[Any, Any, Any]:
        return self.driver.process(self.policy, self.inner, args)

    def now(self, deadline: float | None, receiver: Any, *args: Any) -> Any:
        # The chain form nests by handing the attempt's receiver (the outer call) to
        # the inner call as where it ends; it may end at once, answering the receiver.
        inner = self.inner

        def attempt(deadline: float | None, answer: Any) -> Any:
            return inner.now(deadline, answer, *args)

        RetryCall(self.driver.sim, self.policy, attempt, deadline, receiver)
        return PENDING


class _Box:
    """Where a simulated call's outcome lands (an ``Outcomes`` for the chain form)."""

    def __init__(self) -> None:
        self.done = False
        self.outcome: Any = None
        self.raised: BaseException | None = None

    def finish(self, arrived: float, outcome: Any) -> None:
        self.done = True
        self.outcome = outcome

    def deliver(self) -> Any:
        if self.raised is not None:
            raise self.raised
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


# -- gates --------------------------------------------------------------------------------------


class Gate:
    """A point where scripted calls wait until the test opens it (or interrupts them).
    Once opened (or interrupted), it stays so for later calls too."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self._interrupt = False
        self._event = threading.Event()  # sync
        self._aevent = asyncio.Event()  # async
        self._waiters: list[asyncio.Task[Any]] = []
        self._signal: Signal | None = None  # sim

    def open(self) -> None:
        """Let the calls waiting here go on, until they wait again or end."""
        self._release()

    def interrupt(self) -> None:
        """Interrupt the calls waiting here (cancel them, in async code)."""
        self._interrupt = True
        self._release()

    def _release(self) -> None:
        kind = self.driver.kind
        if kind == "sync":
            self._event.set()
        elif kind == "async":
            if self._interrupt:
                for task in self._waiters:
                    task.cancel()
            self._aevent.set()
        elif self._interrupt:
            self.signal().fail(Interrupted())
        else:
            self.signal().succeed(None)
        self.driver.settle()

    def wait_sync(self) -> None:
        if not self._event.wait(REAL_LIMIT):
            raise AssertionError("a gate was never opened")
        if self._interrupt:
            raise Interrupted

    async def wait_async(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._interrupt:
            task.cancel()
            await asyncio.sleep(0)  # the cancellation lands here
        self._waiters.append(task)
        await self._aevent.wait()

    def signal(self) -> Signal:
        if self._signal is None:
            self._signal = Signal(self.driver.sim)
        return self._signal


# -- drivers ---------------------------------------------------------------------------------


class Pending:
    """A background call: ``result()`` waits for it and returns its value or raises."""

    def __init__(self, result: Callable[[], Any]) -> None:
        self._result = result

    def result(self) -> Any:
        return self._result()


class Driver:
    """One way of calling a policy. ``kind``: "sync", "async" or "sim"; ``form``: which
    of that kind's entry points (decorator, call, block, ...)."""

    kind: str
    clock: Any
    interrupted: type[BaseException] = Interrupted

    def __init__(self, form: str) -> None:
        self.form = form

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.form}"

    def __repr__(self) -> str:
        return self.name

    def script(self, *steps: Step) -> Script:
        return Script(self, steps)

    def gate(self) -> Gate:
        return Gate(self)

    def nest(self, policy: Any, inner: Any) -> Nested:
        return Nested(self, policy, inner)

    def now(self) -> float:
        return float(self.clock.now())

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def settle(self) -> None:
        """Let background calls run until each waits or ends."""

    def failover(self, regions: dict[str, Any], **options: Any) -> Failover:
        """A Failover over ``regions`` (scripts) in this driver's form."""
        raise NotImplementedError

    def call(self, policy: Any, dependency: Any = None, *args: Any) -> Any:
        """Call ``dependency(*args)`` through ``policy`` (for a Failover, built with
        ``failover()``, the regions' scripts: ``dependency`` is None); returns the value
        or raises the error, as the driver delivers them."""
        raise NotImplementedError

    def start(self, policy: Any, dependency: Any = None, *args: Any) -> Pending:
        """``call`` in the background (a thread, a task, a process): returns once the
        call waits (at a gate) or ended."""
        raise NotImplementedError

    # What Nested calls, by kind: the policy around a dependency, in this driver's form.

    def invoke_sync(self, policy: Any, dependency: Any, args: tuple[Any, ...]) -> Any:
        raise NotImplementedError

    async def invoke_async(self, policy: Any, dependency: Any, args: tuple[Any, ...]) -> Any:
        raise NotImplementedError

    def process(
        self, policy: Any, dependency: Any, args: tuple[Any, ...]
    ) -> Generator[Any, Any, Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Teardown: nothing may be left running."""


class SyncDriver(Driver):
    kind = "sync"

    def __init__(self, form: str) -> None:
        super().__init__(form)
        self.clock = FakeClock()
        self._threads: list[threading.Thread] = []

    def failover(self, regions: dict[str, Any], **options: Any) -> Failover:
        return Failover({name: s.sync for name, s in regions.items()}, clock=self.clock, **options)

    def invoke_sync(self, policy: Any, dependency: Any, args: tuple[Any, ...]) -> Any:
        form = self.form
        if isinstance(policy, Failover):
            return policy(*args)
        if form == "decorator":
            return policy(dependency.sync)(*args)
        if form == "call":
            return policy.call(dependency.sync, *args)
        if form == "block":
            for attempt in policy:
                with attempt:
                    result = dependency.sync(*args)
            return result
        raise AssertionError(form)

    def call(self, policy: Any, dependency: Any = None, *args: Any) -> Any:
        return self.invoke_sync(policy, dependency, args)

    def start(self, policy: Any, dependency: Any = None, *args: Any) -> Pending:
        box = _Box()

        def run() -> None:
            try:
                box.outcome = self.invoke_sync(policy, dependency, args)
            except BaseException as error:  # delivered to the test by result()
                box.raised = error

        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(run,), daemon=True)
        self._threads.append(thread)
        thread.start()
        self.settle()

        def result() -> Any:
            thread.join(REAL_LIMIT)
            assert not thread.is_alive(), "a background call never ended"
            return box.deliver()

        return Pending(result)

    def settle(self) -> None:
        waited = threading.Event()
        for _ in range(int(REAL_LIMIT / 0.0005)):
            if all(not t.is_alive() or _waiting(t) for t in self._threads):
                return
            waited.wait(0.0005)  # polling the threads' state; no test outcome depends on it
        raise AssertionError("background calls never reached a wait")

    def close(self) -> None:
        for thread in self._threads:
            thread.join(REAL_LIMIT)


_WAITS = {threading.Condition.wait.__code__, threading.Event.wait.__code__}


def _waiting(thread: threading.Thread) -> bool:
    """Whether ``thread`` is blocked in a wait on a threading primitive."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code in _WAITS:
            return True
        frame = frame.f_back
    return False


class AsyncDriver(Driver):
    kind = "async"
    interrupted = asyncio.CancelledError

    def __init__(self, form: str) -> None:
        super().__init__(form)
        self.clock = FakeClock()
        self.loop = asyncio.new_event_loop()

    def failover(self, regions: dict[str, Any], **options: Any) -> Failover:
        return Failover({name: s.aio for name, s in regions.items()}, clock=self.clock, **options)

    async def invoke_async(self, policy: Any, dependency: Any, args: tuple[Any, ...]) -> Any:
        form = self.form
        if isinstance(policy, Failover):
            return await policy.acall(*args)
        if form == "decorator":
            return await policy(dependency.aio)(*args)
        if form == "acall":
            return await policy.acall(dependency.aio, *args)
        if form == "block":
            async for attempt in policy:
                async with attempt:
                    result = await dependency.aio(*args)
            return result
        raise AssertionError(form)

    async def _outcome(self, policy: Any, dependency: Any, args: tuple[Any, ...]) -> _Box:
        box = _Box()
        try:
            box.outcome = await self.invoke_async(policy, dependency, args)
        except BaseException as error:  # delivered to the test by deliver()
            box.raised = error
        return box

    def _run(self, work: Coroutine[Any, Any, Any] | asyncio.Future[Any]) -> Any:
        # The real-time limit only ends a deadlocked test; no outcome depends on it.
        return self.loop.run_until_complete(asyncio.wait_for(work, REAL_LIMIT))

    def call(self, policy: Any, dependency: Any = None, *args: Any) -> Any:
        box: _Box = self._run(self._outcome(policy, dependency, args))
        return box.deliver()

    def start(self, policy: Any, dependency: Any = None, *args: Any) -> Pending:
        task = self.loop.create_task(self._outcome(policy, dependency, args))
        self.settle()

        def result() -> Any:
            box: _Box = self._run(asyncio.shield(task))
            return box.deliver()

        return Pending(result)

    def settle(self) -> None:
        async def settled() -> None:
            ready = self.loop._ready
            for _ in range(1000):
                await asyncio.sleep(0)
                if not ready:
                    return

        self.loop.run_until_complete(settled())

    def close(self) -> None:
        loop = self.loop
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


class SimDriver(Driver):
    kind = "sim"

    def __init__(self, form: str) -> None:
        super().__init__(form)
        self.sim = Simulation(seed=1)
        self.clock = self.sim.clock
        self._regions: dict[int, dict[str, Any]] = {}
        self._flights: dict[int, dict[Hashable, Signal]] = {}

    def advance(self, seconds: float) -> None:
        self.sim.run(until=self.sim.now + seconds)

    def settle(self) -> None:
        self.sim.run(until=self.sim.now)

    def failover(self, regions: dict[str, Any], **options: Any) -> Failover:
        failover = Failover(dict.fromkeys(regions, _unused), clock=self.clock, **options)
        self._regions[id(failover)] = regions
        return failover

    def _deadline(self) -> float | None:
        """The current ``stormproof.deadline`` as an instant on the simulation's clock."""
        left = stormproof.remaining()
        return None if left is None else self.sim.now + left

    def process(
        self, policy: Any, dependency: Any, args: tuple[Any, ...]
    ) -> Generator[Any, Any, Any]:
        """The simulator's driver of ``policy`` around ``dependency``, as a process."""
        sim = self.sim
        form = self.form

        def operation() -> Generator[Any, Any, Any]:
            return dependency.sim(*args)

        if form == "retrying":
            return retrying(sim, policy, operation)
        if form == "breaker":
            return guarded(sim, policy, None, operation)
        if form == "bulkhead":
            return guarded(sim, None, policy, operation)
        if form == "cache":
            key = policy.key_for(dependency.sim, args, {})
            flights = self._flights.setdefault(id(policy), {})
            return cached(sim, policy, key, operation, flights, self._deadline())
        if form == "hedge":
            return hedging(sim, policy, operation)
        if form == "fallback":
            return falling_back(sim, policy, operation)
        if form == "throttle":  # a Retry(attempts=1) whose budget is the throttle
            return throttling(sim, policy.budget, policy.options.on, operation)
        if form == "failover":
            regions = self._regions[id(policy)]
            return failing_over(
                sim, policy, lambda name: regions[name].sim(*args), self._deadline()
            )
        raise AssertionError(form)

    def _begin(self, policy: Any, dependency: Any, args: tuple[Any, ...]) -> _Box:
        box = _Box()
        if self.form == "chain":

            def attempt(deadline: float | None, receiver: Any) -> Any:
                return dependency.now(deadline, receiver, *args)

            try:
                RetryCall(self.sim, policy, attempt, self._deadline(), box)
            except BaseException as error:
                box.done, box.raised = True, error
            return box

        def finishing() -> Generator[Any, Any, None]:
            try:
                box.outcome = yield from self.process(policy, dependency, args)
            except BaseException as error:
                box.raised = error
            box.done = True

        self.sim.start(finishing())
        return box

    def _run_until(self, box: _Box) -> None:
        """Run the simulation event by event until the call is done: its time then
        stands where the call ended."""
        sim = self.sim
        for _ in range(100_000):
            if box.done:
                return
            until = sim.peek()
            if until == math.inf:  # nothing left to happen
                break
            try:
                sim.run(until=until)
            except BaseException as error:  # an interruption raised out of a chain of calls
                box.done, box.raised = True, error
        raise AssertionError("the simulated call never ended")

    def call(self, policy: Any, dependency: Any = None, *args: Any) -> Any:
        box = self._begin(policy, dependency, args)
        self._run_until(box)
        return box.deliver()

    def start(self, policy: Any, dependency: Any = None, *args: Any) -> Pending:
        box = self._begin(policy, dependency, args)
        self.settle()

        def result() -> Any:
            self._run_until(box)
            return box.deliver()

        return Pending(result)


def _unused(*args: Any) -> Any:
    raise AssertionError("the simulator calls regions itself")


# -- the drivers of each policy ----------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """A driver to build for each test: ``make()`` gives a fresh one."""

    kind: str
    form: str
    results: bool = True  # whether it takes results (not only exceptions) from the work

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.form}"

    def make(self) -> Driver:
        return {"sync": SyncDriver, "async": AsyncDriver, "sim": SimDriver}[self.kind](self.form)


_POLICY = (Kind("sync", "decorator"), Kind("sync", "call"))
_APOLICY = (Kind("async", "decorator"), Kind("async", "acall"))

RETRY = (
    *_POLICY,
    *_APOLICY,
    Kind("sync", "block", results=False),
    Kind("async", "block", results=False),
    Kind("sim", "retrying"),
    Kind("sim", "chain"),
)
BREAKER = (*_POLICY, *_APOLICY, Kind("sim", "breaker"))
BULKHEAD = (*_POLICY, *_APOLICY, Kind("sim", "bulkhead"))
TIMEOUT = (*_POLICY, *_APOLICY)
FALLBACK = (*_POLICY, *_APOLICY, Kind("sim", "fallback"))
HEDGE = (*_APOLICY, Kind("sim", "hedge"))
THROTTLE = (*_POLICY, *_APOLICY, Kind("sim", "throttle"))
CACHE = (*_POLICY, *_APOLICY, Kind("sim", "cache"))
FAILOVER = (Kind("sync", "direct"), Kind("async", "acall"), Kind("sim", "failover"))


def driving(kinds: tuple[Kind, ...]) -> Callable[..., Iterator[Driver]]:
    """A fixture parametrized over ``kinds``: a fresh driver per test."""

    @pytest.fixture(params=kinds, ids=[kind.id for kind in kinds])
    def fixture(request: pytest.FixtureRequest) -> Iterator[Driver]:
        driver = request.param.make()
        try:
            yield driver
        finally:
            driver.close()

    return fixture


def retry_backoff() -> Backoff:
    """Waits of 1, 2, 4, ... seconds: attempts at 0, 1, 3, 7, ..."""
    return Backoff(base=1.0, cap=60.0, jitter="none")
