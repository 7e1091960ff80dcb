"""The demo films: Kaggle layout and names, deterministic, and told apart only by the lung opacity."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from study.data.discover import find_split_root, list_films
from study.data.synthetic import mask_path_for, random_anatomy, render_film, write_demo_dataset


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    write_demo_dataset(root, {"train": 400, "val": 16, "test": 40}, normal_share=0.4, seed=3)
    return root


def test_layout_names_and_patients(demo_root: Path) -> None:
    listing = list_films(find_split_root(demo_root))
    films = listing.films
    assert listing.without_patient == 0
    assert Counter((film.source_split, film.label) for film in films) == {
        ("train", "NORMAL"): 160, ("train", "PNEUMONIA"): 240, ("val", "NORMAL"): 6, ("val", "PNEUMONIA"): 10,
        ("test", "NORMAL"): 16, ("test", "PNEUMONIA"): 24,
    }  # fmt: skip
    per_patient = Counter(film.patient_id for film in films)
    assert max(per_patient.values()) > 1, "several films per patient exercise the grouped split"
    for film in films:
        with Image.open(film.path) as image:
            assert image.format == "JPEG" and image.mode == "L"
        assert mask_path_for(film.path).is_file()


def test_same_seed_same_bytes(tmp_path: Path, demo_root: Path) -> None:
    write_demo_dataset(tmp_path, {"train": 400, "val": 16, "test": 40}, normal_share=0.4, seed=3)
    first = sorted(demo_root.glob("chest_xray/train/*/*.jpeg"))[:20]
    for path in first:
        again = tmp_path / path.relative_to(demo_root)
        assert again.read_bytes() == path.read_bytes()


def test_lesions_sit_in_the_lungs_of_pneumonia_films_only(demo_root: Path) -> None:
    """Lungs span the film's middle rows; NORMAL films have no lesion (an empty mask)."""
    for path in sorted(demo_root.glob("chest_xray/train/PNEUMONIA/*.jpeg"))[:30]:
        mask = np.asarray(Image.open(mask_path_for(path))) > 0
        assert mask.any(), path.name
        rows = np.nonzero(mask)[0] / mask.shape[0]
        assert np.mean((rows > 0.12) & (rows < 0.8)) > 0.9, path.name
    for path in sorted(demo_root.glob("chest_xray/train/NORMAL/*.jpeg"))[:30]:
        assert not (np.asarray(Image.open(mask_path_for(path))) > 0).any(), path.name


def test_side_markers_appear_in_both_classes_alike(demo_root: Path) -> None:
    """A bright marker near a top corner is as common on NORMAL as on PNEUMONIA films, so it says nothing
    about the class (a model that looks at it is taking a shortcut the report flags)."""

    def marker_share(label: str) -> float:
        found = []
        for path in sorted(demo_root.glob(f"chest_xray/train/{label}/*.jpeg"))[:80]:
            pixels = np.asarray(Image.open(path), dtype=np.float32)
            height, width = pixels.shape
            corners = np.concatenate([pixels[: int(0.18 * height), : int(0.2 * width)].ravel(),
                                      pixels[: int(0.18 * height), int(0.8 * width) :].ravel()])  # fmt: skip
            found.append(np.percentile(corners, 99) - np.median(pixels) > 60)
        return float(np.mean(found))

    normal, pneumonia = marker_share("NORMAL"), marker_share("PNEUMONIA")
    assert 0.4 < normal < 0.8 and abs(normal - pneumonia) < 0.2, (normal, pneumonia)


def test_a_pneumonia_film_is_its_normal_rendering_plus_the_opacity() -> None:
    """Every pixel that tells the classes apart belongs to a lesion: rendered from the same random state, the
    PNEUMONIA film only adds brightness, and most of it inside the lesion mask (the rest is the opacity's soft
    edge), so a map that finds the class signal finds the lesion."""
    for seed in range(12):
        rng = np.random.default_rng(seed)
        anatomy = random_anatomy(rng)
        state = rng.bit_generator.state
        pneumonia, mask = render_film(anatomy, True, rng)
        rng.bit_generator.state = state
        normal, empty = render_film(anatomy, False, rng)
        added = pneumonia.astype(int) - normal.astype(int)
        assert not empty.any() and mask.any()
        assert added.min() == 0, "the opacity darkens nothing"
        assert added[mask > 0].sum() / added.sum() > 0.55, seed
