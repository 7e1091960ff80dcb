"""The smoke study end to end, then the same command again: every stage's files, and finished stages skipped."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from study.results import HP_PREFIX, CamBaseline, read_csv
from tests.blocked_imports import run_without
from tests.conftest import SmokeRun

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.end_to_end, pytest.mark.xdist_group("smoke")]


def test_the_study_completes_with_every_stage_written(smoke: SmokeRun) -> None:
    paths = smoke.paths
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["status"] == "complete"
    assert manifest["stages_done"] == ["data", "search", "evaluate", "export", "ablation", "gradcam", "report"]
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    assert manifest["backend"] == backend
    assert any((smoke.cache / "jax-compilations").glob("*")) == (backend == "jax")  # JAX's compiled steps kept
    assert str(paths.report.resolve()) in smoke.stdout
    for path in (
        paths.config,
        paths.split_csv,
        paths.skipped_csv,
        paths.data_summary,
        paths.plan,
        paths.best_model,
        paths.threshold,
        paths.test_metrics,
        paths.predictions_csv,
        paths.factor_effects,
        paths.importance,
        paths.ablation_plan,
        paths.ablation_runs,
        paths.ablation_summary,
        paths.ablation_table("md"),
        paths.ablation_table("tex"),
        paths.ablation_table("csv"),
        paths.gradcam_index,
        paths.run_log,
    ):
        assert path.is_file(), path  # fmt: skip


def test_trials_match_the_plan_and_carry_no_tuner_keys(smoke: SmokeRun) -> None:
    paths = smoke.paths
    plan = json.loads(paths.plan.read_text())
    trials = read_csv(paths.trials_csv)
    assert len(trials) == plan["total_trials"]
    assert all(trial["status"] == "COMPLETED" for trial in trials)
    assert not [column for column in trials[0] if column.startswith(HP_PREFIX + "tuner")]
    continued = [trial for trial in trials if trial["parent"]]
    assert continued, "the plan has a second round: some trial continues a parent"
    for trial in trials:
        history = read_csv(paths.history_csv(trial["trial_id"]))
        assert len(history) == int(trial["epochs"]) - int(trial["initial_epoch"])
    best = json.loads(paths.best_hyperparameters.read_text())["trial_id"]
    checkpoints = sorted(paths.tuner_dir.glob("trial_*/checkpoint.weights.h5"))
    assert [path.parent.name for path in checkpoints] == [f"trial_{best}"], "only the best trial's weights kept"


def test_test_folder_is_kept_out_of_selection(smoke: SmokeRun) -> None:
    paths = smoke.paths
    split = read_csv(paths.split_csv)
    assert all(row["source_split"] == "test" for row in split if row["split"] == "test")
    patients = {
        split_name: {row["patient_id"] for row in split if row["split"] == split_name}
        for split_name in ("train", "val")
    }
    assert not patients["train"] & patients["val"]
    predictions = read_csv(paths.predictions_csv)
    assert {row["path"] for row in predictions if row["split"] == "test"} == {
        row["path"] for row in split if row["split"] == "test"
    }


def test_the_best_model_separates_the_classes(smoke: SmokeRun) -> None:
    """Even two epochs on the smoke set must beat chance with the CI's lower bound, on films never selected on."""
    paths = smoke.paths
    auc = json.loads(paths.test_metrics.read_text())["metrics"]["auc"]
    assert auc["ci_low"] > 0.5, auc


def test_gallery_and_report_show_the_results(smoke: SmokeRun) -> None:
    paths = smoke.paths
    index = read_csv(paths.gradcam_index)
    assert index and all((paths.gradcam_dir / row["file"]).is_file() for row in index)
    assert {row["method"] for row in index} == {"layercam", "gradcam"}  # the demo's, which smoke inherits
    scores = json.loads(paths.gradcam_scores.read_text())
    test_predictions = [row for row in read_csv(paths.predictions_csv) if row["split"] == "test"]
    assert scores["films_scored"] == 40, "gradcam.score_films of the 120 test films"
    sampled = [test_predictions[i] for i in np.linspace(0, len(test_predictions) - 1, 40).round().astype(int)]
    positives = sum(row["label"] == "1" for row in sampled)
    for numbers in scores["methods"].values():
        assert numbers["films_with_masks"] == positives, "every PNEUMONIA demo film of the sample has a lesion mask"
    baseline = CamBaseline.read(paths.gradcam_baseline)
    assert baseline.random_grid == 12, "random maps on block_3_expand_relu's grid at 48 px, not a fixed 7x7"
    assert set(baseline.differences) == set(baseline.other_differences) == set(scores["methods"])
    # Paired apart on the films the model called PNEUMONIA and those it called NORMAL: together, every scored film.
    threshold = json.loads(paths.threshold.read_text())["threshold"]
    called_positive = sum(float(row["prob"]) >= threshold for row in sampled)
    assert baseline.films == f"the {called_positive} films the model called pneumonia"
    assert baseline.other_films == f"the {40 - called_positive} films the model called normal"
    for method, difference in baseline.differences.items():
        other = baseline.other_differences[method]
        assert difference.ci_low <= difference.value <= difference.ci_high, method
        assert other.ci_low <= other.value <= other.ci_high, method
        per_method = scores["methods"][method]
        pooled = (called_positive * difference.value + (40 - called_positive) * other.value) / 40
        # the per-film scores are float32: the two sides agree to its rounding (about 1e-7 on means near 0.65)
        assert np.isclose(
            pooled, per_method["deletion_auc_mean"] - per_method["random_deletion_auc_mean"], rtol=0, atol=1e-6
        )
    html = paths.report.read_text()
    best = json.loads(paths.best_hyperparameters.read_text())
    assert f"Trial <code>{best['trial_id']}</code>, validation AUC" in html, "the summary names the selected trial"
    assert index[0]["file"] in html
    # what a reviewer checks: who the test children are, what the grid compares, how optimistic the headline is
    summary = json.loads(paths.data_summary.read_text())
    assert f'id="shared-test-ids">{summary["shared_test_ids"]}<' in html and summary["test_patient_ids"] == "shared"
    assert 'id="comparison-protocol">4 test films drawn at random' in html and "(retrained, seed 1)" in html
    assert "This figure is optimistic" in html and 'id="retrained"' in html
    retrained = next(
        r for r in read_csv(paths.ablation_summary) if r["variant"] == "best" and r["metric"] == "test_auc"
    )
    assert f"{float(retrained['mean']):.3f}" in html[html.index('id="retrained"') :].split("</p>")[0]
    deletion = baseline.differences["gradcam"]
    assert f"{deletion.value:.3f} [{deletion.ci_low:.3f}, {deletion.ci_high:.3f}]" in html


def test_rerun_skips_finished_stages(copy_of_smoke: SmokeRun) -> None:
    paths, command = copy_of_smoke.paths, copy_of_smoke.command
    trials_before = paths.trials_csv.read_text()
    again = subprocess.run(command, cwd=paths.root.parent, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    for stage in ("data", "search", "evaluate", "gradcam"):
        assert f"stage {stage}: already done" in again.stdout
    assert paths.trials_csv.read_text() == trials_before


def test_report_builds_without_tensorflow(copy_of_smoke: SmokeRun) -> None:
    paths = copy_of_smoke.paths
    paths.report.unlink()
    completed = run_without({"tensorflow", "keras", "keras_tuner"}, ROOT / "build_report.py", [str(paths.root)], 120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert paths.report.is_file()
