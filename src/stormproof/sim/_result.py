"""What one run returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RunResult"]


@dataclass
class RunResult:
    """One strategy's run: its summary metrics and its per-second series."""

    scenario: str
    strategy: str
    seed: int
    summary: dict[str, Any]
    series: dict[str, list[float]]
    events: int
    cpu_seconds: float = 0.0
