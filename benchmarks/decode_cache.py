"""Input cost per training epoch: decode every JPEG each epoch (the usual notebook) vs the decode-once cache.

Generates films of realistic size (1000-2000 px), then measures in one run, side by side:
  notebook  - open + full decode + antialiased resize of every film, as a per-epoch input pipeline does
  first     - study.data.cache building the cache (JPEG draft decode, once per study)
  epoch     - one epoch's batches gathered from the cached uint8 array in shuffled order
and prints films/s for each and the ratios. Run: python benchmarks/decode_cache.py [--films 150] [--size 224]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from study.data.cache import decode_film, decoded_arrays, fit_square


def write_films(folder: Path, count: int, seed: int) -> list[str]:
    """Smooth anatomy-like gradients plus grain, saved as 8-bit JPEGs of 1000-2000 px sides."""
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        height, width = int(rng.integers(1000, 2000)), int(rng.integers(1000, 2000))
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        film = 120 + 60 * np.sin(x / width * 6.0) * np.cos(y / height * 4.0) + rng.normal(0, 2.5, (height, width))
        path = folder / f"film{index}.jpeg"
        Image.fromarray(np.clip(film, 0, 255).astype(np.uint8), mode="L").save(path, quality=90)
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--films", type=int, default=150)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_films(folder, args.films, seed=0)
        megabytes = sum(Path(path).stat().st_size for path in paths) / 1e6
        print(f"{args.films} films, {megabytes / args.films * 1000:.0f} KB each on average, {args.size} px squares")

        started = time.perf_counter()
        for path in paths:
            np.asarray(fit_square(decode_film(Path(path)), args.size, "squash"))
        notebook = time.perf_counter() - started

        started = time.perf_counter()
        cached = decoded_arrays(
            paths, [str(i) for i in range(len(paths))], [args.size], "squash", folder / "cache", "bench"
        )
        first = time.perf_counter() - started

        array = cached.by_resolution[args.size]
        order = np.random.default_rng(1).permutation(len(array))
        started = time.perf_counter()
        for start in range(0, len(order), 32):
            np.ascontiguousarray(array[order[start : start + 32]])
        epoch = time.perf_counter() - started

    rate = {
        name: args.films / seconds for name, seconds in (("notebook", notebook), ("first", first), ("epoch", epoch))
    }
    for name, label in (
        ("notebook", "decode every epoch"),
        ("first", "build the cache (once)"),
        ("epoch", "cached epoch"),
    ):
        print(f"{label:>24}: {rate[name]:>12,.0f} films/s")
    print(f"cached epoch vs decoding every epoch: {rate['epoch'] / rate['notebook']:,.0f}x faster")
    print(f"building the cache (draft decode) vs one notebook epoch: {rate['first'] / rate['notebook']:.1f}x faster")


if __name__ == "__main__":
    main()
