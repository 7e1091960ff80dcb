"""Which stages may run and what a finished run is called: checks made before any work, and the final status."""

from __future__ import annotations

from study.errors import UserInputError
from study.results import STAGES, Manifest

OPTIONAL_STAGES = ("export", "ablation")  # no later stage needs them, so --stages may leave them out


def check_stage_order(requested: tuple[str, ...], done: tuple[str, ...]) -> None:
    """Each stage reads what the earlier ones wrote, so they must be done or run now; the report alone
    works on any partial study. Checked before any work, so a wrong --stages costs nothing."""
    available = [stage for stage in STAGES if stage != "report"]
    for stage in (s for s in available if s in requested):
        earlier = [s for s in available[: available.index(stage)] if s not in OPTIONAL_STAGES]
        missing = [s for s in earlier if s not in done and s not in requested]
        if missing:
            raise UserInputError(
                f"--stages: stage {stage} needs stage {missing[0]} done first in this --results folder; "
                f"add it, e.g. --stages {','.join([*missing, stage])}"
            )


def final_status(manifest: Manifest) -> str:
    """complete once every available stage before the report is done; stopped when a stage ended short of the
    plan (the time budget); partial when a run (e.g. --prepare-only) ended on purpose with stages still to do,
    so no reader mistakes it for a study still running."""
    if manifest.stopped:
        return "stopped"
    needed = [stage for stage in STAGES if stage != "report"]
    return "complete" if all(stage in manifest.stages_done for stage in needed) else "partial"
