"""runs.csv -> summary.csv and the citable tables (Markdown, LaTeX with booktabs, CSV), caption included.

Every number in a table comes from runs.csv (the seed statistics) or the runs' saved test predictions
(the paired patient bootstrap of test AUC), so a reader can recompute any cell. No Keras here:
build_report.py reads these files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from study.ablation.plan import BEST
from study.ablation.stats import paired_auc_difference, paired_delta, seed_interval
from study.config import StudyConfig
from study.results import (
    ABLATION_METRIC_LABELS,
    ABLATION_METRICS,
    ABLATION_SUMMARY_COLUMNS,
    BestTrial,
    DataSummary,
    ResultsFormatError,
    ResultsPaths,
    atomic_write_text,
    read_csv,
    write_csv,
)

DELTA_METRICS = ("test_auc", "test_accuracy", "test_sensitivity", "test_specificity")
FACTOR_LABELS = {
    "resolution": "resolution",
    "augmentation": "augmentation",
    "dropout": "dropout",
    "unfrozen_layers": "unfrozen layers",
    "class_weighting": "class weighting",
}
CI_MARK = "*"
BOOTSTRAP_MARK = "†"


@dataclass(frozen=True)
class TableRow:
    variant: str
    label: str
    seeds: int
    cells: dict[str, str]  # metric -> "mean [low, high]"; "d_" + metric -> "delta [low, high] mark"


def level_label(factor: str, level: str) -> str:
    """How a level reads in a table: -1 unfrozen layers is "all", 0 is "0 (frozen)", 224 is "224 px"."""
    if factor == "unfrozen_layers":
        return {"-1": "all", "0": "0 (frozen)"}.get(level, level)
    if factor == "resolution":
        return f"{level} px"
    if factor == "augmentation" and float(level) == 0:
        return "0 (off)"
    if factor == "dropout":
        return f"{float(level):.2g}"
    return level


def variant_label(row: Mapping[str, str]) -> str:
    if row["variant"] == BEST:
        return "Best configuration"
    return f"{FACTOR_LABELS[row['factor']]} = {level_label(row['factor'], row['level'])}"


def _film_key(path: str) -> str:
    """A film by its folder, class folder and name: the same film after the dataset moved (Colab mounts it
    anew), where a run written before the move recorded the old absolute path."""
    return "/".join(Path(path).parts[-3:])


def _test_predictions(paths: ResultsPaths, run_ids: Sequence[str]) -> tuple[np.ndarray, list[str], list[np.ndarray]]:
    """Labels, patients and each run's P(PNEUMONIA) on the test films, aligned film by film (a run's file order
    is not trusted). Every run scores every test film, so a film missing from one is a broken folder."""
    test = {_film_key(row["path"]): row["patient_id"] for row in read_csv(paths.split_csv) if row["split"] == "test"}
    by_run = []
    for run_id in run_ids:
        rows = {_film_key(row["path"]): row for row in read_csv(paths.ablation_predictions(run_id))
                if row["split"] == "test"}  # fmt: skip
        if set(rows) != set(test):
            raise ResultsFormatError(
                f"{paths.ablation_predictions(run_id)}: its test films are not {paths.split_csv}'s "
                f"({len(set(test) - set(rows))} missing, {len(set(rows) - set(test))} unknown)"
            )
        by_run.append(rows)
    films = sorted(test)
    labels = np.array([int(by_run[0][film]["label"]) for film in films])
    probs = [np.array([float(rows[film]["prob"]) for film in films]) for rows in by_run]
    return labels, [test[film] for film in films], probs


def summarise(runs: Sequence[Mapping[str, str]], paths: ResultsPaths, cfg: StudyConfig) -> list[dict[str, Any]]:
    """summary.csv: per variant and metric the seed interval, the paired delta to the best configuration, the
    paired patient bootstrap of the test-AUC difference, and the mark (rule in the table caption)."""
    confidence = cfg.evaluate.confidence
    ok = [row for row in runs if row["status"] == "ok"]
    by_variant: dict[str, list[Mapping[str, str]]] = {}
    for row in ok:
        by_variant.setdefault(row["variant"], []).append(row)
    best_runs = {row["seed"]: row for row in by_variant.get(BEST, [])}
    rows = []
    for variant, variant_runs in by_variant.items():
        shared = [row for row in variant_runs if row["seed"] in best_runs]
        auc_difference = None
        if variant != BEST and len(shared) >= 2:
            run_ids = [row["run_id"] for row in shared] + [best_runs[row["seed"]]["run_id"] for row in shared]
            labels, patients, probs = _test_predictions(paths, run_ids)
            auc_difference = paired_auc_difference(
                labels, patients, probs[: len(shared)], probs[len(shared) :],
                cfg.evaluate.bootstrap_resamples, confidence, cfg.evaluate.seed,
            )  # fmt: skip
        for metric in ABLATION_METRICS:
            interval = seed_interval([float(row[metric]) for row in variant_runs], confidence, bounds=(0.0, 1.0))
            summary: dict[str, Any] = {
                "variant": variant, "factor": variant_runs[0]["factor"], "level": variant_runs[0]["level"],
                "metric": metric, "n": interval.n, "mean": interval.mean, "sd": interval.sd,
                "ci_low": interval.low, "ci_high": interval.high,
            }  # fmt: skip
            if variant != BEST and len(shared) >= 2:
                delta = paired_delta(
                    [float(row[metric]) for row in shared],
                    [float(best_runs[row["seed"]][metric]) for row in shared],
                    confidence,
                    bounds=(-1.0, 1.0),
                )
                mark = CI_MARK if delta.low > 0 or delta.high < 0 else ""
                summary.update(delta_n=delta.n, delta_mean=delta.mean, delta_ci_low=delta.low,
                               delta_ci_high=delta.high, delta_p=delta.p)  # fmt: skip
                if metric == "test_auc" and auc_difference is not None:
                    summary.update(
                        patient_boot_low=auc_difference.low, patient_boot_high=auc_difference.high,
                        patient_boot_p=auc_difference.p, patient_boot_one_class=auc_difference.one_class,
                    )  # fmt: skip
                    excludes_zero = auc_difference.low > 0 or auc_difference.high < 0
                    mark += BOOTSTRAP_MARK if excludes_zero else ""
                summary["mark"] = mark
            rows.append(summary)
    return rows


def _number(value: float, signed: bool = False) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.3f}" if signed else f"{value:.3f}"


def _delta_cell(item: Mapping[str, Any]) -> str:
    interval = (
        "n/a" if math.isnan(item["delta_ci_low"])
        else f"{_number(item['delta_ci_low'], True)}, {_number(item['delta_ci_high'], True)}"
    )  # fmt: skip
    return f"{_number(item['delta_mean'], True)} [{interval}]{item.get('mark', '')}"


def table_rows(summary: Sequence[Mapping[str, Any]], runs: Sequence[Mapping[str, str]]) -> list[TableRow]:
    """One row per variant with at least 2 finished seeds: 'mean [low, high]' and 'delta [low, high] mark'."""
    rows: dict[str, TableRow] = {}
    first_run = {}
    for run in runs:
        first_run.setdefault(run["variant"], run)
    for item in summary:
        if int(item["n"]) < 2:
            continue
        variant = str(item["variant"])
        row = rows.setdefault(variant, TableRow(variant, variant_label(first_run[variant]), int(item["n"]), {}))
        metric = str(item["metric"])
        row.cells[metric] = f"{_number(item['mean'])} [{_number(item['ci_low'])}, {_number(item['ci_high'])}]"
        if metric in DELTA_METRICS:
            row.cells["d_" + metric] = "reference" if variant == BEST else _delta_cell(item)
    return list(rows.values())


def table_columns() -> list[tuple[str, str]]:
    """(key, header) in table order: each test metric followed by its delta to the best configuration."""
    columns = [("val_auc", ABLATION_METRIC_LABELS["val_auc"])]
    for metric in DELTA_METRICS:
        columns += [(metric, ABLATION_METRIC_LABELS[metric]), ("d_" + metric, f"Δ {ABLATION_METRIC_LABELS[metric]}")]
    return columns


def caption(cfg: StudyConfig, paths: ResultsPaths, runs: Sequence[Mapping[str, str]], seeds: int) -> str:
    """The protocol in one paragraph, so the table can be pasted as is."""
    best = BestTrial.read(paths.best_hyperparameters).values
    summary = DataSummary.read(paths.data_summary)
    counts, classes, words = summary.counts, summary.class_pair, summary.class_pair.words
    grouped = "patient-grouped" if classes.chest_xray else "grouped"
    test_n = {label: counts["test"][label] for label in counts["test"]}
    confidence = round(cfg.evaluate.confidence * 100)
    seed_values = sorted({int(row["seed"]) for row in runs})
    described = (
        ", ".join(f"{FACTOR_LABELS[name]} {level_label(name, str(best[name]))}" for name in FACTOR_LABELS)
        + f", learning rate {float(best['learning_rate']):.2g}"
    )
    rule = {"youden": "Youden's J", "f1": "maximum F1", "fixed": "a fixed 0.5"}[cfg.evaluate.threshold_rule]
    return (
        f"One-factor ablation of the best configuration found by Hyperband ({described}). "
        f"Each row changes one factor; every variant was trained from scratch with {seeds} seeds "
        f"({', '.join(map(str, seed_values))}; the same seeds for every variant) for {runs[0]['epochs']} epochs "
        f"(the best trial's budget), keeping the epoch with the best validation AUC, on one {grouped} "
        f"split ({sum(counts['train'].values())} training and {sum(counts['val'].values())} validation "
        f"{words.items}). Each run's threshold was chosen by {rule} on its own validation predictions, and its test "
        f"set ({sum(test_n.values())} {words.items}: {test_n[classes.positive]} {words.positive}, "
        f"{test_n[classes.negative]} {words.negative}) was scored once. Values: mean "
        f"[{confidence}% CI] over seeds (Student t, cut to the metric's range). Δ: difference to the best "
        f"configuration paired by seed [{confidence}% paired-t CI; n/a when the seeds' differences are identical]; "
        f"{CI_MARK} the CI excludes 0. {BOOTSTRAP_MARK} the test-AUC difference, seed by seed, has a "
        f"{confidence}% interval excluding 0 when the test set's {words.groups} are resampled "
        f"({cfg.evaluate.bootstrap_resamples} bootstrap resamples, both models scored on the same {words.groups}); "
        f"p-values and intervals in summary.csv. No correction for multiple comparisons. Scope: the spread of "
        f"training seeds on one split and one test set, not of new data; every variant keeps the best "
        f"configuration's learning rate, which was tuned jointly with its other factors (a bias against the "
        f"variants)."
    )


def markdown_escape(text: str) -> str:
    """The marks and pipes are literal text in a Markdown table, not emphasis or column breaks."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("|", "\\|").replace("_", "\\_")


