"""ReportData -> report.html: jinja2 fills the templates, nothing else decides anything here.

Autoescaping is on for every template, so file names, config strings and hyperparameter values from
the results folder are shown as text, never run as markup. Rounding lives in the filters below
(files keep unrounded floats). Missing values show as an en dash.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from study.report.info import load_report_data
from study.report.plots import write_figures
from study.report.records import Metric, ReportData
from study.results import STAGES, HpValue, ResultsPaths, atomic_write_text

logger = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
DASH = "\u2013"


def fmt_dash(value: object) -> str:
    """Counts and ids as they are; a dash where the file had nothing."""
    return DASH if value is None or value == "" else str(value)


def fmt_num(value: float | None, digits: int = 3) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def fmt_signed(value: float | None, digits: int = 4) -> str:
    """`+0.0012`: a difference with its sign; a dash when it is missing (NaN is read as missing)."""
    return DASH if value is None else f"{value:+.{digits}f}"


def fmt_general(value: float | None) -> str:
    """Two significant digits, so 2.5e-06 stays readable beside 0.21; a dash when missing."""
    return DASH if value is None else f"{value:.2g}"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{100 * value:.{digits}f}%"


def fmt_ci(metric: Metric, digits: int = 3) -> str:
    """`0.953 [0.931, 0.972]`, the form a paper quotes; the bare value when the CI is missing."""
    if metric.ci_low is None or metric.ci_high is None:
        return fmt_num(metric.value, digits)
    return f"{fmt_num(metric.value, digits)} [{fmt_num(metric.ci_low, digits)}, {fmt_num(metric.ci_high, digits)}]"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return DASH
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_hp(value: HpValue) -> str:
    """Hyperparameter values as typed in a config: 0.0001 not 1.0000000000000002e-04."""
    if value is None:
        return DASH
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def make_environment(templates_dir: Path = TEMPLATES_DIR) -> Environment:
    """A jinja2 environment that escapes everything and fails loudly on a misspelt template variable."""
    environment = Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(
        dash=fmt_dash, num=fmt_num, pct=fmt_pct, ci=fmt_ci, seconds=fmt_seconds, hp=fmt_hp, signed=fmt_signed,
        general=fmt_general,
    )  # fmt: skip
    return environment


def render_html(data: ReportData, figures: Mapping[str, str]) -> str:
    """The report page; `figures` maps a figure name to its src relative to report.html."""
    template = make_environment().get_template("report.html.j2")
    return template.render(r=data, w=data.words, figures=dict(figures), stages=STAGES)


def render_model_card(data: ReportData) -> str:
    """best/model_card.md: Markdown, so nothing is HTML-escaped."""
    environment = make_environment()
    environment.autoescape = False
    return environment.get_template("model_card.md.j2").render(r=data, w=data.words)


def write_report(root: Path) -> Path:
    """Build RESULTS/report.html (+ report_files/) from whatever the folder holds, and best/model_card.md once
    the test set is scored; returns the report path.

    Raises ReportInputError (from info.py) when the folder is missing or its manifest cannot be read.
    """
    data = load_report_data(root)
    paths = ResultsPaths(root)
    figures = write_figures(data, paths.report_files, base=root)
    if data.test is not None:
        atomic_write_text(paths.model_card, render_model_card(data))
    atomic_write_text(paths.report, render_html(data, figures))
    logger.info("report written to %s", paths.report)
    return paths.report
