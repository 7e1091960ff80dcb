"""The study from config to report: data -> search -> evaluate -> (export) -> (ablation) -> gradcam -> report.

Each stage reads what the previous one wrote under results/, and the manifest records which stages are
done, so rerunning the same command skips finished stages and a report can be built at any moment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from study.budget import Deadline, run_deadline
from study.config import StudyConfig, config_to_json
from study.pipeline.continuity import follow_moved_films, now, record_machine
from study.pipeline.identity import (
    SYNTHETIC_SOURCE,
    check_same_backend,
    check_same_study,
    git_sha,
    untested_versions,
    versions,
)
from study.pipeline.order import check_stage_order, final_status
from study.pipeline.record import stage_done, sync
from study.results import FORMAT_VERSION, STAGES, Manifest, ResultsPaths, atomic_write_text, read_manifest
from study.results.lock import single_writer
from study.results.mirror import Mirror
from study.results.restore import restore_if_needed
from study.search.distributed import SINGLE, Role

if TYPE_CHECKING:
    from study.export.stage import PendingExport

logger = logging.getLogger(__name__)

MODEL_STAGES = ("search", "evaluate", "export", "ablation", "gradcam")
BEST_MODEL_STAGES = ("evaluate", "export", "ablation", "gradcam")  # they start from best/model.keras


@dataclass(frozen=True)
class StudyRequest:
    """Everything a run needs: resolved config, where the films come from, where outputs go."""

    cfg: StudyConfig
    data_path: Path | None
    results_dir: Path
    cache_dir: Path
    stages: tuple[str, ...]
    command: str
    role: Role = SINGLE
    mirror_dir: Path | None = None  # e.g. a folder on Drive, copied to after every step (results/mirror.py)


@dataclass(frozen=True)
class StageContext:
    request: StudyRequest
    paths: ResultsPaths
    data_path: Path
    search_deadline: Deadline
    ablation_deadline: Deadline
    mirror: Mirror | None = None


def _search_deadline(cfg: StudyConfig) -> Deadline:
    return run_deadline(cfg.budget.seconds, cfg.budget.search_share)


def _ablation_deadline(cfg: StudyConfig) -> Deadline:
    """The search's and the ablation's shares together: time the search left unused goes to the ablation."""
    return run_deadline(cfg.budget.seconds, cfg.budget.search_share + cfg.budget.ablation_share)


def _demo_data(ctx: StageContext) -> Path:
    from study.data.demo import demo_dataset

    return demo_dataset(ctx.request.cfg.demo, ctx.request.cache_dir)


def _stage_data(ctx: StageContext) -> str | None:
    from study.data.prepare import prepare_data

    prepare_data(ctx.data_path, ctx.request.cfg, ctx.request.cache_dir, ctx.paths)
    return None


def _stage_search(ctx: StageContext) -> str | None:
    from study.ablation.effects import write_search_effects
    from study.data.readers import load_training_arrays
    from study.search.run import run_search

    cfg, role = ctx.request.cfg, ctx.request.role
    # The chief trains nothing (it needs the model's shape only), so it loads no arrays.
    arrays = (
        {}
        if role.is_chief
        else load_training_arrays(ctx.paths, cfg.space.resolutions, cfg.data.aspect, ctx.request.cache_dir)
    )
    outcome = run_search(cfg, arrays, ctx.paths, ctx.search_deadline, role, ctx.mirror)
    write_search_effects(ctx.paths, cfg.evaluate.confidence, cfg.search.seed)
    return outcome.stopped


def _stage_evaluate(ctx: StageContext) -> str | None:
    from study.evaluate.stage import evaluate_best_model

    evaluate_best_model(ctx.request.cfg, ctx.paths, ctx.request.cache_dir)
    return None


def _stage_export(ctx: StageContext) -> str | None:
    from study.export.stage import export_best_model

    return export_best_model(ctx.request.cfg, ctx.paths, ctx.request.cache_dir, ctx.ablation_deadline)


def _stage_ablation(ctx: StageContext) -> str | None:
    from study.ablation.run import run_ablation

    return run_ablation(ctx.request.cfg, ctx.paths, ctx.request.cache_dir, ctx.ablation_deadline, ctx.mirror)


def _stage_gradcam(ctx: StageContext) -> str | None:
    from study.explain.stage import gradcam_gallery

    gradcam_gallery(ctx.request.cfg, ctx.paths, ctx.request.cache_dir)
    return None


def _stage_report(ctx: StageContext) -> str | None:
    from study.report import write_report

    write_report(ctx.paths.root)
    return None


# Each stage returns None, or why the study stops short of its plan (e.g. the time budget) though it goes on.
STAGE_FUNCTIONS: dict[str, Callable[[StageContext], str | None]] = {
    "data": _stage_data,
    "search": _stage_search,
    "evaluate": _stage_evaluate,
    "export": _stage_export,
    "ablation": _stage_ablation,
    "gradcam": _stage_gradcam,
    "report": _stage_report,
}


def run_worker(request: StudyRequest) -> None:
    """A worker of a distributed search: wait until the chief's search has started, check it is the same study
    on the same Keras backend, train the trials the chief hands out. It writes no manifest, config or report:
    the chief owns those."""
    from study.data.readers import load_training_arrays
    from study.device import check_batch_divides, require_gpu
    from study.search.distributed import wait_for_chief_data
    from study.search.run import run_search

    paths = ResultsPaths(request.results_dir)
    if request.cfg.model.require_gpu:
        require_gpu()
    check_batch_divides(request.cfg.search.batch_size)  # its own devices: they may not be the chief's
    manifest = wait_for_chief_data(paths)
    check_same_study(paths, request.cfg, str(manifest.data_source), manifest)
    check_same_backend(paths, manifest)
    cfg = request.cfg
    arrays = load_training_arrays(paths, cfg.space.resolutions, cfg.data.aspect, request.cache_dir)
    run_search(cfg, arrays, paths, _search_deadline(cfg), request.role)
    logger.info("worker %s: the chief has no more trials; done", request.role.tuner_id)


def run_study(request: StudyRequest) -> Manifest:
    """Run the requested stages in order, skipping finished ones, as the folder's only writer."""
    with single_writer(request.results_dir):
        mirror = None
        if request.mirror_dir is not None:
            restored = restore_if_needed(request.mirror_dir, request.results_dir)
            if restored:
                logger.info("mirror: %s", restored)
            mirror = Mirror(request.mirror_dir, request.results_dir)
        return _run_stages(request, mirror)


