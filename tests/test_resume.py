"""A killed study resumes where it was; a time budget ends the study early, evaluated and reported, exit 3."""

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

import pytest

from study.results import read_csv
from tests.conftest import SmokeRun, smoke_command
from tests.drive_loss import LOST_SECONDS, first_trial_snapshot_age, snapshot_content, what_drive_kept

pytestmark = pytest.mark.slow

COMPARED = ("trial_id", "status", "bracket", "round", "parent", "epochs", "initial_epoch", "best_epoch")


def _assert_readable(results: Path) -> None:
    """Whatever moment the kill hit, the files a reader opens parse."""
    for name in ("manifest.json", "config.json", "search/plan.json", "search/calibration.json"):
        if (results / name).exists():
            json.loads((results / name).read_text())
    if (results / "search" / "trials.csv").exists():
        assert read_csv(results / "search" / "trials.csv") is not None


def _completed_lines(results: Path) -> int:
    log = results / "logs" / "run.log"
    return len(re.findall(r"trial \[\d+\] COMPLETED", log.read_text())) if log.exists() else 0


@pytest.mark.xdist_group("smoke")
def test_time_budget_stops_after_whole_trials_evaluates_and_exits_3(smoke: SmokeRun, tmp_path: Path) -> None:
    """The budget is sized from this machine's own reference run: its timing run (about one trial: a build, a
    trace and a few steps) and room for about one and a half of the five trials, so at least one trial fits and
    not all do, even when this run is 1.5 times slower or twice as fast as the reference (other tests share the
    cores). The reference's second trial is the measure: its first also paid the process's warm-up (twice the
    time in a suite run), with which the budget fitted four trials of five. Grad-CAM is left out: the budget does
    not change it."""
    reference_manifest = json.loads(smoke.paths.manifest.read_text())
    trial = float(read_csv(smoke.paths.trials_csv)[1]["seconds"])
    share = 0.85
    budget = math.ceil((reference_manifest["stage_seconds"]["data"] + 2.5 * trial + 10) / share)
    results = tmp_path / "results"
    completed = subprocess.run(
        smoke_command(results, smoke.cache, "--time-budget", f"{budget}s", "--set", f"budget.search_share={share}",
                      "--set", "budget.ablation_share=0.05", "--stages", "data,search,evaluate,ablation,report"),
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert completed.returncode == 3, completed.stdout[-3000:] + completed.stderr[-3000:]
    trials = read_csv(results / "search" / "trials.csv")
    done = [row for row in trials if row["status"] == "COMPLETED"]
    planned = json.loads((results / "search" / "plan.json").read_text())["total_trials"]
    assert 1 <= len(done) < planned
    assert trials[-1]["status"] == "STOPPED" and trials[-1]["error"].startswith("not started")
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["status"] == "stopped"
    assert manifest["stages_done"] == ["data", "search", "evaluate", "ablation", "report"]
    assert f"stopped by the time budget after {len(done)} of {planned} planned trials" in manifest["stopped"]
    assert "ablation not run by the time budget" in manifest["stopped"]
    longest_trial = max(float(row["seconds"]) for row in done)
    search_ended = sum(manifest["stage_seconds"][stage] for stage in ("data", "search"))
    assert search_ended <= budget * share + longest_trial, "stopped within one trial's time of the search budget"
    assert "stopped by the time budget" in (results / "report.html").read_text()


@pytest.mark.xdist_group("long")
def test_a_budget_that_fits_no_trial_stops_with_exit_3_and_a_report(smoke_cache: Path, tmp_path: Path) -> None:
    """20 s leave the search 12 s (its 60% share), less than the calibration alone takes: no trial can start.
    The study must say so in one line, exit 3 and still write its report; no traceback."""
    results = tmp_path / "results"
    completed = subprocess.run(
        smoke_command(results, smoke_cache, "--time-budget", "20s"), cwd=tmp_path, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    output = completed.stdout + completed.stderr
    assert completed.returncode == 3, output[-3000:]
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if "the study stopped" in line]
    assert "no trial fitted (the first needs about" in line
    trials = read_csv(results / "search" / "trials.csv")
    assert [row["status"] for row in trials] == ["STOPPED"]
    manifest = json.loads((results / "manifest.json").read_text())
    assert (manifest["status"], manifest["stages_done"]) == ("stopped", ["data", "search", "report"])
    assert not (results / "best" / "model.keras").exists()
    assert "no trial fitted" in (results / "report.html").read_text()


@pytest.mark.xdist_group("long")
def test_a_second_writer_is_refused_while_the_first_lives(smoke_cache: Path, tmp_path: Path) -> None:
    """Two processes on one results folder would interleave their trials; a notebook cell run twice does it.
    The second exits 2 at once naming the first; after a kill -9 of the first, a new start is accepted."""
    results = tmp_path / "results"
    command = smoke_command(results, smoke_cache)
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock = results / ".lock"
        while not (lock.exists() and f"PID {first.pid} " in lock.read_text()):
            assert first.poll() is None, "the first run ended before taking the lock"
            time.sleep(0.1)
        started = time.monotonic()
        second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
        assert time.monotonic() - started < 20
        (line,) = second.stderr.strip().splitlines()
        assert f"PID {first.pid} on " in line and str(results) in line
    finally:
        first.kill()  # SIGKILL: the lock must die with the process
        first.wait()
    third = subprocess.run(
        smoke_command(results, smoke_cache, "--prepare-only"), cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert third.returncode == 0, third.stdout[-2000:] + third.stderr[-2000:]


@pytest.mark.xdist_group("long")  # it needs the smoke study only at its end: it runs before those that start with it
def test_kill_loop_with_a_drive_mirror_ends_with_the_trials_of_an_uninterrupted_run(
    smoke_cache: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The night on Colab: the study runs locally and mirrors to "Drive". kill -9 once during the first trial
    and resume from the local folder; kill -9 again at a random moment after the second trial ended, and this
    time the runtime is gone: the local folder is deleted and the study resumes from what Drive kept (the last
    seconds lost, a snapshot renamed, a checkpoint cut short). It completes with every trial the kept snapshot had
    finished, none run twice, and the trials of an uninterrupted run. Between kills the study also restarts
    itself after every second trial to free memory, so trial boundaries are also crossed by fresh processes."""
    results, mirror, kept = tmp_path / "results", tmp_path / "drive", tmp_path / "drive_kept"

    def command(mirror_dir: Path) -> list[str]:
        # A tiny memory allowance: the study restarts itself whenever a trial grew its memory since the process's
        # first (what frees TensorFlow's memory), so after every second trial.
        # The stages a kill can hurt before the test set is used; the ablation's own kill test is in test_ablation.py.
        return smoke_command(
            results, smoke_cache, "--mirror", str(mirror_dir), "--set", "budget.memory_growth=0.001",
            "--stages", "data,search,evaluate",
        )  # fmt: skip

    rng = random.Random(4)
    for completed_before_kill in (0, 2):
        process = subprocess.Popen(command(mirror), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while _completed_lines(results) < completed_before_kill and process.poll() is None:
            time.sleep(0.2)
        # The second kill waits until the first trial's snapshot outlives the lost seconds, so the kept
        # copy holds a checkpoint to cut (and a continuation or the best model may have to retrain).
        while completed_before_kill and (first_trial_snapshot_age(mirror) or 0.0) < LOST_SECONDS + 1:
            assert process.poll() is None, "the study ended before its first trial's snapshot was old enough"
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 5.0) if completed_before_kill else rng.uniform(10.0, 20.0))
        assert process.poll() is None, "the study finished before it could be killed"
        process.kill()  # SIGKILL: no cleanup, no finally
        process.wait()
        _assert_readable(results)
    what_drive_kept(mirror, kept, killed_at=time.time())
    shutil.rmtree(results)
    kept_trials = snapshot_content(kept, "search/trials.csv")
    kept_done = {
        row["trial_id"] for row in csv.DictReader(io.StringIO(kept_trials or "")) if row["status"] == "COMPLETED"
    }
    assert kept_done, "the kept snapshot holds at least the first trial, whose checkpoint was cut"
    final = subprocess.run(command(kept), cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    assert "restored" in final.stdout

    resumed = read_csv(results / "search" / "trials.csv")
    assert kept_done <= {row["trial_id"] for row in resumed if row["status"] == "COMPLETED"}
    trained_now = set(re.findall(r"trial \[(\d+)\] COMPLETED", final.stdout))
    assert not trained_now & kept_done, "a trial the kept snapshot had finished ran again"
    # A continuation whose parent's checkpoint was cut trains from scratch: its scores may differ.
    retrained = set(re.findall(r"trial \[(\d+)\]: the checkpoint of trial", final.stdout))
    smoke: SmokeRun = request.getfixturevalue("smoke")  # built meanwhile by another worker
    reference = read_csv(smoke.paths.trials_csv)
    assert [[row[k] for k in COMPARED if k != "best_epoch"] for row in resumed] == [
        [row[k] for k in COMPARED if k != "best_epoch"] for row in reference
    ]
    for ours, theirs in zip(resumed, reference, strict=True):
        assert {k: v for k, v in ours.items() if k.startswith("hp_")} == {
            k: v for k, v in theirs.items() if k.startswith("hp_")
        }
        if ours["trial_id"] not in retrained:
            assert ours["best_epoch"] == theirs["best_epoch"]
            assert math.isclose(float(ours["val_auc"]), float(theirs["val_auc"]), abs_tol=1e-6), (ours, theirs)
    log = (results / "logs" / "run.log").read_text()
    for trial_id in (row["trial_id"] for row in resumed):
        assert len(re.findall(rf"trial \[{trial_id}\] COMPLETED", log)) <= 1, f"trial {trial_id} ran twice"
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["status"] == "partial" and manifest["stages_done"] == ["data", "search", "evaluate"]
    assert "restarting to free it" in log
    memory = [float(row["rss_mb"]) for row in resumed if row["rss_mb"]]
    # A process trains at most two trials: without the restarts the last trial's process would hold about
    # 150 MB per earlier trial on top of the first's.
    assert memory[-1] < min(memory) + 300, f"memory bounded by the restarts: {memory}"


@pytest.mark.xdist_group("long")  # on a copy: it need not wait behind the smoke study's readers
def test_a_lost_best_checkpoint_is_retrained_and_the_selection_stands(copy_of_smoke: SmokeRun) -> None:
    """The best trial's checkpoint did not survive (Drive lost it): the search's end trains the best trial's
    model again from its own values instead of failing, and the selected trial does not change."""
    paths = copy_of_smoke.paths
    best_before = json.loads(paths.best_hyperparameters.read_text())
    (checkpoint,) = paths.tuner_dir.glob("trial_*/checkpoint.weights.h5")  # the search kept the best's only
    checkpoint.unlink()
    paths.best_model.unlink()
    manifest = json.loads(paths.manifest.read_text())
    manifest["stages_done"] = ["data"]
    paths.manifest.write_text(json.dumps(manifest))
    completed = subprocess.run(
        [*copy_of_smoke.command, "--stages", "search"], cwd=paths.root.parent, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert f"best trial {best_before['trial_id']}: its checkpoint is missing or unreadable" in completed.stdout
    assert json.loads(paths.best_hyperparameters.read_text())["trial_id"] == best_before["trial_id"]
    assert paths.best_model.exists()
