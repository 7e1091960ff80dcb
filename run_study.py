"""Run the chest X-ray Hyperband study: data -> search -> evaluate -> gradcam -> report.

    python run_study.py                  # the built-in synthetic demo on CPU, then results/report.html
    python run_study.py --data PATH      # PATH holds chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}

Exit codes: 0 done, 2 bad input (one line naming the path or key), 3 stopped by the time budget (the best
model so far is evaluated and the report built), 1 a bug.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shlex
import sys
from pathlib import Path

# Before anything imports TensorFlow: its info lines are hidden, its warnings are not (they say why a GPU
# was skipped, e.g. CUDA libraries that would not load).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from study.budget import parse_duration
from study.config import builtin_config_path, load_config
from study.data.cache import default_cache_dir
from study.errors import UserInputError
from study.results import STAGES, ResultsPaths
from study.search.distributed import Role, export_role, resolve_role

logger = logging.getLogger("study")

EXIT_STOPPED = 3


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="folder with the Kaggle layout, or 'kaggle' to download it (default: the demo)")
    parser.add_argument(
        "--config", type=Path, help="TOML config (default: configs/demo.toml, or overnight.toml with --data)"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: results/)")
    parser.add_argument(
        "--mirror",
        type=Path,
        help="copy the results folder here after every trial and stage (e.g. on Drive); restore from it at start",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help=f"decode cache and demo data (default: {default_cache_dir()})"
    )
    parser.add_argument(
        "--weights", help="backbone weights: imagenet, none or PATH.h5 (same as --set model.weights=...)"
    )
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even if the config requires a GPU")
    parser.add_argument("--time-budget", help="wall-clock budget of this run: 7h30m, 90m, none (default: budget.time)")
    parser.add_argument(
        "--chief", metavar="HOST:PORT", help="serve the search's trials to --worker machines (shared results/cache)"
    )
    parser.add_argument("--worker", metavar="HOST:PORT", help="train the trials the --chief at HOST:PORT hands out")
    parser.add_argument("--prepare-only", action="store_true", help="validate, split and cache the data, then exit")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    return parser.parse_args(argv)


def _stages(text: str, prepare_only: bool) -> tuple[str, ...]:
    if prepare_only:
        return ("data",)
    stages = tuple(stage.strip() for stage in text.split(",") if stage.strip())
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        raise UserInputError(f"--stages {text}: unknown stage {unknown[0]!r} (expected names from {','.join(STAGES)})")
    return stages


def _data_path(value: str | None, cache_dir: Path) -> Path | None:
    if value is None:
        return None
    if value == "kaggle":
        from study.data.kaggle import download_kaggle_dataset

        return download_kaggle_dataset(cache_dir)
    return Path(value).expanduser()


def _configure_logging(paths: ResultsPaths, role: Role) -> None:
    """One reporter for the whole study: the console and results/logs/run.log get the same lines (a worker
    writes its own logs/<id>.log beside the chief's)."""
    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    log_file = paths.logs_dir / f"{role.tuner_id}.log" if role.is_worker else paths.run_log
    to_file = logging.FileHandler(log_file, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.setLevel(logging.INFO)
    logger.handlers[:] = [console, to_file]
    logger.propagate = False


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        if args.time_budget is not None:
            parse_duration(args.time_budget, "--time-budget")  # named as the user typed it
        role = resolve_role(args.chief, args.worker, os.environ)
        if role.is_worker and (args.prepare_only or args.stages != ",".join(STAGES)):
            raise UserInputError("--worker trains search trials only; --prepare-only and --stages belong on the chief")
        if args.mirror is not None and (role.is_chief or role.is_worker):
            raise UserInputError("--mirror: not supported with --chief or --worker (their results folder is shared)")
        export_role(role, os.environ)  # keras-tuner reads the role from the environment
        stages = _stages(args.stages, args.prepare_only)
        if args.data not in (None, "kaggle"):
            from study.data.discover import find_split_root

            find_split_root(Path(args.data).expanduser())  # a wrong path fails here, before anything is written
        paths = ResultsPaths(args.results)
        _configure_logging(paths, role)
        cache_dir = args.cache or default_cache_dir()
        # A worker reads the films through the chief's split and the shared cache: it never downloads.
        data_path = None if role.is_worker else _data_path(args.data, cache_dir)
        config_path = args.config or builtin_config_path("demo" if args.data is None else "overnight")
        overrides = [
            *args.overrides,
            *([f"model.weights={args.weights}"] if args.weights else []),
            *([f"budget.time={args.time_budget}"] if args.time_budget is not None else []),
            *(["model.require_gpu=false"] if args.cpu else []),
        ]
        if args.data is None and not role.is_worker:
            logger.info(
                "no --data given: running the built-in synthetic demo (%s); see README for a real study", config_path
            )
        cfg = load_config(config_path, overrides)
        from study.pipeline import StudyRequest, run_study, run_worker

        request = StudyRequest(
            cfg=cfg,
            data_path=data_path,
            results_dir=args.results,
            cache_dir=cache_dir,
            stages=stages,
            command=shlex.join([sys.executable, "run_study.py", *argv]),
            role=role,
            mirror_dir=args.mirror,
        )
        if role.is_worker:
            run_worker(request)
            manifest = None
        else:
            manifest = run_study(request)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.prepare_only:
        from study.device import device_line

        logger.info("data prepared: see %s and %s", paths.data_summary, paths.split_csv)
        logger.info("device: %s", device_line())
    elif "report" in stages and not role.is_worker:
        logger.info("report: %s", paths.report.resolve())
    if manifest is not None and manifest.stopped:
        logger.warning("the study %s", manifest.stopped)
        return EXIT_STOPPED
    return 0


if __name__ == "__main__":
    exit_code = main(sys.argv[1:])
    # Everything is written. Tearing down what TensorFlow's traced models leave behind took the interpreter
    # 2.6-2.9 s at exit after one fitted demo model (two CPU cores), 0.2 s once frozen out of the collector's reach.
    gc.freeze()
    sys.exit(exit_code)
