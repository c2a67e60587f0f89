"""The ``stormproof`` command: the Outage Lab from a terminal.

- ``stormproof outage``: the us-east-1 DNS outage, every strategy side by side;
- ``stormproof simulate NAME_OR_FILE``: any built-in scenario or a scenario file;
- ``stormproof scenarios``: the built-in scenarios;
- ``stormproof strategies [--show NAME]``: the built-in strategies, or one's file (a
  ``[[strategy]]`` table to copy into a scenario);
- ``stormproof rehearse``: the us-east-1 outage on real components (moto servers on
  loopback, real boto3 calls), beside the Lab's prediction.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .sim import (
    Scenario,
    ScenarioError,
    builtin_scenarios,
    builtin_strategies,
    html_report,
    load_scenario,
    results_document,
    run_strategies,
    run_sweep,
    strategies_for,
    strategy_file,
    sweep_document,
    sweep_html,
    sweep_table,
    table,
    write_json,
)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stormproof",
        description="The Outage Lab: what retries, budgets, breakers, caches and failover do "
        "to a dependency and its users during an outage, simulated with the real policies.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def output(command: argparse.ArgumentParser, strategies: str, out: str, seed: str) -> None:
        """The options every command that runs strategies takes."""
        command.add_argument("--strategies", metavar="A,B,...", help=strategies)
        command.add_argument("--seed", type=_seed, help=f"random seed (default: {seed})")
        command.add_argument(
            "--out",
            metavar="DIR",
            default=out,
            help="folder for report.html and results.json (default: %(default)s)",
        )
        command.add_argument("--json", metavar="FILE", help="also write the results here")
        command.add_argument("--no-plots", action="store_true", help="skip the HTML report")

    def options(command: argparse.ArgumentParser) -> None:
        output(
            command,
            "comma-separated strategies to compare (default: the scenario's list)",
            "stormproof-report",
            "the scenario's",
        )
        command.add_argument(
            "--workers", type=_workers, help="parallel processes (default: one per core)"
        )
        command.add_argument(
            "--repeat",
            type=_workers,
            metavar="N",
            help="for a sweep: runs per point (default: the scenario's)",
        )

    outage = commands.add_parser(
        "outage", help="simulate the us-east-1 DNS outage with every strategy"
    )
    options(outage)
    simulate = commands.add_parser("simulate", help="simulate a built-in scenario or a file")
    simulate.add_argument("scenario", metavar="NAME_OR_FILE")
    options(simulate)
    commands.add_parser("scenarios", help="list the built-in scenarios")
    strategies = commands.add_parser(
        "strategies",
        help="list the built-in strategies, or print one to copy into a scenario file",
    )
    strategies.add_argument(
        "--show",
        metavar="NAME",
        help="print the strategy's [[strategy]] table (its options are the library's)",
    )
    rehearse = commands.add_parser(
        "rehearse",
        help="rehearse the us-east-1 DNS outage on moto servers with real boto3 calls, "
        "beside the Lab's prediction",
    )
    rehearse.add_argument(
        "--seconds",
        type=_seconds,
        default=36.0,
        help="how long each strategy's workload runs (default: %(default)s; the outage "
        "is from 22%% to 56%% of it)",
    )
    rehearse.add_argument(
        "--threads", type=_threads, default=8, help="users, one thread each (default: 8)"
    )
    output(
        rehearse,
        "comma-separated: aws-legacy, aws-standard, aws-2026, stormproof (default: all)",
        "stormproof-rehearsal",
        "1",
    )
    return parser


def _bounded(
    convert: Callable[[str], float], what: str, low: float, high: float | None = None
) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text (``what`` it must be, if it cannot), then
    check ``low`` <= value (<= ``high``)."""

    def check(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f">= {low:g}" if high is None else f"from {low:g} to {high:g}"
            unit = " seconds" if convert is float else ""
            raise argparse.ArgumentTypeError(f"must be {bounds}{unit}, got {text}")
        return value

    return check


_seed = _bounded(int, "a whole number", 0)
_workers = _bounded(int, "a whole number", 1)
_threads = _bounded(int, "a whole number", 1, 256)
_seconds = _bounded(float, "a number of seconds", 5, 3600)


def _folder(path: str) -> Path:
    """The ``--out`` folder, made if need be, before anything runs."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ScenarioError(
            "--out", "--out", f"a folder that can be created ({error.strerror})", path
        ) from None
    return out


class _Progress:
    def __init__(self, names: Sequence[str]) -> None:
        self.names = names
        self.live = sys.stderr.isatty()
        self.started = time.monotonic()

    def __call__(self, shares: list[float]) -> None:
        if not self.live:
            return
        done = sum(shares) / len(shares)
        bar = "#" * int(30 * done)
        sys.stderr.write(
            f"\r[{bar:<30}] {100 * done:5.1f}%  {time.monotonic() - self.started:5.0f} s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.live:
            sys.stderr.write("\r" + " " * 60 + "\r")
        sys.stderr.write(
            f"simulated {len(self.names)} strategies in {time.monotonic() - self.started:.1f} s\n"
        )


def _size(scenario: Scenario, args: argparse.Namespace) -> str:
    names = args.strategies.split(",") if args.strategies else scenario.strategies
    if scenario.sweep is None:
        return f"{scenario.duration / 60:g} simulated minutes, {len(names)} strategies"
    repeat = scenario.sweep.repeat if args.repeat is None else args.repeat
    return (
        f"{len(scenario.sweep.values)} values of {scenario.sweep.parameter}, "
        f"{repeat} runs each, {len(names)} strategies"
    )


def _simulate(name: str, args: argparse.Namespace) -> int:
    scenario = load_scenario(name)
    if args.repeat is not None and scenario.sweep is None:
        raise ScenarioError(
            "--repeat",
            "--repeat",
            f"left out: scenario {scenario.name!r} is not a sweep (it has no [sweep] table)",
            args.repeat,
        )
    known = strategies_for(scenario)
    names = list(scenario.strategies)
    if args.strategies is not None:
        names = [n.strip() for n in args.strategies.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if not names or unknown:
            bad = ",".join(unknown) or args.strategies
            raise ScenarioError(
                "--strategies",
                "--strategies",
                "names of known strategies (" + ", ".join(known) + ")",
                bad,
            )
    out = _folder(args.out)
    print(f"{scenario.title or scenario.name}: {_size(scenario, args)}", file=sys.stderr)
    progress = _Progress(names)
    chosen = [known[n] for n in names]
    if scenario.sweep is not None:
        sweep = scenario.sweep
        if args.repeat is not None:
            scenario = replace(scenario, sweep=replace(sweep, repeat=args.repeat))
        swept = run_sweep(scenario, chosen, seed=args.seed, workers=args.workers, progress=progress)
        progress.close()
        print(sweep_table(scenario, swept))
        document = sweep_document(scenario, known, swept)
        page = None if args.no_plots else sweep_html(scenario, known, swept)
    else:
        results = run_strategies(
            scenario, chosen, seed=args.seed, workers=args.workers, progress=progress
        )
        progress.close()
        print(table(scenario, results))
        document = results_document(scenario, known, results)
        page = None if args.no_plots else html_report(scenario, known, results)
    write_json(document, str(out / "results.json"))
    written = [f"results: {out / 'results.json'}"]
    if args.json:
        write_json(document, args.json)
        written.append(f"results: {args.json}")
    if page is not None:
        (out / "report.html").write_text(page, encoding="utf-8")
        written.insert(0, f"report:  {out / 'report.html'}")
    print("\n" + "\n".join(written))
    return 0


def _rehearse(args: argparse.Namespace) -> int:
    from . import rehearse  # noqa: PLC0415 - only this command needs it

    names = tuple(rehearse.STRATEGIES)
    if args.strategies is not None:
        names = tuple(n.strip() for n in args.strategies.split(",") if n.strip())
        unknown = [n for n in names if n not in rehearse.STRATEGIES]
        if not names or unknown or len(set(names)) != len(names):
            bad = ",".join(unknown) or args.strategies
            raise ScenarioError(
                "--strategies",
                "--strategies",
                "names of rehearsal strategies, each once (" + ", ".join(rehearse.STRATEGIES) + ")",
                bad,
            )
    missing = rehearse.missing_dependencies()
    if missing:
        print(
            f"stormproof: error: rehearse needs {', '.join(missing)}: "
            "pip install 'stormproof[rehearse]'",
            file=sys.stderr,
        )
        return 2
    out = _folder(args.out)
    options = rehearse.RehearsalOptions.scaled(
        args.seconds,
        threads=args.threads,
        seed=1 if args.seed is None else args.seed,
        strategies=names,
    )
    print(
        f"rehearsing the us-east-1 DNS outage: {len(names)} strategies, {args.seconds:g} s "
        f"each, {args.threads} threads; the east name empty from {options.outage_start:g} s "
        f"to {options.outage_end:g} s",
        file=sys.stderr,
    )
    try:
        result = rehearse.rehearse(options, progress=lambda line: print(line, file=sys.stderr))
    except (RuntimeError, OSError) as error:  # a server or a workload that failed
        print(f"stormproof: error: the rehearsal failed: {error}", file=sys.stderr)
        return 1
    print(f"rehearsed in {result.wall_s:.1f} s", file=sys.stderr)
    print(rehearse.table(result))
    document = rehearse.results_document(result)
    rehearse.write_json(document, str(out / "results.json"))
    written = [f"results: {out / 'results.json'}"]
    if args.json:
        rehearse.write_json(document, args.json)
        written.append(f"results: {args.json}")
    if not args.no_plots:
        (out / "report.html").write_text(rehearse.html_report(result), encoding="utf-8")
        written.insert(0, f"report:  {out / 'report.html'}")
    print("\n" + "\n".join(written))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "rehearse":
            return _rehearse(args)
        if args.command == "scenarios":
            for name in builtin_scenarios():
                scenario = load_scenario(name)
                print(f"{name:<16} {scenario.title}")
            return 0
        if args.command == "strategies":
            if args.show is not None:
                print(strategy_file(args.show).read_text(encoding="utf-8"), end="")
                return 0
            for name, spec in builtin_strategies().items():
                print(f"{name:<16} {spec.summary}")
            return 0
        return _simulate("us-east-1" if args.command == "outage" else args.scenario, args)
    except ScenarioError as error:
        print(f"stormproof: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
