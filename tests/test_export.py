"""The smoke study's export stage: four TFLite files whose rows in export/summary.csv a reader can recompute, the
float32 file deciding every test film as the Keras model does."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from sklearn.metrics import roc_auc_score

from study.budget import Deadline
from study.config import config_from_json
from study.data.readers import dataset_arrays
from study.export.runtime import TfliteModel
from study.export.stage import export_best_model
from study.results import EXPORT_COLUMNS, BestTrial, ResultsPaths, Threshold, read_csv, write_csv
from study.results.vocab import EXPORT_VARIANTS
from tests.conftest import ROOT, SmokeRun

pytestmark = pytest.mark.slow


def _test_films(smoke: SmokeRun) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    paths = smoke.paths
    rows = [row for row in read_csv(paths.predictions_csv) if row["split"] == "test"]
    resolution = BestTrial.read(paths.best_hyperparameters).resolution
    film_paths = [row["path"] for row in rows]
    films = dataset_arrays(paths, [resolution], "squash", smoke.cache).take(resolution, film_paths)
    labels = np.array([int(row["label"]) for row in rows])
    return film_paths, films, labels, np.array([float(row["prob"]) for row in rows])


@pytest.mark.xdist_group("smoke")
def test_every_variant_is_written_and_float32_decides_as_keras_does(smoke: SmokeRun) -> None:
    paths = smoke.paths
    summary = {row["variant"]: row for row in read_csv(paths.export_summary)}
    assert list(summary) == list(EXPORT_VARIANTS) and {row["status"] for row in summary.values()} == {"ok"}
    _, films, labels, keras_probs = _test_films(smoke)
    threshold = Threshold.read(paths.threshold).threshold
    fp32 = TfliteModel(paths.export_model("fp32")).predict(films)
    assert np.abs(fp32 - keras_probs).max() < 1e-4
    assert np.array_equal(fp32 >= threshold, keras_probs >= threshold)
    for variant in EXPORT_VARIANTS:  # each row recomputed from its file, independently of the stage
        row = summary[variant]
        probs = TfliteModel(paths.export_model(variant)).predict(films)
        assert math.isclose(float(row["auc"]), roc_auc_score(labels, probs), abs_tol=1e-9), variant
        auc_diff = roc_auc_score(labels, probs) - roc_auc_score(labels, keras_probs)
        assert math.isclose(float(row["auc_diff"]), auc_diff, abs_tol=1e-9), variant
        assert float(row["auc_diff_low"]) <= float(row["auc_diff_high"])
        agreement = np.mean((probs >= threshold) == (keras_probs >= threshold))
        assert math.isclose(float(row["agreement"]), agreement), variant
        assert math.isclose(float(row["max_abs_dp"]), np.abs(probs - keras_probs).max(), abs_tol=1e-9), variant
        assert int(row["size_bytes"]) == paths.export_model(variant).stat().st_size
        assert min(float(row["latency_ms_1"]), float(row["latency_ms_2"])) > 0
    sizes = {variant: int(summary[variant]["size_bytes"]) for variant in EXPORT_VARIANTS}
    # alpha 0.35: quantisation parameters weigh more than in the study's alpha 1.0 (int8 there: 0.30 of fp32)
    assert sizes["int8"] < 0.5 * sizes["fp32"] and sizes["fp16"] < 0.6 * sizes["fp32"]


@pytest.mark.xdist_group("smoke")
def test_the_export_section_shows_each_variant(smoke: SmokeRun) -> None:
    html = smoke.paths.report.read_text()
    section = html[html.index('<section id="export">') :].split("</section>")[0]
    for variant in EXPORT_VARIANTS:
        assert f'id="export-{variant}"' in section and f"model_{variant}.tflite" in section
    assert "not converted" not in section and "AUC minus Keras" in section


@pytest.mark.xdist_group("long")  # on a copy: the long runs' worker has the room
def test_a_resumed_export_converts_only_what_is_missing_and_a_spent_budget_none(
    smoke: SmokeRun, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    shutil.copytree(smoke.paths.root, results, ignore=shutil.ignore_patterns("tensorboard", "gradcam", "ablation"))
    paths = ResultsPaths(results)
    rows = read_csv(paths.export_summary)
    write_csv(paths.export_summary, EXPORT_COLUMNS, [row for row in rows if row["variant"] != "fp16"])
    paths.export_model("fp16").unlink()
    cfg = config_from_json(paths.config.read_text(), paths.config)
    kept = [variant for variant in EXPORT_VARIANTS if variant != "fp16"]
    written = {variant: paths.export_model(variant).stat().st_mtime_ns for variant in kept}
    spent = export_best_model(cfg, paths, smoke.cache, Deadline(ends_at=0.0))
    assert spent is not None and "time budget" in spent and not paths.export_model("fp16").exists()
    assert export_best_model(cfg, paths, smoke.cache, Deadline(None)) is None
    assert paths.export_model("fp16").is_file()
    assert {variant: paths.export_model(variant).stat().st_mtime_ns for variant in kept} == written, "converted once"
    after = {row["variant"]: row for row in read_csv(paths.export_summary)}
    assert list(after) == list(EXPORT_VARIANTS) and after["fp16"]["status"] == "ok"
    assert all(after[row["variant"]] == row for row in rows if row["variant"] != "fp16"), "finished rows as written"
    assert not list(paths.export_dir.glob(".*.tmp")), "no half-written file left behind"


@pytest.mark.xdist_group("smoke")
def test_a_killed_study_leaves_no_converter_behind(smoke: SmokeRun, tmp_path: Path) -> None:
    """The conversions run in a child process beside the ablation; a kill -9 of the study (a Colab runtime dying)
    must take the child with it, or it would go on writing into a folder that a resumed study owns."""
    script = (
        "import sys, numpy as np; from pathlib import Path; from study.export.background import ConversionJob; "
        "ConversionJob(Path(sys.argv[1]), {'fp32': Path(sys.argv[2])}, np.zeros((1, 48, 48, 1), np.uint8)); "
        "print('started', flush=True); import time; time.sleep(600)"
    )
    target = tmp_path / "model_fp32.tflite"
    study = subprocess.Popen([sys.executable, "-c", script, str(smoke.paths.best_model), str(target)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert study.stdout is not None and study.stdout.readline().strip() == "started"
        (converter,) = psutil.Process(study.pid).children()
        # Once TensorFlow loads, the child has asked to die with its parent: the kill tests that request, not the
        # check the child makes before it (which would also stop a child still starting).
        while not any("tensorflow" in region.path for region in converter.memory_maps()):
            time.sleep(0.1)
    finally:
        study.kill()
        study.wait()
    converter.wait(timeout=60)  # psutil.TimeoutExpired if it outlived the study
    assert not target.exists()
