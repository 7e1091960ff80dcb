"""What the pipeline writes down as it goes: each finished stage in the manifest, then a snapshot on the mirror."""

from __future__ import annotations

import logging
from dataclasses import replace

from study.results import STAGES, Manifest, ResultsPaths
from study.results.mirror import Mirror

logger = logging.getLogger(__name__)


def sync(mirror: Mirror | None, label: str) -> None:
    if mirror is not None:
        mirror.sync(label)


def stage_done(
    manifest: Manifest, stage: str, seconds: float, stopped: str | None, mirror: Mirror | None, paths: ResultsPaths
) -> Manifest:
    """Record a finished stage (its seconds, and why it stopped short if it did) in the manifest and the mirror."""
    manifest = replace(
        manifest,
        # several stages may stop short (search, ablation): keep every reason
        stopped="; ".join(filter(None, (manifest.stopped, stopped))) or None,
        stage_seconds={**manifest.stage_seconds, stage: round(seconds, 1)},
        stages_done=tuple(s for s in STAGES if s in (*manifest.stages_done, stage)),  # the export may end later
    )
    manifest.write(paths.manifest)
    sync(mirror, f"stage {stage} done")
    logger.info("stage %s: done in %.1f s", stage, seconds)
    return manifest
