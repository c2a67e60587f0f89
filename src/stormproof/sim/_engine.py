"""The discrete-event core: a heap of timed events, processes as generators, and a
virtual clock that implements the ``Clock`` protocol.

A process is a generator. It yields what it waits for: a number (that many virtual
seconds), a ``Signal`` (until it fires), ``Within(signal, seconds)`` (a signal, at most
that long: it then receives ``TIMED_OUT``), or a ``Waitable`` (any object with an
``as_wait(sim)`` method returning one of those). ``Simulation.start`` returns the
process's ``Process``, a signal that fires with what the generator returns.

The order of everything is defined, so a run is a pure function of its inputs and
its seed (same seed, same result, bit for bit):

1. Events run in time order; events due at the same instant run in the order they
   were scheduled.
2. Work made *ready* during an event runs right after that event, before any other
   (even one due at the same instant), first ready first: the processes waiting for a
   signal that fired (in the order they began to wait, each until its next wait
   before the next resumes) and the actions given to ``call_soon``. Work made ready
   by ready work joins the end of the line, as in SimPy, where an event's callbacks
   run when the event is processed: nothing resumes inside the ``succeed`` call that
   fired its signal.
3. A process that yields a signal that has already fired goes on at once with its
   value (or its error).
4. ``start`` runs a process at once, up to its first wait, then returns.
"""

from __future__ import annotations

import heapq
import itertools
import math
import numbers
import random
from collections import deque
from collections.abc import Callable, Generator
from types import GeneratorType
from typing import Any, Protocol

from stormproof import ConfigError

__all__ = [
    "TIMED_OUT",
    "Action",
    "Lane",
    "Process",
    "Signal",
    "SimClock",
    "Simulation",
    "Timer",
    "Waitable",
    "Within",
]

Action = Callable[[Any], None]
"""What an event runs: ``action(argument)``."""

_push = heapq.heappush


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _TimedOut:
    __slots__ = ()

    def __repr__(self) -> str:
        return "TIMED_OUT"


TIMED_OUT: Any = _TimedOut()
"""What a process waiting with ``Within`` receives when its time is up first."""


class Timer(Protocol):
    """Something that may time out (an attempt, a process waiting ``Within``): while
    ``live``, ``expire()`` times it out; once it ended otherwise, ``live`` is False for
    good."""

    live: bool

    def expire(self) -> None: ...


class Waitable(Protocol):
    """A kind of wait of your own. A process may yield any object with an ``as_wait``
    method: the engine calls it once, with the simulation, and waits for what it
    returns: a number of seconds, a ``Signal`` (a ``Process`` included) or a
    ``Within``. A wait that needs several signals can start a process that waits for
    them and return it (its ``Process`` fires when the process returns)."""

    def as_wait(self, sim: Simulation, /) -> float | Signal | Within: ...


class _Waiter:
    """A process waiting for a signal (and, with ``Within``, a timer)."""

    __slots__ = ("live", "process", "sim")

    def __init__(self, sim: Simulation, process: Process) -> None:
        self.sim = sim
        self.process = process
        self.live = True

    def expire(self) -> None:
        if self.live:
            self.live = False
            self.sim._step(self.process, TIMED_OUT, None)


class Signal:
    """Something processes can wait for; it fires once, with a value or an error.

    ``succeed(value)`` or ``fail(error)`` fires it (a second call does nothing); the
    processes waiting for it resume right after the current event, in the order they
    began to wait (see the module's notes on order). ``fired``, ``value`` and ``error``
    say how it ended."""

    __slots__ = ("_sim", "_waiters", "error", "fired", "value")

    def __init__(self, sim: Simulation) -> None:
        if not isinstance(sim, Simulation):
            raise ConfigError("sim", "a Simulation", sim)
        self._sim = sim
        self._waiters: list[_Waiter] | None = None
        self.fired = False
        self.value: Any = None
        self.error: BaseException | None = None

    def __repr__(self) -> str:
        if not self.fired:
            return f"<{type(self).__name__} pending>"
        if self.error is not None:
            return f"<{type(self).__name__} failed: {self.error!r}>"
        return f"<{type(self).__name__} fired: {self.value!r}>"

    def succeed(self, value: Any = None) -> None:
        """Fire with ``value``: each waiting process receives it."""
        self._fire(value, None)

    def fail(self, error: BaseException) -> None:
        """Fire with ``error``: it is raised in each waiting process."""
        if not isinstance(error, BaseException):
            raise ConfigError("error", "an exception", error)
        self._fire(None, error)

    def _fire(self, value: Any, error: BaseException | None) -> None:
        if self.fired:
            return
        self.fired = True
        self.value = value
        self.error = error
        if self._waiters is not None:
            self._sim._ready.append((_release, self))


