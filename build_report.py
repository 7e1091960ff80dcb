"""Build RESULTS_DIR/report.html from a results folder, at any moment of a study.

    python build_report.py [RESULTS_DIR]                   (default: results)
    python build_report.py --mirror DIR [RESULTS_DIR]      restore the newest complete snapshot of a mirror first

Prints the report's path and exits 0; exits 2 with one line on stderr when the folder is missing or its
manifest cannot be read, or the mirror holds no complete snapshot. Never imports TensorFlow, Keras or
keras_tuner, so it runs on any machine.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from study.errors import UserInputError
from study.report import write_report
from study.results.mirror import Mirror
from study.results.restore import restore_if_needed


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Write RESULTS_DIR/report.html from a study's results folder.")
    parser.add_argument(
        "results_dir", nargs="?", default="results", type=Path, help="results folder (default: results)"
    )
    parser.add_argument(
        "--mirror",
        type=Path,
        help="a study's mirror (run_study.py --mirror): restore RESULTS_DIR from it first, and copy the report back",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.mirror is not None:
            restored = restore_if_needed(args.mirror, args.results_dir)
            if restored is None and not (args.results_dir / "manifest.json").exists():
                raise UserInputError(f"--mirror {args.mirror}: holds no complete snapshot of a study")
            if restored:
                print(restored, file=sys.stderr)
        report = write_report(args.results_dir)
        if args.mirror is not None:
            Mirror(args.mirror, args.results_dir).copy_report()
    except UserInputError as exc:
        print(f"build_report.py: {exc}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
