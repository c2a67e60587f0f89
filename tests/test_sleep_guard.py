"""The suite's own rule: tests never sleep for real, yet the standard library's own
waits (subprocess polling its child) are not the test's sleeps."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from stormproof import Retry


def failing() -> None:
    raise ConnectionError("down")


async def afailing() -> None:
    raise ConnectionError("down")


def test_a_policy_that_sleeps_for_real_fails_the_test() -> None:
    with pytest.raises(AssertionError, match="slept for real"):
        Retry(on=ConnectionError).call(failing)  # the default clock really sleeps


def test_a_policy_that_sleeps_for_real_fails_the_test_async() -> None:
    with pytest.raises(AssertionError, match="slept for real"):
        asyncio.run(Retry(on=ConnectionError).acall(afailing))


def test_a_test_that_sleeps_for_real_fails() -> None:
    with pytest.raises(AssertionError, match="slept for real"):
        time.sleep(0.001)


def test_a_yield_to_the_event_loop_is_not_a_sleep() -> None:
    asyncio.run(asyncio.sleep(0))


def test_the_standard_library_may_wait_for_a_child_process() -> None:
    # subprocess.run polls its child with short real sleeps when given a timeout.
    done = subprocess.run(
        [sys.executable, "-c", "import time; time.sleep(0.05)"], timeout=60, check=True
    )
    assert done.returncode == 0
