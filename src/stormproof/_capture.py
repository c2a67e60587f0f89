"""Events captured for assertions in tests: ``capture_events()``.

A ``CapturedEvents`` is a ``Recorder`` that keeps each event once, however many ways
it reached it (globally and as a policy's listener), filters by type, policy and
fields, and asserts with a failure message that lists what was captured.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any, TypeVar

from ._core.errors import ConfigError
from ._core.events import Event, Recorder

__all__ = ["CapturedEvents", "capture_events"]

E = TypeVar("E", bound=Event)

_SHOWN = 50
"""Captured events listed in a failure message; the rest are counted."""


class CapturedEvents(Recorder):
    """Every event it receives, in order, each once.

    ``with capture_events() as events:`` subscribes it globally for the block; it is
    also a listener to pass as a policy's ``listeners=``. An event that reaches it
    both ways is kept once. Thread-safe.
    """

    def __init__(self) -> None:
        super().__init__()
        # The events kept, by identity: an event arriving again (as a policy's own
        # listener and as a global one) is not kept twice. Holding the events keeps
        # their ids from being reused.
        self._kept: dict[int, Event] = {}

    def __call__(self, event: Event) -> None:
        with self._lock:
            if id(event) in self._kept:
                return
            self._kept[id(event)] = event
            self.events.append(event)

    def clear(self) -> None:
        with self._lock:
            self.events.clear()
            self._kept.clear()

    def __enter__(self) -> CapturedEvents:
        self._subscribe()
        return self

    # -- filters -------------------------------------------------------------------------

    def of(self, event_type: type[E], *, policy: str | None = None) -> list[E]:
        """The events of ``event_type`` (subclasses included), from ``policy`` if given."""
        _check_type(event_type)
        return [
            event
            for event in self._snapshot()
            if isinstance(event, event_type) and (policy is None or event.policy == policy)
        ]

    def from_policy(self, policy: str) -> list[Event]:
        """Every event the policy named ``policy`` emitted."""
        return [event for event in self._snapshot() if event.policy == policy]

    def matching(self, event_type: type[E], /, **fields: Any) -> list[E]:
        """The events of ``event_type`` whose fields have the values given.

        A value matches when it is equal to the field's value (``pytest.approx``
        works), or, when it is a type, if the field's value is an instance of it
        (``error=ConnectionError``). A name that is not a field of ``event_type``
        raises ``ConfigError``: a typo never makes an assertion pass.
        """
        _check_fields(event_type, fields)
        return [event for event in self.of(event_type) if _matches(event, fields)]

    # -- assertions ----------------------------------------------------------------------

    def assert_emitted(self, event_type: type[E], /, **fields: Any) -> E:
        """Fail unless an event of ``event_type`` with these field values was captured;
        returns the first one. The failure lists every event captured."""
        found = self.matching(event_type, **fields)
        if found:
            return found[0]
        captured = self._snapshot()
        what = _describe(event_type, fields)
        if not captured:
            raise AssertionError(f"expected {what}; no event was captured")
        summary = (
            "the one event captured does not match"
            if len(captured) == 1
            else f"none of the {len(captured)} events captured matches"
        )
        raise AssertionError(f"expected {what}; {summary}:\n" + _listing(captured, captured))

    def assert_not_emitted(self, event_type: type[Event] = Event, /, **fields: Any) -> None:
        """Fail if an event of ``event_type`` with these field values was captured
        (with no arguments: if any event was). The failure lists the ones that were."""
        found = self.matching(event_type, **fields)
        if not found:
            return
        captured = self._snapshot()
        summary = (
            "the one event captured matches"
            if len(captured) == 1
            else f"{len(found)} of the {len(captured)} events captured match"
        )
        what = _describe(event_type, fields, article=False)
        raise AssertionError(f"expected no {what}; {summary}:\n" + _listing(captured, found))

    def __repr__(self) -> str:
        kinds = self.kinds()
        shown = ", ".join(kinds[:_SHOWN]) + (", ..." if len(kinds) > _SHOWN else "")
        return f"<CapturedEvents: {_count(len(kinds))}{': ' + shown if kinds else ''}>"


def capture_events() -> CapturedEvents:
    """Capture events for a test: ``with capture_events() as events:`` receives every
    event of every policy during the block; or pass ``events`` as a policy's
    ``listeners=[events]`` to hear that policy alone."""
    return CapturedEvents()


# -- helpers ---------------------------------------------------------------------------------


def _check_type(event_type: object) -> None:
    if not (isinstance(event_type, type) and issubclass(event_type, Event)):
        raise ConfigError(
            "event_type", "an Event class such as stormproof.events.RetryScheduled", event_type
        )


def _check_fields(event_type: type[Event], fields: dict[str, Any]) -> None:
    _check_type(event_type)
    names = [field.name for field in dataclasses.fields(event_type)]
    for name, value in fields.items():
        if name not in names:
            raise ConfigError(name, f"a field of {event_type.__name__} ({', '.join(names)})", value)


def _matches(event: Event, fields: dict[str, Any]) -> bool:
    for name, expected in fields.items():
        actual = getattr(event, name)
        if isinstance(expected, type):
            if not (isinstance(actual, expected) or actual == expected):
                return False
        elif actual != expected:  # ``pytest.approx`` answers this too
            return False
    return True


def _describe(event_type: type[Event], fields: dict[str, Any], article: bool = True) -> str:
    """``a RetryScheduled event with policy='db', attempt=1``."""
    what = "event" if event_type is Event else f"{event_type.__name__} event"
    if article:
        what = f"an {what}" if event_type is Event else f"a {what}"
    if not fields:
        return what
    given = ", ".join(
        f"{key}={value.__name__ if isinstance(value, type) else _show(value)}"
        for key, value in fields.items()
    )
    return f"{what} with {given}"


def _count(n: int) -> str:
    return f"{n} event" if n == 1 else f"{n} events"


def _listing(captured: list[Event], shown: list[Event]) -> str:
    """The ``shown`` events, one a line, each numbered by its place in ``captured``."""
    place = {id(event): n for n, event in enumerate(captured, start=1)}
    lines = [f"  {place[id(event)]}. {_line(event)}" for event in shown[:_SHOWN]]
    if len(shown) > _SHOWN:
        lines.append(f"  ... and {len(shown) - _SHOWN} more")
    return "\n".join(lines)


def _line(event: Event) -> str:
    """``retry.scheduled policy='db' time=0.0 attempt=1 delay=0.1 ...``."""
    fields = " ".join(f"{name}={_show(value)}" for name, value in event.fields().items())
    return f"{event.kind} {fields}"


def _show(value: object) -> str:
    if isinstance(value, Enum):
        return repr(value.value)
    return repr(value)
