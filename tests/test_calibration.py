"""The calibration's epoch estimate: a pass of fit or evaluate costs something once a call and something per batch,
and an epoch of many batches pays the first once, the second for every batch."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from study.search import calibration
from study.search.calibration import LONG_PASS, SHORT_PASS


def test_a_pass_splits_into_its_cost_per_call_and_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    def timed(run: Callable[[int], object], batches: int) -> float:
        run(batches)
        return 0.06 + 0.011 * batches  # about fit's figures on an H200: 60 ms a call, 11 ms a batch

    monkeypatch.setattr(calibration, "_seconds", timed)
    passes: list[int] = []
    cost = calibration._pass_cost(passes.append)
    assert passes == [SHORT_PASS] * 3 + [LONG_PASS] * 2  # an untimed pass first takes a first call's own costs
    assert cost.per_call == pytest.approx(0.06) and cost.per_batch == pytest.approx(0.011)
    assert cost.seconds(131) == pytest.approx(0.06 + 131 * 0.011)  # the call once, not once a batch
    assert cost.seconds(131, pixels=0.5) == pytest.approx(0.06 + 131 * 0.011 * 0.5)  # a smaller input's batches


def test_each_pass_is_the_faster_of_its_timings(monkeypatch: pytest.MonkeyPatch) -> None:
    """An interruption only ever adds time: one slow timing of a pass does not count."""
    timings = iter([0.5, 0.104, 0.236, 0.9])  # short: 0.5 (interrupted), 0.104; long: 0.236, 0.9 (interrupted)
    monkeypatch.setattr(calibration, "_seconds", lambda run, batches: next(timings))
    cost = calibration._pass_cost(lambda batches: None)
    assert cost.per_batch == pytest.approx(0.011) and cost.per_call == pytest.approx(0.06)


def test_timing_noise_cannot_move_an_epochs_batches_into_its_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A difference shrunk by noise would leave the cost of most batches in the per-call part, paid once an epoch:
    the cost per batch is held to at least half the long pass's average."""
    monkeypatch.setattr(calibration, "_seconds", lambda run, batches: 0.2)  # the long pass no longer than the short
    cost = calibration._pass_cost(lambda batches: None)
    assert cost.per_batch == pytest.approx(0.5 * 0.2 / LONG_PASS)
    assert cost.seconds(131) >= 131 * 0.5 * 0.2 / LONG_PASS  # not 0.2 s for a whole epoch
