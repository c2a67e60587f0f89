"""The discrete-event core: a heap of timed events, processes as generators, and a
virtual clock that implements the ``Clock`` protocol.

A process is a generator. It yields a number to wait that many virtual seconds, a
``Signal`` to wait until it fires, or ``Within(signal, seconds)`` to wait for a signal
at most that long (it then receives ``TIMED_OUT``). Events that fall on the same
instant run in the order they were scheduled, and a process waiting on a signal
resumes as soon as the signal fires (before the next event), so a run is a pure
function of its inputs and its seed: same seed, same result, bit for bit.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Generator
from typing import Any, Protocol

from stormproof._core.errors import ConfigError

__all__ = [
    "TIMED_OUT",
    "Lane",
    "Process",
    "Signal",
    "SimClock",
    "Simulation",
    "Timer",
    "Within",
]

Process = Generator[Any, Any, Any]

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
    """Something processes can wait for; it fires once, with a value or an error."""

    __slots__ = ("_sim", "_waiters", "error", "fired", "value")

    def __init__(self, sim: Simulation) -> None:
        if not isinstance(sim, Simulation):
            raise ConfigError("sim", "a Simulation", sim)
        self._sim = sim
        self._waiters: list[_Waiter] = []
        self.fired = False
        self.value: Any = None
        self.error: BaseException | None = None

    def succeed(self, value: Any = None) -> None:
        self._fire(value, None)

    def fail(self, error: BaseException) -> None:
        self._fire(None, error)

    def _fire(self, value: Any, error: BaseException | None) -> None:
        if self.fired:
            return
        self.fired = True
        self.value = value
        self.error = error
        sim = self._sim
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if waiter.live:
                waiter.live = False
                sim._step(waiter.process, value, error)


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
        event = (sim.now + self.delay, sim._ticket(), timer)
        waiting = self._waiting
        waiting.append(event)
        if len(waiting) == 1:  # the earliest: it goes in the heap, under its own key
            _push(sim._queue, (event[0], event[1], self._on_due, None))

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


class Simulation:
    """Virtual time, a heap of events, and the processes that run on them."""

    __slots__ = (
        "_lanes",
        "_on_resume",
        "_on_wake",
        "_queue",
        "_ticket",
        "clock",
        "now",
        "random",
        "second",
        "seed",
    )

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError("seed", "an integer", seed)
        self.seed = seed
        self.now = 0.0
        self.random = random.Random(seed)
        self.clock = SimClock(self)
        self._queue: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._ticket = itertools.count().__next__  # ties run in the order scheduled
        self._lanes: dict[float, Lane] = {}
        # Bound once: they are scheduled for every wait of every process.
        self._on_wake = self._wake
        self._on_resume = self._resume
        self.second = 0
        """``int(now)``, kept by the engine: per-second counts index by it."""
        _push(self._queue, (1.0, -1, self._tick, None))

    # -- scheduling -------------------------------------------------------------------

    def at(self, time: float, action: Callable[[Any], None], argument: Any = None) -> None:
        """Run ``action(argument)`` at virtual ``time`` (never in the past)."""
        if not _is_number(time) or not -math.inf < time < math.inf:
            raise ConfigError("time", "a finite number (an instant of virtual time)", time)
        _push(self._queue, (max(time, self.now), self._ticket(), action, argument))

    def after(self, delay: float, action: Callable[[Any], None], argument: Any = None) -> None:
        """Run ``action(argument)`` ``delay`` seconds from now."""
        if not _is_number(delay) or not 0.0 <= delay < math.inf:
            raise ConfigError("delay", "a number of seconds >= 0", delay)
        _push(self._queue, (self.now + delay, self._ticket(), action, argument))

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
        return Signal(self)

    def start(self, process: Process) -> None:
        """Start ``process`` now (it runs until its first wait)."""
        if not callable(getattr(process, "send", None)) or not callable(
            getattr(process, "throw", None)
        ):
            raise ConfigError("process", "a generator (a function with yield, called)", process)
        self._step(process, None, None)

    def run(self, until: float) -> None:
        """Run every event due up to ``until``; time then stands at ``until``."""
        if not _is_number(until) or not self.now <= until < math.inf:
            raise ConfigError("until", f"a time from now ({self.now:g}) on", until)
        queue = self._queue
        pop = heapq.heappop
        while queue:
            time, _, action, argument = event = pop(queue)
            if time > until:
                _push(queue, event)  # not due yet (its place in line is kept)
                break
            self.now = time
            action(argument)
        self.now = until
        self.second = int(until)

    @property
    def pending(self) -> int:
        """Events not yet run: a lane's timers count until they run or are dropped (its
        earliest is in the heap); the engine's own tick for the next second does not."""
        waiting = sum(len(lane) for lane in self._lanes.values())
        heads = sum(1 for lane in self._lanes.values() if len(lane))
        return len(self._queue) - 1 - heads + waiting

    # -- processes --------------------------------------------------------------------

    def _soon(self, process: Process, value: Any, error: BaseException | None) -> None:
        _push(self._queue, (self.now, self._ticket(), self._on_resume, (process, value, error)))

    def _resume(self, argument: tuple[Process, Any, BaseException | None]) -> None:
        process, value, error = argument
        self._step(process, value, error)

    def _wake(self, process: Process) -> None:
        self._step(process, None, None)

    def _step(self, process: Process, value: Any, error: BaseException | None) -> None:
        try:
            command = process.throw(error) if error is not None else process.send(value)
        except StopIteration:
            return
        if type(command) is float or type(command) is int:
            if not command >= 0.0:  # NaN too: time never runs backwards
                raise ValueError(
                    f"a simulation process yielded {command!r}: a wait of seconds >= 0"
                )
            _push(self._queue, (self.now + command, self._ticket(), self._on_wake, process))
        elif type(command) is Signal:
            if command.fired:
                self._soon(process, command.value, command.error)
            else:
                command._waiters.append(_Waiter(self, process))
        elif type(command) is Within:
            signal = command.signal
            if signal.fired:
                self._soon(process, signal.value, signal.error)
            else:
                waiter = _Waiter(self, process)
                signal._waiters.append(waiter)
                lane = self._lanes.get(command.seconds)
                if lane is not None:
                    lane.add(waiter)
                else:
                    _push(
                        self._queue,
                        (self.now + command.seconds, self._ticket(), _expire, waiter),
                    )
        else:
            raise TypeError(
                f"a simulation process yielded {command!r}: yield seconds (a number), "
                "a Signal, or Within(signal, seconds)"
            )
