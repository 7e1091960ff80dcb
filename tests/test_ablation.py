"""The ablation stage on the smoke study: every table cell recomputed from runs.csv, the LaTeX well formed,
the protocol in the caption, and a kill during the reruns losing and repeating nothing."""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from study.results import read_csv
from tests.conftest import SmokeRun, smoke_command
from tests.drive_loss import snapshot_content, what_drive_kept

pytestmark = pytest.mark.slow

METRICS = ("val_auc", "test_auc", "test_accuracy", "test_sensitivity", "test_specificity")
COMPARED = ("run_id", "variant", "seed", "status", "best_epoch", "threshold", *METRICS)


def _interval_text(values: list[float]) -> str:
    """mean [t CI cut to 0..1], recomputed with scipy alone."""
    mean = float(np.mean(values))
    half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
    return f"{mean:.3f} [{max(mean - half, 0.0):.3f}, {min(mean + half, 1.0):.3f}]"


def _delta_text(variant: list[float], best: list[float]) -> str:
    differences = np.subtract(variant, best)
    mean = float(differences.mean())
    if np.allclose(differences, differences[0], rtol=0.0, atol=1e-12):
        return f"{mean:+.3f} [n/a]"
    interval = stats.ttest_rel(variant, best).confidence_interval(0.95)
    return f"{mean:+.3f} [{max(interval.low, -1.0):+.3f}, {min(interval.high, 1.0):+.3f}]"


@pytest.mark.xdist_group("smoke")
def test_smoke_ablation_tables_trace_to_runs_csv(smoke: SmokeRun) -> None:
    paths = smoke.paths
    runs = read_csv(paths.ablation_runs)
    assert [row["status"] for row in runs] == ["ok"] * 4
    assert {row["variant"] for row in runs} == {"best", runs[-1]["variant"]} and runs[-1]["factor"] == "augmentation"
    assert paths.ablation_summary.is_file()
    table = read_csv(paths.ablation_table("csv"))
    assert [row["variant"] for row in table] == ["best", runs[-1]["variant"]]
    best_runs = [row for row in runs if row["variant"] == "best"]
    for row in table:
        own = [run for run in runs if run["variant"] == row["variant"]]
        assert row["seeds"] == "2"
        for metric in METRICS:
            assert row[metric] == _interval_text([float(run[metric]) for run in own]), (row["variant"], metric)
        if row["variant"] == "best":
            continue
        for metric in METRICS[1:]:
            expected = _delta_text([float(r[metric]) for r in own], [float(r[metric]) for r in best_runs])
            assert row["d_" + metric].rstrip("*†") == expected, (row["variant"], metric)
            ci = re.findall(r"[+-]\d\.\d{3}", row["d_" + metric])[1:]
            excludes_zero = len(ci) == 2 and (float(ci[0]) > 0 or float(ci[1]) < 0)
            assert ("*" in row["d_" + metric]) == excludes_zero
        summary = next(r for r in read_csv(paths.ablation_summary)
                       if r["variant"] == row["variant"] and r["metric"] == "test_auc")  # fmt: skip
        low, high = float(summary["patient_boot_low"]), float(summary["patient_boot_high"])
        assert ("†" in row["d_test_auc"]) == (low > 0 or high < 0)


@pytest.mark.xdist_group("smoke")
def test_smoke_ablation_latex_and_caption(smoke: SmokeRun) -> None:
    tex = smoke.paths.ablation_table("tex").read_text()
    unescaped = tex.replace(r"\{", "").replace(r"\}", "")
    assert unescaped.count("{") == unescaped.count("}")
    depth = 0
    for char in unescaped:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\end{table}"):
        assert tex.count(rule) == 1, rule
    assert "\\usepackage" not in tex
    rows = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert len({line.count("&") for line in rows}) == 1, "every row has the header's number of columns"
    caption = read_csv(smoke.paths.ablation_table("csv"))[0]["caption"]
    test_films = json.loads(smoke.paths.data_summary.read_text())["counts"]["test"]
    for fact in ("2 seeds", "for 2 epochs", f"test set ({sum(test_films.values())} films", "scored once",
                 "Youden's J on its own validation predictions", "Student t", "paired by seed",
                 "test set's patients are resampled", "learning rate"):  # fmt: skip
        assert fact in caption, fact
    markdown = smoke.paths.ablation_table("md").read_text()
    assert markdown.count("\n| ") == 3 and "Best configuration" in markdown  # header + 2 variants


