"""The Hyperband plan up front: brackets, trials and epochs exactly as keras-tuner will schedule them."""

from __future__ import annotations

import math
from collections.abc import Sequence

from study.budget import TrialClock
from study.results import PlanBracket, PlanRound, SearchPlan


def hyperband_plan(max_epochs: int, factor: int, iterations: int) -> SearchPlan:
    """Brackets, trials and epochs exactly as keras_tuner.HyperbandOracle schedules them (min_epochs = 1).

    keras-tuner's docstring estimate (max_epochs * log(max_epochs)^2) is off by 1.5-2x; this mirrors its
    _get_num_brackets/_get_size/_get_epochs so the user knows the real cost before the first trial.
    """
    brackets_count, epochs = 0, float(max_epochs)
    while epochs >= 1:
        epochs /= factor
        brackets_count += 1
    end_size = math.ceil(1 + math.log(max_epochs, factor))
    brackets = []
    total_trials = total_epochs = 0
    for iteration in range(iterations):
        for bracket in range(brackets_count - 1, -1, -1):
            rounds = []
            for round_num in range(bracket + 1):
                trials = math.ceil(end_size / (bracket + 1) * factor ** (bracket - round_num))
                round_epochs = math.ceil(max_epochs / factor ** (bracket - round_num))
                initial = 0 if round_num == 0 else math.ceil(max_epochs / factor ** (bracket - round_num + 1))
                rounds.append(PlanRound(round_num, trials, round_epochs, initial))
                total_trials += trials
                total_epochs += trials * (round_epochs - initial)
            brackets.append(PlanBracket(iteration, bracket, tuple(rounds)))
    return SearchPlan(max_epochs, factor, iterations, total_trials, total_epochs, tuple(brackets))


def trials_that_fit(plan: SearchPlan, clock: TrialClock, resolutions: Sequence[int], seconds: float) -> int:
    """How many of the plan's trials, in keras-tuner's order, finish within `seconds` by the clock's estimate."""
    spent, fitted = 0.0, 0
    for bracket in plan.brackets:
        for planned in bracket.rounds:
            for _ in range(planned.trials):
                spent += clock.remaining(1, planned.epochs - planned.initial_epoch, resolutions)
                if spent > seconds:
                    return fitted
                fitted += 1
    return fitted
