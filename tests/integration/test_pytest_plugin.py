"""The pytest plugin loads from the installed package and its fixtures work; the former
fixture names still do, with a DeprecationWarning that names the new one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import stormproof

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _the_package_under_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pytest run in a subprocess imports the stormproof these tests import (a
    relative ``PYTHONPATH`` would not reach it from the subprocess's directory)."""
    source = str(Path(stormproof.__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", source if not rest else source + os.pathsep + rest)


def test_plugin_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket

        import pytest

        from stormproof import Retry
        from stormproof.testing import FakeClock


        def test_fake_clock(stormproof_fake_clock):
            assert isinstance(stormproof_fake_clock, FakeClock)
            stormproof_fake_clock.sleep(5)
            assert stormproof_fake_clock.now() == 5


        def test_dns(stormproof_dns):
            stormproof_dns.resolve({"db.example.test": "127.0.0.1"})
            assert socket.getaddrinfo("db.example.test", 80)[0][4][0] == "127.0.0.1"
            stormproof_dns.outage("db.example.test", mode="empty")
            with pytest.raises(socket.gaierror):
                socket.getaddrinfo("db.example.test", 80)


        def test_dns_is_restored_after_each_test():
            with pytest.raises(socket.gaierror):
                socket.getaddrinfo("db.example.test", 80)


        def test_chaos(stormproof_chaos, stormproof_fake_clock, stormproof_dns):
            assert stormproof_chaos.clock is stormproof_fake_clock
            assert stormproof_chaos.dns is stormproof_dns
            flaky = stormproof_chaos.fault(sequence=["fail", "pass"])
            retry = Retry(on=ConnectionError, clock=stormproof_fake_clock)
            assert retry.call(flaky.call, lambda: "ok") == "ok"
            assert len(stormproof_fake_clock.sleeps) == 1
            slow = stormproof_chaos.latency(1.0, 3.0)
            slow.call(lambda: None)
            assert stormproof_fake_clock.slept > 3
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=4)


def test_the_former_names_warn_and_give_the_same_objects(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket

        import pytest


        def test_former_names(fake_clock, dns, chaos, stormproof_fake_clock, stormproof_dns):
            assert fake_clock is stormproof_fake_clock
            assert dns is stormproof_dns
            assert chaos.clock is fake_clock
            assert chaos.dns is dns
            dns.outage("db.example.test", mode="empty")
            with pytest.raises(socket.gaierror):
                socket.getaddrinfo("db.example.test", 80)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, warnings=3)
    # Each warning names the test that asked for the former name, and the new name.
    for old, new in [
        ("fake_clock", "stormproof_fake_clock"),
        ("dns", "stormproof_dns"),
        ("chaos", "stormproof_chaos"),
    ]:
        result.stdout.fnmatch_lines(
            [
                f"*test_the_former_names*.py:*: DeprecationWarning: stormproof's '{old}' "
                f"fixture is deprecated and goes in the next release: use '{new}' "
                "(the same object)"
            ]
        )


def test_a_projects_own_fixture_of_a_former_name_wins(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest


        @pytest.fixture
        def dns():
            return "the project's own"
        """
    )
    pytester.makepyfile(
        """
        def test_own(dns, stormproof_dns):
            assert dns == "the project's own"
            assert stormproof_dns is not dns
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=1)


def test_a_deprecated_name_fails_where_warnings_are_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_old(fake_clock):
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error::DeprecationWarning"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*use 'stormproof_fake_clock'*"])


def test_the_events_fixture_captures_each_test_and_explains_a_failure(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        from stormproof import Fallback, Retry
        from stormproof.events import FallbackUsed, RetryScheduled
        from stormproof.testing import CapturedEvents


        def down():
            raise ConnectionError("reset")


        def test_captures(stormproof_events, stormproof_fake_clock):
            assert isinstance(stormproof_events, CapturedEvents)
            Fallback("cached", clock=stormproof_fake_clock, name="prices").call(down)
            stormproof_events.assert_emitted(FallbackUsed, policy="prices")


        def test_starts_empty(stormproof_events):
            assert len(stormproof_events) == 0


        def test_fails_with_the_listing(stormproof_events, stormproof_fake_clock):
            Fallback("cached", clock=stormproof_fake_clock, name="prices").call(down)
            stormproof_events.assert_emitted(RetryScheduled, policy="db")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: expected a RetryScheduled event with policy='db'; "
            "the one event captured does not match:",
            "*1. fallback.used policy='prices' time=0.0 error=ConnectionError('reset')",
        ]
    )
