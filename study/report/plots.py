"""Records -> PNG figures in report_files/, linked from report.html by relative paths.

Figures are drawn on matplotlib's object API with an explicit Agg canvas: no pyplot, so no global
figure state and no GUI backend, and importing this module never changes the backend of a notebook
that also builds the report. Tests check the records in info.py, not these pixels.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from matplotlib import cm, colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from study.report.records import CalibrationInfo, LearningCurve, PrInfo, ReportData, RocInfo, TrialsInfo
from study.report.records_sections import AblationInfo
from study.results import HpValue
from study.results.classes import Wording

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


def plot_forest(ablation: AblationInfo, path: Path, confidence: float) -> Path | None:
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
    axes.set_xlabel(f"Δ test AUC vs the best configuration (paired by seed, {100 * confidence:.0f}% CI)")
    axes.grid(axis="x", alpha=0.3)
    return _save(figure, path)


def plot_pr(pr: PrInfo, path: Path) -> Path:
    """Test precision-recall with the prevalence line (a model with no skill) and the operating point."""
    figure = _new_figure(4.2, 4.0)
    axes = figure.add_subplot()
    axes.axhline(pr.prevalence, linestyle="--", color=MUTED, linewidth=1, label=f"prevalence ({pr.prevalence:.2f})")
    axes.step((0.0, *pr.recall), (pr.precision[0], *pr.precision), where="post", color=ACCENT, linewidth=2,
              label=f"test PR (AP {pr.average_precision:.3f})")  # fmt: skip
    if pr.operating_point is not None:
        axes.scatter([pr.operating_point[0]], [pr.operating_point[1]], color="#c0392b", zorder=3,
                     label="threshold (chosen on val)")  # fmt: skip
    axes.set_xlabel("recall (sensitivity)")
    axes.set_ylabel("precision (positive predictive value)")
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(0.0, 1.01)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", frameon=False, fontsize="small")
    return _save(figure, path)


def plot_calibration(calibration: CalibrationInfo, words: Wording, path: Path) -> Path:
    """Reliability diagram: observed share of the positive class against the mean predicted probability per
    bin, each bin's count as the marker's area."""
    figure = _new_figure(4.2, 4.0)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color=MUTED, linewidth=1, label="perfect calibration")
    predicted, observed, counts = zip(*calibration.bins, strict=True)
    axes.plot(predicted, observed, color=ACCENT, linewidth=1.5)
    axes.scatter(predicted, observed, s=[12 + 200 * c / calibration.n for c in counts], color=ACCENT, zorder=3,
                 label=f"test {words.items} (ECE {calibration.ece:.3f})")  # fmt: skip
    axes.set_xlabel(f"predicted P({words.positive}), {calibration.bin_count} equal-width bins")
    axes.set_ylabel(f"observed share of {words.positive}")
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.set_aspect("equal")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", frameon=False, fontsize="small")
    return _save(figure, path)


def plot_learning_curves(curve: LearningCurve, path: Path) -> Path:
    """Loss and AUC per epoch, training and validation, with a mark where a continuation took over."""
    figure = _new_figure(7.6, 3.0)
    for position, (metric, label) in enumerate((("loss", "binary cross-entropy"), ("auc", "AUC"))):
        axes = figure.add_subplot(1, 2, position + 1)
        for name, colour, text in ((metric, MUTED, "training"), (f"val_{metric}", ACCENT, "validation")):
            values = getattr(curve, name)
            points = [(e, v) for e, v in zip(curve.epochs, values, strict=True) if v is not None]
            axes.plot([e for e, _ in points], [v for _, v in points], marker="o", markersize=3, color=colour,
                      label=text)  # fmt: skip
        for trial_id, epoch in curve.continued_at:
            axes.axvline(epoch + 0.5, color="#c0392b", linewidth=0.8, linestyle=":")
            axes.annotate(f"trial {trial_id}", (epoch + 0.5, 1.0), xycoords=("data", "axes fraction"),
                          fontsize="x-small", color="#c0392b", ha="left", va="top")  # fmt: skip
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend(frameon=False, fontsize="small")
    return _save(figure, path)


def _axis_values(values: list[HpValue], log_scale: bool) -> tuple[list[float], tuple[str, str]]:
    """One parallel-coordinates axis in [0, 1]: numbers scaled (on a log scale for the learning rate), text
    levels spread evenly; returns the positions and the tick labels (lowest, highest)."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raw = [float(v) for v in values]  # type: ignore[arg-type]
        numbers = [math.log10(n) for n in raw] if log_scale and min(raw) > 0 else raw
        low, high = min(numbers), max(numbers)
        span = (high - low) or 1.0
        return [(n - low) / span for n in numbers], (f"{min(raw):.3g}", f"{max(raw):.3g}")
    levels = sorted({str(v) for v in values})
    step = 1.0 / max(len(levels) - 1, 1)
    return [levels.index(str(v)) * step for v in values], (levels[0], levels[-1])


