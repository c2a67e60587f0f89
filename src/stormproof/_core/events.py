"""The event seam: policies emit small frozen events; listeners receive them.

A listener is any callable taking one event. Listeners are registered globally
(``subscribe``) or per policy (``listeners=``). Building an event costs nothing when
nobody listens: policies check ``active(local)`` first. A listener that raises is
logged and skipped; it never breaks the caller's operation.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from .errors import ConfigError
from .validate import check_callable, takes

__all__ = [
    "Event",
    "Listener",
    "LoggingListener",
    "Recorder",
    "active",
    "check_listeners",
    "emit",
    "subscribe",
    "unsubscribe",
]

_log = logging.getLogger("stormproof")


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event: which policy emitted it and when (on the policy's clock)."""

    kind: ClassVar[str] = "event"
    policy: str
    time: float

    def fields(self) -> dict[str, object]:
        """The event's fields as a dict, for logs and exporters."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


Listener = Callable[[Event], None]


class _Registry:
    """The global listeners: an immutable tuple, replaced (never mutated) under a lock,
    so emitting reads it without locking."""

    __slots__ = ("listeners", "lock")

    def __init__(self) -> None:
        self.listeners: tuple[Listener, ...] = ()
        self.lock = threading.Lock()


_registry = _Registry()


def subscribe(listener: Listener) -> Callable[[], None]:
    """Receive every event from every policy. Returns a function that unsubscribes."""
    check_callable(
        "listener", listener, arguments=1, requirement="a callable taking one argument (the event)"
    )
    with _registry.lock:
        _registry.listeners = (*_registry.listeners, listener)
    return lambda: unsubscribe(listener)


def unsubscribe(listener: Listener) -> None:
    """Stop sending events to ``listener``. Unknown listeners are ignored."""
    with _registry.lock:
        remaining = list(_registry.listeners)
        if listener in remaining:
            remaining.remove(listener)
        _registry.listeners = tuple(remaining)


def active(local: tuple[Listener, ...]) -> bool:
    """Is anyone listening (globally or on this policy)?"""
    return bool(local or _registry.listeners)


def emit(event: Event, local: tuple[Listener, ...]) -> None:
    """Deliver ``event`` to the policy's own listeners, then the global ones."""
    for listener in (*local, *_registry.listeners):
        try:
            listener(event)
        except Exception:  # noqa: PERF203  (one broken listener must not starve the others)
            _log.exception("stormproof: listener %r failed on %s", listener, event.kind)


def check_listeners(value: Iterable[Listener] | None) -> tuple[Listener, ...]:
    if value is None:
        return ()
    requirement = "callables taking one argument (the event), or an iterable of them"
    if callable(value) and not isinstance(value, type):
        return (check_callable("listeners", value, arguments=1, requirement=requirement),)
    try:
        listeners = tuple(value)
    except TypeError:
        raise ConfigError("listeners", requirement, value) from None
    if not all(
        callable(listener) and not isinstance(listener, type) and takes(listener, 1)
        for listener in listeners
    ):
        raise ConfigError("listeners", requirement, value)
    return listeners


class LoggingListener:
    """Logs each event as one line: ``retry.scheduled policy=db attempt=1 delay=0.042``."""

    __slots__ = ("_level", "_logger")

    def __init__(
        self, logger: logging.Logger | str | None = None, level: int = logging.INFO
    ) -> None:
        if logger is None:
            logger = _log
        elif isinstance(logger, str):
            logger = logging.getLogger(logger)
        elif not isinstance(logger, logging.Logger):
            raise ConfigError("logger", "a logging.Logger, a logger name or None", logger)
        if isinstance(level, bool) or not isinstance(level, int):
            raise ConfigError("level", "a logging level such as logging.INFO", level)
        self._logger = logger
        self._level = level

    def __call__(self, event: Event) -> None:
        if not self._logger.isEnabledFor(self._level):
            return
        parts = " ".join(
            f"{name}={_short(value)}" for name, value in event.fields().items() if name != "time"
        )
        self._logger.log(self._level, "%s %s", event.kind, parts)


def _short(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, BaseException):
        return f"{type(value).__name__}({str(value)!r})"
    return str(value)


E = TypeVar("E", bound=Event)


class Recorder:
    """Collects events, for tests and notebooks.

    Pass it as a policy's ``listeners=`` or use it as a context manager, which
    subscribes it globally for the duration of the block. Thread-safe: events may
    arrive from any thread, and what it answers is a snapshot taken under its lock.
    """

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._subscriptions: list[Callable[[], None]] = []

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def _snapshot(self) -> list[Event]:
        """The events received so far, as a list of their own."""
        with self._lock:
            return list(self.events)

    def kinds(self) -> list[str]:
        return [event.kind for event in self._snapshot()]

    def of(self, event_type: type[E]) -> list[E]:
        return [event for event in self._snapshot() if isinstance(event, event_type)]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()

    def __iter__(self) -> Iterator[Event]:
        return iter(self._snapshot())

    def __len__(self) -> int:
        return len(self.events)

    def __enter__(self) -> Recorder:
        self._subscribe()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._unsubscribe()

    def _subscribe(self) -> None:
        # One entry per ``with``: nested blocks each undo their own subscription.
        self._subscriptions.append(subscribe(self))

    def _unsubscribe(self) -> None:
        if self._subscriptions:
            self._subscriptions.pop()()
