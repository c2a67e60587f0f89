"""Type-level behaviour: decorated functions keep their signatures under mypy --strict."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

TYPING_DIR = Path(__file__).parent.parent / "typing"


def test_typing_examples_pass_strict_mypy() -> None:
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--warn-unused-ignores",
            "--no-incremental",
            "--cache-dir=/dev/null",
            str(TYPING_DIR),
        ]
    )
    assert status == 0, stdout + stderr
