"""The gradcam stage: score the best model's maps on test films, draw the gallery and the comparison grid.

gradcam.py, scores.py and gallery.py stay free of file layout decisions; this module knows where things live.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from study.config import StudyConfig
from study.data.cache import fit_square
from study.data.readers import dataset_arrays, load_split_rows, study_classes
from study.data.synthetic import mask_path_for
from study.evaluate.stage import load_best_model
from study.explain.gallery import choose_gallery, write_gallery
from study.explain.gradcam import GradCam, upsample
from study.explain.grid import grid_films, write_comparison_grid
from study.explain.scores import (
    border_energy_share,
    deletion_auc,
    energy_in_mask_ratio,
    paired_difference,
    random_maps,
)
from study.results import CamBaseline, CamScores, Estimate, MethodScores, ResultsPaths, Threshold, read_csv
from study.results.vocab import POSITIVE_CATEGORIES
from study.search.batches import predict_probabilities

logger = logging.getLogger(__name__)

SCORE_BATCH = 32


def _lesion_masks(paths: list[str], labels: list[int], resolution: int, aspect: str) -> np.ndarray | None:
    """The synthetic demo's lesion masks on the model's input grid, empty for NORMAL films (they have no
    lesion); None for real data, which has no masks on disk."""
    mask_paths = [mask_path_for(Path(path)) for path in paths]
    if not mask_paths or not all(path.is_file() for path in mask_paths):
        return None
    masks = [np.asarray(fit_square(Image.open(path).convert("L"), resolution, aspect)) > 127 for path in mask_paths]
    return np.stack([mask & bool(label) for mask, label in zip(masks, labels, strict=True)])


def _maps_and_scores(
    model: keras.Model, films: np.ndarray, explain: np.ndarray, masks: np.ndarray | None, cfg: StudyConfig
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """Per method: maps on the layer's grid, and per-film deletion AUC, border share and lesion-mask ratio."""
    cam = GradCam(model, cfg.gradcam.layer)
    size = films.shape[1]
    maps, scores = {}, {}
    for method in cfg.gradcam.methods:
        maps[method] = cam.maps_in_batches(films, explain, method, SCORE_BATCH)
        grid = upsample(maps[method], size)
        scores[method] = {
            "deletion_auc": deletion_auc(
                films, grid, explain, lambda batch: predict_probabilities(model, batch, SCORE_BATCH), cfg.evaluate.seed
            ),
            "border_share": border_energy_share(grid, cfg.gradcam.border_band),
            "mask_ratio": energy_in_mask_ratio(grid, masks) if masks is not None else np.full(len(films), np.nan),
        }
    return maps, scores


def _summarise(scores: dict[str, np.ndarray], random_deletion: np.ndarray, warning: float) -> MethodScores:
    def mean(values: np.ndarray) -> float | None:
        return float(np.nanmean(values)) if np.isfinite(values).any() else None

    masked = np.isfinite(scores["mask_ratio"])
    return MethodScores(
        deletion_auc_mean=mean(scores["deletion_auc"]),
        random_deletion_auc_mean=mean(random_deletion),
        border_share_mean=mean(scores["border_share"]),
        border_flagged=int(np.sum(scores["border_share"] > warning)),
        mask_ratio_mean=mean(scores["mask_ratio"]),
        mask_ratio_median=float(np.nanmedian(scores["mask_ratio"])) if masked.any() else None,
        films_with_masks=int(masked.sum()),
    )


