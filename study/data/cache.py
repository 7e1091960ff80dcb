"""Decode every film once per study into grayscale (or RGB) uint8 squares at each searched resolution.

The usual notebook decodes every JPEG on every epoch of every trial; here each file is opened once,
validated, hashed and resized to all resolutions in the same pass, straight into memory-mapped .npy files
on local disk (peak memory stays at one film), so trials, resumes and later runs reuse them.
The cache is found by the file list with each file's size and modification time, so a hit opens no file
at all; the content hashes it recorded go into data/split.csv. Never float32 RGB: a uint8 single-channel
cache is 12x smaller, and conversion to what MobileNetV2 wants happens inside the model. Colour data get a
uint8 three-channel cache (`data.color`), still 4x smaller than float32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap
from PIL import Image, ImageOps

from study.data.validate import FilmRejected, OpenedFilm, open_film, open_rgb_film
from study.progress import track
from study.results import atomic_write_text

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1  # entries gained `colour` (False when absent) and RGB caches a key of their own: same format
DECODE_CHUNK = 256  # films in flight at once: bounds memory to a chunk of decoded squares


@dataclass(frozen=True)
class FilmEntry:
    """A film that decoded: its row in the arrays, content and pixel hashes, original size."""

    path: str
    row: int
    sha1: str
    pixel_sha1: str
    width: int
    height: int
    colour: bool = False  # a colour file (known from a grayscale read; an RGB cache does not check)


@dataclass(frozen=True)
class DecodedArrays:
    """Read-only arrays (N x R x R x C, uint8; C = 1 or 3) per resolution, the films in them, and the files that
    failed."""

    entries: tuple[FilmEntry, ...]
    by_resolution: dict[int, np.ndarray]
    failures: tuple[tuple[str, str], ...]

    def take(self, resolution: int, paths: Sequence[str]) -> np.ndarray:
        """The films at `paths`, in that order, copied into memory for training or prediction."""
        rows = {entry.path: entry.row for entry in self.entries}
        return np.asarray(self.by_resolution[resolution][[rows[path] for path in paths]])


def default_cache_dir() -> Path:
    """Local disk, not the results folder: on Colab results live on Drive, the cache on the fast local disk."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "chest-xray-study"


def fit_square(image: Image.Image, size: int, aspect: str) -> Image.Image:
    """Make a size x size square with antialiasing: squash (stretch), pad (letterbox) or crop (centre)."""
    if aspect == "pad":
        return ImageOps.pad(image, (size, size), method=Image.Resampling.LANCZOS, color=0)
    if aspect == "crop":
        return ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def square_to_original(square: np.ndarray, width: int, height: int, aspect: str) -> np.ndarray:
    """Map a square map (e.g. a Grad-CAM) back onto the original film's pixel grid: fit_square's inverse."""
    size = square.shape[0]
    map_image = Image.fromarray(square.astype(np.float32), mode="F")
    if aspect == "squash":
        return np.asarray(map_image.resize((width, height), Image.Resampling.BILINEAR))
    scale = min(size / width, size / height) if aspect == "pad" else max(size / width, size / height)
    inner_w, inner_h = round(width * scale), round(height * scale)
    if aspect == "pad":
        left, top = (size - inner_w) // 2, (size - inner_h) // 2
        inner = map_image.crop((left, top, left + inner_w, top + inner_h))
        return np.asarray(inner.resize((width, height), Image.Resampling.BILINEAR))
    canvas = np.zeros((inner_h, inner_w), np.float32)
    left, top = (inner_w - size) // 2, (inner_h - size) // 2
    canvas[top : top + size, left : left + size] = square
    return np.asarray(Image.fromarray(canvas, mode="F").resize((width, height), Image.Resampling.BILINEAR))


def cache_key(paths: Sequence[str], aspect: str, channels: int = 1) -> str:
    """The film list with each file's size and modification time: a changed file gets a new key."""
    colour = "" if channels == 1 else f";channels={channels}"  # a gray cache keeps the key it always had
    digest = hashlib.sha1(f"format={CACHE_FORMAT};aspect={aspect}{colour}".encode())
    for path in paths:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()[:20]


def _load(folder: Path, resolutions: Sequence[int]) -> DecodedArrays | None:
    """What the cache holds for this key, or None when it has no finished index."""
    index_path = folder / "index.json"
    if not index_path.exists():
        return None
    index = json.loads(index_path.read_text(encoding="utf-8"))
    entries = tuple(FilmEntry(**entry) for entry in index["entries"])
    failures = tuple((path, reason) for path, reason in index["failures"])
    missing = [size for size in resolutions if not (folder / f"res{size}.npy").exists()]
    if missing:
        _decode_sizes(folder, entries, missing, index["aspect"], len(entries) + len(failures), index.get("channels", 1))
    arrays = {size: np.load(folder / f"res{size}.npy", mmap_mode="r") for size in resolutions}
    return DecodedArrays(entries, arrays, failures)


