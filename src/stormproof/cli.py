"""The ``stormproof`` command: the Outage Lab from a terminal.

- ``stormproof outage``: the us-east-1 DNS outage, every strategy side by side;
- ``stormproof simulate NAME_OR_FILE``: any built-in scenario or a scenario file;
- ``stormproof scenarios [--show NAME]``: the built-in scenarios, or one's file (TOML,
  to copy and edit);
- ``stormproof strategies [--show NAME]``: the built-in strategies, or one's file (a
  ``[[strategy]]`` table to copy into a scenario);
- ``stormproof rehearse``: the us-east-1 outage on real components (moto servers on
  loopback, real boto3 calls), beside the Lab's prediction.

Every output (``--out``, ``--json``) is checked before anything runs; ``--json -``
writes the results document to standard output, and the table then goes to standard
error. Ctrl-C stops a run at once (exit code 130) and writes nothing.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from .sim import (
    PlottingUnavailable,
    Scenario,
    ScenarioError,
    builtin_scenarios,
    builtin_strategies,
    html_report,
    load_scenario,
    require_plotting,
    results_document,
    robustness_document,
    robustness_html,
    robustness_table,
    run_labels,
    run_strategies,
    run_sweep,
    run_with_variants,
    strategies_for,
    strategy_file,
    sweep_document,
    sweep_html,
    sweep_table,
    table,
    write_csv,
    write_json,
)

__all__ = ["main"]

STDOUT = "-"
"""``--json -``: the results document on standard output."""


def _version() -> str:
    """The installed distribution's version, or the package's own when it is run from
    a source tree that is not installed."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("stormproof")
    except PackageNotFoundError:
        import stormproof  # noqa: PLC0415

        return stormproof.__version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stormproof",
        description="The Outage Lab: what retries, budgets, breakers, caches and failover do "
        "to a dependency and its users during an outage, simulated with the real policies.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def outputs(command: argparse.ArgumentParser, strategies: str, out: str, seed: str) -> None:
        """The options of every command that runs strategies and writes results."""
        command.add_argument("--strategies", metavar="A,B,...", help=strategies)
        command.add_argument("--seed", type=_seed, metavar="N", help=f"random seed ({seed})")
        command.add_argument(
            "--out",
            metavar="DIR",
            default=out,
            help="folder for report.html and results.json, made if need be; checked "
            "before anything runs (default: %(default)s)",
        )
        command.add_argument(
            "--json",
            metavar="FILE",
            help="also write the results document to FILE; '-' writes it to standard "
            "output, and the table then goes to standard error",
        )
        command.add_argument(
            "--no-plots", action="store_true", help="skip report.html (results.json is written)"
        )

    def lab(command: argparse.ArgumentParser) -> None:
        outputs(
            command,
            "comma-separated strategies to compare (default: the scenario's list; "
            "`stormproof strategies` lists them all)",
            "stormproof-report",
            "default: the scenario's",
        )
        command.add_argument(
            "--workers",
            type=_workers,
            metavar="N",
            help="processes running strategies (or a sweep's points) side by side "
            "(default: one per core)",
        )
        command.add_argument(
            "--quick",
            action="store_true",
            help="run the scenario's quick version (its [quick] table: a shorter outage), "
            "without variants",
        )
        command.add_argument(
            "--no-variants",
            action="store_true",
            help="run the scenario as written only, not its [[variants]] (the same "
            "scenario with one assumption changed at a time)",
        )

    outage = commands.add_parser(
        "outage",
        help="simulate the us-east-1 DNS outage with every strategy",
        description="Simulate the us-east-1 DNS outage (the built-in scenario us-east-1) "
        "with every strategy, and write its table, results.json and report.html.",
    )
    lab(outage)
    simulate = commands.add_parser(
        "simulate",
        help="simulate a built-in scenario or a scenario file",
        description="Simulate a built-in scenario or a scenario file with the strategies "
        "it names, and write its table, results.json and report.html.",
    )
    simulate.add_argument(
        "scenario",
        metavar="NAME_OR_FILE",
        help="a built-in scenario (`stormproof scenarios` lists them) or a scenario file: "
        ".toml, .json, .yaml or .yml",
    )
    lab(simulate)
    simulate.add_argument(
        "--repeat",
        type=_workers,
        metavar="N",
        help="sweeps only (a scenario with a [sweep] table): runs per point "
        "(default: the sweep's repeat)",
    )
    scenarios = commands.add_parser(
        "scenarios",
        help="list the built-in scenarios, or print one to copy",
        description="List the built-in scenarios, or print one's file to copy and edit.",
    )
    scenarios.add_argument(
        "--show", metavar="NAME", help="print the scenario's file (TOML), as shipped"
    )
    strategies = commands.add_parser(
        "strategies",
        help="list the built-in strategies, or print one to copy into a scenario file",
        description="List the built-in strategies, or print one's [[strategy]] table.",
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
        description="Rehearse the us-east-1 DNS outage on moto servers with real boto3 "
        "calls, each strategy in turn, beside the Lab's prediction. Needs "
        "stormproof[rehearse].",
    )
    rehearse.add_argument(
        "--seconds",
        type=_seconds,
        default=36.0,
        help="how long each strategy's workload runs, 5 to 3600 (default: %(default)s; "
        "the outage is from 22%% to 56%% of it)",
    )
    rehearse.add_argument(
        "--threads",
        type=_threads,
        default=8,
        metavar="N",
        help="users, one thread each, 1 to 256 (default: 8)",
    )
    outputs(
        rehearse,
        "comma-separated: aws-legacy, aws-standard, aws-2026, stormproof (default: all)",
        "stormproof-rehearsal",
        "default: 1",
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


def _refuse(option: str, requirement: str, value: object) -> ScenarioError:
    """A bad command-line value: ``--option must be <requirement>, got <value>``."""
    return ScenarioError(option, option, requirement, value)


def _names(option: str, text: str, known: Sequence[str], what: str) -> list[str]:
    """The comma-separated names of ``text``, each one of ``known``, each once."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if not names or unknown or len(set(names)) != len(names):
        bad = ",".join(unknown) or text
        hint = _did_you_mean(unknown[0], known) if unknown else ""
        raise _refuse(option, f"names of {what}, each once ({', '.join(known)}){hint}", bad)
    return names


def _did_you_mean(value: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a known name is close to ``value``."""
    close = difflib.get_close_matches(value, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- outputs, checked before anything runs -----------------------------------------------


def _writable_folder(option: str, path: str, folder: Path, requirement: str) -> None:
    """Refuse ``path`` (it must be ``requirement``) unless a file can be made in
    ``folder``: tried for real, with a nameless temporary file, so nothing is left."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = f"cannot write in {folder}: {error.strerror or error}"
        raise _refuse(option, f"{requirement} ({reason})", path) from None


def _check_folder(option: str, path: str) -> Path:
    """The ``--out`` folder: an existing folder one can write to, or one that can be
    made (its nearest existing parent is a folder one can write to). Nothing is made
    yet: an interrupted or failed run leaves nothing behind."""
    folder = Path(path)
    if folder.exists():
        if not folder.is_dir():
            raise _refuse(option, "a folder (it is a file)", path)
        _writable_folder(option, path, folder, "a folder one can write to")
        return folder
    parent = folder.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise _refuse(option, f"a folder that can be made ({parent} is a file)", path)
    _writable_folder(option, path, parent, "a folder that can be made")
    return folder


def _check_file(option: str, path: str) -> None:
    """A file to write: not a folder, in an existing folder, writable."""
    file = Path(path)
    if file.is_dir():
        raise _refuse(option, "a file (it is a folder)", path)
    folder = file.parent
    if not folder.is_dir():
        missing = "is a file" if folder.exists() else "does not exist"
        raise _refuse(option, f"a file in an existing folder ({folder} {missing})", path)
    if file.exists():
        try:
            with file.open("ab"):  # opened to append: its content is left as it is
                pass
        except OSError as error:
            raise _refuse(option, f"a file one can write ({error.strerror})", path) from None
    else:
        _writable_folder(option, path, folder, "a file in a folder one can write to")


@dataclass(frozen=True)
class _Outputs:
    """Where a run's results go: ``out`` (results.json, report.html unless ``plots``
    is false) and ``json`` (a file, ``-`` for standard output, or none)."""

    out: Path
    json: str | None
    plots: bool

    @classmethod
    def check(cls, args: argparse.Namespace) -> _Outputs:
        """The outputs of ``args``, each checked (exit code 2 with a message, before
        anything runs)."""
        option, path = "--out", args.out
        try:
            out = _check_folder(option, path)
            if out.is_dir():
                names = ["results.json", "series.csv"]
                for name in names + ([] if args.no_plots else ["report.html"]):
                    _check_file(option, str(out / name))
            if args.json is not None and args.json != STDOUT:
                option, path = "--json", args.json
                _check_file(option, path)
        except OSError as error:  # a folder on the way that cannot be looked into
            reason = error.strerror or str(error)
            raise _refuse(option, f"a path one can reach ({reason})", path) from None
        if not args.no_plots:
            try:
                require_plotting()
            except PlottingUnavailable as error:
                raise ScenarioError(
                    "--no-plots", "--no-plots", "given", False, message=str(error)
                ) from None
        return cls(out, args.json, not args.no_plots)

    @property
    def table(self) -> TextIO:
        """Where the table goes: standard output, unless the JSON document does."""
        return sys.stderr if self.json == STDOUT else sys.stdout

    def write(
        self,
        document: dict[str, Any],
        page: str | None,
        dump: Callable[[dict[str, Any], str], None],
        series: Callable[[dict[str, Any], str], None] | None = None,
    ) -> int:
        """Write the results (``dump``: how a document is written to a file; ``series``:
        how its time series are written to ``series.csv``), say where they went; the
        exit code (1 if a write failed after all, e.g. a full disk)."""
        written = []
        try:
            if self.json == STDOUT:
                text = json.dumps(document, indent=2, allow_nan=False, default=str)
                sys.stdout.write(text + "\n")
                sys.stdout.flush()
            elif self.json is not None:
                dump(document, self.json)
                written.append(f"results: {self.json}")
            self.out.mkdir(parents=True, exist_ok=True)
            dump(document, str(self.out / "results.json"))
            written.insert(0, f"results: {self.out / 'results.json'}")
            if series is not None:
                series(document, str(self.out / "series.csv"))
                written.insert(1, f"series:  {self.out / 'series.csv'}")
            if page is not None:
                (self.out / "report.html").write_text(page, encoding="utf-8")
                written.insert(0, f"report:  {self.out / 'report.html'}")
        except OSError as error:
            print(f"stormproof: error: could not write the results: {error}", file=sys.stderr)
            return 1
        finally:
            if written:
                print("\n" + "\n".join(written), file=self.table)
        return 0


# -- progress ------------------------------------------------------------------------------


def _columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` shows on: ``COLUMNS`` when set, else the
    terminal's own."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size().columns


class _Progress:
    """What a run prints while it runs, on ``stream`` (standard error): a line per
    strategy as it finishes (its name, the time since the start) and, on a terminal,
    a bar redrawn in place that fits the terminal's width."""

    def __init__(
        self, names: Sequence[str], stream: TextIO | None = None, what: str = "strategies"
    ) -> None:
        self.names = list(names)
        self.what = what  # what the names are: "strategies", "runs"
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty is not None and isatty())
        self.started = time.monotonic()
        self.finished = [False] * len(self.names)
        self.shown = ""
        self.drawn = 0.0  # when the bar was last drawn (time.monotonic)

    @property
    def count(self) -> int:
        """How many have finished."""
        return sum(self.finished)

    def __call__(self, shares: list[float]) -> None:
        now = time.monotonic()
        elapsed = now - self.started
        for index, share in enumerate(shares):
            if share >= 1.0 and not self.finished[index]:
                self.finished[index] = True
                self._line(
                    f"{self.names[index]}: finished after {elapsed:.1f} s "
                    f"({self.count} of {len(self.names)})"
                )
        if self.live and (not self.shown or now - self.drawn >= 0.1):  # 10 times a second
            self.drawn = now
            self._bar(sum(shares) / len(shares), elapsed)

    def _line(self, text: str) -> None:
        self._clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def _bar(self, done: float, elapsed: float) -> None:
        width = _columns(self.stream) - 1  # the last column would wrap on some terminals
        tail = f" {100 * done:3.0f}%  {self.count}/{len(self.names)}  {elapsed:.0f} s"
        room = width - len(tail) - 2  # the bar's, between its brackets
        bar = f"[{'#' * int(room * done):<{room}}]{tail}"
        text = bar if room >= 10 else tail.strip()[:width]
        if text != self.shown:
            self.stream.write("\r" + text + "\x1b[K")
            self.stream.flush()
            self.shown = text

    def _clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.shown = ""

    def close(self) -> None:
        """The run finished: say how long it took."""
        self._clear()
        elapsed = time.monotonic() - self.started
        self.stream.write(f"simulated {len(self.names)} {self.what} in {elapsed:.1f} s\n")
        self.stream.flush()

    def interrupted(self) -> None:
        """The run was stopped (Ctrl-C): say how far it got."""
        self._clear()
        self.stream.write(
            f"\ninterrupted: {self.count} of {len(self.names)} {self.what} finished; "
            "nothing written\n"
        )
        self.stream.flush()


