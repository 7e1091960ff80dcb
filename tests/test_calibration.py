"""The calibration's epoch estimate: a pass of fit or evaluate costs something once a call and something per batch,
and an epoch of many batches pays the first once, the second for every batch."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from study.search import calibration
from study.search.calibration import LONG_PASS, SHORT_PASS, PassCost


def test_a_pass_splits_into_its_cost_per_call_and_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    def timed(run: Callable[[int], object], batches: int) -> float:
        run(batches)
        return 0.06 + 0.011 * batches  # about fit's figures on an H200: 60 ms a call, 11 ms a batch

    monkeypatch.setattr(calibration, "_seconds", timed)
    passes: list[int] = []
    cost = calibration._pass_cost(passes.append)
    assert passes == [SHORT_PASS, SHORT_PASS, LONG_PASS]  # an untimed pass first takes a first call's own costs
    assert cost.per_call == pytest.approx(0.06) and cost.per_batch == pytest.approx(0.011)
    assert cost.seconds(131) == pytest.approx(0.06 + 131 * 0.011)  # the call once, not once a batch
    assert cost.seconds(131, pixels=0.5) == pytest.approx(0.06 + 131 * 0.011 * 0.5)  # a smaller input's batches


def test_timing_noise_larger_than_the_extra_batches_takes_the_long_pass_as_per_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(calibration, "_seconds", lambda run, batches: 0.2)  # the long pass no longer than the short
    assert calibration._pass_cost(lambda batches: None) == PassCost(0.0, 0.2 / LONG_PASS)
