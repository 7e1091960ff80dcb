"""The study's two classes, and the words its pages use for what it studies.

Chest X-rays are the example, not the limit: the class names come from the data's folders, the positive one
from the config, and every label, caption and table reads them from here. The report speaks of films and
patients only when the classes are Kaggle's NORMAL and PNEUMONIA; any other pair is images in groups.
"""

from __future__ import annotations

from dataclasses import dataclass

CHEST_XRAY_NAMES: tuple[str, str] = ("NORMAL", "PNEUMONIA")


@dataclass(frozen=True)
class Wording:
    """What the pages call one input, one leakage unit (a patient's films, a group's images: not independent),
    the one the unit belongs to, and the two classes in running text."""

    item: str
    items: str
    group: str
    groups: str
    owner: str  # whose items a group holds: a child's films, a group's images
    owners: str
    negative: str
    positive: str


@dataclass(frozen=True)
class Classes:
    """The negative and the positive class, spelled as their folders are; probabilities are P(positive)."""

    negative: str
    positive: str

    @property
    def names(self) -> tuple[str, str]:
        """(negative, positive): the order of label codes 0 and 1, and of every per-class column."""
        return (self.negative, self.positive)

    def code(self, label: str) -> int:
        """1 for the positive class, 0 for the negative one."""
        return self.names.index(label)

    def name(self, code: int) -> str:
        return self.names[code]

    @property
    def chest_xray(self) -> bool:
        """Kaggle's pair (any case): the pages may then say films, patients and pneumonia."""
        return tuple(name.upper() for name in self.names) == CHEST_XRAY_NAMES

    @property
    def words(self) -> Wording:
        if self.chest_xray:
            return Wording("film", "films", "patient", "patients", "child", "children", "normal", "pneumonia")
        return Wording("image", "images", "group", "groups", "group", "groups", self.negative, self.positive)


CHEST_XRAY = Classes(*CHEST_XRAY_NAMES)


def classes_or_default(names: tuple[str, ...] | None) -> Classes:
    """The classes a data summary names; Kaggle's pair when it could not be read (every study from before
    classes were named was a chest X-ray study)."""
    return Classes(*names) if names is not None and len(names) == 2 else CHEST_XRAY
