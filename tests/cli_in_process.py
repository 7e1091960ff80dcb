"""run_study.main in the test's own process: the command line's code path, messages and exit code, without a
fresh interpreter and TensorFlow's import (1.8-4 s a run on two cores). test_cli.py runs the script itself."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import pytest

import run_study


@dataclass(frozen=True)
class MainResult:
    code: int
    stdout: str
    stderr: str


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> MainResult:
    """The exit code and what main printed; the `study` logger it configures and the environment are restored after."""
    study_logger = logging.getLogger("study")
    handlers, level, propagate = study_logger.handlers[:], study_logger.level, study_logger.propagate
    capsys.readouterr()  # only this run's output
    environment = dict(os.environ)  # main records the run's start there, which a later study would inherit
    try:
        code = run_study.main(args)
    finally:
        os.environ.clear()
        os.environ.update(environment)
        for handler in study_logger.handlers:
            if handler not in handlers:
                handler.close()
        study_logger.handlers[:] = handlers
        study_logger.setLevel(level)
        study_logger.propagate = propagate
    output = capsys.readouterr()
    return MainResult(code, output.out, output.err)
