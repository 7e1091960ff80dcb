"""Sensitivity per kind of pneumonia, as Kaggle's file names tell it (`person12_bacteria_3`, `person7_virus_1`).

A model that misses viral pneumonia more often than bacterial is a different tool for a clinician, and the
headline sensitivity hides it. The intervals resample the subgroup's patients, as every test interval does.
Films whose names carry no kind (another dataset, or NORMAL films) belong to no subgroup.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from study.config import EvaluateConfig
from study.evaluate.metrics import Predictions, cluster_bootstrap
from study.results import Estimate, Subgroups, SubgroupSensitivity

_KIND = re.compile(r"_(bacteria|virus)_\d+$", re.IGNORECASE)


def subgroup_of(path: str) -> str | None:
    """`.../person12_bacteria_3.jpeg` -> `bacteria`; None for a name without a kind."""
    match = _KIND.search(Path(path).stem)
    return match.group(1).lower() if match else None


def subgroup_sensitivities(test: Predictions, threshold: float, cfg: EvaluateConfig) -> Subgroups:
    """Per subgroup of positive test films: films, patients, and sensitivity at the threshold with its CI."""
    kinds = np.array(
        [subgroup_of(path) if label == 1 else None for path, label in zip(test.paths, test.labels, strict=True)]
    )

    def sensitivity(_labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
        return {"sensitivity": float(np.mean(probs >= threshold))}  # every film of a subgroup is positive

    groups = {}
    for kind in sorted({k for k in kinds if k is not None}):
        members = np.flatnonzero(kinds == kind)
        subset = Predictions(
            tuple(test.paths[i] for i in members), test.labels[members], test.probs[members],
            tuple(test.patients[i] for i in members),
        )  # fmt: skip
        interval = cluster_bootstrap(subset, sensitivity, cfg.bootstrap_resamples, cfg.confidence, cfg.seed)
        groups[kind] = SubgroupSensitivity(
            films=int(members.size),
            patients=len(set(subset.patients)),
            sensitivity=Estimate(sensitivity(subset.labels, subset.probs)["sensitivity"], *interval["sensitivity"]),
        )
    return Subgroups(cfg.confidence, cfg.bootstrap_resamples, groups)
