"""The stormproof command end to end, on a short run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stormproof.cli import main

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
        (["simulate", "no-such-scenario"], "a built-in scenario"),
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
