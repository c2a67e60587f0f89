from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from stormproof.events import Recorder
from stormproof.testing import FakeClock

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def _no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never sleep for real: a real sleep fails the test that asked for it."""
    real_asleep = asyncio.sleep

    def forbidden_sleep(seconds: float) -> None:
        raise AssertionError(f"a test slept for real ({seconds}s): use FakeClock")

    async def guarded_asleep(seconds: float, result: object = None) -> object:
        if seconds > 0:
            raise AssertionError(f"a test slept for real ({seconds}s): use FakeClock")
        return await real_asleep(0, result)

    monkeypatch.setattr(time, "sleep", forbidden_sleep)
    monkeypatch.setattr(asyncio, "sleep", guarded_asleep)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder() as recorder:
        yield recorder
