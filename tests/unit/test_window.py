from __future__ import annotations

from stormproof._core.window import SlidingWindow


def test_counts_expire_slice_by_slice() -> None:
    window = SlidingWindow(window=10.0, slices=10, counters=2)
    window.advance(0.5)
    window.add(0, 3)
    window.advance(4.5)
    window.add(0, 2)
    window.add(1)
    assert (window.total(0), window.total(1)) == (5, 1)
    window.advance(10.2)  # the slice [0, 1) has left the window
    assert window.total(0) == 2
    window.advance(13.9)
    assert window.total(0) == 2
    window.advance(14.0)  # and now the slice [4, 5) too
    assert (window.total(0), window.total(1)) == (0, 0)


def test_a_long_gap_clears_everything() -> None:
    window = SlidingWindow(window=1.0, slices=4, counters=1)
    window.advance(0.0)
    window.add(0, 7)
    window.advance(1000.0)
    assert window.total(0) == 0


def test_a_clock_step_back_keeps_the_current_slice() -> None:
    window = SlidingWindow(window=10.0, slices=10, counters=1)
    window.advance(5.0)
    window.add(0)
    window.advance(3.0)
    window.add(0)
    assert window.total(0) == 2