# -- commands ------------------------------------------------------------------------------


def _size(scenario: Scenario, names: Sequence[str], repeat: int | None) -> str:
    if scenario.sweep is None:
        size = f"{scenario.duration / 60:g} simulated minutes, {len(names)} strategies"
        if scenario.variants:
            count = len(scenario.variants)
            runs = len(names) * (count + 1)
            size += f", as written and in {count} variants ({runs} runs)"
        return size
    repeat = scenario.sweep.repeat if repeat is None else repeat
    return (
        f"{len(scenario.sweep.values)} values of {scenario.sweep.parameter}, "
        f"{repeat} runs each, {len(names)} strategies"
    )


def _simulate(name: str, args: argparse.Namespace) -> int:
    scenario = load_scenario(name)
    repeat: int | None = getattr(args, "repeat", None)
    if repeat is not None and scenario.sweep is None:
        raise ScenarioError(
            "--repeat",
            "--repeat",
            "left out",
            repeat,
            message=f"--repeat is for sweeps only: scenario {scenario.name!r} has no [sweep] table",
        )
    if args.quick:
        if scenario.quick is None:
            raise ScenarioError(
                "--quick",
                "--quick",
                "left out",
                True,
                message=f"--quick: scenario {scenario.name!r} has no quick version "
                "(no [quick] table)",
            )
        print(f"quick run: {scenario.quick.name}", file=sys.stderr)
        scenario = scenario.quick.scenario
    if args.no_variants:
        scenario = replace(scenario, variants=())
    known = strategies_for(scenario)
    names = list(scenario.strategies)
    if args.strategies is not None:
        names = _names("--strategies", args.strategies, list(known), "known strategies")
    outputs = _Outputs.check(args)
    print(f"{scenario.title or scenario.name}: {_size(scenario, names, repeat)}", file=sys.stderr)
    robustness = None
    if scenario.sweep is None and scenario.variants:
        progress = _Progress(run_labels(scenario, names), what="runs")
    else:
        progress = _Progress(names)
    chosen = [known[n] for n in names]
    try:
        if scenario.sweep is not None:
            if repeat is not None:
                scenario = replace(scenario, sweep=replace(scenario.sweep, repeat=repeat))
            swept = run_sweep(
                scenario, chosen, seed=args.seed, workers=args.workers, progress=progress
            )
        elif scenario.variants:
            robustness = run_with_variants(
                scenario, chosen, seed=args.seed, workers=args.workers, progress=progress
            )
            results = robustness.base
        else:
            results = run_strategies(
                scenario, chosen, seed=args.seed, workers=args.workers, progress=progress
            )
    except KeyboardInterrupt:
        progress.interrupted()
        return 130
    progress.close()
    if scenario.sweep is not None:
        print(sweep_table(scenario, swept), file=outputs.table)
        document = sweep_document(scenario, known, swept)
        page = sweep_html(scenario, known, swept) if outputs.plots else None
    else:
        print(table(scenario, results), file=outputs.table)
        document = results_document(scenario, known, results)
        sections = []
        if robustness is not None:
            print("\n" + robustness_table(robustness), file=outputs.table)
            document["robustness"] = robustness_document(robustness)
            sections.append(robustness_html(robustness))
        page = html_report(scenario, known, results, sections=sections) if outputs.plots else None
    return outputs.write(document, page, write_json, write_csv)