@pytest.mark.xdist_group("long")
def test_kill_during_ablation_loses_no_finished_run_and_repeats_none(smoke: SmokeRun, tmp_path: Path) -> None:
    """Start from the smoke study with three of its four runs done, mirrored to "Drive"; kill -9 at a random
    moment of the last run, delete the local folder and resume from what Drive kept (its last seconds lost). The
    runs match the uninterrupted study's, and only the one the kept snapshot lacked trained, once. The
    uninterrupted study trained that run (its variant's second seed) on the model the first seed had traced; the
    resumed process builds it anew, so this also checks that a reused model trains exactly as a new one."""
    results, mirror, kept = tmp_path / "results", tmp_path / "drive", tmp_path / "drive_kept"
    shutil.copytree(smoke.paths.root, results, ignore=shutil.ignore_patterns("ablation", "gradcam", "report*", "logs"))
    reference = read_csv(smoke.paths.ablation_runs)
    (results / "ablation" / "predictions").mkdir(parents=True)
    lines = smoke.paths.ablation_runs.read_text().splitlines()[:4]  # the header and the first three runs
    (results / "ablation" / "runs.csv").write_text("\n".join(lines) + "\n")
    for run in reference[:3]:
        shutil.copy(smoke.paths.ablation_predictions(run["run_id"]), results / "ablation" / "predictions")
    manifest = json.loads((results / "manifest.json").read_text())
    manifest["stages_done"] = ["data", "search", "evaluate"]
    (results / "manifest.json").write_text(json.dumps(manifest))

    def command(mirror_dir: Path) -> list[str]:
        return smoke_command(results, smoke.cache, "--stages", "ablation", "--mirror", str(mirror_dir))

    process = subprocess.Popen(command(mirror), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_snapshot = mirror / "snapshots" / "000001.json"
    while not first_snapshot.exists() and process.poll() is None:
        time.sleep(0.2)
    # Drive loses the last 4 s here: the kill comes after the first snapshot outlived them, within the last run
    # (its build, trace and two epochs take over 10 s).
    lost_seconds = 4.0
    time.sleep(lost_seconds + random.Random(5).uniform(1.0, 4.0))
    assert process.poll() is None, "the ablation finished before it could be killed"
    process.kill()
    process.wait()
    # One snapshot survives: none to rename.
    what_drive_kept(mirror, kept, killed_at=time.time(), rename=False, lost_seconds=lost_seconds)
    shutil.rmtree(results)
    kept_runs = {
        row["run_id"] for row in csv.DictReader(io.StringIO(snapshot_content(kept, "ablation/runs.csv") or ""))
    }

    final = subprocess.run(command(kept), cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    resumed = read_csv(results / "ablation" / "runs.csv")
    assert [[row[k] for k in COMPARED] for row in resumed] == [[row[k] for k in COMPARED] for row in reference]
    trained = re.findall(r"ablation run \[(\S+)\] ok", final.stdout)
    assert trained == [row["run_id"] for row in reference if row["run_id"] not in kept_runs], "each missing run once"
    assert read_csv(results / "ablation" / "tables" / "ablation.csv") == read_csv(smoke.paths.ablation_table("csv"))


@pytest.mark.xdist_group("smoke")
def test_comparison_grid_shows_the_same_films_under_each_ablation_model(smoke: SmokeRun) -> None:
    """The grid's models are the ablation's of one seed, the retrained best configuration first (not the search's
    checkpoint): its probabilities are those runs' saved predictions. Its films are two per class, of distinct
    patients."""
    paths = smoke.paths
    rows = read_csv(paths.gradcam_comparison_csv)
    variant = read_csv(paths.ablation_runs)[-1]["variant"]
    assert list(dict.fromkeys(row["variant"] for row in rows)) == ["best", variant]
    films = list(dict.fromkeys(row["source"] for row in rows))
    assert len(films) == 4 and len(rows) == 2 * len(films)
    first = {row["source"]: row for row in rows if row["variant"] == "best"}
    assert sorted(int(row["label"]) for row in first.values()) == [0, 0, 1, 1]
    assert len({row["patient_id"] for row in first.values()}) == 4
    assert {row["selection"] for row in rows} == {"random"} and "seed 1" in first[films[0]]["variant_label"]
    expected = {
        "best": {r["path"]: float(r["prob"]) for r in read_csv(paths.ablation_predictions("best_seed1"))
                 if r["split"] == "test"},
        variant: {r["path"]: float(r["prob"]) for r in read_csv(paths.ablation_predictions(f"{variant}_seed1"))
                  if r["split"] == "test"},
    }  # fmt: skip
    for row in rows:
        assert math.isclose(float(row["prob"]), expected[row["variant"]][row["source"]], abs_tol=1e-5), row
    with Image.open(paths.gradcam_comparison) as grid:
        assert grid.width >= 2 * 150 and grid.height >= len(films) * 150  # the demo films are about 170 px wide
