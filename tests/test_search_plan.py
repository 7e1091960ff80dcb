"""The Hyperband plan written before the first trial must be what keras-tuner then runs."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import keras_tuner
import pytest

from study.budget import TrialClock
from study.results import Calibration
from study.search.plan import hyperband_plan, trials_that_fit


def _oracle_schedule(tmp_path: Path, max_epochs: int, factor: int, iterations: int) -> list[tuple[int, int, int, int]]:
    """Drive keras-tuner's own HyperbandOracle with random scores and record every trial it hands out."""
    space = keras_tuner.HyperParameters()
    space.Float("x", 0.0, 1.0)
    oracle = keras_tuner.oracles.HyperbandOracle(
        objective=keras_tuner.Objective("score", "max"),
        max_epochs=max_epochs,
        factor=factor,
        hyperband_iterations=iterations,
        seed=0,
        hyperparameters=space,
    )
    oracle._set_project_dir(str(tmp_path), "oracle")
    oracle.verbose = 0
    scores = random.Random(0)
    schedule = []
    while True:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            return schedule
        values = trial.hyperparameters.values
        schedule.append(
            (values["tuner/bracket"], values["tuner/round"], values["tuner/epochs"], values["tuner/initial_epoch"])
        )
        oracle.update_trial(trial.trial_id, {"score": scores.random()}, step=values["tuner/epochs"] - 1)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)


@pytest.mark.parametrize(
    ("max_epochs", "factor", "iterations"), [(30, 3, 1), (3, 3, 1), (2, 2, 1), (8, 3, 2), (10, 4, 1)]
)
def test_plan_matches_the_trials_keras_tuner_runs(
    tmp_path: Path, max_epochs: int, factor: int, iterations: int
) -> None:
    plan = hyperband_plan(max_epochs, factor, iterations)
    schedule = _oracle_schedule(tmp_path, max_epochs, factor, iterations)
    planned = Counter(
        (bracket.bracket, round_.round, round_.epochs, round_.initial_epoch)
        for bracket in plan.brackets
        for round_ in bracket.rounds
        for _ in range(round_.trials)
    )
    assert planned == Counter(schedule)
    assert plan.total_trials == len(schedule)
    assert plan.total_epochs == sum(epochs - initial for _, _, epochs, initial in schedule)


def test_overnight_default_costs_what_the_issue_measured() -> None:
    plan = hyperband_plan(30, 3, 1)
    assert (plan.total_trials, plan.total_epochs) == (90, 576)


def test_the_trials_that_fit_a_short_budget_are_counted_in_keras_tuners_order() -> None:
    """A night that cannot hold the plan says how many trials will run: the first bracket's first round has 2
    trials of 1 epoch (10 s build + 20 s, 30 s a trial), then 1 continuation of 1 more epoch (30 s)."""
    plan = hyperband_plan(max_epochs=2, factor=2, iterations=1)
    clock = TrialClock(Calibration(10.0, {64: 20.0}))
    first = plan.brackets[0].rounds[0]
    assert (first.trials, first.epochs) == (2, 1)
    assert trials_that_fit(plan, clock, [64], seconds=59.0) == 1
    assert trials_that_fit(plan, clock, [64], seconds=60.0) == 2
    assert trials_that_fit(plan, clock, [64], seconds=90.0) == 3
    everything = clock.remaining(plan.total_trials, plan.total_epochs, [64])
    assert trials_that_fit(plan, clock, [64], seconds=everything) == plan.total_trials
