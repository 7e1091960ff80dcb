"""Build RESULTS_DIR/report.html from a results folder, at any moment of a study.

    python build_report.py [RESULTS_DIR]      (default: results)

Prints the report's path and exits 0; exits 2 with one line on stderr when the folder is missing or its
manifest cannot be read. Never imports TensorFlow, Keras or keras_tuner, so it runs on any machine.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from study.report import ReportInputError, write_report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write RESULTS_DIR/report.html from a study's results folder.")
    parser.add_argument(
        "results_dir", nargs="?", default="results", type=Path, help="results folder (default: results)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = write_report(args.results_dir)
    except ReportInputError as exc:
        print(f"build_report.py: {exc}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
