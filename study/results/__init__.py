"""The results folder: the one contract between run_study.py and build_report.py.

Public face: `ResultsPaths` (every path, named once), the atomic readers and writers (`io`), the CSV column
lists (`schemas`), one record type per JSON file (`records`) and the shared words (`vocab`). Nothing here imports
TensorFlow or Keras: build_report.py reads through this package on machines without them.
"""

from study.errors import ResultsFormatError
from study.results.io import atomic_write_text, read_csv, write_csv, write_json
from study.results.json_record import JsonRecord
from study.results.paths import ResultsPaths
from study.results.records import (
    FORMAT_VERSION,
    AblationPlan,
    BestTrial,
    Calibration,
    CamBaseline,
    CamScores,
    ConfusionCounts,
    DataSummary,
    Estimate,
    HpValue,
    Manifest,
    MethodScores,
    PlanBracket,
    PlanRound,
    SearchPlan,
    TestMetrics,
    Threshold,
    read_manifest,
)
from study.results.schemas import (
    ABLATION_HP_COLUMNS,
    ABLATION_RUN_COLUMNS,
    ABLATION_SUMMARY_COLUMNS,
    COMPARISON_COLUMNS,
    FACTOR_EFFECT_COLUMNS,
    GRADCAM_COLUMNS,
    HISTORY_COLUMNS,
    HP_PREFIX,
    IMPORTANCE_COLUMNS,
    PREDICTION_COLUMNS,
    SKIPPED_COLUMNS,
    SPLIT_COLUMNS,
    TRIAL_BASE_COLUMNS,
    TRIAL_METRIC_COLUMNS,
    trial_columns,
)
from study.results.vocab import ABLATION_METRIC_LABELS, ABLATION_METRICS, STAGES

__all__ = [
    "ABLATION_HP_COLUMNS",
    "ABLATION_METRICS",
    "ABLATION_METRIC_LABELS",
    "ABLATION_RUN_COLUMNS",
    "ABLATION_SUMMARY_COLUMNS",
    "COMPARISON_COLUMNS",
    "FACTOR_EFFECT_COLUMNS",
    "FORMAT_VERSION",
    "GRADCAM_COLUMNS",
    "HISTORY_COLUMNS",
    "HP_PREFIX",
    "IMPORTANCE_COLUMNS",
    "PREDICTION_COLUMNS",
    "SKIPPED_COLUMNS",
    "SPLIT_COLUMNS",
    "STAGES",
    "TRIAL_BASE_COLUMNS",
    "TRIAL_METRIC_COLUMNS",
    "AblationPlan",
    "BestTrial",
    "Calibration",
    "CamBaseline",
    "CamScores",
    "ConfusionCounts",
    "DataSummary",
    "Estimate",
    "HpValue",
    "JsonRecord",
    "Manifest",
    "MethodScores",
    "PlanBracket",
    "PlanRound",
    "ResultsFormatError",
    "ResultsPaths",
    "SearchPlan",
    "TestMetrics",
    "Threshold",
    "atomic_write_text",
    "read_csv",
    "read_manifest",
    "trial_columns",
    "write_csv",
    "write_json",
]
