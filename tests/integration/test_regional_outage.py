"""Every read answered through a regional DNS outage: Cache, Retry with a budget, and
Failover over two regions with breakers, against real HTTP servers on loopback."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from typing import Any

from stormproof import (
    Backoff,
    Cache,
    CircuitBreaker,
    Failover,
    Pipeline,
    Retry,
    TokenBucketBudget,
)
from stormproof.chaos import dns_outage, resolve
from stormproof.classify import is_regional_failure
from stormproof.events import CacheStaleServed, FailoverSwitched, Recorder
from stormproof.testing import FakeClock

from .conftest import RegionServer

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def region_reader(host: str, port: int) -> Any:
    def read(key: str) -> dict[str, str]:
        with NO_PROXY.open(f"http://{host}:{port}/item/{key}", timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    return read


def test_every_read_is_answered_through_a_regional_dns_outage(
    regions: dict[str, RegionServer],
) -> None:
    clock = FakeClock()
    recorder = Recorder()
    east_host, west_host = "dynamodb.us-east-1.test", "dynamodb.us-west-2.test"
    failover = Failover(
        {
            "us-east-1": region_reader(east_host, regions["us-east-1"].port),
            "us-west-2": region_reader(west_host, regions["us-west-2"].port),
        },
        breaker=CircuitBreaker("dynamodb", window=10, minimum_calls=5, open_for=30, clock=clock),
        failback_after=60,
        probe_interval=10,
        clock=clock,
        listeners=[recorder],
    )
    pipeline = Pipeline(
        Cache(300, stale_ttl=6 * 3600, clock=clock, listeners=[recorder]),
        Retry(
            on=is_regional_failure,
            attempts=3,
            budget=TokenBucketBudget.aws_2026(),
            backoff=Backoff(base=0.05),
            clock=clock,
        ),
    )
    keys = [f"item-{n}" for n in range(20)]
    answers: Counter[str] = Counter()

    def read_all() -> None:
        for key in keys:
            answers[pipeline.call(failover, key)["region"]] += 1

    with resolve({east_host: "127.0.0.1", west_host: "127.0.0.1"}):
        read_all()  # warm: everything from us-east-1
        assert answers == {"us-east-1": 20}
        with dns_outage(east_host, mode="empty"):
            for _ in range(30):  # 30 minutes of reads, one round a minute
                clock.advance(60)
                read_all()
            served_by_west = len(regions["us-west-2"].requests)
            assert served_by_west > 0  # entries expired; us-west-2 answered them
            with dns_outage(west_host, mode="servfail"):
                for _ in range(10):  # both regions unreachable for 10 minutes
                    clock.advance(60)
                    read_all()
            assert len(regions["us-west-2"].requests) == served_by_west
        assert sum(answers.values()) == 20 + 40 * 20  # every read answered, none raised
        assert recorder.of(CacheStaleServed)  # the cache bridged the double outage
        assert failover.active_region == "us-west-2"
        # DNS is back: probes succeed for 60 s, then traffic fails back.
        for _ in range(10):
            clock.advance(60)
            read_all()
        assert failover.active_region == "us-east-1"

    switches = [(e.previous, e.region, e.reason) for e in recorder.of(FailoverSwitched)]
    assert switches[0] == ("us-east-1", "us-west-2", "failover")
    assert switches[-1] == ("us-west-2", "us-east-1", "failback")
