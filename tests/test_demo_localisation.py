"""The demo study's model looks at the lesions: Grad-CAM on the demo's layer puts at least twice chance's
share of its energy inside the PNEUMONIA films' lesion masks. Runs the demo (data, search, evaluate,
Grad-CAM: about 6 minutes on two CPU cores), so it is not in the default run: python -m pytest -m demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.demo]  # slow too, so -m "not slow" never runs it


def test_demo_maps_put_twice_chance_on_the_lesions(tmp_path: Path) -> None:
    command = [
        sys.executable, str(ROOT / "run_study.py"), "--results", str(tmp_path / "results"), "--cache",
        str(tmp_path / "cache"), "--stages", "data,search,evaluate,gradcam",
    ]  # fmt: skip
    completed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    scores = json.loads((tmp_path / "results" / "gradcam" / "scores.json").read_text())
    gradcam = scores["methods"]["gradcam"]
    assert gradcam["films_with_masks"] >= 100
    assert gradcam["mask_ratio_mean"] >= 2.0 and gradcam["mask_ratio_median"] >= 2.0, gradcam
    assert gradcam["deletion_auc_mean"] < gradcam["random_deletion_auc_mean"], "the maps beat random maps"
