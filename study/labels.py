"""Class names and their integer codes, shared by data loading, evaluation and Grad-CAM."""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = ("NORMAL", "PNEUMONIA")
POSITIVE_CLASS = "PNEUMONIA"


def label_code(name: str) -> int:
    """1 for PNEUMONIA (the positive class: probabilities are P(PNEUMONIA)), 0 for NORMAL."""
    return CLASS_NAMES.index(name)
