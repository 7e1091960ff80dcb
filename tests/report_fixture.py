"""A fake results folder written through study.results' records and writers, with values the report tests know.

`write_fixture` writes a complete study (every file the report reads); `partial=True` writes a study
killed during the search (two trials, no best/, no gradcam/). `tag` is appended to file names, config
strings, hyperparameter values and ids, so a test can check that none of them reaches the HTML unescaped.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from study.results import (
    ABLATION_RUN_COLUMNS,
    ABLATION_SUMMARY_COLUMNS,
    COMPARISON_COLUMNS,
    EXPORT_COLUMNS,
    FACTOR_EFFECT_COLUMNS,
    GRADCAM_COLUMNS,
    HISTORY_COLUMNS,
    IMPORTANCE_COLUMNS,
    PREDICTION_COLUMNS,
    SKIPPED_COLUMNS,
    SPLIT_COLUMNS,
    AblationPlan,
    BestTrial,
    CamBaseline,
    CamScores,
    ConfusionCounts,
    DataSummary,
    Estimate,
    Manifest,
    MethodScores,
    PlanBracket,
    PlanRound,
    ResultsPaths,
    SearchPlan,
    Subgroups,
    SubgroupSensitivity,
    TestMetrics,
    Threshold,
    atomic_write_text,
    trial_columns,
    write_csv,
    write_json,
)

COUNTS = {
    "train": {"NORMAL": 1000, "PNEUMONIA": 2900},
    "val": {"NORMAL": 80, "PNEUMONIA": 260},
    "test": {"NORMAL": 234, "PNEUMONIA": 390},
}
PATIENTS = {"train": 2100, "val": 230, "test": 400}
SKIPPED = (
    ("train/NORMAL/broken.jpeg", "cannot decode"),
    ("train/PNEUMONIA/empty.jpeg", "zero bytes"),
    ("test/NORMAL/tiny.jpeg", "smaller than 32 px"),
)
# (status, val_auc) in the order trials finished; the best completed one is trial 0003.
TRIALS = (
    ("COMPLETED", 0.71),
    ("COMPLETED", 0.83),
    ("COMPLETED", 0.79),
    ("COMPLETED", 0.91),
    ("COMPLETED", 0.88),
    ("FAILED", None),
)
BEST_TRIAL_ID = "0003"
METRICS = {
    "auc": (0.953, 0.931, 0.972),
    "accuracy": (0.912, 0.889, 0.933),
    "sensitivity": (0.941, 0.917, 0.963),
    "specificity": (0.863, 0.818, 0.905),
    "precision": (0.920, 0.893, 0.944),
    "f1": (0.930, 0.911, 0.948),
}
CONFUSION = {"tn": 202, "fp": 32, "fn": 23, "tp": 367}
THRESHOLD = 0.412
GRADCAM_CATEGORIES = ("TP", "FP", "FN", "TN")
# variant -> (table label, test AUC cell, delta cell, unrounded delta and its CI)
ABLATION = {
    "best": ("Best configuration", "0.951 [0.932, 0.970]", "reference", None),
    "unfrozen_layers=0": ("unfrozen layers = 0 (frozen)", "0.902 [0.880, 0.924]", "-0.049 [-0.061, -0.037]*†",
                          (-0.049, -0.061, -0.037)),
    "dropout=0.5": ("dropout = 0.5", "0.949 [0.921, 0.977]", "-0.002 [n/a]", (-0.002, None, None)),
}  # fmt: skip
ABLATION_SKIPPED = "resolution: left out by the time budget (priority 5 in ablation.factors)"
DONE = ("data", "search", "evaluate", "export", "ablation", "gradcam")


def fixture_predictions(n: int = 40) -> tuple[list[int], list[float]]:
    """Deterministic test labels and probabilities, overlapping enough that the AUC is not 1."""
    rng = np.random.default_rng(0)
    labels = [i % 3 != 0 for i in range(n)]
    probs = [float(np.clip(0.3 * y + 0.7 * rng.random(), 0.0, 1.0)) for y in labels]
    return [int(y) for y in labels], probs


def write_fixture(root: Path, *, partial: bool = False, tag: str = "", config_name: str = "overnight") -> ResultsPaths:
    """Write the fake study into `root` and return its paths."""
    paths = ResultsPaths(root)
    manifest = replace(
        Manifest.new(
            f"python run_study.py --data /data{tag}", {"python": "3.11.9", "keras": "3.15.1"}, "0123456789abcdef"
        ),
        device=f"NVIDIA T4{tag}",
        status="running" if partial else "complete",
        config_name=config_name,
        data_source="synthetic demo" if config_name == "demo" else "/data/chest_xray",
        stages_done=("data",) if partial else DONE,
        stage_seconds={"data": 41.5}
        if partial
        else {"data": 41.5, "search": 9000.0, "evaluate": 75.25, "gradcam": 30.0},
        started="2025-01-01T22:00:00Z",
        finished=None if partial else "2025-01-02T05:00:00Z",
    )
    manifest.write(paths.manifest)
    write_json(
        paths.config,
        {
            "name": config_name,
            "data": {"root": f"/data/chest_xray{tag}", "image_size": 224},
            "search": {"max_epochs": 9, "factor": 3},
        },
    )
    _write_data(paths, tag)
    _write_search(paths, tag, TRIALS[:2] if partial else TRIALS)
    if not partial:
        _write_best(paths, tag)
        _write_export(paths)
        _write_ablation(paths, tag)
        _write_gradcam(paths, tag)
    return paths


def _write_data(paths: ResultsPaths, tag: str) -> None:
    rows = [
        {
            "path": f"{split}/{label}/img{i}{tag}.jpeg",
            "label": label,
            "patient_id": f"p{i}{tag}",
            "source_split": split,
            "split": split,
            "sha1": f"{i:040x}",
        }
        for split in COUNTS
        for label in COUNTS[split]
        for i in range(2)
    ]
    write_csv(paths.split_csv, SPLIT_COLUMNS, rows)
    write_csv(paths.skipped_csv, SKIPPED_COLUMNS, [{"path": p + tag, "reason": r + tag} for p, r in SKIPPED])
    DataSummary(
        counts=COUNTS,
        patients=PATIENTS,
        source_counts=COUNTS,
        data_hash="abc",
        skipped=len(SKIPPED),
        skipped_by_reason={"cannot decode": 1, "zero bytes": 1, "smaller than 32 px": 1},
        duplicates_removed=4,
        test_leakage_duplicates=2,
        files_without_patient_id=0,
        val_fraction=0.08,
        val_share=0.08,
        seed=42,
        data_root=f"/data{tag}",
    ).write(paths.data_summary)


def _write_search(paths: ResultsPaths, tag: str, trials: tuple[tuple[str, float | None], ...]) -> None:
    rounds = (PlanRound(0, 9, 1, 0), PlanRound(1, 3, 3, 1), PlanRound(2, 1, 9, 3))
    SearchPlan(9, 3, 1, 13, 60, (PlanBracket(0, 2, rounds),)).write(paths.plan)
    rows = []
    for i, (status, auc) in enumerate(trials):
        trial_id = f"{i:04d}"
        rows.append(
            {
                "trial_id": trial_id,
                "status": status,
                "bracket": 2,
                "round": 0,
                "parent": "",
                "epochs": 3,
                "initial_epoch": 0,
                "best_epoch": 2,
                "seconds": 60.0 + i,
                "error": "" if auc is not None else f"OOM{tag}",
                "hp_alpha": 0.35 if i % 2 else 1.0,
                "hp_learning_rate": 10.0 ** -(3 + i % 2),
                "hp_optimizer": f"adam{tag}",
                "val_auc": auc,
                "val_loss": None if auc is None else 1 - auc,
                "val_accuracy": None if auc is None else auc - 0.05,
                "auc": auc,
                "loss": None,
            }
        )
        if auc is not None:
            history = [
                {
                    "epoch": e,
                    "loss": 0.6,
                    "auc": auc,
                    "accuracy": 0.8,
                    "val_loss": 0.5,
                    "val_auc": auc,
                    "val_accuracy": 0.8,
                }
                for e in range(1, 4)
            ]
            write_csv(paths.history_csv(trial_id), HISTORY_COLUMNS, history)
    write_csv(paths.trials_csv, trial_columns(["alpha", "learning_rate", "optimizer"]), rows)
    write_csv(
        paths.factor_effects,
        FACTOR_EFFECT_COLUMNS,
        [
            {"factor": "augmentation", "level": f"0.0{tag}", "bracket": 0, "epochs": 3, "n": 4, "mean": 0.8,
             "ci_low": 0.7, "ci_high": 0.9, "confidence": 0.9},
            {"factor": "augmentation", "level": "1.0", "bracket": 0, "epochs": 3, "n": 1, "mean": 0.6,
             "ci_low": None, "ci_high": None, "confidence": 0.9},
        ],
    )  # fmt: skip
    write_csv(
        paths.importance,
        IMPORTANCE_COLUMNS,
        [{"factor": name, "importance": share, "importance_sd": 0.05, "n_trials": 12, "method": f"forest{tag}",
          "importance_raw": share / 4, "oob_r2": 0.42}
         for name, share in (("epochs", 0.25), ("augmentation", 0.75))],
    )  # fmt: skip


def _write_ablation(paths: ResultsPaths, tag: str) -> None:
    """Two variants beside the best, 3 seeds, one factor left out by the budget."""
    runs = [
        {"run_id": f"{variant}_seed{seed}", "variant": variant, "seed": seed, "status": "ok", "epochs": 9}
        for variant in ABLATION
        for seed in (1, 2, 3)
    ]
    write_csv(paths.ablation_runs, ABLATION_RUN_COLUMNS, runs)
    AblationPlan(
        seeds=3, factors=("unfrozen_layers", "dropout"), epochs=9, variants=tuple(ABLATION),
        runs=tuple(run["run_id"] for run in runs), skipped=(ABLATION_SKIPPED + tag,), refused=None,
        estimate_seconds=600.0,
    ).write(paths.ablation_plan)  # fmt: skip
    summary = [
        {"variant": variant, "metric": "test_auc", "n": 3, "delta_mean": delta[0], "delta_ci_low": delta[1],
         "delta_ci_high": delta[2]} if delta else {"variant": variant, "metric": "test_auc", "n": 3, "mean": 0.934,
         "ci_low": 0.901, "ci_high": 0.967}
        for variant, (_label, _cell, _delta_cell, delta) in ABLATION.items()
    ]  # fmt: skip
    write_csv(paths.ablation_summary, ABLATION_SUMMARY_COLUMNS, summary)
    write_csv(
        paths.ablation_table("csv"),
        ["variant", "label", "seeds", "test_auc", "d_test_auc", "caption"],
        [{"variant": variant, "label": label + tag, "seeds": 3, "test_auc": cell, "d_test_auc": delta_cell,
          "caption": f"Protocol caption{tag}."} for variant, (label, cell, delta_cell, _) in ABLATION.items()],
    )  # fmt: skip
    for suffix in ("md", "tex"):
        atomic_write_text(paths.ablation_table(suffix), f"table{tag}\n")


def _write_best(paths: ResultsPaths, tag: str) -> None:
    BestTrial(BEST_TRIAL_ID, {"alpha": 0.35, "learning_rate": 0.0001, "optimizer": f"adam{tag}"}, 0.91).write(
        paths.best_hyperparameters
    )
    Threshold("youden", THRESHOLD, 0.95, 0.87, 340).write(paths.threshold)
    TestMetrics(
        n=624,
        n_positive=390,
        n_negative=234,
        n_patients=400,
        threshold=THRESHOLD,
        confidence=0.95,
        bootstrap_resamples=2000,
        ci_method="percentile bootstrap over patients",
        metrics={k: Estimate(v, lo, hi) for k, (v, lo, hi) in METRICS.items()},
        confusion_matrix=ConfusionCounts(**CONFUSION),
    ).write(paths.test_metrics)
    labels, probs = fixture_predictions()
    rows = [
        {"split": "test", "path": f"test/img{i}{tag}.jpeg", "label": y, "prob": p}
        for i, (y, p) in enumerate(zip(labels, probs, strict=True))
    ]
    rows += [{"split": "val", "path": f"val/img{i}.jpeg", "label": i % 2, "prob": 0.5} for i in range(6)]
    write_csv(paths.predictions_csv, PREDICTION_COLUMNS, rows)


def _write_export(paths: ResultsPaths) -> None:
    """Three files scored, one refused by the converter; sizes in bytes, fp32's first."""
    scored = {"status": "ok", "auc": 0.95, "auc_low": 0.93, "auc_high": 0.97, "auc_diff": -0.0012,
              "auc_diff_low": -0.004, "auc_diff_high": 0.0011, "accuracy": 0.9, "sensitivity": 0.93,
              "specificity": 0.85, "agreement": 0.984, "max_abs_dp": 0.21, "median_abs_dp": 0.004,
              "latency_ms_1": 12.5, "latency_ms_2": 7.25, "runtime": "ai-edge-litert"}  # fmt: skip
    rows = [
        {"variant": "fp32", "file": "model_fp32.tflite", "size_bytes": 8 * 1024 * 1024, **scored},
        {"variant": "fp16", "file": "model_fp16.tflite", "size_bytes": 4 * 1024 * 1024, **scored},
        {"variant": "int8-dynamic", "file": "model_int8-dynamic.tflite", "status": "failed",
         "error": "ConverterError: op not supported"},
        {"variant": "int8", "file": "model_int8.tflite", "size_bytes": 2 * 1024 * 1024, **scored},
    ]  # fmt: skip
    write_csv(paths.export_summary, EXPORT_COLUMNS, rows)
    groups = {"bacteria": SubgroupSensitivity(242, 150, Estimate(0.96, 0.93, 0.98)),
              "virus": SubgroupSensitivity(148, 90, Estimate(0.88, 0.82, 0.93))}  # fmt: skip
    Subgroups(0.95, 2000, groups).write(paths.subgroups)


