"""The night as a budget: durations in and out, trial-time estimates, and whether the next trial still fits.

The estimates start from a short calibration on the user's own machine (one build, a few training steps at
the costliest setting) and are corrected by how long finished trials really took, so the search can refuse
to start a trial that would run past the budget instead of being cut off in the middle of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psutil

from study.errors import ConfigError
from study.results import Calibration

logger = logging.getLogger(__name__)

DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
NO_LIMIT = ("none", "off", "")
RUN_STARTED_VARIABLE = "CHEST_XRAY_STUDY_RUN_STARTED"


def parse_duration(text: str, key: str) -> float | None:
    """'7h30m', '90m', '45s', '1h5m30s' -> seconds; 'none' -> no limit. A wrong form names the key."""
    cleaned = text.strip().lower().replace(" ", "")
    if cleaned in NO_LIMIT:
        return None
    match = DURATION.fullmatch(cleaned)
    if not match or not any(match.groups()):
        raise ConfigError(f"{key} = {text!r}: expected a duration like 7h30m, 90m or 45s, or none for no limit")
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ConfigError(f"{key} = {text!r}: expected a duration above zero, or none for no limit")
    return float(total)


def format_duration(seconds: float) -> str:
    """Seconds -> '2h05m', '7m03s' or '42s': what a person reads in a progress line."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{int(seconds % 60):02d}s"


@dataclass
class TrialClock:
    """Trial-time estimates: the calibration, times the median ratio of real to estimated time of finished
    trials (per resolution once that size has run, overall before). Check knows_time before trusting one."""

    calibration: Calibration
    in_seconds: bool = True  # False for pixel units: no estimate until a trial has finished
    ratios: dict[int, list[float]] = field(default_factory=dict)

    @property
    def knows_time(self) -> bool:
        return self.in_seconds or bool(self.ratios)

    def raw_estimate(self, resolution: int, epochs: int) -> float:
        return self.calibration.build_seconds + epochs * self.calibration.epoch_seconds[resolution]

    def correction(self, resolution: int | None = None) -> float:
        if resolution is not None and self.ratios.get(resolution):
            return statistics.median(self.ratios[resolution])
        everything = [ratio for ratios in self.ratios.values() for ratio in ratios]
        return statistics.median(everything) if everything else 1.0

    def estimate(self, resolution: int, epochs: int) -> float:
        return self.raw_estimate(resolution, epochs) * self.correction(resolution)

    def record(self, resolution: int, epochs: int, seconds: float) -> None:
        self.ratios.setdefault(resolution, []).append(seconds / self.raw_estimate(resolution, epochs))

    def remaining(self, trials: int, epochs: int, resolutions: Sequence[int]) -> float:
        """Time for `trials` trials of `epochs` epochs in total, resolutions drawn evenly from the space."""
        per_epoch = statistics.mean(self.calibration.epoch_seconds[r] * self.correction(r) for r in resolutions)
        return trials * self.calibration.build_seconds * self.correction() + epochs * per_epoch


@dataclass(frozen=True)
class Deadline:
    """When a stage must be done by, on this process's clock; None means no limit."""

    ends_at: float | None

    @classmethod
    def after(cls, seconds: float | None, started: float) -> Deadline:
        return cls(None if seconds is None else started + seconds)

    def left(self) -> float:
        return float("inf") if self.ends_at is None else self.ends_at - time.monotonic()


def _run_started() -> float:
    """This run's start on the monotonic clock; a process that restarted itself to free memory (same command,
    same environment) keeps the first start, so its time budget does not begin again."""
    now_wall, now = time.time(), time.monotonic()
    started_wall = float(os.environ.setdefault(RUN_STARTED_VARIABLE, str(now_wall)))
    return now - (now_wall - started_wall)


def run_deadline(budget_seconds: float | None, share: float) -> Deadline:
    """The end of a share of this run's time budget, counted from the run's start."""
    return Deadline.after(None if budget_seconds is None else budget_seconds * share, _run_started())


class MemoryWatch:
    """Restarts the process between trials (or ablation runs) once its memory grew too far since the first.

    TensorFlow keeps about 150 MB per trained model that clear_session() does not free (RSS grows from
    1.4 to 2.1 GB over the 5 smoke trials), which over a 90-trial night exceeds a Colab machine's RAM. The
    rule is growth since the first step, not size: a GPU process holds a large CUDA footprint from its first
    trial on, and a size rule would restart it after every trial (30-60 s each)."""

    def __init__(self, growth_share: float) -> None:
        self.allowed_mb = growth_share * psutil.virtual_memory().total / 2**20
        self.baseline_mb: float | None = None

    def between_steps(self) -> None:
        """Call after each finished step: the first call records the baseline, later ones may restart."""
        rss_mb = psutil.Process().memory_info().rss / 2**20
        if self.baseline_mb is None:
            self.baseline_mb = rss_mb
            logger.info(
                "%.0f MB resident after the first step; the process restarts when it grows by %.0f MB more "
                "(budget.memory_growth)",
                rss_mb, self.allowed_mb,
            )  # fmt: skip
            return
        if rss_mb - self.baseline_mb > self.allowed_mb:
            grown = rss_mb - self.baseline_mb
            restart_process(f"{rss_mb:.0f} MB resident, {grown:.0f} MB more than after the first step")


def restart_process(reason: str) -> None:
    """Replace this process with a fresh run of the same command, which resumes exactly where this one is.
    Between steps every state file is written, so a restart loses nothing; the time budget carries over."""
    logger.info("%s (budget.memory_growth): restarting to free it", reason)
    children = psutil.Process().children()  # the export's conversions: the new process starts them again
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()  # after an exec it would go on converting, its results never collected
    psutil.wait_procs(children, timeout=5)
    for handler in logging.getLogger("study").handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.argv])
