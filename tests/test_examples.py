"""The examples the docs point to keep running and keep showing what they claim."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_retry_storm_example(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLES / "retry_storm.py"), run_name="__main__")
    out = capsys.readouterr().out
    rows = {line[:44].strip(): line[44:].split() for line in out.splitlines() if "x " in line}
    legacy = rows["10 attempts, 50 ms doubling, no jitter"]
    budgeted = rows["3 attempts, full jitter + shared budget"]
    amplification = {name: float(row[0].rstrip("x")) for name, row in rows.items()}
    # Without a budget, every failed request multiplies the load during the outage...
    assert amplification["10 attempts, 50 ms doubling, no jitter"] > 5
    assert amplification["3 attempts, full jitter"] > 2.5
    # ...with a shared budget, attempts stay close to requests.
    assert amplification["3 attempts, full jitter + shared budget"] < 1.1
    assert float(budgeted[1].rstrip("x")) < float(legacy[1].rstrip("x"))