def _run_stages(request: StudyRequest, mirror: Mirror | None) -> Manifest:
    """The stages in order, finished ones skipped; the manifest is rewritten after each (and once the first
    training stage has recorded the device and backend)."""
    deadlines = _search_deadline(request.cfg), _ablation_deadline(request.cfg)  # counted from here, data included
    paths = ResultsPaths(request.results_dir)
    data_source = SYNTHETIC_SOURCE if request.data_path is None else str(request.data_path.resolve())
    manifest = read_manifest(paths.manifest) or Manifest.new(request.command, versions(), git_sha())
    check_same_study(paths, request.cfg, data_source, manifest)
    check_stage_order(request.stages, manifest.stages_done)
    if any(stage in request.stages and stage not in manifest.stages_done for stage in MODEL_STAGES):
        from study.device import cache_compilations, check_batch_divides

        check_same_backend(paths, manifest)
        check_batch_divides(request.cfg.search.batch_size)
        cache_compilations(request.cache_dir / "jax-compilations")
    for untested in untested_versions(versions()):
        logger.warning(
            "%s: outside the versions this tool is tested on; see README (Colab keeps its own stack)", untested
        )
    searches_here = "search" in request.stages and "search" not in manifest.stages_done and not request.role.is_chief
    if request.cfg.model.require_gpu and searches_here:  # a chief trains nothing; its workers check their GPUs
        from study.device import require_gpu

        require_gpu()
    manifest = replace(
        manifest,
        format=FORMAT_VERSION,  # an older folder takes this format's keys from now on
        status="running",
        command=request.command,
        config_name=request.cfg.name,
        data_source=data_source,
        started=manifest.started or now(),
        finished=None,
    )
    if any(stage in request.stages and stage not in manifest.stages_done for stage in ("search", "gradcam")):
        from study.search.hypermodel import check_model_settings

        check_model_settings(request.cfg.model, request.cfg.space.resolutions, request.cfg.gradcam.layer)
    atomic_write_text(paths.config, config_to_json(request.cfg))
    manifest.write(paths.manifest)
    sync(mirror, "study started")  # the mirror holds the study before its first long step
    ctx = StageContext(request, paths, request.data_path or Path(), *deadlines, mirror)
    needs_films = [s for s in request.stages if s != "report" and (s == "data" or s not in manifest.stages_done)]
    if request.data_path is None and needs_films:
        ctx = replace(ctx, data_path=_demo_data(ctx))  # generated once; regenerated if the cache was wiped
    if "data" in manifest.stages_done and needs_films:
        manifest = follow_moved_films(ctx, manifest)
    machine_checked = False
    converting: PendingExport | None = None  # the export's conversions while the ablation trains beside them
    try:
        for stage in STAGES:
            if stage not in request.stages:
                continue
            if stage in manifest.stages_done and stage != "report":
                logger.info("stage %s: already done in %s, skipping", stage, paths.root)
                continue
            if stage in BEST_MODEL_STAGES and manifest.stopped and not paths.best_model.exists():
                logger.info("stage %s: not run, the search selected no model (%s)", stage, manifest.stopped)
                continue
            logger.info("stage %s: starting", stage)
            if stage in MODEL_STAGES and not machine_checked:
                manifest, machine_checked = record_machine(manifest, request.cfg), True
                manifest.write(paths.manifest)  # workers check their backend against it before they train
            if stage == "report":  # the page shows the study's final status, so settle it first
                manifest = replace(manifest, status=final_status(manifest), finished=now())
                manifest.write(paths.manifest)
            started = time.monotonic()
            if stage == "export" and "ablation" in request.stages and "ablation" not in manifest.stages_done:
                from study.export.stage import PendingExport, start_export

                pending = start_export(request.cfg, paths, request.cache_dir, ctx.ablation_deadline)
                if isinstance(pending, PendingExport):
                    converting = pending  # done once the ablation is
                    continue
                manifest = stage_done(manifest, stage, time.monotonic() - started, pending, mirror, paths)
                continue
            stopped = STAGE_FUNCTIONS[stage](ctx)
            manifest = stage_done(manifest, stage, time.monotonic() - started, stopped, mirror, paths)
            if converting is not None:
                from study.export.stage import finish_export

                seconds = finish_export(converting, request.cfg, paths, request.cache_dir)
                converting = None
                manifest = stage_done(manifest, "export", seconds, None, mirror, paths)
    except BaseException as error:
        if converting is not None:
            converting.job.cancel()
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        replace(manifest, status=status, finished=now()).write(paths.manifest)
        sync(mirror, f"study {status}")
        raise
    if "report" not in request.stages:
        manifest = replace(manifest, status=final_status(manifest), finished=now())
        manifest.write(paths.manifest)
        sync(mirror, f"study {manifest.status}")
    return manifest
