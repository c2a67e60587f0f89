"""The stormproof command end to end, on a short run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest

import stormproof
from stormproof import cli
from stormproof.cli import main
from stormproof.sim import Scenario, builtin_scenarios, load_scenario
from stormproof.sim._files import parse_toml

from .test_runs import OUTAGE

FIELDS = {
    "requests",
    "attempts",
    "amplification",
    "amplification_during_trigger",
    "success_rate",
    "stale_rate",
    "p50_latency_s",
    "p99_latency_s",
    "recovery_s",
    "peak_load_ratio",
}


def test_simulate_a_file_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "outage.toml"
    scenario.write_text(OUTAGE)
    out = tmp_path / "report"
    extra = tmp_path / "copy.json"
    code = main(
        [
            "simulate",
            str(scenario),
            "--out",
            str(out),
            "--json",
            str(extra),
            "--strategies",
            "naive,stormproof",
            "--seed",
            "3",
            "--workers",
            "1",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "strategy" in printed
    assert "stormproof" in printed
    assert "naive" in printed
    document = json.loads((out / "results.json").read_text())
    assert document == json.loads(extra.read_text())
    assert document["seed"] == 3
    assert set(document["strategies"]) == {"naive", "stormproof"}
    for summary in document["strategies"].values():
        assert set(summary) >= FIELDS
    series = (out / "series.csv").read_text().splitlines()
    assert series[0].startswith("time_s,")
    assert len(series) > 60  # a row per second
    report = (out / "report.html").read_text()
    assert report.startswith("<!doctype html>")
    assert report.count('<figure class="chart">') >= 8  # tests/sim/test_report.py: more
    assert "http" not in report.split("<body>")[1][:200]


def test_no_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "outage.toml"
    scenario.write_text(OUTAGE)
    assert (
        main(
            [
                "simulate",
                str(scenario),
                "--out",
                str(tmp_path),
                "--no-plots",
                "--strategies",
                "naive",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert not (tmp_path / "report.html").exists()
    assert (tmp_path / "results.json").exists()


def test_scenarios_lists_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenarios"]) == 0
    listed = capsys.readouterr().out
    assert "us-east-1" in listed
    assert "metastable" in listed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["outage", "--strategies", "naive,bogus"],
            "--strategies must be names of known strategies",
        ),
        (["simulate", "no-such-scenario"], "scenario 'no-such-scenario' not found"),
    ],
)
def test_bad_arguments_give_a_clear_error_and_no_traceback(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert "Traceback" not in error


@pytest.mark.parametrize(
    "argv",
    [
        ["outage", "--seed", "-1"],
        ["outage", "--seed", "x"],
        ["outage", "--workers", "0"],
        ["explode"],
    ],
)
def test_argument_types_are_checked(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_installed_command(tmp_path: Path) -> None:
    scenario = tmp_path / "outage.toml"
    scenario.write_text(OUTAGE)
    command = Path(sys.executable).parent / "stormproof"
    result = subprocess.run(
        [
            str(command),
            "simulate",
            str(scenario),
            "--out",
            str(tmp_path / "out"),
            "--strategies",
            "stormproof",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "report.html").exists()


# -- outputs are checked before anything runs ----------------------------------------------


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every simulation the CLI starts (none, where a test expects an error first)."""
    started: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        started.append("simulation")
        raise AssertionError("the simulation ran")

    monkeypatch.setattr(cli, "run_strategies", refuse)
    monkeypatch.setattr(cli, "run_sweep", refuse)
    return started


def small(tmp_path: Path) -> str:
    scenario = tmp_path / "outage.toml"
    scenario.write_text(OUTAGE)
    return str(scenario)


