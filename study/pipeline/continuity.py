"""What a resumed run checks and records before it trains: the machine (device, precision, versions) and
where the films are now. Nothing changes silently: each difference is a line in the manifest and the report."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from study.config import StudyConfig
from study.pipeline.identity import resume_changes, versions
from study.results import DataSummary, Manifest

if TYPE_CHECKING:
    from study.pipeline.run import StageContext

logger = logging.getLogger(__name__)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_machine(manifest: Manifest, cfg: StudyConfig) -> Manifest:
    """The device, precision and Keras backend the first training run used; a resume on another device,
    precision or framework version is recorded in the manifest (and so shown in the report), not mixed in
    silently. Another backend is refused before this (identity.check_same_backend)."""
    import keras  # only stages that train import it

    from study.device import describe_device, use_deterministic_kernels
    from study.search.hypermodel import resolve_precision

    if cfg.model.deterministic:
        use_deterministic_kernels()
    device, precision = describe_device(), resolve_precision(cfg.model.precision)
    if manifest.device is None:
        return replace(manifest, device=device, precision=precision, backend=keras.backend.backend())
    manifest = replace(manifest, backend=manifest.trained_backend)
    change = resume_changes(manifest, device, precision, versions())
    if change is None:
        return manifest
    logger.warning("resumed with a change: %s (recorded in the manifest and the report)", change)
    return replace(manifest, changes=(*manifest.changes, f"{now()}: {change}"))


def follow_moved_films(ctx: StageContext, manifest: Manifest) -> Manifest:
    """Films read from another folder than the study's (a new Colab session, another --cache) continue the
    study when they are the same films; the change is recorded."""
    from study.data.relocate import follow_moved_data

    request = ctx.request
    old_root = DataSummary.read(ctx.paths.data_summary).data_root
    if not follow_moved_data(ctx.data_path, request.cfg, request.cache_dir, ctx.paths):
        return manifest
    change = f"{now()}: films read from {DataSummary.read(ctx.paths.data_summary).data_root} (was {old_root})"
    manifest = replace(manifest, changes=(*manifest.changes, change))
    manifest.write(ctx.paths.manifest)
    return manifest
