"""Open a film once: its bytes' hash, its pixels as 8-bit grayscale (or RGB), or the reason it cannot be used.

Real folders hold RGB, CMYK, palette and 16-bit files, PNGs under .jpeg names, truncated downloads and
the odd huge image. Each becomes either a clean uint8 picture or a `FilmRejected` with a short reason
that lands in data/skipped.csv, so nothing fails in the middle of the night.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE = 64
MAX_PIXELS = 40_000_000  # the largest Kermany film has 7.9 M pixels; past this a file is a bomb, not a film
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
COLOUR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")
# A file in a colour mode is colour when its channels differ by more than this, on average over its pixels
# (0-255): a gray film saved as an RGB JPEG differs by a level or so of chroma noise; a photograph by tens.
COLOUR_SPREAD = 4.0
COLOUR_PROBE_SIDE = 64


class FilmRejected(Exception):
    """A file that is not a usable film; the message is the reason written to skipped.csv."""


@dataclass(frozen=True)
class OpenedFilm:
    """What one read of a file yields: its content hash, the hash of its pixels, the picture (possibly at a
    reduced draft scale) and the file's own size in pixels (width, height)."""

    sha1: str
    pixel_sha1: str
    image: Image.Image
    size: tuple[int, int]
    colour: bool = False  # the file holds colour (checked in a grayscale read, for data.color = auto)


def _to_grayscale(image: Image.Image) -> Image.Image:
    """8-bit grayscale from any mode; 16-bit films are scaled by their range, not clipped at 255."""
    if image.mode in SIXTEEN_BIT_MODES:
        pixels = np.asarray(image, dtype=np.float64)
        peak = pixels.max()
        scale = 255.0 / 65535.0 if peak > 255 else 1.0
        return Image.fromarray(np.clip(pixels * scale, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("L")


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any mode: transparency composited on black, 16-bit and gray films repeated in each channel."""
    if image.mode in SIXTEEN_BIT_MODES or image.mode in ("L", "LA", "1"):
        return _to_grayscale(image).convert("RGB")
    if image.mode in ("RGBA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", image.size, (0, 0, 0, 255)), image)
    return image.convert("RGB")


def _is_colour(data: bytes) -> bool:
    """Whether a colour-mode file's channels really differ, read at a small draft size from its bytes, so the
    grayscale read itself stays exactly as before."""
    with Image.open(io.BytesIO(data)) as probe:
        if probe.format == "JPEG":
            probe.draft("RGB", (COLOUR_PROBE_SIDE, COLOUR_PROBE_SIDE))
        pixels = np.asarray(_to_rgb(probe), dtype=np.int16)
    return float((pixels.max(axis=-1) - pixels.min(axis=-1)).mean()) > COLOUR_SPREAD


def open_film(path: Path, largest_side: int | None = None) -> OpenedFilm:
    """Read and decode `path` once as 8-bit grayscale, noting whether the file holds colour. With `largest_side`,
    JPEG draft mode decodes at the smallest DCT scale (1/2, 1/4, 1/8) that still covers that side: 3-10x less
    work, and the DCT scaling averages like a box filter."""
    return _read(path, largest_side, rgb=False)


def open_rgb_film(path: Path, largest_side: int | None = None) -> OpenedFilm:
    """Read and decode `path` once as 8-bit RGB (data of colour images), as `open_film` otherwise."""
    return _read(path, largest_side, rgb=True)


def _read(path: Path, largest_side: int | None, rgb: bool) -> OpenedFilm:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FilmRejected(f"unreadable: {error.strerror or error}") from error
    if not data:
        raise FilmRejected("zero bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                width, height = opened.size
                if width * height > MAX_PIXELS:
                    raise FilmRejected(f"decompression bomb guard: {width}x{height} pixels")
                colour = not rgb and opened.mode in COLOUR_MODES and _is_colour(data)
                if largest_side is not None and opened.format == "JPEG":
                    opened.draft("RGB" if rgb else "L", (largest_side, largest_side))
                oriented = ImageOps.exif_transpose(opened)
                image = _to_rgb(oriented) if rgb else _to_grayscale(oriented)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise FilmRejected(f"decompression bomb guard: {error}") from error
    except UnidentifiedImageError as error:
        raise FilmRejected("not an image") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise FilmRejected(f"corrupt or truncated image: {error}") from error
    if min(width, height) < MIN_SIDE:
        raise FilmRejected(f"too small: {width}x{height} px (a side under {MIN_SIDE} px)")
    pixel_digest = hashlib.sha1(f"{image.size}".encode())
    pixel_digest.update(image.tobytes())
    return OpenedFilm(hashlib.sha1(data).hexdigest(), pixel_digest.hexdigest(), image, (width, height), colour)
