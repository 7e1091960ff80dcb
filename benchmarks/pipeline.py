"""The input pipeline, measured side by side in one run: a naive Keras directory pipeline vs the decode cache.

Generates films of realistic size (1000-2000 px sides, ~200 KB JPEGs) in the Kaggle layout, then prints:
  (a) per-epoch CPU time per image of keras.utils.image_dataset_from_directory at the given size
      (decode + resize every film, every epoch, every trial: what the usual notebook does);
  (b) per-epoch CPU time per image of our pipeline once the cache exists: batches gathered from the uint8
      arrays by Keras's own array adapter, as model.fit does with them;
  the cache build time against one naive epoch; the images per second our pipeline feeds; and the decodes
  per image over a multi-trial study (data stage + 3 trials + evaluation).
Run: python benchmarks/pipeline.py [--films 600] [--size 224]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

from study.config import builtin_config_path, load_config
from study.data import cache as cache_module
from study.data.prepare import prepare_data
from study.data.readers import dataset_arrays, load_training_arrays
from study.results import ResultsPaths, read_csv

BATCH = 32


def write_films(root: Path, count: int, seed: int) -> None:
    """Smooth anatomy-like shading plus film grain, 8-bit JPEGs in chest_xray/{split}/{class}/."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        split = "test" if index % 5 == 0 else ("val" if index % 17 == 1 else "train")
        label = "NORMAL" if index % 3 == 0 else "PNEUMONIA"
        height, width = int(rng.integers(1000, 2000)), int(rng.integers(1000, 2000))
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        shade = 120 + 60 * np.sin(x / width * 6.0 + index) * np.cos(y / height * 4.0)
        pixels = np.clip(shade + rng.normal(0, 2.5, (height, width)), 0, 255).astype(np.uint8)
        folder = root / "chest_xray" / split / label
        folder.mkdir(parents=True, exist_ok=True)
        name = f"IM-{index:04d}-0001.jpeg" if label == "NORMAL" else f"person{index}_virus_1.jpeg"
        Image.fromarray(pixels, mode="L").save(folder / name, quality=90)


def cpu_and_wall(action: Callable[[], object]) -> tuple[float, float]:
    """Process CPU seconds (all threads) and wall seconds of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    action()
    return time.process_time() - cpu, time.perf_counter() - wall


def prepare_only_peak_mb(root: Path) -> float:
    """Peak resident memory (VmHWM, Linux) of `run_study.py --data ... --prepare-only` in a process of its own."""
    argv = ["run_study.py", "--data", str(root / "data"), "--prepare-only", "--results", str(root / "r2"),
            "--cache", str(root / "c2")]  # fmt: skip
    script = (
        f"import runpy, sys; sys.argv = {argv!r}\n"
        "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print([line for line in open('/proc/self/status') if line.startswith('VmHWM')][0].split()[1])\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(completed.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--films", type=int, default=600)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    cfg = load_config(builtin_config_path("overnight"), [f"space.resolutions=[{args.size}]"])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_films(root / "data", args.films, seed=0)
        films = sorted((root / "data").rglob("*.jpeg"))
        kilobytes = sum(path.stat().st_size for path in films) / len(films) / 1000
        print(f"{len(films)} films, {kilobytes:.0f} KB each, {args.size} px, batch {BATCH}, {os.cpu_count()} CPUs")

        train_dir = root / "data" / "chest_xray" / "train"
        naive = keras.utils.image_dataset_from_directory(
            train_dir,
            image_size=(args.size, args.size),
            color_mode="grayscale",
            batch_size=BATCH,
            seed=0,
            verbose=False,
        )
        naive_images = sum(1 for _ in train_dir.rglob("*.jpeg"))
        [batch for batch in naive]  # warm-up epoch: tf.data and TensorFlow start-up costs are not per-epoch costs
        naive_cpu, naive_wall = cpu_and_wall(lambda: [batch for batch in naive])

        opened: list[str] = []
        real_open = cache_module.open_film
        cache_module.open_film = lambda path, side=None: opened.append(str(path)) or real_open(path, side)
        paths = ResultsPaths(root / "results")
        import sklearn.model_selection  # noqa: F401 - a one-off import is not build time, as TF start-up is not (a)'s

        _, build_wall = cpu_and_wall(lambda: prepare_data(root / "data", cfg, root / "cache", paths))
        for _ in range(3):  # three trials (or resumes) load the training arrays
            arrays = load_training_arrays(paths, [args.size], cfg.data.aspect, root / "cache")[args.size]
        test = [row["path"] for row in read_csv(paths.split_csv) if row["split"] == "test"]
        dataset_arrays(paths, [args.size], cfg.data.aspect, root / "cache").take(args.size, test)
        cache_module.open_film = real_open

        peak_mb = prepare_only_peak_mb(root)

        ours_images = len(arrays.x_train)
        adapter = ArrayDataAdapter(arrays.x_train, arrays.y_train, batch_size=BATCH, shuffle=True)
        [batch for batch in adapter.get_tf_dataset()]  # warm-up epoch, as for (a)
        ours_cpu, ours_wall = cpu_and_wall(lambda: [batch for batch in adapter.get_tf_dataset()])

    naive_ms, ours_ms = 1000 * naive_cpu / naive_images, 1000 * ours_cpu / ours_images
    naive_epoch_per_film = naive_wall / naive_images
    print(f"(a) naive directory pipeline: {naive_ms:8.3f} CPU-ms/image/epoch, {naive_images / naive_wall:8,.0f} img/s")
    print(f"(b) decode-once cache:        {ours_ms:8.3f} CPU-ms/image/epoch, {ours_images / ours_wall:8,.0f} img/s")
    print(f"(a)/(b) per-epoch CPU time per image: {naive_ms / ours_ms:,.0f}x")
    ratio = build_wall / (naive_epoch_per_film * len(films))
    print(f"cache build: {build_wall:.1f} s for {len(films)} films = {ratio:.2f}x one naive epoch over as many films")
    print(f"our pipeline feeds {ours_images / ours_wall:,.0f} images/s on this machine")
    print(f"decodes per image over data stage + 3 trials + evaluation: {len(opened) / len(films):.2f}")
    print(f"peak memory of run_study.py --prepare-only (overnight config, 3 sizes): {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
