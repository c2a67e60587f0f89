"""stormproof's pytest plugin, loaded automatically once stormproof is installed.

Fixtures:

- ``fake_clock``: a ``FakeClock`` starting at 0.
- ``dns``: DNS control for the test: ``dns.outage("host", mode="empty")``,
  ``dns.resolve({"host.test": "127.0.0.1"})``, ``dns.restore()``; everything is
  undone when the test ends.
- ``chaos``: fault injectors on the test's ``fake_clock``: ``chaos.fault(rate, error)``,
  ``chaos.latency(rate, seconds)``, ``chaos.outcome(rate, value)``, plus ``chaos.dns``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from ._chaos import Chaos
from ._dns import Mode, dns_outage, resolve
from ._testing import FakeClock

__all__ = ["ChaosKit", "DNSControl", "chaos", "dns", "fake_clock"]


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
def fake_clock() -> FakeClock:
    """A FakeClock: sleeps advance it instantly."""
    return FakeClock()


@pytest.fixture
def dns() -> Iterator[DNSControl]:
    """DNS outages and overrides, undone when the test ends."""
    control = DNSControl()
    try:
        yield control
    finally:
        control.restore()


@pytest.fixture
def chaos(fake_clock: FakeClock, dns: DNSControl) -> ChaosKit:
    """Fault injectors on the test's fake clock, and its DNS control."""
    return ChaosKit(fake_clock, dns)
