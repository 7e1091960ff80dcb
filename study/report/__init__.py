"""The static HTML report: results folder -> plain records (info) -> figures (plots) -> HTML (render).

Nothing here imports TensorFlow, Keras or keras_tuner, so a report can be built on any machine that
has the results folder.
"""

from study.report.info import ReportInputError, load_report_data
from study.report.render import write_report

__all__ = ["ReportInputError", "load_report_data", "write_report"]