def plot_parallel(trials: TrialsInfo, path: Path) -> Path | None:
    """One line per completed trial across the hyperparameter axes and its epoch budget, coloured by its
    validation AUC; the best trial drawn last, thicker."""
    scored = [row for row in trials.rows if row.val_auc is not None]
    if len(scored) < 2:
        return None
    names = [*trials.hp_names, "epochs"]
    axes_values = [
        _axis_values([row.hp[i] for row in scored], log_scale=name == "learning_rate")
        for i, name in enumerate(trials.hp_names)
    ]
    axes_values.append(_axis_values([row.epochs or 0 for row in scored], log_scale=False))
    figure = _new_figure(7.6, 3.4)
    axes = figure.add_subplot()
    aucs = [row.val_auc or 0.0 for row in scored]
    low, high = min(aucs), max(aucs)
    cmap = colormaps["viridis"]
    for index in sorted(range(len(scored)), key=lambda i: aucs[i]):
        ys = [positions[index] for positions, _ in axes_values]
        best = scored[index].trial_id == trials.best_trial_id
        axes.plot(range(len(names)), ys, color=cmap((aucs[index] - low) / ((high - low) or 1.0)),
                  linewidth=2.5 if best else 1.0, alpha=1.0 if best else 0.7)  # fmt: skip
    for position, (_, (bottom, top)) in enumerate(axes_values):
        axes.axvline(position, color="#444444", linewidth=0.8)
        axes.annotate(bottom, (position, -0.04), ha="center", va="top", fontsize="x-small")
        axes.annotate(top, (position, 1.04), ha="center", va="bottom", fontsize="x-small")
    axes.set_xticks(range(len(names)), names, fontsize="small")
    axes.set_yticks([])
    axes.set_ylim(-0.15, 1.15)
    mappable = cm.ScalarMappable(cmap=cmap)
    mappable.set_clim(low, high)
    figure.colorbar(mappable, ax=axes, label="validation AUC")
    return _save(figure, path)


def _confidence(data: ReportData) -> float:
    """The level the study's intervals were computed at (evaluate.confidence), read from its test metrics."""
    return data.test.confidence if data.test is not None and data.test.confidence is not None else 0.95


def write_figures(data: ReportData, out_dir: Path, base: Path) -> dict[str, str]:
    """Draw every figure the data allows; returns name -> path relative to `base` (the report's folder)."""
    drawn: dict[str, Path | None] = {
        "best_so_far": None if data.trials is None else plot_best_so_far(data.trials, out_dir / "best_so_far.png"),
        "roc": None if data.roc is None else plot_roc(data.roc, out_dir / "roc.png"),
        "pr": None if data.pr is None else plot_pr(data.pr, out_dir / "pr.png"),
        "calibration": None
        if data.calibration is None
        else plot_calibration(data.calibration, data.words, out_dir / "calibration.png"),
        "learning": None
        if data.learning is None
        else plot_learning_curves(data.learning, out_dir / "learning_curves.png"),
        "parallel": None if data.trials is None else plot_parallel(data.trials, out_dir / "parallel.png"),
        "forest": None
        if data.ablation is None
        else plot_forest(data.ablation, out_dir / "ablation_forest.png", _confidence(data)),
    }
    figures = {name: path.relative_to(base).as_posix() for name, path in drawn.items() if path is not None}
    logger.info("figures written: %s", ", ".join(figures) or "none")
    return figures