def _release(signal: Signal) -> None:
    """Resume the processes waiting for ``signal`` (ready work: it fired)."""
    waiters = signal._waiters
    signal._waiters = None
    assert waiters is not None
    value = signal.value
    error = signal.error
    step = signal._sim._step
    for waiter in waiters:
        if waiter.live:  # else its time ran out first
            waiter.live = False
            step(waiter.process, value, error)


class Process(Signal):
    """A process the simulation runs, as ``Simulation.start`` returns it: a ``Signal``
    that fires with the generator's return value when it returns, or fails with the
    exception it raises. Waiting for it (``yield process``, ``Within(process, s)``) is
    waiting for the process to end. An exception that no process is waiting for when
    it is raised goes on out of the engine (out of ``start`` or ``run``): errors never
    pass unnoticed. ``KeyboardInterrupt`` and other exceptions that are not
    ``Exception`` always do."""

    __slots__ = ("_generator",)

    _generator: Generator[Any, Any, Any]

    def __init__(self, sim: Simulation) -> None:
        raise TypeError("a Process is made by Simulation.start(generator)")

    def _failed(self, failure: BaseException) -> bool:
        """The process raised ``failure``: fail with it. True if processes waiting for it
        receive it, False if it must go on out of the engine."""
        waiters = self._waiters
        observed = waiters is not None and any(waiter.live for waiter in waiters)
        self._fire(None, failure)
        return observed and isinstance(failure, Exception)


class Within:
    """Wait for ``signal``, but at most ``seconds``."""

    __slots__ = ("seconds", "signal")

    def __init__(self, signal: Signal, seconds: float) -> None:
        if not isinstance(signal, Signal):
            raise ConfigError("signal", "a Signal", signal)
        if not _is_number(seconds) or not 0.0 <= seconds < math.inf:
            raise ConfigError("seconds", "a number of seconds >= 0", seconds)
        self.signal = signal
        self.seconds = seconds


_new_process = object.__new__


def _expire(timer: Timer) -> None:
    timer.expire()


class SimClock:
    """The simulation's virtual time, as a ``Clock``. Policies read it with ``now()``;
    in the simulation nothing sleeps: processes yield their waits to the engine."""

    __slots__ = ("_sim",)

    def __init__(self, sim: Simulation) -> None:
        if not isinstance(sim, Simulation):
            raise ConfigError("sim", "a Simulation", sim)
        self._sim = sim

    def now(self) -> float:
        return self._sim.now

    def sleep(self, seconds: float, /) -> None:
        raise RuntimeError("inside the simulation, processes yield their waits instead")

    async def asleep(self, seconds: float, /) -> None:
        raise RuntimeError("inside the simulation, processes yield their waits instead")


class Lane:
    """Timers due a fixed ``delay`` after they are set (every attempt's timeout): they
    come due in the order they were set, so they wait in a FIFO and only the earliest
    is in the simulation's heap. The heap stays small (a few events instead of one per
    attempt in flight), every timer keeps its place in the order of all events (the
    result is the same as with ``after(delay, ...)``, bit for bit), and a timer that is
    no longer ``live`` when the one before it comes due is dropped unrun: most attempts
    are answered before their timeout, and their timers never reach the heap."""

    __slots__ = ("_on_due", "_sim", "_waiting", "delay")

    def __init__(self, sim: Simulation, delay: float) -> None:
        self._sim = sim
        self.delay = delay
        self._waiting: deque[tuple[float, int, Timer]] = deque()
        self._on_due = self._due  # bound once: it is scheduled for every timer that runs

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, timer: Timer) -> None:
        """Call ``timer.expire()`` ``delay`` seconds from now, if it is still live."""
        sim = self._sim
        event = (sim.now + self.delay, next(sim._tickets), timer)
        waiting = self._waiting
        if not waiting:  # the earliest: it goes in the heap, under its own key
            _push(sim._queue, (event[0], event[1], self._on_due, None))
        waiting.append(event)

    def _due(self, _: object) -> None:
        waiting = self._waiting
        timer = waiting.popleft()[2]
        while waiting and not waiting[0][2].live:
            waiting.popleft()  # ended before its timeout: nothing to run
        if waiting:
            following = waiting[0]
            _push(self._sim._queue, (following[0], following[1], self._on_due, None))
        if timer.live:
            timer.expire()


class Schedule(Protocol):
    """``Simulation.schedule``'s signature."""

    def __call__(self, time: float, action: Action, argument: Any = None, /) -> None: ...


class CallSoon(Protocol):
    """``Simulation.call_soon``'s signature."""

    def __call__(self, action: Action, argument: Any = None, /) -> None: ...


