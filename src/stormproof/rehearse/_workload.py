"""The billing workload of one strategy, run in a process of its own.

``python -m stormproof.rehearse._workload`` reads its settings (JSON) on stdin and
writes what happened (JSON) on stdout. The test host names resolve to 127.0.0.1
(``stormproof.chaos.resolve``); the east name stops resolving for the outage's window
(``stormproof.chaos.dns_outage``, ``mode="empty"``). ``threads`` users each think
(exponential, mean ``think_time``), then read an account (``GetItem``, a key drawn
uniformly from ``keys``) or, for ``1 - read_share`` of requests, write an invoice
(``PutItem``), and wait for the outcome before thinking again: a closed loop.

Failed name lookups of the test names are counted here, at the stand-in for the DNS
resolver (this process's ``getaddrinfo``): an attempt that cannot resolve the name
never reaches a server, but it is sent toward the dependency all the same.
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import sys
import threading
import time
import uuid
from typing import Any

from stormproof.chaos import dns_outage, resolve

from ._servers import make_client

__all__ = ["STRATEGIES", "main", "run_workload"]

STRATEGIES = {
    "aws-legacy": "botocore's legacy retry mode (DynamoDB: 10 attempts, 50 ms doubling)",
    "aws-standard": "botocore's standard retry mode (3 attempts, quota of 500)",
    "aws-2026": "botocore with AWS_NEW_RETRIES_2026=true (DynamoDB: 4 attempts, 25 ms base, "
    "quota costs 14/5)",
    "stormproof": "RegionalClient: a stale-serving Cache for reads, a Retry (3 attempts) with "
    "an AWS standard quota, Failover us-east-1 -> us-west-2 with a breaker per region",
}
"""The strategies a rehearsal can run, and what each is."""

OK, STALE, ERROR = "ok", "stale", "error"


class _LookupCounter:
    """Wraps ``socket.getaddrinfo``: counts failed lookups of ``names`` by second."""

    def __init__(self, names: set[str], t0: float) -> None:
        self.names = names
        self.t0 = t0
        self.failures: dict[int, int] = {}
        self.lookups = 0
        self._lock = threading.Lock()
        self._real: Any = None

    def install(self) -> None:
        self._real = socket.getaddrinfo
        socket.getaddrinfo = self._getaddrinfo

    def uninstall(self) -> None:
        socket.getaddrinfo = self._real

    def _getaddrinfo(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        ours = isinstance(name, str) and name.rstrip(".").lower() in self.names
        if ours:
            with self._lock:
                self.lookups += 1
        try:
            return self._real(host, *args, **kwargs)
        except socket.gaierror:
            if ours:
                second = int(time.time() - self.t0)
                with self._lock:
                    self.failures[second] = self.failures.get(second, 0) + 1
            raise


def _client(settings: dict[str, Any], region: str, retries: dict[str, Any] | None) -> Any:
    return make_client(
        region,
        settings["ports"][region],
        settings["tag"],
        host=settings["hosts"][region],
        retries=retries,
        connect_timeout=settings["attempt_timeout"],
        read_timeout=settings["attempt_timeout"],
        max_pool_connections=max(10, settings["threads"]),
    )


def _caller(settings: dict[str, Any], stale: threading.local) -> Any:
    strategy = settings["strategy"]
    if strategy == "aws-legacy":
        return _client(settings, "us-east-1", {"mode": "legacy"})
    if strategy == "aws-standard":
        return _client(settings, "us-east-1", {"mode": "standard"})
    if strategy == "aws-2026":  # AWS_NEW_RETRIES_2026=true: botocore's default is the 2026 mode
        return _client(settings, "us-east-1", None)
    from stormproof import Cache  # noqa: PLC0415
    from stormproof.events import CacheStaleServed, Event  # noqa: PLC0415
    from stormproof.integrations.botocore import RegionalClient  # noqa: PLC0415

    def listener(event: Event) -> None:
        if isinstance(event, CacheStaleServed):
            stale.flag = True

    return RegionalClient(
        {
            "us-east-1": _client(settings, "us-east-1", None),
            "us-west-2": _client(settings, "us-west-2", None),
        },
        cache=Cache(
            ttl=settings["cache_ttl"], stale_ttl=settings["stale_ttl"], listeners=[listener]
        ),
    )


def run_workload(settings: dict[str, Any]) -> dict[str, Any]:
    """Run the workload described by ``settings`` and return what happened: ``t0``
    (Unix time of its start), ``requests`` (``[arrival offset, outcome, latency]``
    each), ``dns_failures`` (offset second: failed lookups of the test names)."""
    hosts: dict[str, str] = settings["hosts"]
    names = {h.lower() for h in hosts.values()}
    stale = threading.local()
    caller = _caller(settings, stale)
    seconds = float(settings["seconds"])
    start, end = settings["outage"]
    records: list[list[Any]] = []
    lock = threading.Lock()
    with resolve(dict.fromkeys(hosts.values(), "127.0.0.1")):
        t0 = time.time()
        began = time.monotonic()
        counter = _LookupCounter(names, t0)
        counter.install()
        stop = threading.Event()

        def user(index: int) -> None:
            rng = random.Random(f"{settings['seed']}/{index}")
            pause = threading.Event()
            while True:
                pause.wait(rng.expovariate(1.0 / settings["think_time"]))
                arrived = time.monotonic() - began
                if arrived >= seconds:
                    return
                read = rng.random() < settings["read_share"]
                key = rng.randrange(settings["keys"])
                stale.flag = False
                outcome = OK
                try:
                    if read:
                        caller.get_item(TableName="accounts", Key={"id": {"S": f"acct-{key}"}})
                    else:
                        caller.put_item(
                            TableName="invoices",
                            Item={
                                "id": {"S": uuid.uuid4().hex},
                                "account": {"S": f"acct-{key}"},
                                "amount": {"N": str(rng.randrange(1, 10_000))},
                                "ts": {"N": repr(time.time())},
                            },
                        )
                    if stale.flag:
                        outcome = STALE
                except Exception:  # a user-visible error, whatever it is
                    outcome = ERROR
                latency = time.monotonic() - began - arrived
                with lock:
                    records.append([round(arrived, 4), outcome, round(latency, 4)])

        def outage() -> None:
            if stop.wait(max(0.0, start - (time.monotonic() - began))):
                return
            with dns_outage(hosts["us-east-1"], mode="empty"):
                stop.wait(max(0.0, end - (time.monotonic() - began)))

        threads = [threading.Thread(target=outage, daemon=True)]
        threads += [
            threading.Thread(target=user, args=(i,), daemon=True)
            for i in range(settings["threads"])
        ]
        for thread in threads:
            thread.start()
        for thread in threads[1:]:
            thread.join()
        stop.set()
        threads[0].join()
        counter.uninstall()
    return {
        "t0": t0,
        "wall_s": round(time.monotonic() - began, 3),
        "requests": records,
        "dns_failures": {str(k): v for k, v in sorted(counter.failures.items())},
        "dns_lookups": counter.lookups,
        "seconds": math.ceil(seconds),
    }


def main() -> int:  # pragma: no cover - run in a subprocess
    settings = json.load(sys.stdin)
    if settings["strategy"] == "aws-2026" and os.environ.get("AWS_NEW_RETRIES_2026") != "true":
        print("aws-2026 needs AWS_NEW_RETRIES_2026=true set before it starts", file=sys.stderr)
        return 2
    json.dump(run_workload(settings), sys.stdout)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
