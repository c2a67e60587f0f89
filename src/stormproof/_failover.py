"""Failover: do the same work in another region when the preferred one fails.

``regions`` maps names to callables doing the same work in different places, in
preference order. Each region has its own circuit breaker. A call goes to the
active region; a regional failure (DNS, connection, timeout, 5xx, throttling, an
open breaker) moves that call on to the next region. Traffic as a whole moves when
the active region's breaker opens, not on one failed call, so failover does not
flap. It moves back only after the preferred region has answered probe calls for
``failback_after`` seconds without a failure: probed, not guessed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from ._breaker import BreakerOptions, BreakerState, CircuitBreaker, CircuitOpen
from ._classify import is_regional_failure
from ._core import events
from ._core.clock import MONOTONIC, Clock
from ._core.deadline import current as current_deadline
from ._core.drive import Call, Core, Failure, adrive, drive
from ._core.errors import ConfigError
from ._core.events import Event, Listener
from ._core.options import Configured, Options
from ._core.validate import (
    ExceptionFilter,
    check_callable,
    check_exceptions,
    check_number,
    now_function,
)
from ._policy import is_async

__all__ = ["Failover", "FailoverSwitched"]

_DOWN = (BreakerState.OPEN, BreakerState.FORCED_OPEN)


@dataclass(frozen=True, slots=True)
class FailoverSwitched(Event):
    """Traffic moved: to another region (``"failover"``) or back (``"failback"``)."""

    kind: ClassVar[str] = "failover.switched"
    previous: str
    region: str
    reason: str


BreakerTemplate = CircuitBreaker | BreakerOptions | Callable[[str], CircuitBreaker]
"""How Failover makes a region's breaker: a breaker or breaker options to copy (named
``<its name>:<region>``), or a factory called with the region's name."""

_REGIONAL_BREAKER = BreakerOptions(
    name="failover", window=20, minimum_calls=5, open_for=10.0, open_for_max=60.0
)
"""The default breaker of each region: quicker to judge than a breaker's own defaults
(20 calls, 5 at least), since a regional outage should move traffic within seconds."""


@dataclass(frozen=True)
class FailoverOptions(Options):
    """Failover's options (see ``Failover``), validated when built; ``replace()``
    copies. ``regions`` is kept as a tuple of ``(name, callable)`` pairs."""

    regions: Mapping[str, Callable[..., Any]] | tuple[tuple[str, Callable[..., Any]], ...]
    breaker: BreakerTemplate = _REGIONAL_BREAKER
    failover_on: ExceptionFilter | None = None
    failback_after: float = 30.0
    probe_interval: float = 5.0
    clock: Clock = MONOTONIC
    name: str = "failover"
    listeners: Iterable[Listener] = ()

    def _check(self) -> None:
        regions = self.regions
        pairs = tuple(regions.items()) if isinstance(regions, Mapping) else regions
        if (
            not isinstance(pairs, tuple)
            or len(pairs) < 2
            or not all(isinstance(pair, tuple) and len(pair) == 2 for pair in pairs)
        ):
            raise ConfigError(
                "regions", "a mapping of at least two region names to callables", regions
            )
        for region, work in pairs:
            if not isinstance(region, str) or not region:
                raise ConfigError("regions", "non-empty region names", region)
            if not callable(work):
                raise ConfigError(f"regions[{region!r}]", "callable", work)
        self._set("regions", pairs)
        breaker = self.breaker
        if not isinstance(breaker, (CircuitBreaker, BreakerOptions)):
            if not callable(breaker):
                raise ConfigError(
                    "breaker", "a CircuitBreaker template, a factory, or None", breaker
                )
            check_callable(
                "breaker",
                breaker,
                arguments=1,
                requirement="a CircuitBreaker template, a factory taking a region name, or None",
            )
        if self.failover_on is not None:
            check_exceptions("failover_on", self.failover_on)
        self._set("failback_after", check_number("failback_after", self.failback_after, low=0.0))
        self._set(
            "probe_interval",
            check_number("probe_interval", self.probe_interval, low=0.0, low_open=True),
        )

    def pairs(self) -> tuple[tuple[str, Callable[..., Any]], ...]:
        """The regions, in preference order, as ``(name, callable)`` pairs."""
        return cast(tuple[tuple[str, Callable[..., Any]], ...], self.regions)


