"""Every JSON file of the results folder goes through its record: written, read back equal, and a file that
does not match its record fails with one line naming the file and the key."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from study.config import builtin_config_path, config_from_json, config_to_json, load_config
from study.results import (
    AblationPlan,
    BestTrial,
    Calibration,
    CamBaseline,
    CamScores,
    ConfusionCounts,
    DataSummary,
    Estimate,
    JsonRecord,
    Manifest,
    MethodScores,
    PlanBracket,
    PlanRound,
    ResultsFormatError,
    ResultsPaths,
    SearchPlan,
    Subgroups,
    SubgroupSensitivity,
    Threshold,
    atomic_write_text,
    read_manifest,
    write_csv,
)
from study.results import (
    TestMetrics as MetricsRecord,  # a Test* name would be collected by pytest
)

SCORES = MethodScores(0.21, 0.40, 0.31, 3, 2.46, None, 90)
RECORDS: dict[str, JsonRecord] = {
    "manifest": Manifest.new("python run_study.py", {"python": "3.11.7"}, None),
    "data summary": DataSummary(
        counts={"train": {"NORMAL": 10, "PNEUMONIA": 30}, "val": {"NORMAL": 2, "PNEUMONIA": 6}},
        patients={"train": 20, "val": 5},
        source_counts={"train": {"NORMAL": 12, "PNEUMONIA": 36}},
        data_hash="abc",
        skipped=1,
        skipped_by_reason={"zero bytes": 1},
        duplicates_removed=0,
        test_leakage_duplicates=0,
        files_without_patient_id=0,
        val_fraction=0.15,
        val_share=0.1667,
        seed=42,
        data_root="/data/chest_xray",
    ),
    "search plan": SearchPlan(3, 3, 1, 6, 11, (PlanBracket(0, 1, (PlanRound(0, 3, 1, 0), PlanRound(1, 1, 3, 1))),)),
    "calibration": Calibration(17.5, {64: 2.5, 80: 3.75}),
    "best trial": BestTrial("0003", {"resolution": 64, "dropout": 0.25, "class_weighting": "none"}, 0.93),
    "threshold": Threshold("youden", 0.41, 0.95, 0.87, 340),
    "test metrics": MetricsRecord(
        624,
        390,
        234,
        400,
        0.41,
        0.95,
        2000,
        "percentile bootstrap over patients",
        {"auc": Estimate(0.95, 0.93, 0.97)},
        ConfusionCounts(202, 32, 23, 367),
    ),
    "ablation plan": AblationPlan(2, ("dropout",), 3, ("best", "dropout=0"), ("best-s1", "best-s2"), (), None, 60.0),
    "Grad-CAM scores": CamScores("out_relu", 150, "the predicted class", 0.08, 0.5, {"gradcam": SCORES}),
    "Grad-CAM baseline": CamBaseline(
        7,
        0.95,
        2000,
        {"gradcam": Estimate(-0.12, -0.18, -0.05)},
        "the 9 films the model called pneumonia",
        "the 3 films the model called normal",
        {"gradcam": Estimate(0.1, 0.02, 0.2)},
    ),
    "subgroups": Subgroups(0.95, 2000, {"virus": SubgroupSensitivity(148, 90, Estimate(0.9, 0.84, 0.95))}),
}


@pytest.mark.parametrize("name", RECORDS)
def test_each_record_round_trips_through_its_file(name: str, tmp_path: Path) -> None:
    record = RECORDS[name]
    record.write(tmp_path / "file.json")
    assert type(record).read(tmp_path / "file.json") == record


def test_the_config_round_trips_through_config_json() -> None:
    cfg = load_config(builtin_config_path("smoke"))
    assert config_from_json(config_to_json(cfg), Path("config.json")) == cfg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"method": "youden", "threshold": "0.4", "val_sensitivity": 1, "val_specificity": 1, "n_val": 3}',
         "key threshold: expected float, found '0.4'"),
        ('{"method": "youden", "threshold": 0.4, "val_sensitivity": 1, "val_specificity": 1}', "key n_val: missing"),
        ('{"method": "youden", "threshold": 0.4, "val_sensitivity": 1, "val_specificity": 1, "n_val": true}',
         "key n_val: expected int, found True"),
        ('{"method": "y", "threshold": 0.4, "val_sensitivity": 1, "val_specificity": 1, "n_val": 3, "extra": 1}',
         "key extra: unknown key"),
        ("{not json", "not valid JSON"),
    ],
)  # fmt: skip
def test_a_file_that_does_not_match_its_record_names_file_and_key(text: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "best" / "threshold.json"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ResultsFormatError) as raised:
        Threshold.read(path)
    assert str(raised.value).startswith(f"{path}: ") and expected in str(raised.value)


def test_nested_keys_are_named_by_their_path(tmp_path: Path) -> None:
    path = tmp_path / "scores.json"
    text = RECORDS["Grad-CAM scores"].to_json().replace('"border_flagged": 3', '"border_flagged": "3"')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ResultsFormatError, match=r"key methods\.gradcam\.border_flagged: expected int"):
        CamScores.read(path)


def test_a_manifest_of_another_format_is_refused_by_its_number(tmp_path: Path) -> None:
    paths = ResultsPaths(tmp_path)
    assert read_manifest(paths.manifest) is None
    paths.manifest.write_text('{"format": 3, "status": "complete"}', encoding="utf-8")
    with pytest.raises(ResultsFormatError, match="results format 3, this tool reads formats 1 to 2"):
        read_manifest(paths.manifest)


def test_a_format_1_manifest_reads_with_the_keys_added_since_as_before_them(tmp_path: Path) -> None:
    """Format 2 only added keys with defaults: a study written before them still opens (and a resume rewrites its
    manifest as format 2, which an older tool then refuses by number instead of by an unknown key)."""
    paths = ResultsPaths(tmp_path)
    older = {
        "format": 1, "status": "complete", "stages_done": ["data", "search"], "stage_seconds": {"data": 1.0},
        "command": "run_study.py", "versions": {}, "device": "CPU", "git_sha": None, "started": None,
        "finished": None,
    }  # fmt: skip
    paths.manifest.write_text(json.dumps(older), encoding="utf-8")
    manifest = read_manifest(paths.manifest)
    assert manifest is not None and manifest.format == 1 and manifest.backend is None
    assert manifest.trained_backend == "tensorflow", "studies from before the backend was recorded ran TensorFlow"


def test_atomic_writes_keep_the_permissions_of_a_plainly_written_file(tmp_path: Path) -> None:
    """mkstemp's 0600 would hide results from a worker or a web server running as another user."""
    old_umask = os.umask(0o022)
    try:
        (tmp_path / "plain.txt").write_text("x")
        atomic_write_text(tmp_path / "atomic.txt", "x")
        RECORDS["manifest"].write(tmp_path / "manifest.json")
        write_csv(tmp_path / "rows.csv", ("a",), [{"a": 1}])
    finally:
        os.umask(old_umask)
    expected = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert expected == 0o644
    for name in ("atomic.txt", "manifest.json", "rows.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name
