"""ablation/ and the search's observational evidence -> records for the report's Ablations and Search sections.

The table cells are read as the ablation stage formatted them (tables/ablation.csv), so the page shows
exactly what a reader pastes into a paper; the forest plot reads the unrounded deltas of summary.csv.
"""

from __future__ import annotations

from study.report.records import as_float, as_int
from study.report.records_sections import AblationInfo, AblationRow, FactorEffect, ForestPoint, SearchEvidence
from study.results import ABLATION_METRIC_LABELS, AblationPlan, ResultsPaths, read_csv
from study.results.vocab import MIN_OOB_R2

TABLE_FORMATS = ("md", "tex", "csv")
FIXED_COLUMNS = ("variant", "label", "seeds", "caption")


def _header(column: str) -> str:
    labels = ABLATION_METRIC_LABELS
    return f"Δ {labels[column[2:]]}" if column.startswith("d_") else labels.get(column, column)


def get_ablation_info(paths: ResultsPaths) -> AblationInfo | None:
    """None before the ablation stage wrote its plan."""
    if not paths.ablation_plan.exists():
        return None
    plan = AblationPlan.read(paths.ablation_plan)
    runs = read_csv(paths.ablation_runs) if paths.ablation_runs.exists() else []
    table_path = paths.ablation_table("csv")
    table = read_csv(table_path) if table_path.exists() else []
    columns = [c for c in (table[0] if table else {}) if c not in FIXED_COLUMNS]
    labels = {row["variant"]: row["label"] for row in table}
    summary = read_csv(paths.ablation_summary) if paths.ablation_summary.exists() else []
    forest = tuple(
        ForestPoint(labels[row["variant"]], float(row["delta_mean"]), as_float(row["delta_ci_low"]),
                    as_float(row["delta_ci_high"]))
        for row in summary
        if row["metric"] == "test_auc" and row["delta_mean"] and row["variant"] in labels
    )  # fmt: skip
    return AblationInfo(
        headers=("Variant", "Seeds", *(_header(c) for c in columns)),
        rows=tuple(AblationRow(r["variant"], r["label"], int(r["seeds"]), tuple(r[c] for c in columns)) for r in table),
        caption=table[0]["caption"] if table else None,
        seeds=plan.seeds,
        epochs=plan.epochs,
        runs_done=sum(row["status"] == "ok" for row in runs),
        runs_failed=sum(row["status"] != "ok" for row in runs),
        runs_planned=len(plan.runs),
        skipped=plan.skipped,
        tables=tuple(
            (suffix, paths.ablation_table(suffix).relative_to(paths.root).as_posix())
            for suffix in TABLE_FORMATS
            if paths.ablation_table(suffix).exists()
        ),
        forest=forest,
        seed_values=tuple(sorted({int(row["seed"]) for row in runs if row.get("seed")})),
    )


def get_search_evidence(paths: ResultsPaths) -> SearchEvidence | None:
    """None when the search stage has not written its factor effects."""
    if not paths.factor_effects.exists():
        return None
    rows = read_csv(paths.factor_effects)
    effects = tuple(
        FactorEffect(row["factor"], row["level"], int(row["epochs"]), int(row["n"]), as_float(row["mean"]),
                     as_float(row["ci_low"]), as_float(row["ci_high"]), as_int(row.get("bracket")))
        for row in rows
    )  # fmt: skip
    ranked = read_csv(paths.importance) if paths.importance.exists() else []
    ranked.sort(key=lambda row: -float(row["importance"]))
    importance = tuple(
        (row["factor"], float(row["importance"]), as_float(row["importance_sd"]), as_float(row.get("importance_raw")))
        for row in ranked
    )
    return SearchEvidence(
        effects=effects,
        importance=importance,
        importance_trials=as_int(ranked[0]["n_trials"]) if ranked else None,
        importance_method=ranked[0]["method"] if ranked else None,
        oob_r2=as_float(ranked[0].get("oob_r2")) if ranked else None,
        min_oob_r2=MIN_OOB_R2,
        confidence=as_float(rows[0].get("confidence")) if rows else None,
    )
