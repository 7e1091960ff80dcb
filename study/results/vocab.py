"""The words the study, its config, its files and its report share, each defined once.

A config key is validated against these tuples, the CSV columns are built from them, and the report labels
what it reads with them, so a new metric or method is added in one place.
"""

from __future__ import annotations

SPLITS: tuple[str, ...] = ("train", "val", "test")  # the study's splits (and Kaggle's folders of the same names)
STAGES: tuple[str, ...] = ("data", "search", "evaluate", "export", "ablation", "gradcam", "report")
# The export stage's TFLite variants, in the report's order (files export/model_<name>.tflite).
EXPORT_VARIANTS: tuple[str, ...] = ("fp32", "fp16", "int8-dynamic", "int8")

# The five searched factors, then every searched value (the learning rate is searched but not ablated).
FACTORS: tuple[str, ...] = ("resolution", "augmentation", "dropout", "unfrozen_layers", "class_weighting")
HP_NAMES: tuple[str, ...] = (*FACTORS, "learning_rate")

# The importance forest's out-of-bag R² below which it predicts unseen trials hardly better than their mean:
# the search stage logs, and the report says, that it explains nothing.
MIN_OOB_R2 = 0.1

CLASS_WEIGHTINGS: tuple[str, ...] = ("none", "balanced", "sqrt")
ASPECT_MODES: tuple[str, ...] = ("squash", "pad", "crop")
# What a patient id found in both test/ and train+val means: the same child (its train/val films leave the
# pool, as copies of test films do) or another child, because test/ numbers its patients afresh.
TEST_PATIENT_IDS: tuple[str, ...] = ("shared", "separate")
# data.group_pattern's named presets: Kaggle's chest X-ray file names, or no grouping (each file its own group);
# any other value is a regular expression with one capture group.
GROUP_PRESETS: tuple[str, ...] = ("chest_xray", "none")
# data.color: auto keeps RGB when most files hold colour, one channel when most are gray (X-rays: a few RGB-mode
# files among gray ones, or a coloured marker, do not turn a study into colour).
COLOR_MODES: tuple[str, ...] = ("auto", "gray", "rgb")
THRESHOLD_RULES: tuple[str, ...] = ("youden", "f1", "fixed")
PRECISIONS: tuple[str, ...] = ("auto", "mixed_float16", "float32")
XLA_MODES: tuple[str, ...] = ("auto", "on", "off")

# Test-set metrics at the validation threshold (best/test_metrics.json), and the ablation's subset of them.
TEST_METRICS: tuple[str, ...] = ("auc", "accuracy", "sensitivity", "specificity", "precision", "f1")
METRIC_LABELS: dict[str, str] = {
    "auc": "AUC",
    "accuracy": "Accuracy",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "precision": "Precision",
    "f1": "F1",
}
ABLATION_TEST_METRICS: tuple[str, ...] = ("auc", "accuracy", "sensitivity", "specificity")
ABLATION_METRICS: tuple[str, ...] = ("val_auc", *(f"test_{name}" for name in ABLATION_TEST_METRICS))
ABLATION_METRIC_LABELS: dict[str, str] = {  # column headers of the ablation tables, in the files and the report
    "val_auc": "Val AUC",
    "test_auc": "Test AUC",
    "test_accuracy": "Accuracy",
    "test_sensitivity": "Sensitivity",
    "test_specificity": "Specificity",
}

# Grad-CAM: the methods, and the gallery's categories (a prediction at the threshold against the truth).
CAM_METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "layercam")
CATEGORIES: tuple[str, ...] = ("TP", "FP", "FN", "TN")
POSITIVE_CATEGORIES: tuple[str, ...] = ("TP", "FP")  # the model said the positive class