def _decode_sizes(
    folder: Path, entries: Sequence[FilmEntry], sizes: Sequence[int], aspect: str, rows: int, channels: int
) -> None:
    """Add resolutions to an existing cache (the search space grew): decode the good films again, once."""
    outputs = _open_outputs(folder, sizes, rows, channels)
    paths = [entry.path for entry in entries]
    decoded = _decode_all(paths, sizes, aspect, channels, "new sizes")
    for (index, _, result), entry in zip(decoded, entries, strict=True):
        if isinstance(result, str):
            raise FilmRejected(f"{paths[index]}: decoded before, rejected now ({result}); clear the cache folder")
        _write_row(outputs, sizes, entry.row, result[1])
    _finish(folder, outputs)


def _open_outputs(folder: Path, sizes: Sequence[int], rows: int, channels: int) -> dict[int, np.ndarray]:
    """One memory-mapped uint8 array per size, under a temporary name until it is complete."""
    return {
        size: open_memmap(folder / f".res{size}.npy.tmp", "w+", np.uint8, (rows, size, size, channels))
        for size in sizes
    }


def _write_row(outputs: dict[int, np.ndarray], sizes: Sequence[int], row: int, squares: list[np.ndarray]) -> None:
    for size, square in zip(sizes, squares, strict=True):
        outputs[size][row] = square.reshape(size, size, -1)


def _finish(folder: Path, outputs: dict[int, np.ndarray]) -> None:
    for size, output in outputs.items():
        output.flush()
        os.replace(folder / f".res{size}.npy.tmp", folder / f"res{size}.npy")


def open_and_fit(
    path: str, resolutions: Sequence[int], aspect: str, channels: int = 1
) -> tuple[OpenedFilm, list[np.ndarray]] | str:
    """One film at every resolution (R x R, or R x R x 3 with 3 channels), or the reason it was rejected (runs in
    a worker thread: PIL releases the GIL). predict.py decodes new films through it too, so they get exactly the
    pixels training films got."""
    try:
        film = (open_rgb_film if channels == 3 else open_film)(Path(path), max(resolutions))
    except FilmRejected as rejection:
        return str(rejection)
    return film, [np.asarray(fit_square(film.image, size, aspect)) for size in resolutions]


def _decode_all(
    paths: Sequence[str], resolutions: Sequence[int], aspect: str, channels: int, what: str
) -> Iterator[tuple[int, str, Any]]:
    """(row, path, result) in order, decoded by one thread per core, a bounded chunk at a time."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for start in track(range(0, len(paths), DECODE_CHUNK), f"decoding {what}", unit="chunk"):
            chunk = paths[start : start + DECODE_CHUNK]
            results = pool.map(open_and_fit, chunk, repeat(resolutions), repeat(aspect), repeat(channels))
            for offset, result in enumerate(results):
                yield start + offset, chunk[offset], result


def decoded_arrays(
    paths: Sequence[str], resolutions: Sequence[int], aspect: str, cache_dir: Path, what: str, channels: int = 1
) -> DecodedArrays:
    """Every film validated and decoded once into uint8 squares at each resolution, or read back from the cache.

    Arrays are written into memory-mapped files as films are decoded, then renamed; the index is written
    last, so a folder without index.json is an unfinished build and is redone.
    """
    folder = cache_dir / "arrays" / cache_key(paths, aspect, channels)
    cached = _load(folder, resolutions)
    if cached is not None:
        logger.info("%s: %d films read from the decode cache %s", what, len(cached.entries), folder)
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    outputs = _open_outputs(folder, resolutions, len(paths), channels)
    entries: list[FilmEntry] = []
    failures: list[tuple[str, str]] = []
    for row, path, result in _decode_all(paths, resolutions, aspect, channels, what):
        if isinstance(result, str):
            failures.append((path, result))
            continue
        film, squares = result
        entries.append(FilmEntry(path, row, film.sha1, film.pixel_sha1, *film.size, film.colour))
        _write_row(outputs, resolutions, row, squares)
    _finish(folder, outputs)
    index = {
        "format": CACHE_FORMAT, "aspect": aspect, "channels": channels,
        "entries": [vars(e) for e in entries], "failures": failures,
    }  # fmt: skip
    atomic_write_text(folder / "index.json", json.dumps(index))
    logger.info("%s: decoded %d films once into %s (%d rejected)", what, len(entries), folder, len(failures))
    arrays = {size: np.load(folder / f"res{size}.npy", mmap_mode="r") for size in resolutions}
    return DecodedArrays(tuple(entries), arrays, tuple(failures))
