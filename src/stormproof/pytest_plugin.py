"""stormproof's pytest plugin, loaded automatically once stormproof is installed.

Fixtures (each name starts with ``stormproof_``, so none clashes with a project's own):

- ``stormproof_fake_clock``: a ``FakeClock`` starting at 0.
- ``stormproof_dns``: DNS control for the test: ``.outage("host", mode="empty")``,
  ``.resolve({"host.test": "127.0.0.1"})``, ``.restore()``; everything is undone when
  the test ends.
- ``stormproof_chaos``: fault injectors on the test's ``stormproof_fake_clock``:
  ``.fault(rate, error)``, ``.latency(rate, seconds)``, ``.outcome(rate, value)``,
  plus ``.dns`` (the test's ``stormproof_dns``).
- ``stormproof_events``: every event emitted while the test runs, from every policy
  (a ``CapturedEvents``: ``.of(RetryScheduled)``, ``.kinds()``,
  ``.assert_emitted(RetryScheduled, policy="db", attempt=1)``, ...).

The former names, ``fake_clock``, ``dns`` and ``chaos``, still work for this release:
each gives the same object as its new name and warns (``DeprecationWarning``) with the
name to use. A project's own fixture of one of those names takes precedence, as any
conftest fixture does over a plugin's.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from ._capture import CapturedEvents, capture_events
from ._chaos import Chaos
from ._dns import Mode, dns_outage, resolve
from ._testing import FakeClock

__all__ = [
    "ChaosKit",
    "DNSControl",
    "chaos",
    "dns",
    "fake_clock",
    "stormproof_chaos",
    "stormproof_dns",
    "stormproof_events",
    "stormproof_fake_clock",
]


class DNSControl:
    """DNS outages and overrides that last until ``restore()`` or the end of the test."""

    def __init__(self) -> None:
        self._active: list[dns_outage | resolve] = []

    def outage(self, *hostnames: str, mode: Mode = "nxdomain") -> dns_outage:
        patch = dns_outage(*hostnames, mode=mode)
        patch.start()
        self._active.append(patch)
        return patch

    def resolve(self, mapping: Mapping[str, str]) -> resolve:
        patch = resolve(mapping)
        patch.start()
        self._active.append(patch)
        return patch

    def restore(self) -> None:
        """End every outage and override this control started."""
        while self._active:
            self._active.pop().stop()


class ChaosKit:
    """Builds ``Chaos`` policies on the test's fake clock."""

    def __init__(self, clock: FakeClock, dns: DNSControl) -> None:
        self.clock = clock
        self.dns = dns

    def fault(self, rate: float = 1.0, error: Any = ConnectionError, **options: Any) -> Chaos:
        return Chaos.fault(rate, error, **{"clock": self.clock, **options})

    def latency(self, rate: float = 1.0, seconds: float = 1.0, **options: Any) -> Chaos:
        return Chaos.latency(rate, seconds, **{"clock": self.clock, **options})

    def outcome(self, rate: float = 1.0, value: Any = None, **options: Any) -> Chaos:
        return Chaos.outcome(rate, value, **{"clock": self.clock, **options})


@pytest.fixture
def stormproof_fake_clock() -> FakeClock:
    """A FakeClock: sleeps advance it instantly."""
    return FakeClock()


@pytest.fixture
def stormproof_dns() -> Iterator[DNSControl]:
    """DNS outages and overrides, undone when the test ends."""
    control = DNSControl()
    try:
        yield control
    finally:
        control.restore()


@pytest.fixture
def stormproof_events() -> Iterator[CapturedEvents]:
    """Every event emitted during the test, from every policy (subscribed globally)."""
    with capture_events() as events:
        yield events


@pytest.fixture
def stormproof_chaos(stormproof_fake_clock: FakeClock, stormproof_dns: DNSControl) -> ChaosKit:
    """Fault injectors on the test's fake clock, and its DNS control."""
    return ChaosKit(stormproof_fake_clock, stormproof_dns)


# -- the former names, deprecated -----------------------------------------------------------


def _renamed(request: pytest.FixtureRequest, old: str, new: str) -> None:
    """Warn that fixture ``old`` is now ``new``, at the test that asked for it."""
    message = (
        f"stormproof's {old!r} fixture is deprecated and goes in the next release: "
        f"use {new!r} (the same object)"
    )
    function = getattr(request, "function", None)
    code = getattr(function, "__code__", None)
    if code is None:  # pragma: no cover - a fixture of a wider scope asked for it
        warnings.warn(message, DeprecationWarning, stacklevel=3)
        return
    warnings.warn_explicit(
        message,
        DeprecationWarning,
        code.co_filename,
        code.co_firstlineno,
        module=getattr(function, "__module__", None),
    )


@pytest.fixture
def fake_clock(request: pytest.FixtureRequest, stormproof_fake_clock: FakeClock) -> FakeClock:
    """Deprecated: ``stormproof_fake_clock``."""
    _renamed(request, "fake_clock", "stormproof_fake_clock")
    return stormproof_fake_clock


@pytest.fixture
def dns(request: pytest.FixtureRequest, stormproof_dns: DNSControl) -> DNSControl:
    """Deprecated: ``stormproof_dns``."""
    _renamed(request, "dns", "stormproof_dns")
    return stormproof_dns


@pytest.fixture
def chaos(request: pytest.FixtureRequest, stormproof_chaos: ChaosKit) -> ChaosKit:
    """Deprecated: ``stormproof_chaos``."""
    _renamed(request, "chaos", "stormproof_chaos")
    return stormproof_chaos
