"""What a resumed run checks: the versions it runs on, the machine it trains on, and its memory's growth."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from study import budget
from study.pipeline.identity import resume_changes, untested_versions
from study.results import Manifest


def test_both_ends_of_the_tested_range_pass_and_a_newer_release_is_named() -> None:
    assert untested_versions({"tensorflow": "2.20.0", "keras": "3.13.2"}) == []  # Colab's published stack
    assert untested_versions({"tensorflow": "2.21.0", "keras": "3.15.1"}) == []  # the pins
    assert untested_versions({"tensorflow": "2.22.1", "keras": "3.15.1"}) == ["tensorflow 2.22.1 (tested: 2.20-2.21)"]


def test_a_resume_names_what_changed_and_only_that() -> None:
    manifest = Manifest.new("run_study.py", {"tensorflow": "2.21.0", "keras": "3.15.1"}, None)
    manifest = Manifest(**{**manifest.__dict__, "device": "NVIDIA L4", "precision": "mixed_float16"})
    same = {"tensorflow": "2.21.0", "keras": "3.15.1"}
    assert resume_changes(manifest, "NVIDIA L4", "mixed_float16", same) is None
    changed = resume_changes(manifest, "CPU (x86_64)", "float32", {"tensorflow": "2.20.0", "keras": "3.15.1"})
    assert changed == (
        "device CPU (x86_64) (was NVIDIA L4); precision float32 (was mixed_float16); tensorflow 2.20.0 (was 2.21.0)"
    )


def test_memory_restarts_on_growth_since_the_first_step_not_on_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU process starts large (CUDA): only what it grew by after its first trial counts."""
    gib = 2**30
    monkeypatch.setattr(budget.psutil, "virtual_memory", lambda: SimpleNamespace(total=12 * gib))
    resident = iter([9 * gib, 11.5 * gib, 12.5 * gib])  # large from the first trial on, then growing
    monkeypatch.setattr(
        budget.psutil, "Process", lambda: SimpleNamespace(memory_info=lambda: SimpleNamespace(rss=next(resident)))
    )
    restarts: list[str] = []
    monkeypatch.setattr(budget, "restart_process", restarts.append)
    watch = budget.MemoryWatch(growth_share=0.25)  # 3 GiB of growth allowed
    watch.between_steps()
    watch.between_steps()
    assert restarts == []
    watch.between_steps()
    assert restarts == ["12800 MB resident, 3584 MB more than after the first step"]