class Simulation:
    """Virtual time, a heap of events, and the processes that run on them.

    Scheduling: ``at(time, action, argument)`` and ``after(delay, action, argument)``
    run ``action(argument)`` then (checking their input); ``schedule(time, action,
    argument)`` is the same as ``at`` without the checks, for the model's hot paths,
    which fetch it once (``time`` must be a number not before ``now``);
    ``call_soon(action, argument)`` runs ``action(argument)`` right after the current
    event, before any other (ready work, in the order asked); ``lane(delay)`` holds
    timers that share one delay. ``start(generator)`` runs a process; ``run(until)``
    runs every event due until then; ``peek()`` says when the next one is due."""

    __slots__ = (
        "_lanes",
        "_on_wake",
        "_queue",
        "_ready",
        "_tickets",
        "call_soon",
        "clock",
        "now",
        "random",
        "schedule",
        "second",
        "seed",
    )

    schedule: Schedule
    call_soon: CallSoon

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError("seed", "an integer", seed)
        self.seed = seed
        self.now = 0.0
        self.random = random.Random(seed)
        self.clock = SimClock(self)
        queue: list[tuple[float, int, Action, Any]] = []
        tickets = itertools.count()  # next(tickets): ties run in the order scheduled
        ready: deque[tuple[Action, Any]] = deque()
        self._queue = queue
        self._tickets = tickets
        self._ready = ready
        self._lanes: dict[float, Lane] = {}
        self._on_wake = self._wake  # bound once: it is scheduled for every timed wait

        def schedule(time: float, action: Action, argument: Any = None, /) -> None:
            """Run ``action(argument)`` at virtual ``time`` (not checked: a number not
            before now). For hot paths; ``at`` and ``after`` check their input."""
            _push(queue, (time, next(tickets), action, argument))

        def call_soon(action: Action, argument: Any = None, /) -> None:
            """Run ``action(argument)`` right after the current event, before any other
            event (even one due at this instant), after the work already ready."""
            ready.append((action, argument))

        self.schedule = schedule
        self.call_soon = call_soon
        self.second = 0
        """``int(now)``, kept by the engine: per-second counts index by it."""
        _push(queue, (1.0, -1, self._tick, None))

    # -- scheduling -------------------------------------------------------------------

    def at(self, time: float, action: Action, argument: Any = None) -> None:
        """Run ``action(argument)`` at virtual ``time`` (never in the past)."""
        if not _is_number(time) or not -math.inf < time < math.inf:
            raise ConfigError("time", "a finite number (an instant of virtual time)", time)
        _push(self._queue, (max(time, self.now), next(self._tickets), action, argument))

    def after(self, delay: float, action: Action, argument: Any = None) -> None:
        """Run ``action(argument)`` ``delay`` seconds from now."""
        if not _is_number(delay) or not 0.0 <= delay < math.inf:
            raise ConfigError("delay", "a number of seconds >= 0", delay)
        _push(self._queue, (self.now + delay, next(self._tickets), action, argument))

    def lane(self, delay: float) -> Lane:
        """The lane of timers due ``delay`` seconds after they are set (one per delay):
        for a timeout many share. Processes waiting ``Within`` that many seconds time
        out through it too."""
        found = self._lanes.get(delay)
        if found is None:
            if not _is_number(delay) or not 0.0 <= delay < math.inf:
                raise ConfigError("delay", "a number of seconds >= 0", delay)
            found = self._lanes[delay] = Lane(self, delay)
        return found

    def _tick(self, _: object) -> None:
        """A whole second began. Its ticket (-1) puts it before every other event of
        the same instant, so they all see the new second."""
        self.second = second = int(self.now)
        _push(self._queue, (second + 1.0, -1, self._tick, None))

    def stream(self, name: str) -> random.Random:
        """An independent random stream, seeded from the run's seed and ``name``: the
        arrivals of every strategy are then the same, whatever each strategy draws."""
        return random.Random(f"{self.seed}:{name}")

    def signal(self) -> Signal:
        """A new ``Signal`` of this simulation."""
        return Signal(self)

    def start(self, generator: Generator[Any, Any, Any]) -> Process:
        """Start a process: run ``generator`` now, up to its first wait. Returns its
        ``Process``, which fires with what the generator returns."""
        if type(generator) is not GeneratorType and not (
            callable(getattr(generator, "send", None))
            and callable(getattr(generator, "throw", None))
        ):
            raise ConfigError("process", "a generator (a function with yield, called)", generator)
        process = _new_process(Process)  # made here, without a call to __init__
        process._sim = self
        process._generator = generator
        process._waiters = None
        process.fired = False
        process.value = None
        process.error = None
        self._step(process, None, None)
        return process

    def run(self, until: float) -> None:
        """Run every event due up to ``until``; time then stands at ``until``."""
        if not _is_number(until) or not self.now <= until < math.inf:
            raise ConfigError("until", f"a time from now ({self.now:g}) on", until)
        ready = self._ready
        next_ready = ready.popleft
        while ready:  # made ready outside any event (by a start, or a signal fired)
            action, argument = next_ready()
            action(argument)
        queue = self._queue
        pop = heapq.heappop
        while queue:
            time, _, action, argument = event = pop(queue)
            if time > until:
                _push(queue, event)  # not due yet (its place in line is kept)
                break
            self.now = time
            action(argument)
            while ready:  # the work this event made ready, first ready first
                action, argument = next_ready()
                action(argument)
        self.now = until
        self.second = int(until)

    def peek(self) -> float:
        """When the next event is due: ``now`` if work is ready, ``math.inf`` when
        nothing is pending (the engine's own tick for the next second does not count)."""
        if self._ready:
            return self.now
        queue = self._queue
        if queue[0][1] != -1:
            return queue[0][0]
        # The tick is first: the next event is the earlier of its children in the heap.
        return min((event[0] for event in queue[1:3]), default=math.inf)

    @property
    def pending(self) -> int:
        """Events not yet run: a lane's timers count until they run or are dropped (its
        earliest is in the heap); the engine's own tick for the next second does not."""
        waiting = sum(len(lane) for lane in self._lanes.values())
        heads = sum(1 for lane in self._lanes.values() if len(lane))
        return len(self._queue) - 1 - heads + waiting + len(self._ready)

    # -- processes --------------------------------------------------------------------

    def _wake(self, process: Process) -> None:
        self._step(process, None, None)

    def _step(self, process: Process, value: Any, error: BaseException | None) -> None:
        """Send ``value`` (or throw ``error``) into the process, and carry out the wait
        it yields next (or end it)."""
        generator = process._generator
        while True:
            try:
                command = generator.send(value) if error is None else generator.throw(error)
            except StopIteration as stop:  # it returned: process._fire(stop.value, None)
                process.fired = True
                process.value = stop.value
                if process._waiters is not None:
                    self._ready.append((_release, process))
                return
            except BaseException as failure:
                if process._failed(failure):
                    return  # its waiters receive it
                raise
            kind = type(command)
            if kind is float or kind is int:  # the common waits first, by exact type
                if command >= 0.0:  # NaN is not: time never runs backwards
                    _push(
                        self._queue,
                        (self.now + command, next(self._tickets), self._on_wake, process),
                    )
                    return
                value, error = None, _bad_wait(command)
                continue
            if kind is Within:
                signal = command.signal
                seconds = command.seconds
            elif kind is Signal:
                signal = command
                seconds = None
            else:  # another kind: by the protocol (a Waitable, a number of another type)
                wait = _wait_of(command, self)
                if isinstance(wait, tuple):
                    signal, seconds = wait
                elif isinstance(wait, float):
                    _push(
                        self._queue, (self.now + wait, next(self._tickets), self._on_wake, process)
                    )
                    return
                else:  # a bad wait: raised in the process
                    value, error = None, wait
                    continue
            if signal.fired:  # go on at once with its value
                value, error = signal.value, signal.error
                continue
            waiter = _Waiter(self, process)
            waiters = signal._waiters
            if waiters is None:
                signal._waiters = [waiter]
            else:
                waiters.append(waiter)
            if seconds is not None:
                lane = self._lanes.get(seconds)
                if lane is not None:
                    lane.add(waiter)
                else:
                    _push(self._queue, (self.now + seconds, next(self._tickets), _expire, waiter))
            return