def bad_outputs(tmp_path: Path) -> list[tuple[list[str], str]]:
    """Each case: options, and the message expected (the option and value in it)."""
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "results.json").mkdir()  # where --out would write its results.json
    return [
        (
            ["--out", f"{a_file}/report"],
            f"--out must be a folder that can be made ({a_file} is a file), got '{a_file}/report'",
        ),
        (["--out", str(a_file)], f"--out must be a folder (it is a file), got '{a_file}'"),
        (
            ["--out", str(folder)],
            f"--out must be a file (it is a folder), got '{folder / 'results.json'}'",
        ),
        (
            ["--json", str(tmp_path / "missing" / "r.json")],
            f"--json must be a file in an existing folder ({tmp_path / 'missing'} does not "
            f"exist), got '{tmp_path / 'missing' / 'r.json'}'",
        ),
        (
            ["--json", f"{a_file}/r.json"],
            f"--json must be a file in an existing folder ({a_file} is a file), "
            f"got '{a_file}/r.json'",
        ),
        (["--json", str(tmp_path)], f"--json must be a file (it is a folder), got '{tmp_path}'"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_outputs_are_checked_before_anything_runs(
    case: int, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_simulation: list[str]
) -> None:
    options, message = bad_outputs(tmp_path)[case]
    out = ["--out", str(tmp_path / "out")] if options[0] != "--out" else []
    assert main(["simulate", small(tmp_path), *out, *options]) == 2
    error = capsys.readouterr().err
    assert error == f"stormproof: error: {message}\n"
    assert not no_simulation
    assert not (tmp_path / "out").exists()


def test_a_report_without_plotly_is_refused_before_anything_runs(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    no_simulation: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing() -> None:
        raise cli.PlottingUnavailable("the report needs Plotly: pip install 'stormproof[cli]'")

    monkeypatch.setattr(cli, "require_plotting", missing)
    assert main(["simulate", small(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        "stormproof: error: the report needs Plotly: pip install 'stormproof[cli]'\n"
    )
    assert not no_simulation
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any folder")
def test_an_unwritable_out_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_simulation: list[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    closed = tmp_path / "closed"
    closed.mkdir()
    locked.chmod(0o500)
    closed.chmod(0)
    try:
        assert main(["outage", "--out", str(locked / "report")]) == 2
        assert main(["outage", "--out", str(tmp_path), "--json", str(locked / "r.json")]) == 2
        assert main(["outage", "--out", str(closed / "inside" / "report")]) == 2
    finally:
        locked.chmod(0o700)
        closed.chmod(0o700)
    error = capsys.readouterr().err
    assert "--out must be a folder that can be made (cannot write in" in error
    assert "--json must be a file in a folder one can write to (cannot write in" in error
    assert "--out must be a path one can reach (Permission denied)" in error
    assert not no_simulation


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_folder_nobody_can_write_in_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_simulation: list[str]
) -> None:
    """/proc takes no new files, whoever asks (root included)."""
    assert main(["outage", "--out", "/proc/stormproof-report"]) == 2
    assert main(["outage", "--out", str(tmp_path), "--json", "/proc/results.json"]) == 2
    error = capsys.readouterr().err.splitlines()
    assert error[0].startswith("stormproof: error: --out must be a folder that can be made")
    assert error[0].endswith("got '/proc/stormproof-report'")
    assert error[1].startswith("stormproof: error: --json must be a file in a folder one can")
    assert error[1].endswith("got '/proc/results.json'")
    assert not no_simulation


def test_rehearse_checks_its_outputs_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from stormproof import rehearse

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the rehearsal ran")

    monkeypatch.setattr(rehearse, "rehearse", refuse)
    monkeypatch.setattr(rehearse, "missing_dependencies", list)
    missing = str(tmp_path / "missing" / "r.json")
    assert main(["rehearse", "--out", str(tmp_path), "--json", missing]) == 2
    assert "--json must be a file in an existing folder" in capsys.readouterr().err


def test_json_to_standard_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--json -``: standard output holds the JSON document alone; the table and the
    files written go to standard error."""
    out = tmp_path / "out"
    argv = ["simulate", small(tmp_path), "--strategies", "naive", "--workers", "1"]
    assert main([*argv, "--out", str(out), "--json", "-", "--no-plots"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == json.loads((out / "results.json").read_text())
    assert "strategy" in printed.err
    assert f"results: {out / 'results.json'}" in printed.err
    assert not (tmp_path / "-").exists()
    assert not Path("-").exists()


# -- the command itself --------------------------------------------------------------------


def expected_version() -> str:
    try:
        return metadata.version("stormproof")
    except metadata.PackageNotFoundError:
        return stormproof.__version__


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"stormproof {expected_version()}\n"


def test_version_without_package_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from a source tree that is not installed: the package's own version."""

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert cli._version() == stormproof.__version__


def test_python_dash_m_runs_the_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stormproof", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(stormproof.__file__).parents[1])},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"stormproof {expected_version()}\n"


def test_no_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err.startswith("usage: stormproof")
    for command in ("outage", "simulate", "scenarios", "strategies", "rehearse"):
        assert command in printed.err


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0
    return " ".join(capsys.readouterr().out.split())


OPTIONS = {
    "outage": {
        "--strategies",
        "--seed",
        "--out",
        "--json",
        "--no-plots",
        "--workers",
        "--quick",
        "--no-variants",
    },
    "simulate": {
        "--strategies",
        "--seed",
        "--out",
        "--json",
        "--no-plots",
        "--workers",
        "--quick",
        "--no-variants",
    }
    | {"--repeat"},
    "scenarios": {"--show"},
    "strategies": {"--show"},
    "rehearse": {"--strategies", "--seed", "--out", "--json", "--no-plots"}
    | {"--seconds", "--threads"},
}


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_each_command_offers_only_the_options_that_apply(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(command, capsys)
    offered = set(re.findall(r"\[(--[a-z-]+)", text.split("options:")[0]))
    assert offered == OPTIONS[command]


def test_the_help_says_what_the_options_do(capsys: pytest.CaptureFixture[str]) -> None:
    simulate = help_of("simulate", capsys)
    assert "--repeat N sweeps only (a scenario with a [sweep] table): runs per point" in simulate
    assert ".toml, .json, .yaml or .yml" in simulate
    outage = help_of("outage", capsys)
    assert "--repeat" not in outage
    assert "'-' writes it to standard output, and the table then goes to standard error" in outage
    assert "made if need be; checked before anything runs" in outage


def test_outage_refuses_repeat(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["outage", "--repeat", "2"])
    assert caught.value.code == 2
    assert "unrecognized arguments: --repeat 2" in capsys.readouterr().err


def test_repeat_on_a_scenario_that_is_not_a_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_simulation: list[str]
) -> None:
    assert main(["simulate", small(tmp_path), "--repeat", "2", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "stormproof: error: --repeat is for sweeps only: scenario 'small-outage' has no "
        "[sweep] table\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--strategies", "naive,stormprof"],
            "--strategies must be names of known strategies, each once (naive, seed-patterns, "
            "aws-legacy, aws-standard, aws-2026, stormproof) (did you mean 'stormproof'?), "
            "got 'stormprof'",
        ),
        (["--strategies", "naive,naive"], "--strategies must be names of known strategies"),
        (["--strategies", ","], "--strategies must be names of known strategies"),
    ],
)
def test_option_errors_say_things_once(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", small(tmp_path), "--out", str(tmp_path), *argv]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"stormproof: error: {message}")
    assert error.count("--strategies") == 1


def test_a_missing_scenario_is_not_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "metastabel", "--out", str(tmp_path)]) == 2
    missing = str(tmp_path / "mine.toml")
    assert main(["simulate", missing, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "stormproof: error: scenario 'metastabel' not found: no built-in scenario and no "
        "file of that name (did you mean 'metastable'?)",
        f"stormproof: error: scenario file {missing!r} not found",
    ]


def test_a_json_scenario_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "outage.json"
    path.write_text(json.dumps(parse_toml(OUTAGE, "outage.toml")))
    argv = ["simulate", str(path), "--strategies", "naive", "--workers", "1", "--no-plots"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    assert "naive" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_scenarios_show_prints_the_file_as_shipped(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scenarios", "--show", name]) == 0
    printed = capsys.readouterr().out
    assert printed == builtin_scenarios()[name].read_text(encoding="utf-8")
    copy = tmp_path / "copy.toml"
    copy.write_text(printed)
    assert sourceless(load_scenario(str(copy))) == sourceless(load_scenario(name))


def sourceless(scenario: Scenario) -> Scenario:
    """The scenario, its variants' and its quick version's, without the file they came
    from."""
    variants = tuple(replace(v, scenario=replace(v.scenario, source="")) for v in scenario.variants)
    quick = scenario.quick
    if quick is not None:
        quick = replace(quick, scenario=replace(quick.scenario, source=""))
    return replace(scenario, source="", variants=variants, quick=quick)


@pytest.mark.parametrize(
    ("command", "name", "hint"),
    [("scenarios", "us-east", "us-east-1"), ("strategies", "stormprof", "stormproof")],
)
def test_show_an_unknown_name_says_did_you_mean(
    command: str, name: str, hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--show", name]) == 2
    error = capsys.readouterr().err
    assert error.startswith("stormproof: error: --show must be a built-in ")
    assert error.endswith(f"(did you mean {hint!r}?), got {name!r}\n")


def test_a_write_that_fails_after_the_run_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills up during the run: the table is shown, the error is one line."""

    def full(document: object, path: str) -> None:
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr(cli, "write_json", full)
    argv = ["simulate", small(tmp_path), "--strategies", "naive", "--workers", "1"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--no-plots"]) == 1
    printed = capsys.readouterr()
    assert "naive" in printed.out
    assert printed.err.endswith(
        "stormproof: error: could not write the results: [Errno 28] No space left on device: "
        f"'{tmp_path / 'out' / 'results.json'}'\n"
    )
    assert "Traceback" not in printed.err
