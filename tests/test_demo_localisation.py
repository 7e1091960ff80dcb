"""The demo's findings hold on more than one seed: its selected model scores test AUC >= 0.95, LayerCAM (its first
saliency method) on the demo's layer puts at least twice chance's share of its energy inside the PNEUMONIA films'
lesion masks and beats random maps on deletion, and the
exported files keep the model: float32 decides as Keras does, full-integer int8 keeps test AUC within 0.01.
Each case runs the demo's data, search, evaluation and Grad-CAM (about 3 minutes on two CPU cores), so they
are not in the default run: python -m pytest -m demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from study.results import read_csv

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.demo]  # slow too, so -m "not slow" never runs it

ROUNDING = (
    "the trained model depends on the CPU kernels' float rounding: two of 23 models trained under several "
    "kernels fell below these bounds (docs/architecture.md, 'How float rounding moves the demo's localisation')"
)


@pytest.mark.parametrize("seed", [0, 1])
def test_demo_model_learns_and_its_maps_sit_on_the_lesions(tmp_path: Path, seed: int) -> None:
    command = [
        sys.executable, str(ROOT / "run_study.py"), "--results", str(tmp_path / "results"), "--cache",
        str(tmp_path / "cache"), "--stages", "data,search,evaluate,export,gradcam",
        "--set", f"demo.seed={seed}", "--set", f"search.seed={seed}",
    ]  # fmt: skip
    # TensorFlow's own thread pools, as the README's demo command gets them (the suite pins one thread per
    # worker): the thread count changes float rounding, and the demo's localisation with it (docs/architecture.md)
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
    completed = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=1800)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    test_auc = json.loads((tmp_path / "results" / "best" / "test_metrics.json").read_text())["metrics"]["auc"]
    assert test_auc["value"] >= 0.95, (test_auc, ROUNDING)
    scores = json.loads((tmp_path / "results" / "gradcam" / "scores.json").read_text())
    layercam = scores["methods"]["layercam"]
    assert layercam["films_with_masks"] >= 100
    assert layercam["mask_ratio_mean"] >= 2.0 and layercam["mask_ratio_median"] >= 2.0, (layercam, ROUNDING)
    difference = json.loads((tmp_path / "results" / "gradcam" / "baseline.json").read_text())["differences"]["layercam"]
    assert difference["ci_high"] < 0, f"the maps beat random maps, paired per film: {difference}; {ROUNDING}"
    export = {row["variant"]: row for row in read_csv(tmp_path / "results" / "export" / "summary.csv")}
    assert float(export["fp32"]["agreement"]) == 1.0 and float(export["fp32"]["max_abs_dp"]) < 1e-4, export["fp32"]
    assert abs(float(export["int8"]["auc_diff"])) <= 0.01, export["int8"]
