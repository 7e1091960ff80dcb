"""The smoke study's model card: written beside the model, its subgroup sensitivities recomputed here from
best/predictions.csv and the file names alone, and the sentence that it is not a medical device."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from study.results import Subgroups, Threshold, read_csv
from tests.conftest import SmokeRun

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("smoke")]


def test_subgroup_sensitivities_follow_from_the_predictions_and_the_names(smoke: SmokeRun) -> None:
    paths = smoke.paths
    threshold = Threshold.read(paths.threshold).threshold
    by_kind: dict[str, list[float]] = {}
    for row in read_csv(paths.predictions_csv):
        kind = re.search(r"_(bacteria|virus)_\d+\.jpeg$", Path(row["path"]).name)
        if row["split"] == "test" and row["label"] == "1" and kind:
            by_kind.setdefault(kind.group(1), []).append(float(row["prob"]))
    subgroups = Subgroups.read(paths.subgroups)
    assert set(subgroups.groups) == set(by_kind) and by_kind, "the demo's names carry both kinds"
    card = paths.model_card.read_text()
    for kind, probs in by_kind.items():
        group = subgroups.groups[kind]
        sensitivity = float(np.mean(np.array(probs) >= threshold))
        assert group.films == len(probs) and math.isclose(group.sensitivity.value, sensitivity)
        assert group.sensitivity.ci_low <= sensitivity <= group.sensitivity.ci_high
        assert f"| {kind} | {len(probs)} |" in card and f"{sensitivity:.3f} [" in card


def test_the_card_says_what_the_model_is_not_and_what_it_was_trained_on(smoke: SmokeRun) -> None:
    card = smoke.paths.model_card.read_text()
    assert "**It is not a medical device.**" in card
    assert "These films are synthetic" in card
    for heading in ("## Training data", "## Model", "## Test performance", "## Calibration", "## Subgroups",
                    "## Known limitations", "## On-device export"):  # fmt: skip
        assert heading in card, heading
    assert "| int8 |" in card and "Not exported yet" not in card
    html = smoke.paths.report.read_text()
    assert 'id="subgroups-table"' in html and 'href="best/model_card.md"' in html
