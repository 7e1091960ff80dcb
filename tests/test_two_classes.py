"""Any two-class image folder: a colour dataset that no code path special-cases (cats and dogs, groups named in
the file names, one folder without a test split) runs every stage, and bad layouts exit 2 with one line."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from study.config import builtin_config_path, load_config
from study.data.prepare import prepare_data
from study.data.readers import dataset_arrays
from study.report.info import load_report_data
from study.report.render import render_html
from study.results import DataSummary, ResultsPaths, TestMetrics, Threshold, read_csv
from tests.cli_in_process import run_main

ROOT = Path(__file__).resolve().parent.parent
GROUP_PATTERN = r"^(.+)_\d+$"
CHEST_WORDS = re.compile(r"pneumonia|patient|film", re.IGNORECASE)


def _picture(rng: np.random.Generator, warm: bool) -> Image.Image:
    """A colour picture: cats warm and light, dogs cool and dark, each with a random disc; RGB on disk."""
    side = int(rng.integers(80, 120))
    base = np.array([200, 150, 90] if warm else [60, 90, 150], dtype=np.float32)
    pixels = base + rng.normal(0, 18, (side, side, 3))
    rows, cols = np.mgrid[:side, :side]
    centre, radius = rng.integers(side // 4, 3 * side // 4, 2), int(rng.integers(side // 8, side // 4))
    disc = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 < radius**2
    pixels[disc] = [250, 240, 200] if warm else [20, 30, 60]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


def write_pets(root: Path, groups_per_class: int = 300, seed: int = 0) -> Path:
    """One folder holding cats/ and dogs/ only, files `<group>_<n>.png` with 1-3 pictures per group (300 groups a
    class, about 1,200 pictures: as many as the smoke study's, which two epochs from scratch need to learn)."""
    rng = np.random.default_rng(seed)
    for label, warm in (("cats", True), ("dogs", False)):
        folder = root / label
        folder.mkdir(parents=True)
        for group in range(groups_per_class):
            for number in range(int(rng.integers(1, 4))):
                _picture(rng, warm).save(folder / f"{label[:-1]}{group:03d}_{number}.png")
    return root


def run_study(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_study.py"), "--config", str(builtin_config_path("smoke")), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _folders(root: Path, names: dict[str, list[str]]) -> Path:
    """Class folders with one small picture each: {"train": ["cats", "dogs"], ...} or {"": [...]} for one folder."""
    rng = np.random.default_rng(1)
    for split, labels in names.items():
        for label in labels:
            (root / split / label).mkdir(parents=True)
            _picture(rng, warm=True).save(root / split / label / "a_1.png")
    return root


@pytest.mark.parametrize(
    ("layout", "extra", "expected"),
    [
        ({"": ["birds", "cats", "dogs"]}, (), "class folders birds, cats, dogs; expected exactly two"),
        ({"": ["cats"]}, (), r"one class folder found \(cats/\)"),
        (
            {"train": ["cats", "dogs"], "test": ["cats", "wolves"]},
            ("--set", "data.positive_class=dogs"),
            r"test: class folders cats, wolves differ from train/'s cats, dogs",
        ),
        (
            {"": ["cats", "dogs"]},
            ("--set", "data.positive_class=wolves"),
            r"'wolves' is not a class folder .*cats or dogs",
        ),
        ({"": ["cats", "dogs"]}, (), r"classes cats and dogs; name the positive one.*data\.positive_class=dogs"),
        (
            {"": ["cats", "dogs"]},
            ("--set", "data.group_pattern=(unclosed_\\d+"),
            r"data\.group_pattern: .* does not compile",
        ),
    ],
    ids=["three-classes", "one-class", "names-differ", "positive-not-a-folder", "positive-unnamed", "bad-pattern"],
)
def test_a_bad_layout_exits_2_with_one_line_naming_what_was_found(
    tmp_path: Path, layout: dict[str, list[str]], extra: tuple[str, ...], expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Through run_study.main in this process (tests/cli_in_process.py); test_cli.py runs the script itself."""
    data = _folders(tmp_path / "data", layout)
    ran = run_main(["--config", str(builtin_config_path("smoke")), "--data", str(data), "--prepare-only",
                    "--results", str(tmp_path / "r"), "--cache", str(tmp_path / "c"), *extra], capsys)  # fmt: skip
    lines = ran.stderr.strip().splitlines()
    assert ran.code == 2 and len(lines) == 1, lines
    assert re.search(expected, lines[0]), lines[0]


def test_class_folders_match_across_splits_ignoring_case(tmp_path: Path) -> None:
    """train/Cats and test/CATS are one class, spelled as train/ spells it in every file the study writes."""
    root = tmp_path / "data"
    write_pets(root / "train", groups_per_class=8)
    write_pets(root / "test", groups_per_class=4, seed=1)
    (root / "train" / "cats").rename(root / "train" / "Cats")
    (root / "test" / "dogs").rename(root / "test" / "DOGS")
    cfg = load_config(builtin_config_path("smoke"), ["data.positive_class=DOGS", f"data.group_pattern={GROUP_PATTERN}"])
    paths = ResultsPaths(tmp_path / "results")
    summary = prepare_data(root, cfg, tmp_path / "cache", paths)
    assert summary.classes == ("Cats", "dogs")
    assert {row["label"] for row in read_csv(paths.split_csv)} == {"Cats", "dogs"}
    assert summary.counts["test"] == {"Cats": sum(1 for _ in (root / "test" / "cats").iterdir()),
                                      "dogs": sum(1 for _ in (root / "test" / "DOGS").iterdir())}  # fmt: skip


@pytest.mark.parametrize(
    ("color", "gray_files", "channels"), [("auto", False, 3), ("auto", True, 1), ("gray", False, 1), ("rgb", True, 3)]
)
def test_colour_is_kept_when_a_file_holds_it(tmp_path: Path, color: str, gray_files: bool, channels: int) -> None:
    """`data.color = auto`: RGB when most files hold colour; RGB files whose channels are equal stay one channel."""
    root = write_pets(tmp_path / "data", groups_per_class=6)
    if gray_files:
        for path in root.rglob("*.png"):
            Image.open(path).convert("L").convert("RGB").save(path)
    overrides = ["data.positive_class=dogs", f"data.group_pattern={GROUP_PATTERN}", f"data.color={color}"]
    cfg = load_config(builtin_config_path("smoke"), overrides)
    paths = ResultsPaths(tmp_path / "results")
    summary = prepare_data(root, cfg, tmp_path / "cache", paths)
    files = len(list(root.rglob("*.png")))
    assert summary.channels == channels and summary.colour_files == (0 if gray_files else files)
    arrays = dataset_arrays(paths, [64], cfg.data.aspect, tmp_path / "cache").take(64, [str(next(root.rglob("*.png")))])
    assert arrays.shape == (1, 64, 64, channels)
    if channels == 3 and not gray_files:
        assert np.abs(arrays[0, ..., 0].astype(int) - arrays[0, ..., 2].astype(int)).mean() > 20, "warm: red > blue"


def test_a_group_pattern_that_names_nothing_is_shown_as_no_grouping(tmp_path: Path) -> None:
    """Kaggle's patterns on other names find no group: each file is its own, counted, and the page says that
    near-duplicates may leak."""
    root = write_pets(tmp_path / "data", groups_per_class=6)
    cfg = load_config(builtin_config_path("smoke"), ["data.positive_class=dogs"])
    paths = ResultsPaths(tmp_path / "results")
    summary = prepare_data(root, cfg, tmp_path / "cache", paths)
    assert summary.files_without_patient_id == len(list(root.rglob("*.png")))
    text = _visible_text(render_html(load_report_data(paths.root), {}))
    assert "named no group in any file name" in text and "leakage between near-duplicate images cannot be" in text
    assert f"(each its own group): {summary.files_without_patient_id}" in " ".join(text.split())


def _visible_text(page: str) -> str:
    """What a reader sees as prose: the page without its tags, scripts, styles and attribute values, and
    without the configuration dump, whose key names (`data.test_patient_ids`) are names, not words."""
    page = re.sub(r"<(script|style)\b.*?</\1>|<pre class=\"config\">.*?</pre>", " ", page, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.slow
@pytest.mark.second_dataset
def test_a_colour_two_class_folder_runs_every_stage_in_its_own_words(tmp_path: Path) -> None:
    data = write_pets(tmp_path / "pets")
    results = tmp_path / "results"
    completed = run_study(
        "--data", str(data), "--results", str(results), "--cache", str(tmp_path / "cache"),
        "--set", "data.positive_class=dogs", "--set", f"data.group_pattern={GROUP_PATTERN}",
        "--set", "search.factor=3",
        timeout=900,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    paths = ResultsPaths(results)
    assert json.loads(paths.manifest.read_text())["status"] == "complete"
    test_metrics = TestMetrics.read(paths.test_metrics)
    assert test_metrics.metrics["auc"].value > 0.9, "warm dogs and cool cats are learnable"
    assert test_metrics.ci_method == "percentile bootstrap over groups"

    summary = DataSummary.read(paths.data_summary)
    assert summary.classes == ("cats", "dogs") and summary.test_drawn and summary.files_without_patient_id == 0
    split_of: dict[str, set[str]] = {}
    for row in read_csv(paths.split_csv):
        assert row["label"] in ("cats", "dogs")
        split_of.setdefault(row["patient_id"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in split_of.values()), "a group never straddles two splits"
    assert len(split_of) < sum(summary.counts["train"].values()) + sum(summary.counts["test"].values())

    labels = {row["label"] for row in read_csv(paths.gradcam_index)}
    assert labels <= {"0", "1"} and labels, "the gallery lists label codes; the pages name them"
    page = paths.report.read_text(encoding="utf-8")
    card = paths.model_card.read_text(encoding="utf-8")
    ablation_tables = [paths.ablation_table(suffix).read_text(encoding="utf-8") for suffix in ("md", "tex")]
    assert ablation_tables, "the ablation wrote its citable tables"
    for name, text in (("report.html", _visible_text(page)), ("model_card.md", card),
                       *((f"ablation table {n}", t) for n, t in enumerate(ablation_tables))):  # fmt: skip
        assert "cats" in text and "dogs" in text, name
        assert not CHEST_WORDS.search(text), f"{name}: {CHEST_WORDS.search(text)[0]!r} in a cats-and-dogs study"
    assert "Predicted dogs" in page and "True positives: dogs, flagged" in page
    assert "cats vs dogs on images" in card and "RGB uint8 input" in card
    assert summary.channels == 3, "colour pictures keep their colour"

    test_rows = [row for row in read_csv(paths.predictions_csv) if row["split"] == "test"][:8]
    out = tmp_path / "served.csv"
    served = subprocess.run(
        [sys.executable, str(ROOT / "predict.py"), "--results", str(results), "--out", str(out),
         *(row["path"] for row in test_rows)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr[-2000:]
    threshold = Threshold.read(paths.threshold).threshold
    for row, prediction in zip(test_rows, read_csv(out), strict=True):
        prob = float(prediction["prob_dogs"])
        assert abs(prob - float(row["prob"])) < 1e-5, "predict.py decodes RGB as the study did"
        assert prediction["label"] == ("dogs" if prob >= threshold else "cats")
    written = [p for p in results.rglob("*") if p.suffix in (".csv", ".json", ".md", ".html", ".tex")]
    leaking = [p.name for p in written if "pneumonia" in p.read_text(encoding="utf-8").lower()]
    assert not leaking, f"files that speak of pneumonia: {leaking}"
