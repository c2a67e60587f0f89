"""What one run returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RunResult"]


@dataclass
class RunResult:
    """One strategy's run: its ``summary`` (metric name: value; the metrics are
    ``stormproof.sim.METRICS``), its per-second ``series`` (by the second requests
    arrived), and the CPU time it took."""

    scenario: str
    strategy: str
    seed: int
    summary: dict[str, Any]
    series: dict[str, list[float]]
    cpu_seconds: float = 0.0