def _write_gradcam(paths: ResultsPaths, tag: str) -> None:
    rows = []
    for c, category in enumerate(GRADCAM_CATEGORIES):
        for i in range(2):
            file = f"{category.lower()}_{i}{tag}.png"
            image = paths.gradcam_dir / file
            image.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16), (60 * c, 100, 200 - 40 * i)).save(image, format="PNG")
            rows.append(
                {
                    "file": file,
                    "source": f"test/img{i}{tag}.jpeg",
                    "category": category,
                    "label": int(category in ("TP", "FN")),
                    "prob": 0.1 + 0.2 * c + 0.05 * i,
                    "patient_id": f"patient{c}{i}{tag}",
                    "method": "gradcam",
                    "layer": "out_relu",
                    "border_share": 0.125 + 0.5 * i,
                }
            )
    write_csv(paths.gradcam_index, GRADCAM_COLUMNS, rows)
    Image.new("RGB", (32, 16), (10, 20, 30)).save(paths.gradcam_comparison, format="PNG")
    write_csv(
        paths.gradcam_comparison_csv,
        COMPARISON_COLUMNS,
        [{"source": f"test/img{i}.jpeg", "variant": variant, "variant_label": label + tag, "prob": 0.9,
          "selection": "random"}
         for variant, (label, *_rest) in ABLATION.items() for i in range(2)],
    )  # fmt: skip
    scores = MethodScores(
        deletion_auc_mean=0.213, random_deletion_auc_mean=0.402, border_share_mean=0.311, border_flagged=3,
        mask_ratio_mean=2.46, mask_ratio_median=2.2, films_with_masks=90,
    )  # fmt: skip
    CamScores(
        layer="out_relu", films_scored=150, explained_class="the predicted class at the validation threshold",
        border_band=0.08, border_warning=0.5,
        methods={"gradcam": scores, "gradcam++": replace(scores, deletion_auc_mean=0.25)},
    ).write(paths.gradcam_scores)  # fmt: skip
    differences = {"gradcam": Estimate(-0.189, -0.231, -0.147), "gradcam++": Estimate(-0.152, -0.2, 0.01)}
    others = {"gradcam": Estimate(0.104, 0.021, 0.188), "gradcam++": Estimate(-0.3, -0.4, -0.2)}
    CamBaseline(
        random_grid=7, confidence=0.95, resamples=500, differences=differences,
        films="the 90 films the model called pneumonia", other_films="the 60 films the model called normal",
        other_differences=others,
    ).write(paths.gradcam_baseline)  # fmt: skip
