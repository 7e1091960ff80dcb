"""best/ and gradcam/ -> records: the selected model, its threshold, its one look at the test set.

Split from info.py to keep each module readable; load_report_data in info.py is the only caller.
The ROC is computed here with numpy from predictions.csv, so the report does not need scikit-learn.
"""

from __future__ import annotations

from urllib.parse import quote

import numpy as np

from study.report.info_curves import load_test_predictions
from study.report.records import BestConfig, Metric, Reference, RocInfo, TestInfo, as_float
from study.report.records_sections import CamScoreRow, GradcamGroup, GradcamImage, GradcamInfo
from study.results import (
    BestTrial,
    CamBaseline,
    CamScores,
    ConfusionCounts,
    ResultsPaths,
    Subgroups,
    TestMetrics,
    Threshold,
    read_csv,
)
from study.results.classes import Classes, Wording
from study.results.vocab import METRIC_LABELS


def category_titles(words: Wording) -> dict[str, str]:
    """The gallery's headings, TP first, in the study's own class names."""
    return {
        "TP": f"True positives: {words.positive}, flagged",
        "FP": f"False positives: {words.negative}, flagged",
        "FN": f"False negatives: {words.positive}, missed",
        "TN": f"True negatives: {words.negative}, not flagged",
    }


# From the dataset notes; all on the Kermany et al. 2018 chest X-ray test set (624 images, 390 pneumonia).
REFERENCES: tuple[Reference, ...] = (
    Reference("Kermany 2018, InceptionV3", 0.968, 0.928, 0.932, 0.901, "checkpoint picked on the test set"),
    Reference("MedMNIST v2, ResNet-50", 0.962, 0.884, None, None, "28 px images upscaled"),
    Reference("MedMNIST+, ResNet-18 pretrained", 0.980, 0.911, None, None, "224 px; accuracy ± 1.0 pt over 3 seeds"),
    Reference("Majority class (always pneumonia)", 0.5, 0.625, 1.0, 0.0, "the floor any model must beat"),
)


def get_best_config(paths: ResultsPaths) -> BestConfig | None:
    """The selected trial, with its validation AUC recomputed exactly once evaluate has scored the validation
    films (the search ranks trials by Keras's 200-bucket approximation)."""
    if not paths.best_hyperparameters.exists():
        return None
    best = BestTrial.read(paths.best_hyperparameters)
    val = (
        [row for row in read_csv(paths.predictions_csv) if row.get("split") == "val"]
        if paths.predictions_csv.exists()
        else []
    )
    labels = np.array([int(float(row["label"])) for row in val], dtype=np.int64)
    exact = (
        roc_curve(labels, np.array([float(row["prob"]) for row in val]))[2] if 0 < labels.sum() < labels.size else None
    )
    completed = (
        sum(row.get("status") == "COMPLETED" for row in read_csv(paths.trials_csv))
        if paths.trials_csv.exists()
        else None
    )
    return BestConfig(
        trial_id=best.trial_id,
        values=tuple(sorted(best.values.items())),
        val_auc=best.val_auc,
        val_auc_exact=exact,
        n_val=len(val) or None,
        trials_completed=completed,
    )


def _retrained_best(paths: ResultsPaths) -> tuple[Metric | None, int | None]:
    """The ablation's best variant's test AUC over its seeds (mean, t interval): the headline is one training
    run, selected among many, and this is the check against the winner's curse."""
    if not paths.ablation_summary.exists():
        return None, None
    for row in read_csv(paths.ablation_summary):
        if row.get("variant") == "best" and row.get("metric") == "test_auc" and as_float(row.get("mean")) is not None:
            metric = Metric(
                "auc", "AUC", as_float(row["mean"]), as_float(row.get("ci_low")), as_float(row.get("ci_high"))
            )
            return metric, int(float(row["n"]))
    return None, None


def get_threshold_info(paths: ResultsPaths) -> Threshold | None:
    return Threshold.read(paths.threshold) if paths.threshold.exists() else None


def get_test_info(paths: ResultsPaths) -> TestInfo | None:
    """Test metrics with their bootstrap CIs, in the order the summary shows them."""
    if not paths.test_metrics.exists():
        return None
    found = TestMetrics.read(paths.test_metrics)
    metrics = found.metrics
    retrained, seeds = _retrained_best(paths)
    return TestInfo(
        n=found.n,
        n_positive=found.n_positive,
        n_negative=found.n_negative,
        threshold=found.threshold,
        confidence=found.confidence,
        bootstrap_resamples=found.bootstrap_resamples,
        metrics=tuple(
            Metric(
                key=key,
                name=name,
                value=as_float(metrics[key].value),
                ci_low=as_float(metrics[key].ci_low),
                ci_high=as_float(metrics[key].ci_high),
            )
            for key, name in METRIC_LABELS.items()
            if key in metrics
        ),
        confusion=found.confusion_matrix,
        retrained_auc=retrained,
        retrained_seeds=seeds,
        n_patients=found.n_patients,
        one_class_resamples=found.one_class_resamples,
    )