def _breakers_for(options: FailoverOptions) -> tuple[CircuitBreaker, ...]:
    """A new breaker for each region, as ``options.breaker`` says."""
    names = [name for name, _ in options.pairs()]
    template = options.breaker
    if isinstance(template, CircuitBreaker):
        return tuple(template.clone(f"{template.name}:{region}") for region in names)
    if isinstance(template, BreakerOptions):
        # The default template (and any without a clock of its own) runs on the
        # failover's clock.
        clock = options.clock if template.clock is MONOTONIC else template.clock
        named = template.name if template is not _REGIONAL_BREAKER else options.name
        return tuple(
            CircuitBreaker.from_options(template.replace(name=f"{named}:{r}", clock=clock))
            for r in names
        )
    made = tuple(template(region) for region in names)
    if not all(isinstance(b, CircuitBreaker) for b in made):
        raise ConfigError("breaker", "a factory returning CircuitBreakers", template)
    if len({id(b) for b in made}) != len(made):
        raise ConfigError("breaker", "a factory returning a new breaker per region", template)
    return made


_D = FailoverOptions(regions={"a": print, "b": print})
"""Failover's defaults, where its constructor reads them."""


class Failover(Configured[FailoverOptions]):
    """Call ``regions`` in preference order, each behind its own circuit breaker.

    Call it like the work itself: ``failover(*args)`` (sync region callables) or
    ``await failover.acall(*args)`` (async ones, or sync). Compose it with policies
    as the function they protect: ``Pipeline(Cache(...), Retry(...)).call(failover,
    key)``. When every region fails, the last error propagates, so a ``Cache``
    outside can serve a stale value.
    """

    options_type = FailoverOptions

    def __init__(
        self,
        regions: Mapping[str, Callable[..., Any]],
        *,
        breaker: BreakerTemplate = _D.breaker,
        failover_on: ExceptionFilter | None = _D.failover_on,
        failback_after: float = _D.failback_after,
        probe_interval: float = _D.probe_interval,
        clock: Clock = _D.clock,
        name: str = _D.name,
        listeners: Iterable[Listener] = _D.listeners,
    ) -> None:
        self._configure(
            FailoverOptions(
                regions=regions,
                breaker=breaker,
                failover_on=failover_on,
                failback_after=failback_after,
                probe_interval=probe_interval,
                clock=clock,
                name=name,
                listeners=listeners,
            )
        )

    def _configure(self, options: FailoverOptions) -> None:
        """Precompute what calls read from the options; a breaker of its own per region,
        and traffic on the first region."""
        self._options = options
        regions = dict(options.pairs())
        self._names = tuple(regions)
        self._work = tuple(regions.values())
        self._name = options.name
        self._clock = options.clock
        self._now = now_function(self._clock)
        self._breakers = _breakers_for(options)
        if options.failover_on is None:
            self._failover_types: tuple[type[Exception], ...] | None = None
            self._failover_on: Callable[[Exception], bool] = is_regional_failure
        else:
            self._failover_types, self._failover_on = check_exceptions(
                "failover_on", options.failover_on
            )
        self._async_region = next(
            (index for index, work in enumerate(self._work) if is_async(work)), None
        )
        self._failback_after = options.failback_after
        self._probe_interval = options.probe_interval
        self._listeners = events.check_listeners(options.listeners)
        self._lock = threading.Lock()
        self._active = 0
        self._healthy_since: list[float | None] = [None] * len(self._names)
        self._last_probe = -float("inf")

    # -- introspection -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def regions(self) -> tuple[str, ...]:
        return self._names

    @property
    def active_region(self) -> str:
        """Where traffic goes now."""
        return self._names[self._active]

    def breaker(self, region: str) -> CircuitBreaker:
        """The circuit breaker in front of ``region``."""
        return self._breakers[self._index(region)]

    def __repr__(self) -> str:
        return (
            f"Failover(regions={list(self._names)}, failback_after={self._failback_after:g}, "
            f"name={self._name!r}; active={self.active_region!r})"
        )

    # -- the routing core: no I/O --------------------------------------------------------

    def plan(self, now: float | None = None) -> list[str]:
        """The regions to try for one call, in order (for drivers of your own)."""
        return [self._names[i] for i in self._plan(self._now() if now is None else now)]

    def admit(self, region: str) -> int | CircuitOpen:
        """Ask ``region``'s breaker for a permit; its refusal is returned (and recorded)."""
        return self._admit(self._index(region))

    def failed(self, region: str, permit: int, error: Exception) -> None:
        """``region`` raised ``error``: recorded if regional, else re-raised at once."""
        if not self._failed(self._index(region), permit, error):
            try:
                raise error
            finally:
                del error  # no cycle: its traceback holds this frame

    def succeeded(self, region: str, permit: int) -> None:
        """``region`` answered."""
        self._succeeded(self._index(region), permit)

    def _index(self, region: str) -> int:
        try:
            return self._names.index(region)
        except ValueError:
            raise ConfigError("region", f"one of {self._names}", region) from None

    def _plan(self, now: float) -> list[int]:
        """The regions to try for one call, in order: the active one, or a better region
        due for a probe; then the rest in preference order."""
        with self._lock:
            active = self._active
            first = active
            if active > 0 and now - self._last_probe >= self._probe_interval:
                for index in range(active):
                    if self._breakers[index].state not in _DOWN:
                        first = index
                        self._last_probe = now
                        break
        return [first, *(i for i in range(len(self._names)) if i != first)]

    def _failed_over(self, error: Exception) -> bool:
        types = self._failover_types
        return isinstance(error, types) if types is not None else bool(self._failover_on(error))

    def _record(self, index: int, ok: bool, now: float) -> None:
        """Learn from one region's outcome; move traffic if it is time."""
        switch: tuple[int, int, str] | None = None
        with self._lock:
            active = self._active
            if not ok:
                self._healthy_since[index] = None
                if index == active and self._breakers[active].state in _DOWN:
                    for candidate in range(len(self._names)):
                        if candidate != active and self._breakers[candidate].state not in _DOWN:
                            self._active = candidate
                            switch = (active, candidate, "failover")
                            break
            elif index < active:
                since = self._healthy_since[index]
                if since is None:
                    since = self._healthy_since[index] = now
                if now - since >= self._failback_after:
                    self._active = index
                    self._healthy_since[index] = None
                    switch = (active, index, "failback")
        if switch is not None and events.active(self._listeners):
            previous, region, reason = switch
            event = FailoverSwitched(
                self._name, now, self._names[previous], self._names[region], reason
            )
            events.emit(event, self._listeners)

    def _out_of_time(self) -> bool:
        active = current_deadline()
        return active is not None and active.remaining() <= 0.0

    # -- drivers -------------------------------------------------------------------------

    def _admit(self, index: int) -> int | CircuitOpen:
        """A permit from the region's breaker, or its refusal (recorded as a failure)."""
        try:
            return self._breakers[index].acquire()
        except CircuitOpen as refused:
            self._record(index, False, self._now())
            return refused

    def _failed(self, index: int, permit: int, error: Exception) -> bool:
        """The region raised ``error``. Returns whether it is a regional failure (the
        call moves on); if not, the region answered and the error is the caller's."""
        breaker = self._breakers[index]
        if not self._failed_over(error):
            breaker.on_success(permit)  # the region answered: it is up
            return False
        breaker.on_failure(permit)
        self._record(index, False, self._now())
        return True

    def _succeeded(self, index: int, permit: int) -> None:
        self._breakers[index].on_success(permit)
        self._record(index, True, self._now())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Do the work in the first region that answers (sync region callables)."""
        if self._async_region is not None:
            raise ConfigError(
                f"regions[{self._names[self._async_region]!r}]",
                "a sync callable (use acall for async ones)",
                self._work[self._async_region],
            )
        return drive(self._attempts(), _no_protected_call, args, kwargs, self._clock)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """The same as calling the Failover: ``failover.call(*args)`` reads like the
        other policies' ``call`` (sync region callables)."""
        return self(*args, **kwargs)

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        """Do the work in the first region that answers (async or sync callables)."""
        return await adrive(self._attempts(), _no_protected_call, args, kwargs, self._clock)

    def _attempts(self) -> Core:
        """One call's decisions: each region of the plan in turn, behind its breaker,
        until one answers or the deadline has passed. Returns the answer, or a Failure:
        an error that is not regional (the region answered), else the last one."""
        last: Exception | None = None
        for index in self._plan(self._now()):
            if last is not None and self._out_of_time():
                break
            permit = self._admit(index)
            if isinstance(permit, CircuitOpen):
                last = permit
                continue
            try:
                outcome = yield Call(self._work[index])
            except BaseException:  # interrupted: no outcome, the permit is given back
                self._breakers[index].release(permit)
                raise
            if type(outcome) is not Failure:
                self._succeeded(index, permit)
                return outcome
            if not self._failed(index, permit, outcome.error):
                return outcome
            last = outcome.error
        assert last is not None
        return Failure(last)


def _no_protected_call(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover
    raise AssertionError("Failover calls its regions' functions")
