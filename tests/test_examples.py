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


def test_regional_outage_example(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(EXAMPLES / "regional_outage.py"), run_name="__main__")
    rows = [line for line in capsys.readouterr().out.splitlines() if line[:1].isdigit()]
    assert len(rows) == 12
    ttl_column = [row[35:62] for row in rows]
    ours_column = [row[62:] for row in rows]
    assert any("error" in cell for cell in ttl_column)  # the plain TTL cache fails...
    assert not any("error" in cell for cell in ours_column)  # ...every read answered here
    assert any("stale" in cell for cell in ours_column)
    assert any("us-west-2" in cell for cell in ours_column)
    assert ours_column[-1].strip() == "100 us-east-1"  # failed back
