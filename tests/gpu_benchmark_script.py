"""benchmarks/gpu.py, a script and no package module, loaded into a test's own process so the test can call its
functions."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu.py"


def load_gpu_benchmark(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module of this process; what importing it changes is undone after the test."""
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, benchmark)  # its dataclasses look their module up there
    monkeypatch.setattr(sys, "path", [*sys.path])  # the script puts the repository first; only for this test
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))  # it sets a default
    spec.loader.exec_module(benchmark)
    return benchmark
