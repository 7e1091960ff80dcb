"""The house's rules, checked on the code itself: one package per stage, short modules, no import upward."""

from __future__ import annotations

import ast
from pathlib import Path

STUDY = Path(__file__).resolve().parent.parent / "study"
CROSS_CUTTING = {"__init__", "errors", "budget", "progress", "device"}
# Lowest first: a module may import from its own layer or a lower one. The report reads results (and errors) only.
LAYERS = ("errors", "results", "budget", "config", "progress", "device", "data", "search", "evaluate", "ablation",
          "export", "explain", "serve", "report", "pipeline")  # fmt: skip


def _study_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("study.")
    ]


def test_only_cross_cutting_modules_sit_outside_a_package() -> None:
    loose = {path.stem for path in STUDY.glob("*.py")}
    assert loose <= CROSS_CUTTING, sorted(loose - CROSS_CUTTING)


def test_no_module_is_over_300_lines() -> None:
    long = {str(p.relative_to(STUDY)): n for p in STUDY.rglob("*.py") if (n := len(p.read_text().splitlines())) > 300}
    assert not long


def test_no_import_runs_upward() -> None:
    upward = []
    for path in STUDY.rglob("*.py"):
        here = path.relative_to(STUDY).parts[0].removesuffix(".py")
        for module in _study_imports(path):
            there = module.split(".")[1]
            if there != here and LAYERS.index(there) > LAYERS.index(here):
                upward.append(f"{path.relative_to(STUDY)} imports {module}")
    assert not upward


def test_the_report_reads_the_results_package_only() -> None:
    for path in (STUDY / "report").glob("*.py"):
        outside = [m for m in _study_imports(path) if m.split(".")[1] not in ("report", "results", "errors")]
        assert not outside, f"{path.name}: {outside}"
