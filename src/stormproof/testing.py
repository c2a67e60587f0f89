"""Helpers for testing code that uses stormproof: no test ever has to really wait, and
what the policies decided can be asserted."""

from ._capture import CapturedEvents, capture_events
from ._testing import FakeClock

__all__ = ["CapturedEvents", "FakeClock", "capture_events"]