def _rehearse(args: argparse.Namespace) -> int:
    from . import rehearse  # noqa: PLC0415 - only this command needs it

    names = tuple(rehearse.STRATEGIES)
    if args.strategies is not None:
        names = tuple(_names("--strategies", args.strategies, names, "rehearsal strategies"))
    missing = rehearse.missing_dependencies()
    if missing:
        print(
            f"stormproof: error: rehearse needs {', '.join(missing)}: "
            "pip install 'stormproof[rehearse]'",
            file=sys.stderr,
        )
        return 2
    outputs = _Outputs.check(args)
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
    except KeyboardInterrupt:
        print("\ninterrupted: nothing written", file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as error:  # a server or a workload that failed
        print(f"stormproof: error: the rehearsal failed: {error}", file=sys.stderr)
        return 1
    print(f"rehearsed in {result.wall_s:.1f} s", file=sys.stderr)
    print(rehearse.table(result), file=outputs.table)
    page = rehearse.html_report(result) if outputs.plots else None
    return outputs.write(rehearse.results_document(result), page, rehearse.write_json)


def _show(option: str, name: str, files: dict[str, Path], what: str) -> int:
    """Print built-in file ``name`` of ``files``, as shipped."""
    if name not in files:
        requirement = f"{what} ({', '.join(files)}){_did_you_mean(name, files)}"
        raise _refuse(option, requirement, name)
    sys.stdout.write(files[name].read_text(encoding="utf-8"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command of ``argv`` (default: the process's arguments); its exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        if args.command == "rehearse":
            return _rehearse(args)
        if args.command == "scenarios":
            builtins = builtin_scenarios()
            if args.show is not None:
                return _show("--show", args.show, builtins, "a built-in scenario")
            for name in builtins:
                print(f"{name:<16} {load_scenario(name).title}")
            return 0
        if args.command == "strategies":
            if args.show is not None:
                known = {name: strategy_file(name) for name in builtin_strategies()}
                return _show("--show", args.show, known, "a built-in strategy")
            for name, spec in builtin_strategies().items():
                print(f"{name:<16} {spec.summary}")
            return 0
        return _simulate("us-east-1" if args.command == "outage" else args.scenario, args)
    except ScenarioError as error:
        print(f"stormproof: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
