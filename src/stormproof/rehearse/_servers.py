"""Starting the counting moto servers, reading their counts, and the replicator."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Mapping
from typing import IO, Any

from ._server import COUNTS_PATH

__all__ = ["REGIONS", "Replicator", "Server", "make_client", "seed_tables"]

REGIONS = ("us-east-1", "us-west-2")


class Server:
    """A counting moto server (``python -m stormproof.rehearse._server``) in a
    subprocess on 127.0.0.1; ``port`` once started. A context manager."""

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self._errors: IO[str] | None = None

    def start(self, timeout: float = 60.0) -> Server:
        self._errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen(
            [sys.executable, "-m", "stormproof.rehearse._server", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=self._errors,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._process = process
        box: list[str] = []
        reader = threading.Thread(target=_first_line, args=(process, box), daemon=True)
        reader.start()
        reader.join(timeout)
        line = box[0] if box else ""
        if not line.startswith("PORT "):
            self.stop()
            self._errors.seek(0)
            said = (line + self._errors.read()).strip()[-2000:]
            raise RuntimeError(f"the moto server did not start: {said or 'no output'}")
        self.port = int(line.split()[1])
        return self

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{tag: {tenth: {operation: n}}}`` as the server counted them (tenth: Unix time
        times 10, a whole number)."""
        url = f"http://127.0.0.1:{self.port}{COUNTS_PATH}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            document: dict[str, dict[str, dict[str, int]]] = json.load(answer)
        return document

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        errors, self._errors = self._errors, None
        if errors is not None:
            errors.close()

    def __enter__(self) -> Server:
        return self.start() if self._process is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _first_line(process: subprocess.Popen[str], box: list[str]) -> None:
    assert process.stdout is not None
    box.append(process.stdout.readline())


def make_client(region: str, port: int, tag: str, *, host: str = "127.0.0.1", **config: Any) -> Any:
    """A boto3 DynamoDB client for the server on ``port`` (by ``host``), its requests
    tagged ``tag``; ``config``: botocore ``Config`` options (``retries=None``: the
    SDK's default mode)."""
    import boto3  # noqa: PLC0415 - the extra is imported only when a rehearsal runs
    from botocore.config import Config  # noqa: PLC0415

    options = {"retries": {"mode": "standard"}, "connect_timeout": 5, "read_timeout": 10}
    options.update(config)
    if options["retries"] is None:
        del options["retries"]
    return boto3.client(
        "dynamodb",
        region_name=region,
        endpoint_url=f"http://{host}:{port}",
        aws_access_key_id="rehearsal",
        aws_secret_access_key="rehearsal",
        config=Config(user_agent_extra=f"rehearse/{tag}", **options),
    )


def seed_tables(ports: Mapping[str, int], keys: int) -> None:
    """Create the ``accounts`` and ``invoices`` tables on every server, and the
    accounts (``acct-0`` ... ``acct-{keys-1}``) in each."""
    for region, port in ports.items():
        client = make_client(region, port, "setup")
        for table in ("accounts", "invoices"):
            client.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        for first in range(0, keys, 25):
            client.batch_write_item(
                RequestItems={
                    "accounts": [
                        {
                            "PutRequest": {
                                "Item": {
                                    "id": {"S": f"acct-{k}"},
                                    "balance": {"N": str(100 * k)},
                                }
                            }
                        }
                        for k in range(first, min(first + 25, keys))
                    ]
                }
            )


class Replicator:
    """Copies new invoices from us-east-1's table to us-west-2's every ``interval``
    seconds, talking to the servers by address (global tables replicate server-side, so
    it goes on through the DNS outage). Its requests are tagged ``replicator``."""

    def __init__(self, ports: Mapping[str, int], interval: float = 1.0) -> None:
        self.source = make_client("us-east-1", ports["us-east-1"], "replicator")
        self.target = make_client("us-west-2", ports["us-west-2"], "replicator")
        self.interval = interval
        self.copied = 0
        self._since = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Replicator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._step_safely()

    def _step_safely(self) -> None:
        try:
            self.step()
        except Exception:  # pragma: no cover - a failed pass is made up at the next
            return

    def step(self) -> int:
        """One pass: copy the invoices written since the last pass; returns how many."""
        since = self._since
        items: list[dict[str, Any]] = []
        pages = self.source.get_paginator("scan").paginate(
            TableName="invoices",
            FilterExpression="ts > :since",
            ExpressionAttributeValues={":since": {"N": repr(since)}},
        )
        for page in pages:
            items.extend(page.get("Items", []))
        for first in range(0, len(items), 25):
            batch = items[first : first + 25]
            self.target.batch_write_item(
                RequestItems={"invoices": [{"PutRequest": {"Item": item}} for item in batch]}
            )
        if items:
            self._since = max(float(item["ts"]["N"]) for item in items)
        self.copied += len(items)
        return len(items)
