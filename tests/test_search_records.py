"""What a failed or refused trial leaves behind: its error in one line, and a NaN loss failing its trial."""

from __future__ import annotations

import math
from pathlib import Path

import keras_tuner
import pytest
from keras_tuner.engine.trial import Trial

from study.results import ResultsPaths
from study.search.ledger import trial_row
from study.search.tuner import FailOnNaN


def _trial(status: str, message: str | None) -> Trial:
    space = keras_tuner.HyperParameters()
    space.Fixed("resolution", 64)
    space.values.update({"tuner/epochs": 2, "tuner/initial_epoch": 0, "tuner/bracket": 1, "tuner/round": 0})
    trial = Trial(space, trial_id="0007", status=status)
    trial.message = message
    return trial


def test_failed_trial_row_carries_the_last_line_of_its_traceback(tmp_path: Path) -> None:
    traceback = (
        'Traceback (most recent call last):\n  File "x.py", line 1\nResourceExhaustedError: OOM when allocating\n'
    )
    row = trial_row(_trial("FAILED", traceback), ResultsPaths(tmp_path))
    assert (row["status"], row["error"]) == ("FAILED", "ResourceExhaustedError: OOM when allocating")
    assert row["hp_resolution"] == 64 and "hp_tuner/epochs" not in row
    assert (row["epochs"], row["bracket"], row["round"]) == (2, 1, 0)


def test_completed_trial_row_has_no_error(tmp_path: Path) -> None:
    assert trial_row(_trial("COMPLETED", None), ResultsPaths(tmp_path))["error"] is None


@pytest.mark.parametrize("loss", [math.nan, math.inf])
def test_non_finite_loss_fails_the_trial_with_a_message(loss: float) -> None:
    with pytest.raises(keras_tuner.errors.FailedTrialError, match=r"loss became (nan|inf) at batch 4"):
        FailOnNaN().on_train_batch_end(3, {"loss": loss})


def test_finite_loss_goes_on() -> None:
    FailOnNaN().on_train_batch_end(3, {"loss": 0.7})
