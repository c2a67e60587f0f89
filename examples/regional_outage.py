"""Reads surviving a regional DNS outage, against real HTTP servers on loopback.

Two local servers play DynamoDB in us-east-1 and us-west-2. From minute 2 to minute
42 the us-east-1 name resolves to nothing (an empty DNS record, as in October 2025);
from minute 22 to 32 us-west-2 cannot be resolved either. Two clients read the same
20 items every minute for an hour:

- "ttl cache": the usual advice, a 5-minute TTL cache in front of us-east-1, no
  stale serving, no failover;
- "stormproof": Cache(ttl=300, stale_ttl=6h) -> Retry with a shared budget ->
  Failover over both regions, each behind its own circuit breaker.

The HTTP requests and the name resolution are real; only the clock is simulated.

Run:  python examples/regional_outage.py
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
from stormproof.events import Recorder
from stormproof.testing import FakeClock

EAST, WEST = "dynamodb.us-east-1.test", "dynamodb.us-west-2.test"
KEYS = [f"item-{n}" for n in range(20)]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def start_region(region: str) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"region": region, "key": self.path.rsplit("/", 1)[-1]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def reader(host: str, port: int) -> Callable[[str], dict[str, Any]]:
    def read(key: str) -> dict[str, Any]:
        with NO_PROXY.open(f"http://{host}:{port}/item/{key}", timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    return read


def main() -> None:
    east_server, east_port = start_region("us-east-1")
    west_server, west_port = start_region("us-west-2")
    clock = FakeClock()
    stale = Recorder()

    ttl_only = Pipeline(Cache(300, clock=clock))
    east_only = reader(EAST, east_port)

    failover = Failover(
        {"us-east-1": reader(EAST, east_port), "us-west-2": reader(WEST, west_port)},
        breaker=CircuitBreaker("dynamodb", window=10, minimum_calls=5, open_for=30, clock=clock),
        failback_after=60,
        clock=clock,
    )
    stormproof = Pipeline(
        Cache(300, stale_ttl=6 * 3600, clock=clock, listeners=[stale]),
        Retry(
            on=is_regional_failure,
            attempts=3,
            budget=TokenBucketBudget.aws_2026(),
            backoff=Backoff(base=0.05),
            clock=clock,
        ),
    )

    def read_round(client: str) -> Counter[str]:
        outcome: Counter[str] = Counter()
        for key in KEYS:
            before = len(stale.events)
            try:
                if client == "ttl":
                    answer = ttl_only.call(east_only, key)
                else:
                    answer = stormproof.call(failover, key)
            except Exception:
                outcome["error"] += 1
                continue
            outcome["stale" if len(stale.events) > before else answer["region"]] += 1
        return outcome

    print(f"{'minutes':<8} {'DNS':<26} {'ttl cache':<26} stormproof")
    with resolve({EAST: "127.0.0.1", WEST: "127.0.0.1"}):
        for start in range(0, 60, 5):
            ttl: Counter[str] = Counter()
            ours: Counter[str] = Counter()
            dns: set[str] = set()
            for minute in range(start, start + 5):
                east_down = 2 <= minute < 42
                west_down = 22 <= minute < 32
                dns.update(["east empty"] if east_down else [])
                dns.update(["west servfail"] if west_down else [])
                with (
                    dns_outage(EAST, mode="empty") if east_down else _nothing(),
                    dns_outage(WEST, mode="servfail") if west_down else _nothing(),
                ):
                    ttl += read_round("ttl")
                    ours += read_round("stormproof")
                clock.advance(60)
            window = f"{start}-{start + 4}"
            print(
                f"{window:<8} {', '.join(sorted(dns)) or 'ok':<26} {_show(ttl):<26} {_show(ours)}"
            )
    for server in (east_server, west_server):
        server.shutdown()
        server.server_close()
    print(
        "\nttl cache: answers from its 5-minute cache, then fails every read until DNS"
        " is back.\nstormproof: fails over to us-west-2 once the us-east-1 breaker opens,"
        " serves stale\nvalues while both regions are unreachable, and fails back after"
        " 60 s of healthy probes."
    )


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _show(outcome: Counter[str]) -> str:
    order = ["us-east-1", "us-west-2", "stale", "error"]
    return ", ".join(f"{outcome[k]} {k}" for k in order if outcome[k])


if __name__ == "__main__":
    main()
