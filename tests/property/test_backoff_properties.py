from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stormproof import Backoff

bases = st.floats(min_value=0.0, max_value=100.0)
caps = st.floats(min_value=0.0, max_value=10_000.0)
multipliers = st.floats(min_value=1.0, max_value=100.0)
randoms = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
retry_numbers = st.integers(min_value=1, max_value=10**12)
jitters = st.sampled_from(["none", "full", "equal", "decorrelated"])


@given(
    bases,
    caps,
    multipliers,
    jitters,
    randoms,
    retry_numbers,
    st.none() | st.floats(min_value=0.0, max_value=1e6),
)
def test_delay_is_always_within_bounds(
    base: float,
    cap: float,
    multiplier: float,
    jitter: str,
    r: float,
    n: int,
    previous: float | None,
) -> None:
    cap = max(cap, base)
    backoff = Backoff(
        base=base,
        cap=cap,
        multiplier=multiplier,
        jitter=jitter,  # type: ignore[arg-type]
        random=lambda: r,
    )
    delay = backoff.delay(n, previous)
    assert 0.0 <= delay <= cap
    ceiling = backoff.ceiling(n)
    assert 0.0 <= ceiling <= cap
    if jitter == "none":
        assert delay == ceiling
    elif jitter == "full":
        assert delay <= ceiling
    elif jitter == "equal":
        assert ceiling / 2 <= delay <= ceiling
    elif previous is None or 3 * previous >= base:
        assert delay >= base or delay == cap


@given(bases, caps, multipliers, st.integers(min_value=1, max_value=5000))
def test_ceiling_never_decreases(base: float, cap: float, multiplier: float, n: int) -> None:
    backoff = Backoff(base=base, cap=max(cap, base), multiplier=multiplier, jitter="none")
    assert backoff.ceiling(n) <= backoff.ceiling(n + 1)
