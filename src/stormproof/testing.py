"""Helpers for testing code that uses stormproof: no test ever has to really wait."""

from ._testing import FakeClock

__all__ = ["FakeClock"]
