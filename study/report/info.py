"""Results folder -> ReportData: each file turned into plain records.

Each `get_*` reads one file (or a pair) and returns None when it is absent, so a report can be built at
any moment of a study. `load_report_data` adds, for every absent part, a sentence that says which file
is missing and which stage would have written it. Only a missing folder or a manifest this tool cannot
read is fatal (ReportInputError): then the report would describe the wrong thing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from study.errors import ReportInputError
from study.report.info_ablation import get_ablation_info, get_search_evidence
from study.report.info_best import (
    comparison_rows,
    get_best_config,
    get_gradcam_info,
    get_roc_info,
    get_subgroups,
    get_test_info,
    get_threshold_info,
)
from study.report.info_curves import get_calibration_info, get_learning_curve, get_pr_info
from study.report.info_export import get_export_info
from study.report.records import (
    PlanInfo,
    PlanRow,
    ReportData,
    RunInfo,
    TrialRow,
    TrialsInfo,
    as_float,
    as_hp,
    as_int,
)
from study.report.records_data import CountRow, DataInfo, SkippedRow
from study.results import (
    HP_PREFIX,
    STAGES,
    DataSummary,
    Manifest,
    ResultsFormatError,
    ResultsPaths,
    SearchPlan,
    read_csv,
    read_manifest,
)
from study.results.classes import classes_or_default
from study.results.lock import live_writer
from study.results.vocab import SPLITS

logger = logging.getLogger(__name__)

SYNTHETIC_SOURCE = "synthetic demo"  # what study.pipeline writes as data_source without --data

T = TypeVar("T")


def get_run_info(paths: ResultsPaths) -> RunInfo | None:
    """The manifest as a record; None before the study starts, ReportInputError when it cannot be trusted."""
    try:
        manifest = read_manifest(paths.manifest)
    except ResultsFormatError as exc:
        raise ReportInputError(str(exc)) from exc
    except OSError as exc:
        raise ReportInputError(f"{paths.manifest}: unreadable manifest ({exc})") from exc
    return None if manifest is None else _run_info(manifest, _status(manifest, paths))


def _status(manifest: Manifest, paths: ResultsPaths) -> str:
    """The manifest's status, except that "running" needs a live writer: without one the run was interrupted
    (a kill, a dead runtime), and the time its manifest was last written is when it stopped making progress."""
    if manifest.status != "running":
        return manifest.status
    writer = live_writer(paths.root)
    if writer is not None:
        return f"running ({writer})"
    written = datetime.fromtimestamp(paths.manifest.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"interrupted (last written {written})"


def _run_info(manifest: Manifest, status: str) -> RunInfo:
    seconds = manifest.stage_seconds
    ordered = [s for s in STAGES if s in seconds] + sorted(s for s in seconds if s not in STAGES)
    return RunInfo(
        status=status,
        stopped=manifest.stopped or None,
        config_name=manifest.config_name,
        synthetic=manifest.data_source == SYNTHETIC_SOURCE,
        stages_done=manifest.stages_done,
        stage_seconds=tuple((s, seconds[s]) for s in ordered),
        command=manifest.command,
        versions=tuple(sorted(manifest.versions.items())),
        device=manifest.device or "",
        git_sha=manifest.git_sha,
        started=manifest.started,
        finished=manifest.finished,
        seconds_total=sum(seconds.values()) if seconds else None,
        precision=manifest.precision,
        changes=manifest.changes,
        backend=manifest.trained_backend,
    )


def get_config_text(paths: ResultsPaths) -> str | None:
    """config.json pretty-printed, so the resolved configuration can be read (and copied) as it ran."""
    if not paths.config.exists():
        return None
    return paths.config.read_text(encoding="utf-8").strip()


def get_data_info(paths: ResultsPaths) -> DataInfo | None:
    """Counts per split x class from data/summary.json and the first skipped files with their reasons."""
    if not paths.data_summary.exists():
        return None
    summary = DataSummary.read(paths.data_summary)
    counts, patients = summary.counts, summary.patients
    classes = summary.classes
    splits = [s for s in SPLITS if s in counts] + sorted(set(counts) - set(SPLITS))
    rows = tuple(
        CountRow(
            split=s,
            counts=tuple(counts[s].get(c, 0) for c in classes),
            total=sum(counts[s].values()),
            patients=patients.get(s),
        )
        for s in splits
    )
    skipped = read_csv(paths.skipped_csv) if paths.skipped_csv.exists() else []
    return DataInfo(
        classes=classes,
        rows=rows,
        class_totals=tuple(sum(r.counts[i] for r in rows) for i in range(len(classes))),
        total=sum(r.total for r in rows),
        skipped=summary.skipped,
        skipped_rows=tuple(SkippedRow(r.get("path", ""), r.get("reason", "")) for r in skipped[:10]),
        duplicates_removed=summary.duplicates_removed,
        files_without_patient_id=summary.files_without_patient_id,
        val_fraction=summary.val_fraction,
        seed=summary.seed,
        test_leakage=summary.test_leakage_duplicates,
        data_hash=summary.data_hash,
        group_pattern=summary.group_pattern,
        test_drawn=summary.test_drawn,
        test_share=summary.test_share,
        layout=summary.layout,
        test_patient_ids=summary.test_patient_ids,
        shared_test_ids=summary.shared_test_ids,
        shared_test_id_examples=summary.shared_test_id_examples,
        shared_id_pool_films=summary.shared_id_pool_films,
        channels=summary.channels,
        colour_files=summary.colour_files,
        files_with_group_id=summary.files_with_group_id,
    )


def get_plan_info(paths: ResultsPaths) -> PlanInfo | None:
    """search/plan.json, flattened to one row per Hyperband round."""
    if not paths.plan.exists():
        return None
    plan = SearchPlan.read(paths.plan)
    return PlanInfo(
        max_epochs=plan.max_epochs,
        factor=plan.factor,
        hyperband_iterations=plan.hyperband_iterations,
        total_trials=plan.total_trials,
        total_epochs=plan.total_epochs,
        rounds=tuple(
            PlanRow(bracket.iteration, bracket.bracket, r.round, r.trials, r.epochs, r.initial_epoch)
            for bracket in plan.brackets
            for r in bracket.rounds
        ),
    )


def get_trials_info(paths: ResultsPaths) -> TrialsInfo | None:
    """search/trials.csv sorted best first (val_auc desc, unscored last), and the best-so-far curve."""
    if not paths.trials_csv.exists():
        return None
    raw = read_csv(paths.trials_csv)
    hp_columns = [c for c in (raw[0] if raw else {}) if c.startswith(HP_PREFIX)]
    rows = [
        TrialRow(
            order=i + 1,
            trial_id=r.get("trial_id", ""),
            status=r.get("status", ""),
            bracket=r.get("bracket", ""),
            round=r.get("round", ""),
            epochs=as_int(r.get("epochs")),
            seconds=as_float(r.get("seconds")),
            hp=tuple(as_hp(r.get(c, "")) for c in hp_columns),
            val_auc=as_float(r.get("val_auc")),
            val_loss=as_float(r.get("val_loss")),
            val_accuracy=as_float(r.get("val_accuracy")),
            error=r.get("error", ""),
        )
        for i, r in enumerate(raw)
    ]
    in_order = [r.val_auc if r.status == "COMPLETED" else None for r in rows]
    scored = [r for r, value in zip(rows, in_order, strict=True) if value is not None]
    best_so_far: list[float | None] = []
    running: float | None = None
    for value in in_order:
        if value is not None and (running is None or value > running):
            running = value
        best_so_far.append(running)
    return TrialsInfo(
        hp_names=tuple(c[len(HP_PREFIX) :] for c in hp_columns),
        rows=tuple(sorted(rows, key=lambda r: (r.val_auc is None, -(r.val_auc or 0.0), r.order))),
        ran=len(rows),
        completed=sum(r.status == "COMPLETED" for r in rows),
        failed=sum(r.status == "FAILED" for r in rows),
        best_trial_id=max(scored, key=lambda r: r.val_auc or 0.0).trial_id if scored else None,
        any_error=any(r.error for r in rows),
        val_auc_in_order=tuple(in_order),
        best_so_far=tuple(best_so_far),
    )


def missing_sentence(what: str, stage: str | None, path: Path, root: Path, run: RunInfo | None) -> str:
    """Say what is missing and why, from where the study got to."""
    rel = path.relative_to(root).as_posix()
    if run is None:
        return f"No {what}: the study has not started (manifest.json and {rel} are missing)."
    if stage is None:
        return f"No {what}: {rel} is missing."
    if stage in run.stages_done:
        return f"No {what}: the {stage} stage finished but {rel} is missing."
    ended = {"failed": "failed", "interrupted": "was interrupted", "stopped": "stopped"}.get(run.status.split(" ")[0])
    if ended:
        return f"No {what}: the study {ended} before the {stage} stage ran ({rel} is missing)."
    return f"No {what} yet: the {stage} stage has not run ({rel} is missing)."


def load_report_data(root: Path) -> ReportData:
    """Read the whole folder; a part that is missing or unreadable becomes None plus a sentence in notes."""
    if not root.is_dir():
        raise ReportInputError(f"{root}: no such results folder; expected the directory a study wrote into")
    paths = ResultsPaths(root)
    run = get_run_info(paths)
    notes: dict[str, str] = {}
    if run is None:
        notes["run"] = "No run information: the study has not started (manifest.json is missing)."

    def part(key: str, what: str, stage: str | None, path: Path, load: Callable[[], T | None]) -> T | None:
        try:
            value = load()
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ResultsFormatError) as exc:
            logger.warning("cannot read %s: %s", path, exc)
            notes[key] = f"No {what}: {path.relative_to(root).as_posix()} could not be read ({exc})."
            return None
        if value is None:
            notes[key] = missing_sentence(what, stage, path, root, run)
        return value

    test = part("test", "test metrics", "evaluate", paths.test_metrics, lambda: get_test_info(paths))
    data = part("data", "data summary", "data", paths.data_summary, lambda: get_data_info(paths))
    classes = classes_or_default(None if data is None else data.classes)
    confusion = None if test is None else test.confusion
    return ReportData(
        root=str(root),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        run=run,
        config_text=part("config", "configuration", None, paths.config, lambda: get_config_text(paths)),
        data=data,
        plan=part("plan", "search plan", "search", paths.plan, lambda: get_plan_info(paths)),
        trials=part("trials", "trials", "search", paths.trials_csv, lambda: get_trials_info(paths)),
        best=part("best", "best configuration", "evaluate", paths.best_hyperparameters, lambda: get_best_config(paths)),
        threshold=part("threshold", "threshold", "evaluate", paths.threshold, lambda: get_threshold_info(paths)),
        test=test,
        roc=part("roc", "ROC curve", "evaluate", paths.predictions_csv, lambda: get_roc_info(paths, confusion)),
        pr=part(
            "pr", "precision-recall curve", "evaluate", paths.predictions_csv, lambda: get_pr_info(paths, confusion)
        ),
        calibration=part(
            "calibration", "calibration curve", "evaluate", paths.predictions_csv, lambda: get_calibration_info(paths)
        ),
        learning=part(
            "learning", "learning curves", "search", paths.best_hyperparameters, lambda: get_learning_curve(paths)
        ),
        gradcam=part(
            "gradcam", "Grad-CAM gallery", "gradcam", paths.gradcam_index, lambda: get_gradcam_info(paths, classes)
        ),
        evidence=part("evidence", "factor effects", "search", paths.factor_effects, lambda: get_search_evidence(paths)),
        ablation=part("ablation", "ablation", "ablation", paths.ablation_plan, lambda: get_ablation_info(paths)),
        comparison=comparison_rows(test, synthetic=run is not None and run.synthetic),
        notes=notes,
        export=part("export", "on-device export", "export", paths.export_summary, lambda: get_export_info(paths)),
        subgroups=part("subgroups", "subgroups", "evaluate", paths.subgroups, lambda: get_subgroups(paths)),
    )
