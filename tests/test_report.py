"""The report side: records from a known fixture, the rendered page, partial studies, escaping, the CLI."""

from __future__ import annotations

import os
import runpy
import socket
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
from report_fixture import (
    ABLATION,
    ABLATION_SKIPPED,
    BEST_TRIAL_ID,
    CONFUSION,
    METRICS,
    fixture_predictions,
    write_fixture,
)
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, roc_auc_score

from study.report.info import ReportInputError, load_report_data, missing_sentence
from study.report.records import ReportData, RunInfo
from study.report.render import fmt_ci, write_report
from study.results import (
    HISTORY_COLUMNS,
    CamBaseline,
    Manifest,
    ResultsPaths,
    Subgroups,
    TestMetrics,
    read_csv,
    write_csv,
    write_json,
)
from study.results.lock import single_writer
from tests.blocked_imports import run_without

REPO = Path(__file__).resolve().parents[1]
EVIL = "<script>alert(1)</script>"
SECTION_IDS = ("contents", "summary", "data", "search", "best", "ablation", "gradcam", "reproducibility")


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> ResultsPaths:
    return write_fixture(tmp_path_factory.mktemp("full") / "results", config_name="demo")


@pytest.fixture(scope="module")
def full_data(full: ResultsPaths) -> ReportData:
    return load_report_data(full.root)


@pytest.fixture(scope="module")
def full_html(full: ResultsPaths) -> str:
    return write_report(full.root).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def partial_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    paths = write_fixture(tmp_path_factory.mktemp("partial") / "results", partial=True)
    return write_report(paths.root).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def cli_main() -> Callable[[list[str]], int]:
    return runpy.run_path(str(REPO / "build_report.py"))["main"]


# (a) records


def test_trials_sorted_best_first_with_best_so_far(full_data: ReportData) -> None:
    trials = full_data.trials
    assert trials is not None
    assert trials.best_trial_id == BEST_TRIAL_ID
    assert [t.trial_id for t in trials.rows] == ["0003", "0004", "0001", "0002", "0000", "0005"]
    assert trials.hp_names == ("alpha", "learning_rate", "optimizer")
    assert trials.rows[0].hp == (0.35, 0.0001, "adam")  # numbers, so the template can round them
    assert (trials.ran, trials.completed, trials.failed, trials.any_error) == (6, 5, 1, True)
    assert trials.val_auc_in_order == (0.71, 0.83, 0.79, 0.91, 0.88, None)
    assert trials.best_so_far == (0.71, 0.83, 0.83, 0.91, 0.91, 0.91)


def test_data_counts_and_skipped(full_data: ReportData) -> None:
    data = full_data.data
    assert data is not None
    assert data.classes == ("NORMAL", "PNEUMONIA")
    assert [(r.split, r.counts, r.total, r.patients) for r in data.rows] == [
        ("train", (1000, 2900), 3900, 2100),
        ("val", (80, 260), 340, 230),
        ("test", (234, 390), 624, 400),
    ]
    assert (data.class_totals, data.total, data.skipped) == ((1314, 3550), 4864, 3)
    assert data.skipped_rows[0].path == "train/NORMAL/broken.jpeg"
    assert data.skipped_rows[0].reason == "cannot decode"


def test_test_metrics_best_config_and_plan(full_data: ReportData) -> None:
    test, best, plan = full_data.test, full_data.best, full_data.plan
    assert test is not None and best is not None and plan is not None
    assert [m.key for m in test.metrics] == list(METRICS)
    assert {m.key: (m.value, m.ci_low, m.ci_high) for m in test.metrics} == METRICS
    assert test.confusion is not None and asdict(test.confusion) == CONFUSION
    assert fmt_ci(test.metrics[0]) == "0.953 [0.931, 0.972]"
    assert best.trial_id == BEST_TRIAL_ID
    assert dict(best.values) == {"alpha": 0.35, "learning_rate": 0.0001, "optimizer": "adam"}
    assert (plan.total_trials, [r.trials for r in plan.rounds]) == (13, [9, 3, 1])
    assert full_data.comparison[0].ours and full_data.comparison[0].auc == 0.953
    assert full_data.run is not None and full_data.run.synthetic
    assert full_data.notes == {}


