"""What the command prints while it runs (a line per finished strategy; on a terminal,
a bar that fits it), and Ctrl-C: the run stops, the workers are gone, nothing is
written."""

from __future__ import annotations

import io
import multiprocessing
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import stormproof
from stormproof import cli
from stormproof.cli import main
from stormproof.sim import load_scenario, run_strategies, run_sweep, strategies_for

from .test_runs import OUTAGE
from .test_sweeps import CONTENTION

NAMES = ["naive", "aws-legacy", "stormproof"]


class Terminal(io.StringIO):
    """Standard error on a terminal."""

    def isatty(self) -> bool:
        return True


def small(tmp_path: Path, text: str = OUTAGE) -> str:
    path = tmp_path / "scenario.toml"
    path.write_text(text)
    return str(path)


def test_without_a_terminal_a_line_per_strategy_as_it_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", small(tmp_path), "--strategies", ",".join(NAMES), "--no-plots"]
    assert main([*argv, "--workers", "2", "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "small-outage: 4 simulated minutes, 3 strategies"
    finished = lines[1:4]
    assert sorted(line.split(":")[0] for line in finished) == sorted(NAMES)
    for count, line in enumerate(finished, start=1):
        assert re.fullmatch(rf"[a-z-]+: finished after \d+\.\d s \({count} of 3\)", line)
    assert re.fullmatch(r"simulated 3 strategies in \d+\.\d s", lines[4])
    assert "\r" not in "".join(lines)


def segments(text: str) -> list[str]:
    """What a terminal shows, piece by piece: the text between carriage returns and
    line ends, without the erase-to-end-of-line codes."""
    return [part for part in re.split(r"[\r\n]", text.replace("\x1b[K", "")) if part]


@pytest.mark.parametrize("columns", [40, 20, 120])
def test_on_a_terminal_the_bar_fits_its_width(
    columns: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("COLUMNS", str(columns))
    argv = ["simulate", small(tmp_path), "--strategies", ",".join(NAMES), "--no-plots"]
    assert main([*argv, "--workers", "1", "--out", str(tmp_path / "out")]) == 0
    shown = terminal.getvalue()
    bars = [part for part in segments(shown) if "%" in part]
    assert bars, "the bar was drawn"
    for part in bars:
        assert len(part) <= columns - 1  # never wraps onto a second line
    if columns >= 40:
        assert all(part.startswith("[") for part in bars)
    # The bar is redrawn in place: the only line ends are the header's, a line per
    # finished strategy and the closing line.
    assert shown.count("\n") == 1 + len(NAMES) + 1
    assert shown.count("finished after") == len(NAMES)


def test_the_bar_redraws_in_place_as_the_shares_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setenv("COLUMNS", "40")
    progress = cli._Progress(["a", "b"], terminal)
    progress([0.0, 0.0])
    progress([1.0, 0.5])
    progress([1.0, 1.0])
    progress.close()
    parts = segments(terminal.getvalue())
    assert all(len(part) <= 39 for part in parts)
    empty = re.fullmatch(r"\[( +)\]   0%  0/2  (\d+) s", parts[0])
    assert empty is not None
    assert len(empty.group(1)) == 39 - len(f"   0%  0/2  {empty.group(2)} s") - 2
    assert re.fullmatch(r"a: finished after \d+\.\d s \(1 of 2\)", parts[1])
    half = re.fullmatch(r"\[(#+)( +)\]  75%  1/2  \d+ s", parts[2])
    assert half is not None
    assert len(half.group(1)) == int(0.75 * (len(half.group(1)) + len(half.group(2))))
    assert re.fullmatch(r"b: finished after \d+\.\d s \(2 of 2\)", parts[3])
    assert re.fullmatch(r"\[#+\] 100%  2/2  \d+ s", parts[4])
    assert re.fullmatch(r"simulated 2 strategies in \d+\.\d s", parts[5])


def test_without_a_terminal_nothing_but_lines() -> None:
    stream = io.StringIO()
    progress = cli._Progress(["a", "b"], stream)
    progress([0.3, 0.5])
    progress([1.0, 0.5])
    progress([1.0, 0.9])
    assert re.fullmatch(r"a: finished after \d+\.\d s \(1 of 2\)\n", stream.getvalue())


# -- Ctrl-C --------------------------------------------------------------------------------


def interrupt_after_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C as soon as a strategy has finished: the progress call raises it, as the
    signal would in the parent process."""
    shown = cli._Progress.__call__

    def interrupting(self: cli._Progress, shares: list[float]) -> None:
        shown(self, shares)
        if self.count:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli._Progress, "__call__", interrupting)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_stops_the_run_and_writes_nothing(
    workers: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    interrupt_after_the_first(monkeypatch)
    out = tmp_path / "out"
    argv = ["simulate", small(tmp_path), "--strategies", ",".join(NAMES), "--out", str(out)]
    assert main([*argv, "--workers", workers, "--json", str(tmp_path / "r.json")]) == 130
    error = capsys.readouterr().err
    assert re.search(r"\ninterrupted: [123] of 3 strategies finished; nothing written\n$", error)
    assert "Traceback" not in error
    assert not out.exists()
    assert not (tmp_path / "r.json").exists()
    assert multiprocessing.active_children() == []


def test_ctrl_c_in_a_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupt_after_the_first(monkeypatch)
    out = tmp_path / "out"
    argv = ["simulate", small(tmp_path, CONTENTION), "--workers", "2", "--out", str(out)]
    assert main(argv) == 130
    assert re.search(r"interrupted: [123] of 3 strategies finished", capsys.readouterr().err)
    assert not out.exists()
    assert multiprocessing.active_children() == []


def test_an_interrupted_pool_leaves_no_worker(tmp_path: Path) -> None:
    """The library's own runners stop their workers when the parent is interrupted."""
    scenario = load_scenario(small(tmp_path))
    known = strategies_for(scenario)
    seen: list[list[float]] = []

    def interrupt(shares: list[float]) -> None:
        seen.append(shares)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_strategies(scenario, [known[n] for n in NAMES], workers=2, progress=interrupt)
    assert len(seen) == 1
    assert multiprocessing.active_children() == []
    sweep = load_scenario(small(tmp_path, CONTENTION))
    chosen = list(strategies_for(sweep).values())[-3:]
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, chosen, workers=2, progress=interrupt)
    assert multiprocessing.active_children() == []


def test_a_run_reports_finished_only_when_its_result_is_ready(tmp_path: Path) -> None:
    scenario = load_scenario(small(tmp_path))
    known = strategies_for(scenario)
    seen: list[list[float]] = []
    run_strategies(scenario, [known["naive"], known["stormproof"]], workers=1, progress=seen.append)
    finals = [shares for shares in seen if 1.0 in shares]
    assert finals[0] == [1.0, 0.0]
    assert seen[-1] == [1.0, 1.0]
    assert max(max(shares) for shares in seen[: seen.index(finals[0])]) < 1.0


# The command as a terminal's job runs it: with Ctrl-C handled, even when this test runs
# where SIGINT is ignored (a shell script's background job), which children inherit.
AS_A_TERMINAL_JOB = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'stormproof'; runpy.run_module('stormproof', run_name='__main__')"
)


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs process groups (POSIX)")
def test_ctrl_c_at_a_terminal_stops_every_process(tmp_path: Path) -> None:
    """A terminal's Ctrl-C goes to every process of the foreground group: the command
    and its workers. Sent once the first strategy has finished (five runs are left,
    two at a time, each seconds long: ten times the small outage, so that they cannot
    all end before the signal lands on a slow machine)."""
    strategies = "naive,aws-legacy,seed-patterns,stormproof,aws-standard,aws-2026"
    out = tmp_path / "out"
    scenario = small(tmp_path, OUTAGE.replace("duration = 240", "duration = 2400"))
    command = [sys.executable, "-c", AS_A_TERMINAL_JOB, "simulate", scenario]
    child = subprocess.Popen(
        [*command, "--strategies", strategies, "--workers", "2", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's job
        env={**os.environ, "PYTHONPATH": str(Path(stormproof.__file__).parents[1])},
    )
    try:
        assert child.stderr is not None
        seen = [child.stderr.readline()]  # the header
        seen.append(child.stderr.readline())
        assert "finished after" in seen[-1], seen
        os.killpg(child.pid, signal.SIGINT)
        stdout, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:  # pragma: no cover - only when the test fails
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        for stream in (child.stdout, child.stderr):  # not left for a later test's GC
            if stream is not None:
                stream.close()
    # 130, or killed by SIGINT: CPython exits so when the Ctrl-C landed in code it runs
    # from a string (a namedtuple being made); a shell shows 130 for both.
    assert child.returncode in (130, -signal.SIGINT), stderr
    assert re.search(r"interrupted: [1-5] of 6 strategies finished; nothing written", stderr)
    assert "Traceback" not in stderr
    assert stdout == ""
    assert not out.exists()
    with pytest.raises(ProcessLookupError):  # no worker is left in the group
        os.killpg(child.pid, 0)


def test_ctrl_c_in_a_rehearsal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stormproof import rehearse

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rehearse, "rehearse", interrupted)
    monkeypatch.setattr(rehearse, "missing_dependencies", list)
    assert main(["rehearse", "--out", str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err.endswith("\ninterrupted: nothing written\n")
    assert not (tmp_path / "out").exists()
