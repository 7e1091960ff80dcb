"""Which ablation runs to make: the variants of the best configuration, their seeds, and what the budget allows.

One factor at a time: the best configuration, then the best with one factor moved to each of its levels.
The plan is recomputed on every start from what has finished, so a resumed run with more (or less) time
left plans accordingly; finished runs are never repeated. No Keras here: the report reads the plan too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from study.budget import format_duration
from study.config import StudyConfig
from study.results import AblationPlan

BEST = "best"
MIN_SEEDS = 2


@dataclass(frozen=True)
class Variant:
    """The best configuration (factor None) or the best with `factor` set to `level`."""

    name: str
    factor: str | None
    level: Any
    values: dict[str, Any]


@dataclass(frozen=True)
class Run:
    variant: Variant
    seed: int

    @property
    def run_id(self) -> str:
        return f"{self.variant.name}_seed{self.seed}"


@dataclass(frozen=True)
class RunPlan:
    """The runs to make, in order, and what was left out and why (shown in the report)."""

    seeds: int
    factors: tuple[str, ...]
    runs: tuple[Run, ...]
    skipped: tuple[str, ...]
    estimate_seconds: float
    refused: str | None = None  # why the budget left no room for any run

    def record(self, epochs: int) -> RunPlan:
        """What ablation/plan.json keeps of it: the runs by id, and what was left out."""
        return AblationPlan(
            seeds=self.seeds,
            factors=self.factors,
            epochs=epochs,
            variants=tuple(dict.fromkeys(run.variant.name for run in self.runs)),
            runs=tuple(run.run_id for run in self.runs),
            skipped=self.skipped,
            refused=self.refused,
            estimate_seconds=self.estimate_seconds,
        )


def factor_levels(cfg: StudyConfig) -> dict[str, tuple[Any, ...]]:
    """Levels per factor: the config's, or the defaults (both ends of what the search explored)."""
    space, chosen = cfg.space, cfg.ablation
    defaults: dict[str, tuple[Any, ...]] = {
        "resolution": (min(space.resolutions), max(space.resolutions)),
        "augmentation": (0.0, max(space.augmentation)),
        "dropout": (0.0, space.dropout_max),
        "unfrozen_layers": (0, -1),
        "class_weighting": ("none", "balanced"),
    }
    return {factor: tuple(getattr(chosen, factor)) or default for factor, default in defaults.items()}


def _same_level(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), abs_tol=1e-9)
    return bool(a == b)


def variants(best_values: Mapping[str, Any], cfg: StudyConfig) -> list[Variant]:
    """The best configuration first, then each factor of cfg.ablation.factors (in priority order) at each
    level that differs from the best's; a level equal to the best's would only repeat the best."""
    found = [Variant(BEST, None, None, dict(best_values))]
    levels = factor_levels(cfg)
    for factor in cfg.ablation.factors:
        for level in dict.fromkeys(levels[factor]):
            if not _same_level(level, best_values[factor]):
                found.append(Variant(f"{factor}={level}", factor, level, {**best_values, factor: level}))
    return found


def run_seeds(search_seed: int, count: int) -> list[int]:
    """The same seeds for every variant, so variant and best pair up seed by seed."""
    return [search_seed * 1000 + index + 1 for index in range(count)]


def plan_runs(
    all_variants: Sequence[Variant],
    cfg: StudyConfig,
    done: Collection[str],
    estimate: Callable[[Variant], float],
    seconds_left: float,
) -> RunPlan:
    """All variants x cfg.ablation.seeds when they fit the time left; else fewer seeds (down to 2), then fewer
    factors (dropped from the end of cfg.ablation.factors). Runs already finished cost nothing."""
    factors = [f for f in cfg.ablation.factors if any(v.factor == f for v in all_variants)]
    not_varied = [f for f in cfg.ablation.factors if f not in factors]
    notes = [f"{f}: every configured level equals the best configuration's; nothing to compare" for f in not_varied]
    for kept in range(len(factors), 0, -1):
        for seeds in range(cfg.ablation.seeds, MIN_SEEDS - 1, -1):
            chosen = [v for v in all_variants if v.factor is None or v.factor in factors[:kept]]
            runs = [Run(v, seed) for v in chosen for seed in run_seeds(cfg.search.seed, seeds)]
            cost = sum(estimate(run.variant) for run in runs if run.run_id not in done)
            if cost <= seconds_left:
                if seeds < cfg.ablation.seeds:
                    notes.append(f"{seeds} seeds per variant instead of {cfg.ablation.seeds}: the time budget")
                notes += [f"{f}: left out by the time budget (priority {i + 1 + kept} in ablation.factors)"
                          for i, f in enumerate(factors[kept:])]  # fmt: skip
                return RunPlan(seeds, tuple(factors[:kept]), tuple(runs), tuple(notes), cost)
    if not factors:
        return RunPlan(0, (), (), tuple(notes), 0.0)
    needed = MIN_SEEDS * sum(estimate(v) for v in all_variants if v.factor in (None, factors[0]))
    refused = (
        f"ablation not run by the time budget: the best configuration and one factor at {MIN_SEEDS} seeds need "
        f"about {format_duration(needed)}, {format_duration(seconds_left)} was left"
    )
    return RunPlan(0, (), (), (*notes, refused), 0.0, refused)