def _markdown(rows: Sequence[TableRow], text: str) -> str:
    columns = table_columns()
    lines = [f"**Table.** {markdown_escape(text)}", "",
             "| Variant | Seeds | " + " | ".join(h for _, h in columns) + " |",
             "|---|---:|" + "---|" * len(columns)]  # fmt: skip
    for row in rows:
        cells = [markdown_escape(row.cells.get(k, "")) for k, _ in columns]
        lines.append(f"| {markdown_escape(row.label)} | {row.seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}  # fmt: skip


def latex_escape(text: str) -> str:
    escaped = "".join(LATEX_SPECIALS.get(char, char) for char in text)
    return escaped.replace("Δ", r"$\Delta$").replace(BOOTSTRAP_MARK, r"$^{\dagger}$").replace(CI_MARK, r"$^{*}$")


def _latex_number_cell(text: str) -> str:
    """Minus signs as math minus; marks as superscripts."""
    return latex_escape(text).replace("-", "$-$").replace("+", "$+$")


def _latex(rows: Sequence[TableRow], text: str) -> str:
    columns = table_columns()
    lines = [
        r"\begin{table}[tbp]",
        r"\centering",
        r"\footnotesize",
        r"\setlength{\tabcolsep}{3pt}",
        rf"\caption{{{latex_escape(text)}}}",
        r"\label{tab:ablation}",
        r"\begin{tabular}{lr" + "l" * len(columns) + "}",
        r"\toprule",
        "Variant & Seeds & " + " & ".join(latex_escape(h) for _, h in columns) + r" \\",
        r"\midrule",
    ]
    for row in rows:
        cells = [_latex_number_cell(row.cells.get(k, "")) for k, _ in columns]
        lines.append(f"{latex_escape(row.label)} & {row.seeds} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_tables(paths: ResultsPaths, cfg: StudyConfig) -> None:
    """summary.csv and ablation.md/.tex/.csv from runs.csv (and the runs' saved predictions)."""
    runs = read_csv(paths.ablation_runs)
    summary = summarise(runs, paths, cfg)
    write_csv(paths.ablation_summary, ABLATION_SUMMARY_COLUMNS, summary)
    rows = table_rows(summary, runs)
    if not rows:
        return
    text = caption(cfg, paths, runs, min(row.seeds for row in rows))
    atomic_write_text(paths.ablation_table("md"), _markdown(rows, text))
    atomic_write_text(paths.ablation_table("tex"), _latex(rows, text))
    columns = table_columns()
    write_csv(
        paths.ablation_table("csv"),
        ["variant", "label", "seeds", *(k for k, _ in columns), "caption"],
        [{"variant": r.variant, "label": r.label, "seeds": r.seeds, **r.cells, "caption": text} for r in rows],
    )
