from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import stormproof
from stormproof.events import Recorder
from stormproof.testing import FakeClock

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("default")


# Code whose real sleeps fail a test: stormproof itself, the tests and the examples.
# Sleeps made by the standard library or other packages on their own behalf (subprocess
# polling for a child, a server thread's loop) are theirs, not a test's, and pass.
_ROOT = Path(__file__).resolve().parent.parent
_GUARDED = tuple(
    str(path) + os.sep
    for path in (Path(stormproof.__file__).resolve().parent, _ROOT / "tests", _ROOT / "examples")
)


def _slept_by_guarded_code() -> bool:
    """Whether the code that called the sleep (two frames up) is guarded."""
    return sys._getframe(2).f_code.co_filename.startswith(_GUARDED)


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never sleep for real: a real sleep asked for by stormproof, a test or an
    example fails the test. ``asyncio.sleep(0)`` (a yield to the event loop) is fine."""
    real_sleep = time.sleep
    real_asleep = asyncio.sleep

    def guarded_sleep(seconds: float) -> None:
        if seconds > 0 and _slept_by_guarded_code():
            raise AssertionError(f"a test slept for real ({seconds}s): use FakeClock")
        real_sleep(seconds)

    async def guarded_asleep(seconds: float, result: object = None) -> object:
        if seconds > 0 and _slept_by_guarded_code():
            raise AssertionError(f"a test slept for real ({seconds}s): use FakeClock")
        return await real_asleep(seconds, result)

    monkeypatch.setattr(time, "sleep", guarded_sleep)
    monkeypatch.setattr(asyncio, "sleep", guarded_asleep)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder() as recorder:
        yield recorder