def _compare_with_random(
    scores: dict[str, dict[str, np.ndarray]],
    random_deletion: np.ndarray,
    explain_positive: np.ndarray,
    patients: list[str],
    layer_grid: int,
    cfg: StudyConfig,
    paths: ResultsPaths,
) -> None:
    """Each method's per-film deletion AUC minus the random maps' on the same films, with a patient-cluster
    bootstrap interval: "beats random maps" is then a tested claim, not two means side by side. Paired apart for
    the films the model called positive (a finding, which deleting what the map points at can remove) and those
    it called negative (no finding to remove: pooled, the class mix would decide the sign)."""
    words = study_classes(paths).words
    groups = np.asarray(patients)

    def paired(chosen: np.ndarray, label: str) -> dict[str, Estimate]:
        differences = {}
        for method, numbers in scores.items() if chosen.any() else ():
            mean, (low, high) = paired_difference(
                numbers["deletion_auc"][chosen], random_deletion[chosen], list(groups[chosen]),
                cfg.evaluate.bootstrap_resamples, cfg.evaluate.confidence, cfg.evaluate.seed,
            )  # fmt: skip
            differences[method] = Estimate(mean, low, high)
            logger.info("%s, %s: deletion AUC minus random maps' %.3f [%.3f, %.3f]", method, label, mean, low, high)
        return differences

    def called(flag: bool, name: str) -> str:
        count = int(np.sum(explain_positive == flag))
        return f"the {count} {words.item if count == 1 else words.items} the model called {name}"

    positive, negative = called(True, words.positive), called(False, words.negative)
    CamBaseline(
        layer_grid, cfg.evaluate.confidence, cfg.evaluate.bootstrap_resamples,
        paired(explain_positive, positive), positive, negative, paired(~explain_positive, negative),
    ).write(paths.gradcam_baseline)  # fmt: skip


def gradcam_gallery(cfg: StudyConfig, paths: ResultsPaths, cache_dir: Path) -> None:
    """Score the maps of (a sample of) the test films, draw the most confident TP/FP/FN/TN films, and, when
    the ablation saved its variants' models, the same films under each of them."""
    model, resolution = load_best_model(paths)
    threshold = Threshold.read(paths.threshold).threshold
    patients = {row["path"]: row["patient_id"] for row in load_split_rows(paths, "test")}
    predictions = [row for row in read_csv(paths.predictions_csv) if row["split"] == "test"]
    decoded = dataset_arrays(paths, [resolution], cfg.data.aspect, cache_dir)
    wanted = min(len(predictions), cfg.gradcam.score_films or len(predictions))
    sample = [predictions[i] for i in np.linspace(0, len(predictions) - 1, wanted).round().astype(int)]
    films = decoded.take(resolution, [row["path"] for row in sample])
    explain = np.array([float(row["prob"]) >= threshold for row in sample])  # the class the model chose
    masks = _lesion_masks(
        [row["path"] for row in sample], [int(row["label"]) for row in sample], resolution, cfg.data.aspect
    )
    maps, scores = _maps_and_scores(model, films, explain, masks, cfg)
    layer_grid = next(iter(maps.values())).shape[1]
    random_grid = random_maps((len(films), resolution, resolution), layer_grid, seed=cfg.evaluate.seed)
    random_deletion = deletion_auc(
        films, random_grid, explain, lambda batch: predict_probabilities(model, batch, SCORE_BATCH), cfg.evaluate.seed
    )
    summary = CamScores(
        layer=cfg.gradcam.layer,
        films_scored=len(sample),
        explained_class="the predicted class at the validation threshold",
        border_band=cfg.gradcam.border_band,
        border_warning=cfg.gradcam.border_warning,
        methods={m: _summarise(scores[m], random_deletion, cfg.gradcam.border_warning) for m in cfg.gradcam.methods},
    )
    summary.write(paths.gradcam_scores)
    _compare_with_random(
        scores, random_deletion, explain, [patients[row["path"]] for row in sample], layer_grid, cfg, paths
    )
    for method, numbers in summary.methods.items():
        shown = ", ".join(f"{name} {value}" for name, value in asdict(numbers).items())
        logger.info("%s on %s: %s", method, cfg.gradcam.layer, shown)

    items = choose_gallery(predictions, patients, threshold, cfg.gradcam.per_category)
    item_paths = [item.path for item in items]
    item_films = decoded.take(resolution, item_paths)
    explain_items = np.array([item.category in POSITIVE_CATEGORIES for item in items])
    maps, item_scores = _maps_and_scores(
        model,
        item_films,
        explain_items,
        _lesion_masks(item_paths, [item.label for item in items], resolution, cfg.data.aspect),
        cfg,
    )
    write_gallery(items, maps, item_scores, cfg.gradcam.layer, cfg.data.aspect, paths)
    write_comparison_grid(
        paths,
        grid_films(predictions, patients, cfg.evaluate.seed),
        cfg.search.seed,
        lambda size, film_paths: dataset_arrays(paths, [size], cfg.data.aspect, cache_dir).take(size, film_paths),
        cfg.gradcam.layer,
        cfg.gradcam.methods[0],
        cfg.data.aspect,
        cfg.gradcam.border_band,
    )
