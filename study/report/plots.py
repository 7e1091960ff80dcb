"""Records -> PNG figures in report_files/, linked from report.html by relative paths.

Figures are drawn on matplotlib's object API with an explicit Agg canvas: no pyplot, so no global
figure state and no GUI backend, and importing this module never changes the backend of a notebook
that also builds the report. Tests check the records in info.py, not these pixels.
"""

from __future__ import annotations

import logging
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from study.report.records import AblationInfo, ReportData, RocInfo, TrialsInfo

logger = logging.getLogger(__name__)

DPI = 120
ACCENT = "#1f5fa8"
MUTED = "#9aa4b2"


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def plot_best_so_far(trials: TrialsInfo, path: Path) -> Path | None:
    """Each completed trial's val AUC in the order trials finished, with the running best as a step line.

    Returns None when no trial has a score yet: an empty axis would only look like a bug.
    """
    scored = [(i + 1, v) for i, v in enumerate(trials.val_auc_in_order) if v is not None]
    if not scored:
        return None
    figure = _new_figure(6.4, 3.0)
    axes = figure.add_subplot()
    axes.scatter([x for x, _ in scored], [v for _, v in scored], s=14, color=MUTED, label="trial val AUC", zorder=2)
    steps = [(i + 1, v) for i, v in enumerate(trials.best_so_far) if v is not None]
    axes.step([x for x, _ in steps], [v for _, v in steps], where="post", color=ACCENT, label="best so far", zorder=3)
    axes.set_xlabel("trial, in the order it finished")
    axes.set_ylabel("validation AUC")
    axes.set_xlim(0.5, max(len(trials.val_auc_in_order), 1) + 0.5)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", frameon=False)
    return _save(figure, path)


def plot_roc(roc: RocInfo, path: Path) -> Path:
    """Test ROC with the chance diagonal and the operating point of the validation-chosen threshold."""
    figure = _new_figure(4.2, 4.0)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color=MUTED, linewidth=1, label="chance")
    axes.plot(roc.fpr, roc.tpr, color=ACCENT, linewidth=2, label=f"test ROC (AUC {roc.auc:.3f})")
    if roc.operating_point is not None:
        fpr, tpr = roc.operating_point
        axes.scatter([fpr], [tpr], color="#c0392b", zorder=3, label="threshold (chosen on val)")
    axes.set_xlabel("1 - specificity (false positive rate)")
    axes.set_ylabel("sensitivity (true positive rate)")
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.set_aspect("equal")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", frameon=False, fontsize="small")
    return _save(figure, path)


def plot_forest(ablation: AblationInfo, path: Path) -> Path | None:
    """Each variant's paired test-AUC difference to the best configuration with its CI, zero marked.
    A variant without an interval (identical differences across seeds) is drawn as a point alone."""
    if not ablation.forest:
        return None
    points = list(reversed(ablation.forest))  # the table's order, top to bottom
    figure = _new_figure(6.4, 0.9 + 0.4 * len(points))
    axes = figure.add_subplot()
    axes.axvline(0.0, color=MUTED, linewidth=1, linestyle="--")
    for row, point in enumerate(points):
        if point.low is not None and point.high is not None:
            axes.plot([point.low, point.high], [row, row], color=ACCENT, linewidth=2)
        axes.scatter([point.delta], [row], color=ACCENT, zorder=3)
    axes.set_yticks(range(len(points)), [point.label for point in points])
    axes.set_xlabel("Δ test AUC vs the best configuration (paired by seed, 95% CI)")
    axes.grid(axis="x", alpha=0.3)
    return _save(figure, path)


def write_figures(data: ReportData, out_dir: Path, base: Path) -> dict[str, str]:
    """Draw every figure the data allows; returns name -> path relative to `base` (the report's folder)."""
    drawn: dict[str, Path | None] = {
        "best_so_far": None if data.trials is None else plot_best_so_far(data.trials, out_dir / "best_so_far.png"),
        "roc": None if data.roc is None else plot_roc(data.roc, out_dir / "roc.png"),
        "forest": None if data.ablation is None else plot_forest(data.ablation, out_dir / "ablation_forest.png"),
    }
    figures = {name: path.relative_to(base).as_posix() for name, path in drawn.items() if path is not None}
    logger.info("figures written: %s", ", ".join(figures) or "none")
    return figures
