"""Durations as the user types them, and trial-time estimates that learn from finished trials."""

from __future__ import annotations

import pytest

from study.budget import TrialClock, format_duration, parse_duration
from study.errors import ConfigError
from study.results import Calibration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7h30m", 27000.0), ("90m", 5400.0), ("45s", 45.0), ("1h5m30s", 3930.0), ("2H", 7200.0), ("none", None)],
)
def test_durations_parse(text: str, seconds: float | None) -> None:
    assert parse_duration(text, "--time-budget") == seconds


@pytest.mark.parametrize("text", ["7 hours", "90", "0m", "h", "1m1h", "-5m"])
def test_bad_durations_name_the_key(text: str) -> None:
    with pytest.raises(ConfigError, match="--time-budget"):
        parse_duration(text, "--time-budget")


@pytest.mark.parametrize(("seconds", "text"), [(42.4, "42s"), (423, "7m03s"), (7500, "2h05m"), (-3, "0s")])
def test_durations_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_estimates_start_from_calibration_and_follow_finished_trials() -> None:
    clock = TrialClock(Calibration(build_seconds=20.0, epoch_seconds={64: 2.0, 128: 8.0}))
    assert clock.estimate(128, 3) == pytest.approx(44.0)
    clock.record(64, 2, 48.0)  # twice the calibrated 24 s
    assert clock.estimate(64, 2) == pytest.approx(48.0)
    assert clock.estimate(128, 3) == pytest.approx(88.0), "an unseen size takes the overall correction"
    clock.record(128, 3, 44.0)
    assert clock.estimate(128, 3) == pytest.approx(44.0), "a seen size takes its own"
    assert clock.remaining(trials=2, epochs=4, resolutions=(64, 128)) == pytest.approx(
        2 * 20.0 * 1.5 + 4 * (2.0 * 2.0 + 8.0 * 1.0) / 2
    )
