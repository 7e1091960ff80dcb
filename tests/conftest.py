"""The smoke study, run once per test session: the reference that several slow test modules read."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from study.results import ResultsPaths

ROOT = Path(__file__).resolve().parent.parent
SMOKE_CONFIG = ROOT / "configs" / "smoke.toml"


@dataclass(frozen=True)
class SmokeRun:
    paths: ResultsPaths
    cache: Path
    command: list[str]
    completed: subprocess.CompletedProcess[str]


def smoke_command(results: Path, cache: Path, *extra: str) -> list[str]:
    return [
        sys.executable, str(ROOT / "run_study.py"), "--config", str(SMOKE_CONFIG), "--results", str(results),
        "--cache", str(cache), *extra,
    ]  # fmt: skip


@pytest.fixture(scope="session")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """One uninterrupted smoke study; its cache (demo films, decoded arrays) is reused by the other runs."""
    work = tmp_path_factory.mktemp("smoke")
    command = smoke_command(work / "results", work / "cache")
    completed = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return SmokeRun(ResultsPaths(work / "results"), work / "cache", command, completed)