def comparison_rows(test: TestInfo | None, synthetic: bool) -> tuple[Reference, ...]:
    """Our test row (when there is one) above the reference rows, in the same units."""
    if test is None:
        return REFERENCES
    values = {m.key: m.value for m in test.metrics}
    note = "synthetic demo data" if synthetic else f"this study's test split, {test.n} images"
    ours = Reference(
        "This study: MobileNetV2, best trial",
        values.get("auc"),
        values.get("accuracy"),
        values.get("sensitivity"),
        values.get("specificity"),
        note,
        ours=True,
    )
    return (ours, *REFERENCES)


def roc_curve(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """FPR, TPR at every distinct threshold (highest first) and the trapezoid AUC; ties share one point."""
    order = np.argsort(-probs, kind="mergesort")
    probs, labels = probs[order], labels[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(probs)), probs.size - 1]
    tps = np.cumsum(labels)[last_of_each]
    fps = last_of_each + 1 - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))
    return fpr, tpr, auc


def get_roc_info(paths: ResultsPaths, confusion: ConfusionCounts | None) -> RocInfo | None:
    """ROC of the test rows; the marked operating point is the test confusion matrix's, not recomputed."""
    if not paths.predictions_csv.exists():
        return None
    labels, probs = load_test_predictions(paths)
    n_positive = int(labels.sum())
    fpr, tpr, auc = roc_curve(labels, probs)
    point = None
    if confusion is not None and confusion.fp + confusion.tn and confusion.tp + confusion.fn:
        point = (confusion.fp / (confusion.fp + confusion.tn), confusion.tp / (confusion.tp + confusion.fn))
    return RocInfo(
        fpr=tuple(float(x) for x in fpr),
        tpr=tuple(float(x) for x in tpr),
        auc=auc,
        n=int(labels.size),
        n_positive=n_positive,
        operating_point=point,
    )


def get_gradcam_info(paths: ResultsPaths, classes: Classes) -> GradcamInfo | None:
    """gradcam/index.csv grouped TP, FP, FN, TN (then any other category); src is relative to report.html."""
    if not paths.gradcam_index.exists():
        return None
    images = [
        GradcamImage(
            file=r.get("file", ""),
            src=quote(f"{paths.gradcam_dir.name}/{r.get('file', '')}"),
            exists=(paths.gradcam_dir / r.get("file", "")).is_file(),
            category=r.get("category", ""),
            label=classes.name(int(r["label"])) if r.get("label") in ("0", "1") else r.get("label", ""),
            prob=as_float(r.get("prob")),
            patient_id=r.get("patient_id", ""),
            method=r.get("method", ""),
            layer=r.get("layer", ""),
            border_share=as_float(r.get("border_share")),
            selection=r.get("selection", ""),
        )
        for r in read_csv(paths.gradcam_index)
    ]
    titles = category_titles(classes.words)
    categories = list(titles) + sorted({i.category for i in images} - set(titles))
    scores = CamScores.read(paths.gradcam_scores) if paths.gradcam_scores.exists() else None
    baseline = CamBaseline.read(paths.gradcam_baseline) if paths.gradcam_baseline.exists() else None
    differences = {} if baseline is None else baseline.differences
    others = {} if baseline is None else baseline.other_differences
    grid = read_csv(paths.gradcam_comparison_csv) if paths.gradcam_comparison_csv.exists() else []
    return GradcamInfo(
        groups=tuple(
            GradcamGroup(c, titles.get(c, c), tuple(i for i in images if i.category == c)) for c in categories
        ),
        total=len(images),
        missing_files=sum(not i.exists for i in images),
        scores=()
        if scores is None
        else tuple(
            CamScoreRow(
                method=method,
                deletion_auc=as_float(numbers.deletion_auc_mean),
                random_deletion_auc=as_float(numbers.random_deletion_auc_mean),
                border_share=as_float(numbers.border_share_mean),
                border_flagged=numbers.border_flagged,
                mask_ratio=as_float(numbers.mask_ratio_mean),
                mask_ratio_median=as_float(numbers.mask_ratio_median),
                films_with_masks=numbers.films_with_masks,
                difference=differences[method].value if method in differences else None,
                difference_low=differences[method].ci_low if method in differences else None,
                difference_high=differences[method].ci_high if method in differences else None,
                other_difference=others[method].value if method in others else None,
                other_difference_low=others[method].ci_low if method in others else None,
                other_difference_high=others[method].ci_high if method in others else None,
            )
            for method, numbers in scores.methods.items()
        ),
        layer="" if scores is None else scores.layer,
        films_scored=None if scores is None else scores.films_scored,
        border_band=None if scores is None else scores.border_band,
        border_warning=None if scores is None else scores.border_warning,
        random_grid=None if baseline is None else baseline.random_grid,
        difference_confidence=None if baseline is None else baseline.confidence,
        difference_films=None if baseline is None else baseline.films,
        other_films=None if baseline is None else baseline.other_films,
        comparison_src=quote(paths.gradcam_comparison.relative_to(paths.root).as_posix())
        if grid and paths.gradcam_comparison.is_file()
        else None,
        comparison_models=tuple(dict.fromkeys(row["variant_label"] for row in grid)),
        comparison_films=len({row["source"] for row in grid}),
        comparison_method=grid[0].get("method") if grid else None,
        comparison_random=bool(grid) and all(row.get("selection") == "random" for row in grid),
    )


def get_subgroups(paths: ResultsPaths) -> Subgroups | None:
    """best/subgroups.json; None for a study evaluated before it was written."""
    return Subgroups.read(paths.subgroups) if paths.subgroups.exists() else None
