"""Predict new films with a finished study's best model: its own decoding, input size and threshold.

    python predict.py --results results FILM_OR_FOLDER... [--model keras|tflite-fp32|tflite-fp16|tflite-int8-dynamic|
                      tflite-int8] [--out predictions.csv] [--gradcam OUT_DIR]

Writes one row per film (path, probability of the positive class in a column named after it, e.g.
prob_pneumonia, label at the study's validation threshold, model) to --out (default: predictions.csv); a file
that is not a readable image is listed on stderr with its reason and skipped, and the other films are still
predicted. Folders are walked recursively; hidden files and __MACOSX are ignored. With --gradcam, each film's
Grad-CAM overlay is written there (Keras model only). --model tflite-* runs a file of the export stage with
LiteRT's interpreter, without TensorFlow.

Exit codes: 0 done, 2 bad input (a missing path, a results folder whose study has not finished evaluate, or a
variant that was not exported; one line), 1 a bug.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from study.errors import UserInputError
from study.results.io import write_csv
from study.serve.predict import MODEL_CHOICES


def columns(positive_class: str) -> tuple[str, ...]:
    """The output's columns; the probability's is named after the study's positive class (prob_pneumonia)."""
    return ("path", f"prob_{positive_class.lower()}", "label", "model")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, metavar="FILM_OR_FOLDER")
    parser.add_argument("--results", type=Path, default=Path("results"), help="the study's results folder")
    parser.add_argument(
        "--model", choices=MODEL_CHOICES, default="keras",
        help="the best model as trained (keras, the default) or one of its exported TFLite files",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("predictions.csv"), help="CSV to write")
    parser.add_argument("--gradcam", type=Path, metavar="OUT_DIR", help="write a Grad-CAM overlay per film here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        from study.serve.predict import list_inputs, load_servable, predict_files

        if args.gradcam is not None and args.model != "keras":
            raise UserInputError(f"--gradcam: needs the Keras model's gradients; --model {args.model} has none")
        files = list_inputs(args.inputs)
        servable = load_servable(args.results, args.model)
        predictions, skipped = predict_files(servable, files, args.gradcam)
    except UserInputError as exc:
        print(f"predict.py: {exc}", file=sys.stderr)
        return 2
    header = columns(servable.classes.positive)
    rows = [dict(zip(header, (p.path, p.prob, p.label, p.model), strict=True)) for p in predictions]
    write_csv(args.out, header, rows)
    for item in skipped:
        print(f"skipped {item.path}: {item.reason}", file=sys.stderr)
    print(f"{len(predictions)} {servable.classes.words.items} predicted, {len(skipped)} skipped: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
