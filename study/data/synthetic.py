"""A synthetic chest-film dataset in the Kaggle layout, so the whole study runs with no download.

PNEUMONIA films carry one or two opacities inside a lung field; NORMAL films carry none. Films of both
classes carry, with the same probability, a bright side marker near a top corner (where real films carry
their L/R letter), so the marker says nothing about the class and a model has to find the lung opacity.
A PNEUMONIA film is its lesion-free rendering plus the opacity and nothing else: every pixel that tells the
classes apart belongs to a lesion. Its histogram is brighter by the lesion's own pixels, as a real
consolidation brightens the lung. Compensating for that moved the signal off the lesions: histogram-matching
the film, or a disk around each lesion, shifts the grey levels (so the boundaries) the lesion displaces, and
the demo's Grad-CAM followed them. Lesion masks (empty for NORMAL films) are written to a parallel `masks/`
tree for Grad-CAM localisation checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from study.results.classes import CHEST_XRAY_NAMES

logger = logging.getLogger(__name__)

SIDE_RANGE = (144, 224)
JPEG_QUALITY = 90
# Raised whenever the rendering changes, so a demo cache written by an older version is not reused: 2 = a
# PNEUMONIA film is its lesion-free rendering plus the opacity (1 histogram-matched around the lesions).
GENERATOR_VERSION = 2
MARKER_PROBABILITY = 0.6  # the same in both classes: a marker carries no class signal
AMPLITUDE_RANGE = (0.7, 0.85)  # lesion brightness over the lung: a from-scratch model learns it in 2-3 epochs


@dataclass(frozen=True)
class Anatomy:
    """Per-patient body geometry, in fractions of the image; films of one patient jitter around it."""

    lung_cx: float
    lung_cy: float
    lung_rx: float
    lung_ry: float
    body_rx: float
    mediastinum: float
    rib_phase: float


def random_anatomy(rng: np.random.Generator) -> Anatomy:
    return Anatomy(
        lung_cx=rng.uniform(0.2, 0.25),
        lung_cy=rng.uniform(0.42, 0.5),
        lung_rx=rng.uniform(0.13, 0.17),
        lung_ry=rng.uniform(0.22, 0.28),
        body_rx=rng.uniform(0.42, 0.48),
        mediastinum=rng.uniform(0.05, 0.08),
        rib_phase=rng.uniform(0, 2 * np.pi),
    )


def _jitter(anatomy: Anatomy, rng: np.random.Generator) -> Anatomy:
    def j(value: float, spread: float) -> float:
        return value + rng.uniform(-spread, spread)

    return Anatomy(
        lung_cx=j(anatomy.lung_cx, 0.01),
        lung_cy=j(anatomy.lung_cy, 0.02),
        lung_rx=j(anatomy.lung_rx, 0.01),
        lung_ry=j(anatomy.lung_ry, 0.015),
        body_rx=j(anatomy.body_rx, 0.01),
        mediastinum=anatomy.mediastinum,
        rib_phase=j(anatomy.rib_phase, 0.5),
    )


def _blur(image: np.ndarray, passes: int = 2) -> np.ndarray:
    """Cheap separable box blur: softens edges like a film without pulling in scipy.ndimage."""
    out = image
    for _ in range(passes):
        padded = np.pad(out, 1, mode="edge")
        out = (padded[:-2, 1:-1] + padded[1:-1, 1:-1] + padded[2:, 1:-1]) / 3.0
        padded = np.pad(out, 1, mode="edge")
        out = (padded[1:-1, :-2] + padded[1:-1, 1:-1] + padded[1:-1, 2:]) / 3.0
    return out


def _render_anatomy(
    height: int, width: int, anatomy: Anatomy, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A lesion-free film in [0, 1] and its boolean lung mask."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    body = ((u - 0.5) / anatomy.body_rx) ** 2 + ((v - 0.62) / 0.75) ** 2 <= 1.0
    shoulders = (v < 0.22) & (np.abs(u - 0.5) < anatomy.body_rx + 0.05)
    air, tissue, lung, bone = (
        rng.uniform(0.02, 0.12),
        rng.uniform(0.45, 0.68),
        rng.uniform(0.14, 0.3),
        rng.uniform(0.72, 0.9),
    )
    image = np.full((height, width), air, np.float32)
    image[body | shoulders] = tissue
    lungs = np.zeros((height, width), bool)
    for side in (-1.0, 1.0):
        cx = 0.5 + side * anatomy.lung_cx
        lungs |= ((u - cx) / anatomy.lung_rx) ** 2 + ((v - anatomy.lung_cy) / anatomy.lung_ry) ** 2 <= 1.0
    image[lungs] = lung + 0.08 * (v[lungs] - anatomy.lung_cy)
    ribs = 0.07 * (np.sin(v * 2 * np.pi * 9 + 3.0 * (u - 0.5) ** 2 * 10 + anatomy.rib_phase) > 0.55)
    image += np.where(lungs, ribs, 0.0)
    mediastinum = (np.abs(u - 0.5) < anatomy.mediastinum) & (v > 0.15) & (v < 0.8)
    heart = ((u - 0.55) / 0.1) ** 2 + ((v - 0.66) / 0.1) ** 2 <= 1.0
    image[mediastinum | heart] = bone
    image = _blur(image, passes=3)
    image += rng.normal(0.0, rng.uniform(0.015, 0.04), image.shape).astype(np.float32)
    exposure = np.clip(image, 0.0, 1.0) ** rng.uniform(0.8, 1.25)
    return exposure, lungs


def _blob(height: int, width: int, centre: tuple[float, float], radius: float, rng: np.random.Generator) -> np.ndarray:
    """A soft, irregular opacity (alpha in [0, 1]) centred at (row, col) pixels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    ry = radius * rng.uniform(0.8, 1.25)
    rx = radius * rng.uniform(0.8, 1.25)
    distance = ((y - centre[0]) / ry) ** 2 + ((x - centre[1]) / rx) ** 2
    alpha = np.exp(-distance * 1.6)
    texture = 1.0 + 0.5 * _blur(rng.standard_normal((height, width)).astype(np.float32), passes=3)
    return np.clip(alpha * texture, 0.0, 1.0)


