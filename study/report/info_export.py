"""The export section: export/summary.csv as rows, each variant's file size also as a share of float32's."""

from __future__ import annotations

from study.report.records import as_float, as_int
from study.report.records_sections import ExportInfo, ExportRow
from study.results import BestTrial, ResultsPaths, TestMetrics, read_csv

REFERENCE_VARIANT = "fp32"
NUMBERS = (
    "auc", "auc_low", "auc_high", "auc_diff", "auc_diff_low", "auc_diff_high", "accuracy", "sensitivity",
    "specificity", "agreement", "max_abs_dp", "median_abs_dp", "latency_ms_1", "latency_ms_2",
)  # fmt: skip


def get_export_info(paths: ResultsPaths) -> ExportInfo | None:
    """None when the export stage has not run."""
    if not paths.export_summary.exists():
        return None
    rows = read_csv(paths.export_summary)
    sizes = {row["variant"]: as_float(row["size_bytes"]) for row in rows}
    reference = sizes.get(REFERENCE_VARIANT)

    def share(size: float | None) -> float | None:
        return None if not reference or size is None else size / reference

    test = TestMetrics.read(paths.test_metrics) if paths.test_metrics.exists() else None
    best = BestTrial.read(paths.best_hyperparameters) if paths.best_hyperparameters.exists() else None
    return ExportInfo(
        rows=tuple(
            ExportRow(
                variant=row["variant"],
                status=row["status"],
                error=row["error"],
                file=row["file"],
                size_kb=None if sizes[row["variant"]] is None else sizes[row["variant"]] / 1024,
                size_share=share(sizes[row["variant"]]),
                runtime=row["runtime"],
                **{name: as_float(row[name]) for name in NUMBERS},
            )
            for row in rows
        ),
        keras_auc=None if test is None else test.metrics["auc"].value,
        confidence=None if test is None else test.confidence,
        resolution=None if best is None else as_int(best.values.get("resolution")),
    )
