"""A full-size rehearsal of the night, on this machine's CPU.

1. Writes a stand-in for Kaggle's chest_xray/ folder at full size: 5,856 films with the real counts per split
   and class, Kaggle's file names with several films per patient (person numbers restart in test/: under the
   default data.test_patient_ids = "shared", the train films of test's numbers leave training, the cost of that
   default if Kaggle's numbering does restart), sides of 900-2,400 px, about 5% RGB JPEGs.
2. Times the data stage on it (run_study.py --prepare-only) and reports its peak resident memory and the
   decode cache's size.
3. Runs the whole study at the real shape (the overnight config: MobileNetV2 alpha 1.0 at 160-224 px) under a
   short time budget on the CPU (the GPU requirement lifted, weights none: no download here), so that the
   evaluation of the 624 test films, Grad-CAM and the report run at full size; reports the seconds per
   224 px epoch, the per-trial overhead, and the report's build time and size.

    python benchmarks/rehearsal.py [--work DIR] [--budget 20m] [--scale 1.0] [--films-only]

Prints one line per figure; every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
# split -> class -> films, as Kaggle ships them (PNEUMONIA: bacteria, virus)
COUNTS = {
    "train": {"NORMAL": 1341, "bacteria": 2530, "virus": 1345},
    "val": {"NORMAL": 8, "bacteria": 4, "virus": 4},
    "test": {"NORMAL": 234, "bacteria": 242, "virus": 148},
}


def film_names(kind: str, count: int, rng: np.random.Generator) -> list[str]:
    """Kaggle's names: one to four films per patient, patients numbered from 1 in each folder."""
    names: list[str] = []
    patient = 0
    while len(names) < count:
        patient += 1
        for shot in range(1, int(rng.integers(1, 5)) + 1):
            if kind == "NORMAL":
                prefix = "NORMAL2-IM" if patient % 2 else "IM"
                names.append(f"{prefix}-{patient:04d}-{shot:04d}.jpeg")
            else:
                names.append(f"person{patient}_{kind}_{shot}.jpeg")
    return names[:count]


def write_film(task: tuple[str, int]) -> int:
    """One film: a smooth random field with a brighter chest, 900-2,400 px wide; returns its bytes."""
    path, seed = task
    rng = np.random.default_rng(seed)
    width = int(rng.integers(900, 2401))
    height = int(width * rng.uniform(0.7, 1.0))
    small = rng.normal(110, 35, (48, 64)).clip(0, 255)
    small[10:40, 12:52] += 40  # the chest
    image = Image.fromarray(small.clip(0, 255).astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR)
    if rng.random() < 0.05:  # about 5% of Kaggle's films are RGB JPEGs
        image = image.convert("RGB")
    image.save(path, quality=85)
    return Path(path).stat().st_size


def write_films(root: Path, scale: float) -> tuple[int, int, float]:
    """The Kaggle layout under root/chest_xray; returns (films, bytes, seconds)."""
    rng = np.random.default_rng(0)
    tasks = []
    for split, kinds in COUNTS.items():
        for kind, count in kinds.items():
            label = "NORMAL" if kind == "NORMAL" else "PNEUMONIA"
            folder = root / "chest_xray" / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for name in film_names(kind, max(2, math.ceil(count * scale)), rng):
                tasks.append((str(folder / name), len(tasks)))
    started = time.monotonic()
    with ProcessPoolExecutor() as pool:
        sizes = list(pool.map(write_film, tasks, chunksize=32))
    return len(tasks), sum(sizes), time.monotonic() - started


def run_measured(command: list[str], cwd: Path) -> tuple[int, float, float, str]:
    """Run a command; return (exit code, seconds, peak RSS of it and its children in MB, its output)."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watched = psutil.Process(process.pid)
    peak = 0.0
    output: list[str] = []
    assert process.stdout is not None
    while process.poll() is None:
        try:
            tree = [watched, *watched.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20)
        except psutil.Error:
            pass
        time.sleep(0.5)
    output.append(process.stdout.read())
    return process.returncode, time.monotonic() - started, peak, "".join(output)


def folder_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/chest-xray-rehearsal"))
    parser.add_argument("--budget", default="20m", help="the study's --time-budget (default 20m)")
    parser.add_argument("--scale", type=float, default=1.0, help="share of the real film counts (1.0: 5,856)")
    parser.add_argument("--films-only", action="store_true", help="stop after the data stage")
    args = parser.parse_args(argv)
    data, cache, results = args.work / "kaggle", args.work / "cache", args.work / "results"
    if not (data / "chest_xray").exists():
        films, size, seconds = write_films(data, args.scale)
        print(f"wrote {films} films ({size / 2**20:.0f} MB of JPEGs) in {seconds:.0f} s")
    study = [sys.executable, str(ROOT / "run_study.py"), "--data", str(data), "--results", str(results),
             "--cache", str(cache), "--cpu", "--weights", "none"]  # fmt: skip
    code, seconds, peak, output = run_measured([*study, "--prepare-only"], ROOT)
    if code != 0:
        print(output[-3000:])
        return code
    summary = json.loads((results / "data" / "summary.json").read_text())
    films = sum(sum(classes.values()) for classes in summary["counts"].values())
    print(f"data stage: {films} films in {seconds:.0f} s (whole command), peak RSS {peak:.0f} MB, "
          f"decode cache {folder_mb(cache / 'arrays'):.0f} MB")  # fmt: skip
    if args.films_only:
        return 0
    code, seconds, peak, output = run_measured([*study, "--time-budget", args.budget], ROOT)
    print(f"study under --time-budget {args.budget}: exit {code} in {seconds:.0f} s, peak RSS {peak:.0f} MB")
    if code not in (0, 3):
        print(output[-3000:])
        return code
    calibration = json.loads((results / "search" / "calibration.json").read_text())
    epochs = ", ".join(f"{size} px {sec:.0f} s" for size, sec in calibration["epoch_seconds"].items())
    print(f"per-trial overhead (build, compile, trace): {calibration['build_seconds']:.0f} s; one epoch: {epochs}")
    manifest = json.loads((results / "manifest.json").read_text())
    print("stage seconds: " + ", ".join(f"{stage} {s:.0f}" for stage, s in manifest["stage_seconds"].items()))
    print(f"status: {manifest['status']}; {manifest.get('stopped') or 'every planned step ran'}")
    started = time.monotonic()
    subprocess.run([sys.executable, str(ROOT / "build_report.py"), str(results)], check=True, capture_output=True)
    report_mb = (
        (results / "report.html").stat().st_size
        + sum(path.stat().st_size for path in (results / "report_files").rglob("*") if path.is_file())
    ) / 2**20
    print(f"report: built in {time.monotonic() - started:.1f} s, {report_mb:.1f} MB with its figures")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