def _lesion_centres(region: np.ndarray, count: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    rows, cols = np.nonzero(region)
    picks = rng.choice(len(rows), size=count, replace=False)
    return [(float(rows[i]), float(cols[i])) for i in picks]


def _draw_marker(alpha: np.ndarray, rng: np.random.Generator) -> None:
    """A solid bright rectangle near the top left or top right corner, like a film's side letter."""
    height, width = alpha.shape
    marker_height, marker_width = int(rng.uniform(0.04, 0.07) * height), int(rng.uniform(0.06, 0.1) * width)
    top = int(rng.uniform(0.03, 0.1) * height)
    on_left = rng.random() < 0.5
    inset = int(rng.uniform(0.03, 0.08) * width)
    left = inset if on_left else width - marker_width - inset
    alpha[top : top + marker_height, left : left + marker_width] = 1.0


def render_film(anatomy: Anatomy, pneumonia: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One 8-bit film and its lesion mask (uint8, 255 inside a lung opacity; the marker is no lesion)."""
    height = int(rng.integers(*SIDE_RANGE))
    width = int(height * rng.uniform(0.85, 1.2))
    base, lungs = _render_anatomy(height, width, _jitter(anatomy, rng), rng)
    radius = rng.uniform(0.09, 0.12) * width
    marker = np.zeros((height, width), np.float32)
    if rng.random() < MARKER_PROBABILITY:
        _draw_marker(marker, rng)
    amplitude = rng.uniform(*AMPLITUDE_RANGE)
    lesions = np.zeros((height, width), np.float32)
    if pneumonia:
        inner = lungs & (_blur(lungs.astype(np.float32), passes=int(radius / 2)) > 0.99)
        for centre in _lesion_centres(inner if inner.any() else lungs, int(rng.integers(1, 3)), rng):
            lesions = np.maximum(lesions, _blob(height, width, centre, radius, rng))
    film = np.maximum(base + amplitude * lesions, np.where(marker > 0, base + amplitude, 0.0))
    pixels = np.clip(film * 255.0, 0, 255).astype(np.uint8)
    mask = ((lesions > 0.35) * 255).astype(np.uint8)
    return pixels, mask


def _file_namer(label: str, patient: int, rng: np.random.Generator) -> Callable[[int], str]:
    """Kaggle-style names for one patient's films (the pattern is fixed per patient, like the real data)."""
    if label == "PNEUMONIA":
        kind = "bacteria" if rng.random() < 0.65 else "virus"
        return lambda index: f"person{patient}_{kind}_{index + 1}.jpeg"
    prefix = "NORMAL2-IM" if rng.random() < 0.3 else "IM"
    return lambda index: f"{prefix}-{patient:04d}-{index + 1:04d}.jpeg"


def write_demo_dataset(root: Path, images_per_split: dict[str, int], normal_share: float, seed: int) -> Path:
    """Write chest_xray/{split}/{class}/*.jpeg and masks/{split}/{class}/*.png under `root`.

    Patients have 1-4 films each and never cross splits, like the real folders. Returns the
    `chest_xray` folder. Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    dataset = root / "chest_xray"
    written = 0
    patient_counter = {"NORMAL": 0, "PNEUMONIA": 0}
    for split, total in images_per_split.items():
        for label in CHEST_XRAY_NAMES:
            target = round(total * normal_share) if label == "NORMAL" else total - round(total * normal_share)
            image_dir = dataset / split / label
            mask_dir = root / "masks" / split / label
            image_dir.mkdir(parents=True, exist_ok=True)
            mask_dir.mkdir(parents=True, exist_ok=True)
            produced = 0
            while produced < target:
                patient_counter[label] += 1
                anatomy = random_anatomy(rng)
                file_name = _file_namer(label, patient_counter[label], rng)
                for index in range(min(int(rng.integers(1, 5)), target - produced)):
                    pixels, mask = render_film(anatomy, label == "PNEUMONIA", rng)
                    name = file_name(index)
                    Image.fromarray(pixels, mode="L").save(image_dir / name, quality=JPEG_QUALITY)
                    Image.fromarray(mask, mode="L").save(mask_dir / (Path(name).stem + ".png"))
                    produced += 1
            written += produced
    logger.info("wrote %d synthetic films under %s", written, dataset)
    return dataset


def mask_path_for(image_path: Path) -> Path:
    """The lesion mask of a synthetic film: chest_xray/<split>/<class>/x.jpeg -> masks/<split>/<class>/x.png."""
    label_dir = image_path.parent
    split_dir = label_dir.parent
    root = split_dir.parent.parent
    return root / "masks" / split_dir.name / label_dir.name / (image_path.stem + ".png")