def test_roc_matches_pairwise_auc(full_data: ReportData) -> None:
    labels, probs = fixture_predictions()
    positives = [p for y, p in zip(labels, probs, strict=True) if y]
    negatives = [p for y, p in zip(labels, probs, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    roc = full_data.roc
    assert roc is not None
    assert roc.auc == pytest.approx(wins / (len(positives) * len(negatives)))
    assert (roc.n, roc.n_positive) == (len(labels), len(positives))
    assert (roc.fpr[0], roc.tpr[0], roc.fpr[-1], roc.tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert list(roc.fpr) == sorted(roc.fpr) and list(roc.tpr) == sorted(roc.tpr)
    assert roc.operating_point == pytest.approx((32 / 234, 367 / 390))


def test_pr_and_calibration_match_scikit_learn(full_data: ReportData) -> None:
    labels, probs = fixture_predictions()
    pr, calibration = full_data.pr, full_data.calibration
    assert pr is not None and calibration is not None
    assert pr.average_precision == pytest.approx(average_precision_score(labels, probs))
    assert pr.operating_point == pytest.approx((367 / 390, 367 / 399))
    observed, predicted = calibration_curve(labels, probs, n_bins=10, strategy="uniform")
    assert [b[1] for b in calibration.bins] == pytest.approx(list(observed))
    assert [b[0] for b in calibration.bins] == pytest.approx(list(predicted))
    counts = np.array([b[2] for b in calibration.bins])
    gaps = np.abs(np.array([b[0] for b in calibration.bins]) - np.array([b[1] for b in calibration.bins]))
    assert calibration.ece == pytest.approx(float((counts * gaps).sum() / len(labels)))


def test_learning_curve_of_the_best_trial(full_data: ReportData) -> None:
    curve = full_data.learning
    assert curve is not None and curve.trial_id == BEST_TRIAL_ID
    assert curve.epochs == (1, 2, 3) and curve.val_auc == (0.91, 0.91, 0.91) and curve.continued_at == ()


def test_learning_curve_follows_the_trials_a_continuation_continued(tmp_path: Path) -> None:
    """A Hyperband continuation's own history starts at its initial epoch; the parent supplies the rest."""
    paths = write_fixture(tmp_path / "results")
    rows = read_csv(paths.trials_csv)
    for row in rows:
        if row["trial_id"] == BEST_TRIAL_ID:
            row.update(parent="0001", initial_epoch="1")
    write_csv(paths.trials_csv, list(rows[0]), rows)
    write_csv(paths.history_csv(BEST_TRIAL_ID), HISTORY_COLUMNS,
              [{"epoch": e, "val_auc": 0.9 + e / 100} for e in (2, 3)])  # fmt: skip
    curve = load_report_data(paths.root).learning
    assert curve is not None
    assert curve.epochs == (1, 2, 3) and curve.val_auc == (0.83, 0.92, 0.93)
    assert curve.continued_at == ((BEST_TRIAL_ID, 1),)


def test_gradcam_grouped_by_category(full_data: ReportData) -> None:
    gradcam = full_data.gradcam
    assert gradcam is not None
    assert [(g.category, len(g.images)) for g in gradcam.groups] == [("TP", 2), ("FP", 2), ("FN", 2), ("TN", 2)]
    first = gradcam.groups[0].images[0]
    assert (first.src, first.label, first.patient_id, first.exists) == (
        "gradcam/tp_0.png",
        "PNEUMONIA",
        "patient00",
        True,
    )
    assert gradcam.groups[3].images[0].label == "NORMAL"
    assert (gradcam.total, gradcam.missing_files) == (8, 0)
    assert gradcam.comparison_src == "gradcam/comparison.png" and gradcam.comparison_films == 2
    assert gradcam.comparison_models == tuple(label for label, *_ in ABLATION.values())
    assert gradcam.comparison_random  # the fixture's films were drawn at random, as the stage draws them


def test_ablation_table_as_the_stage_wrote_it(full_data: ReportData) -> None:
    ablation = full_data.ablation
    assert ablation is not None
    assert ablation.headers == ("Variant", "Seeds", "Test AUC", "Δ Test AUC")
    assert [(row.label, row.cells) for row in ablation.rows] == [
        (label, (cell, delta_cell)) for label, cell, delta_cell, _ in ABLATION.values()
    ]
    assert (ablation.seeds, ablation.epochs, ablation.runs_done, ablation.runs_planned) == (3, 9, 9, 9)
    assert ablation.skipped == (ABLATION_SKIPPED,)
    assert [suffix for suffix, _ in ablation.tables] == ["md", "tex", "csv"]
    assert [(p.label, p.delta, p.low, p.high) for p in ablation.forest] == [
        (label, *delta) for label, _, _, delta in ABLATION.values() if delta
    ]


def test_search_evidence_is_read_observational(full_data: ReportData) -> None:
    evidence = full_data.evidence
    assert evidence is not None
    assert [(e.factor, e.level, e.n, e.mean, e.low) for e in evidence.effects] == [
        ("augmentation", "0.0", 4, 0.8, 0.7),
        ("augmentation", "1.0", 1, 0.6, None),
    ]
    assert [name for name, *_ in evidence.importance] == ["augmentation", "epochs"]  # largest first
    assert evidence.importance_trials == 12
    assert evidence.round_zero and evidence.forest_explains and evidence.oob_r2 == 0.42
    assert evidence.confidence == 0.9


@pytest.mark.parametrize(
    ("status", "done", "expected"),
    [
        ("running", (), "No test metrics yet: the evaluate stage has not run (best/test_metrics.json is missing)."),
        ("stopped", (), "No test metrics: the study stopped before the evaluate stage ran (best/test_metrics.json"),
        ("interrupted", (), "No test metrics: the study was interrupted before the evaluate stage ran (best/test_"),
        ("complete", ("evaluate",), "No test metrics: the evaluate stage finished but best/test_metrics.json"),
    ],
)
def test_missing_sentence_says_why(status: str, done: tuple[str, ...], expected: str) -> None:
    run = RunInfo(status, None, None, False, done, (), "", (), "", None, None, None)
    root = Path("/r")
    assert missing_sentence("test metrics", "evaluate", root / "best/test_metrics.json", root, run).startswith(expected)


def test_unreadable_optional_file_becomes_a_note(tmp_path: Path) -> None:
    paths = write_fixture(tmp_path / "results")
    paths.threshold.write_text("{not json", encoding="utf-8")
    (paths.gradcam_dir / "tp_0.png").unlink()
    data = load_report_data(paths.root)
    assert data.threshold is None and "best/threshold.json could not be read" in data.notes["threshold"]
    assert data.gradcam is not None and data.gradcam.missing_files == 1
    html = write_report(paths.root).read_text(encoding="utf-8")
    assert "could not be read" in html and "missing: <code>tp_0.png</code>" in html


# (b) full report


def test_full_report_has_sections_and_numbers(full: ResultsPaths, full_html: str) -> None:
    for section in SECTION_IDS:
        assert f'id="{section}"' in full_html
        assert section == "contents" or f'href="#{section}"' in full_html
    for text in (
        "0.953 [0.931, 0.972]",
        "0.863 [0.818, 0.905]",
        "Synthetic demo data: these numbers say nothing about X-rays",
        "<strong>0.412</strong>",
        "<strong>youden</strong>",
        '<td class="num" id="cm-tp">367',
        "0.968",
        "92.8%",
        '<strong id="skipped-count">3</strong>',
        '<strong id="trials-ran">6</strong>',
        'src="report_files/roc.png"',
        'src="report_files/best_so_far.png"',
        'src="report_files/ablation_forest.png"',
        'src="gradcam/comparison.png"',
        "drawn at random (half of each class",
        "first-round trials of each Hyperband bracket only",
        "90% t intervals",
        '<strong id="oob-r2">0.42</strong>',
        "One seed is one sample",
        'src="report_files/pr.png"',
        'src="report_files/calibration.png"',
        'src="report_files/learning_curves.png"',
        'src="report_files/parallel.png"',
        'data-filter-table="trials-table"',
        '<strong id="leakage-count">2</strong>',
        '<code id="data-hash">abc</code>',
        "<dt>Ablation seeds</dt><dd>1, 2, 3",
        'href="ablation/tables/ablation.tex"',
        "-0.049 [-0.061, -0.037]*†",
        ABLATION_SKIPPED,
        'src="gradcam/fn_1.png"',
        "patient21",
        "2 h 30 min",
        '<dd id="time-spent">2 h 32 min in the stages',
        '<tr id="export-int8"><th scope="row">int8</th><td><code>export/model_int8.tflite</code></td>'
        '<td class="num">2048 KB (25% of fp32)</td>',
        "-0.0012 [-0.0040, +0.0011]",
        "not converted: ConverterError: op not supported",
        '<th scope="row">virus</th><td class="num">148</td><td class="num">90</td>'
        '<td class="num">0.880 [0.820, 0.930]</td>',
        "<strong>Not a medical device.</strong>",
    ):
        assert text in full_html, text
    assert 'class="missing"' not in full_html
    assert (
        full_html.index("<code>0003</code>")
        < full_html.index("<code>0004</code>")
        < full_html.index("<code>0000</code>")
    )
    assert (full.report_files / "roc.png").stat().st_size > 1000
    assert (full.report_files / "best_so_far.png").stat().st_size > 1000


# (c) partial study


def test_partial_report_says_what_is_missing(partial_html: str) -> None:
    """The partial study's manifest says running, but no process holds its lock: it was interrupted."""
    assert '<span class="status">interrupted (last written ' in partial_html
    assert "rerun the same command to resume" in partial_html
    for sentence in (
        "No test metrics: the study was interrupted before the evaluate stage ran (best/test_metrics.json is missing).",
        "No best configuration: the study was interrupted before the evaluate stage ran (best/hyperparameters.json",
        "No ROC curve: the study was interrupted before the evaluate stage ran (best/predictions.csv is missing).",
        "No Grad-CAM gallery: the study was interrupted before the gradcam stage ran (gradcam/index.csv is missing).",
        "No ablation: the study was interrupted before the ablation stage ran (ablation/plan.json is missing).",
    ):
        assert sentence in partial_html
    assert '<strong id="trials-ran">2</strong>' in partial_html
    assert partial_html.count('<tr class="best">') == 1
    assert "Synthetic demo data" not in partial_html
    for section in SECTION_IDS:
        assert f'id="{section}"' in partial_html


def test_a_study_whose_writer_lives_is_running(tmp_path: Path) -> None:
    paths = write_fixture(tmp_path / "results", partial=True)
    with single_writer(paths.root):
        run = load_report_data(paths.root).run
    assert run is not None and run.status == f"running (PID {os.getpid()} on {socket.gethostname()})"
    after = load_report_data(paths.root).run
    assert after is not None and after.status.startswith("interrupted (last written ")


def test_a_resume_on_another_device_is_shown(tmp_path: Path) -> None:
    """A night resumed on another GPU mixes precisions: the report says so, as the manifest recorded it."""
    paths = write_fixture(tmp_path / "results")
    manifest = Manifest.read(paths.manifest)
    change = "2026-12-02T03:10:00+00:00: device Tesla T4 (was NVIDIA L4); precision float32 (was mixed_float16)"
    replace(manifest, precision="mixed_float16", changes=(change,)).write(paths.manifest)
    html = write_report(paths.root).read_text(encoding="utf-8")
    assert "<dt>Resumed with changes</dt>" in html and "device Tesla T4 (was NVIDIA L4)" in html
    assert "<dt>Precision</dt><dd>mixed_float16</dd>" in html


def test_empty_folder_renders_not_started(tmp_path: Path) -> None:
    html = write_report(tmp_path).read_text(encoding="utf-8")
    assert "No run information: the study has not started (manifest.json is missing)." in html
    assert "No data summary: the study has not started" in html


# (d) escaping


def test_hostile_strings_are_escaped(tmp_path: Path) -> None:
    paths = write_fixture(tmp_path / "results", tag=EVIL, config_name=EVIL)
    html = write_report(paths.root).read_text(encoding="utf-8")
    assert EVIL not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for context in (
        f"adam{escaped}", f"patient00{escaped}", f"broken.jpeg{escaped}", f"chest_xray{escaped}",
        f"Protocol caption{escaped}", f"dropout = 0.5{escaped}", f"0.0{escaped}",
        f"(priority 5 in ablation.factors){escaped}",
    ):  # fmt: skip
        assert context in html, context
    assert 'src="gradcam/tp_0%3Cscript%3Ealert%281%29%3C/script%3E.png"' in html


# (e), (f) the CLI


def test_cli_runs_with_deep_learning_imports_blocked(tmp_path: Path) -> None:
    target = write_fixture(tmp_path / "results")
    done = run_without({"tensorflow", "keras", "keras_tuner"}, REPO / "build_report.py", [str(target.root)], 60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(target.report)
    assert target.report.is_file() and (target.report_files / "roc.png").is_file()


def test_cli_missing_folder_exits_2(
    cli_main: Callable[[list[str]], int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    assert cli_main([str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and err.count("\n") == 1


@pytest.mark.parametrize("manifest", ['{"format": 99, "status": "complete"}', "{broken", "[1, 2]"])
def test_cli_bad_manifest_exits_2(
    manifest: str, cli_main: Callable[[list[str]], int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = ResultsPaths(tmp_path)
    paths.manifest.write_text(manifest, encoding="utf-8")
    assert cli_main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(paths.manifest) in err and "format" in err and err.count("\n") == 1
    assert not paths.report.exists()


def test_load_raises_on_other_format(tmp_path: Path) -> None:
    write_json(ResultsPaths(tmp_path).manifest, {"format": 3})
    with pytest.raises(ReportInputError, match="format 3"):
        load_report_data(tmp_path)


# (g) self-contained page


def test_report_loads_nothing_from_the_network(full_html: str, partial_html: str) -> None:
    for html in (full_html, partial_html):
        for forbidden in ("<script src", "<link", 'src="http', "src='http", "url(http", "@import"):
            assert forbidden not in html
        assert '<table class="sortable trials" id="trials-table">' in html and "addEventListener" in html


def test_gradcam_scores_are_read_and_shown(tmp_path: Path) -> None:
    paths = write_fixture(tmp_path / "results")
    info = load_report_data(paths.root).gradcam
    assert info is not None and [s.method for s in info.scores] == ["gradcam", "gradcam++"]
    assert (info.scores[0].deletion_auc, info.scores[0].random_deletion_auc, info.films_scored) == (0.213, 0.402, 150)
    html = write_report(paths.root).read_text(encoding="utf-8")
    assert 'id="gradcam-scores"' in html and "0.213" in html and "2.46 (median 2.20, 90 films)" in html
    assert "-0.189 [-0.231, -0.147] beats random" in html, "an interval below zero is a tested win"
    assert "-0.152 [-0.200, 0.010]</td>" in html, "an interval that reaches zero claims nothing"
    assert "random map on the layer's own 7x7 grid" in html
    assert 'id="difference-films">the 90 films the model called pneumonia<' in html
    assert 'id="other-films">the 60 films the model called normal<' in html
    assert "0.104 [0.021, 0.188]</td>" in html, "the films called normal: paired apart, no verdict either way"
    assert "-0.300 [-0.400, -0.200]</td>" in html and html.count("beats random") == 1, "no verdict there either"


def test_an_older_baseline_pooled_every_film_and_says_so(tmp_path: Path) -> None:
    """baseline.json from before the two classes were paired apart: one pooled comparison, no second column."""
    paths = write_fixture(tmp_path / "results")
    pooled = {"gradcam": {"value": -0.1, "ci_low": -0.2, "ci_high": -0.05}}
    write_json(paths.gradcam_baseline, {"random_grid": 7, "confidence": 0.95, "resamples": 500, "differences": pooled})
    html = write_report(paths.root).read_text(encoding="utf-8")
    assert 'id="difference-films">every image scored<' in html and 'id="other-films"' not in html
    assert "On the others" not in html


def test_a_study_without_the_random_baseline_file_still_renders(tmp_path: Path) -> None:
    paths = write_fixture(tmp_path / "results")
    paths.gradcam_baseline.unlink()  # written by studies of an earlier version
    html = write_report(paths.root).read_text(encoding="utf-8")
    assert "0.213" in html and "Map minus random" not in html


def test_the_headline_says_how_optimistic_it_is(tmp_path: Path) -> None:
    paths = write_fixture(tmp_path / "results")
    rows = read_csv(paths.predictions_csv)
    rng = np.random.default_rng(0)
    val = [
        {"split": "val", "path": f"val/{i}.jpeg", "label": i % 2, "prob": round(float(rng.random()), 2)}
        for i in range(40)
    ]
    write_csv(paths.predictions_csv, ("split", "path", "label", "prob"), [r for r in rows if r["split"] != "val"] + val)
    best = load_report_data(paths.root).best
    expected = roc_auc_score([row["label"] for row in val], [row["prob"] for row in val])  # ties among 0.01 steps
    assert best is not None and best.n_val == 40 and np.isclose(best.val_auc_exact, expected)
    html = write_report(paths.root).read_text(encoding="utf-8")
    assert f"exactly {expected:.3f} on the 40 validation films" in html and "This figure is optimistic" in html
    assert "(the ablation's best variant, 3 seeds): test AUC 0.934 [0.901, 0.967]" in html


def test_without_the_ablation_the_headline_says_the_retraining_is_to_come(tmp_path: Path) -> None:
    paths = write_fixture(tmp_path / "results")
    paths.ablation_summary.unlink()
    html = write_report(paths.root).read_text(encoding="utf-8")
    assert "These are one training run" in html and "(not run yet)" in html


def test_the_configured_confidence_level_labels_every_interval(tmp_path: Path) -> None:
    """A study run with evaluate.confidence = 0.9 says 90% wherever it prints an interval's level."""
    paths = write_fixture(tmp_path / "results", config_name="demo")
    test = TestMetrics.read(paths.test_metrics)
    replace(test, confidence=0.9).write(paths.test_metrics)
    baseline = CamBaseline.read(paths.gradcam_baseline)
    replace(baseline, confidence=0.9).write(paths.gradcam_baseline)
    subgroups = Subgroups.read(paths.subgroups)
    replace(subgroups, confidence=0.9).write(paths.subgroups)
    html = write_report(paths.root).read_text(encoding="utf-8")
    assert "95%" not in html
    for label in ("Value [90% CI]", "paired 90% CI", "90% t intervals", "its 90% interval"):
        assert label in html, label
    assert "95%" not in paths.model_card.read_text() and "Intervals: 90%" in paths.model_card.read_text()
