"""Decode every film once per study into grayscale uint8 squares at each searched resolution.

The usual notebook decodes every JPEG on every epoch of every trial; here a film is opened once, resized
to all resolutions in the same pass, and the arrays are kept on local disk under a key made of the file
list, content hashes, sizes and aspect handling, so trials, resumes and later runs reuse them.
Never float32 RGB: a uint8 single-channel cache is 12x smaller, and conversion happens inside the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from study.results import atomic_write_text

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1


@dataclass(frozen=True)
class DecodedArrays:
    """Arrays (N x R x R x 1, uint8) per resolution for the films that decoded, in the order given."""

    paths: tuple[str, ...]
    by_resolution: dict[int, np.ndarray]
    failures: tuple[tuple[str, str], ...]


def default_cache_dir() -> Path:
    """Local disk, not the results folder: on Colab results live on Drive, the cache on the fast local disk."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "chest-xray-study"


def decode_film(path: Path, largest_side: int | None = None) -> Image.Image:
    """Open a film as 8-bit grayscale; JPEG draft mode skips most of the work for sizes we will not use."""
    with Image.open(path) as image:
        if largest_side is not None:
            image.draft("L", (largest_side * 2, largest_side * 2))
        return ImageOps.exif_transpose(image).convert("L")


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


def cache_key(paths: Sequence[str], sha1s: Sequence[str], aspect: str) -> str:
    """Content key of a film list; each resolution is one more .npy file under the same key."""
    digest = hashlib.sha1(f"format={CACHE_FORMAT};aspect={aspect}".encode())
    for path, sha1 in zip(paths, sha1s, strict=True):
        digest.update(f"{path}\0{sha1}\n".encode())
    return digest.hexdigest()[:20]


def _store(
    folder: Path, paths: Sequence[str], arrays: dict[int, np.ndarray], failures: Sequence[tuple[str, str]]
) -> None:
    """Arrays first, index last: a folder without films.json is an unfinished write and is redone."""
    folder.mkdir(parents=True, exist_ok=True)
    for size, array in arrays.items():
        _save_atomic(folder / f"res{size}.npy", array)
    atomic_write_text(folder / "films.json", json.dumps({"paths": list(paths), "failures": list(failures)}))


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        np.save(handle, array)
    os.replace(tmp, path)


def _load(folder: Path, resolutions: Sequence[int]) -> DecodedArrays | None:
    """What the cache holds for this key, or None when any requested resolution is missing."""
    index_path = folder / "films.json"
    if not index_path.exists() or not all((folder / f"res{size}.npy").exists() for size in resolutions):
        return None
    index = json.loads(index_path.read_text(encoding="utf-8"))
    arrays = {size: np.load(folder / f"res{size}.npy") for size in resolutions}
    failures = tuple((path, reason) for path, reason in index["failures"])
    return DecodedArrays(tuple(index["paths"]), arrays, failures)


def decoded_arrays(
    paths: Sequence[str], sha1s: Sequence[str], resolutions: Sequence[int], aspect: str, cache_dir: Path, what: str
) -> DecodedArrays:
    """The films as uint8 squares at every resolution, read back from the cache or decoded now (once)."""
    folder = cache_dir / "arrays" / cache_key(paths, sha1s, aspect)
    cached = _load(folder, resolutions)
    if cached is not None:
        logger.info("%s: %d films read from the decode cache %s", what, len(cached.paths), folder)
        return cached
    largest = max(resolutions)
    stacks: dict[int, list[np.ndarray]] = {size: [] for size in resolutions}
    kept: list[str] = []
    failures: list[tuple[str, str]] = []
    for path in tqdm(paths, desc=f"decoding {what}", unit="film", mininterval=2.0, leave=False):
        try:
            image = decode_film(Path(path), largest)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            failures.append((path, f"cannot decode: {type(error).__name__}: {error}"))
            continue
        kept.append(path)
        for size in resolutions:
            stacks[size].append(np.asarray(fit_square(image, size, aspect)))
    arrays = {
        size: np.stack(stacks[size])[..., None] if kept else np.zeros((0, size, size, 1), np.uint8)
        for size in resolutions
    }
    _store(folder, kept, arrays, failures)
    if failures:  # later stages ask for the films that decoded: answer them from the cache too
        kept_set = set(kept)
        kept_sha1s = [sha1 for path, sha1 in zip(paths, sha1s, strict=True) if path in kept_set]
        _store(cache_dir / "arrays" / cache_key(kept, kept_sha1s, aspect), kept, arrays, ())
    logger.info("%s: decoded %d films once into %s (%d failed)", what, len(kept), folder, len(failures))
    return DecodedArrays(tuple(kept), arrays, tuple(failures))
