"""The pytest plugin loads from the installed package and its fixtures work."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_plugin_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket

        import pytest

        from stormproof import Retry
        from stormproof.testing import FakeClock


        def test_fake_clock(fake_clock):
            assert isinstance(fake_clock, FakeClock)
            fake_clock.sleep(5)
            assert fake_clock.now() == 5


        def test_dns(dns):
            dns.resolve({"db.example.test": "127.0.0.1"})
            assert socket.getaddrinfo("db.example.test", 80)[0][4][0] == "127.0.0.1"
            dns.outage("db.example.test", mode="empty")
            with pytest.raises(socket.gaierror):
                socket.getaddrinfo("db.example.test", 80)


        def test_dns_is_restored_after_each_test():
            with pytest.raises(socket.gaierror):
                socket.getaddrinfo("db.example.test", 80)


        def test_chaos(chaos, fake_clock):
            flaky = chaos.fault(sequence=["fail", "pass"])
            retry = Retry(on=ConnectionError, clock=fake_clock)
            assert retry.call(flaky.call, lambda: "ok") == "ok"
            assert len(fake_clock.sleeps) == 1
            slow = chaos.latency(1.0, 3.0)
            slow.call(lambda: None)
            assert fake_clock.slept > 3
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