_WAITS = "yield seconds (a number), a Signal, Within(signal, seconds) or a Waitable"


def _bad_wait(seconds: object) -> ValueError:
    return ValueError(f"a simulation process yielded {seconds!r}: a wait of seconds >= 0")


def _wait_of(command: object, sim: Simulation) -> tuple[Signal, float | None] | float | Exception:
    """What a yield of something else than a float, an int, a Signal or a Within waits
    for: a signal (a ``Process`` too) and at most how long (None: no limit), a number
    of seconds (as a float), or the error to raise in the process. A ``Waitable`` gives
    its ``as_wait(sim)``."""
    waited = command
    as_wait = getattr(command, "as_wait", None)
    if callable(as_wait) and not isinstance(command, (Signal, Within)):
        waited = as_wait(sim)
    if isinstance(waited, Signal):
        return waited, None
    if isinstance(waited, Within):
        return waited.signal, waited.seconds
    if isinstance(waited, numbers.Real) and not isinstance(waited, bool):
        seconds = float(waited)
        return seconds if seconds >= 0.0 else _bad_wait(waited)
    if waited is not command:
        return TypeError(
            f"a simulation process yielded {command!r}, whose as_wait returned {waited!r}: "
            "a number of seconds, a Signal or Within(signal, seconds)"
        )
    return TypeError(f"a simulation process yielded {command!r}: {_WAITS}")
