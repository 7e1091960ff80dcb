"""keras-tuner's Hyperband oracle made safe to kill at any moment.

keras-tuner writes `oracle.json` and every `trial.json` in place, so a kill during a write leaves half a
file and the study cannot reload. It also writes a new trial's file before the oracle's state, so a kill
between the two leaves a trial the oracle never handed out (an orphan that shifts every later trial id),
and it saves a finished trial as still running until the next one starts, so a kill in between (or after
the last trial) would run a finished trial again.
Here every write is atomic and reload repairs both windows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from typing import Any, Protocol

from study.results import write_json
from study.search.keras_tuner_api import HyperbandOracleBase, Trial, TrialStatus, synchronized

logger = logging.getLogger(__name__)

ENDED_STATUSES = ("COMPLETED", "FAILED", "STOPPED")


def trial_seed(search_seed: int, values: dict[str, Any]) -> int:
    """A trial's own seed: a pure function of its hyperparameters (keras-tuner's bookkeeping included), so a
    trial rerun after a kill trains exactly as it would have, whatever ran before it in the process."""
    text = json.dumps(values, sort_keys=True, default=str)
    return (search_seed * 1_000_003 + int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)) % (2**31 - 1)


@dataclass(frozen=True)
class Refusal:
    """Why a trial is not started (trials.csv) and why the search ends (manifest, report)."""

    trial_message: str
    study_message: str


class TrialLedger(Protocol):
    """The process holding the oracle (the only one, or the chief) keeps the books: the budget gate,
    timings and trials.csv. Called inside the oracle's lock, for trials from every worker."""

    def admit(self, oracle: DurableHyperbandOracle, trial: Trial, tuner_id: str) -> Refusal | None: ...

    def ended(self, oracle: DurableHyperbandOracle, trial: Trial) -> None: ...


class DurableHyperbandOracle(HyperbandOracleBase):
    """HyperbandOracle whose state files are written atomically and whose reload repairs interrupted writes;
    with a ledger, it also refuses a trial that would not fit the time budget and then stops every tuner."""

    def __init__(self, *, seed: int, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self.set_seed(seed)  # else seed 0 would sample other hyperparameters each time the study starts
        self.ledger: TrialLedger | None = None
        self.stopped: str | None = None

    @synchronized
    def create_trial(self, tuner_id: str) -> Trial:
        if self.stopped is not None:
            self.tuner_ids.discard(tuner_id)
            return Trial(self.hyperparameters.copy(), trial_id="stopped", status=TrialStatus.STOPPED)
        trial = super().create_trial(tuner_id)
        if trial.status != TrialStatus.RUNNING or self.ledger is None:
            return trial
        refusal = self.ledger.admit(self, trial, tuner_id)
        if refusal is not None:
            trial.status, trial.message = TrialStatus.STOPPED, refusal.trial_message
            self.end_trial(trial)
            self.stopped = refusal.study_message
            self.tuner_ids.discard(tuner_id)
        return trial

    @synchronized
    def end_trial(self, trial: Trial) -> None:
        try:
            super().end_trial(trial)  # raises after too many consecutive failures, with the trial recorded
        finally:
            if self.ledger is not None:
                self.ledger.ended(self, self.trials[trial.trial_id])

    def save(self) -> None:
        write_json(self.oracle_file(), self.get_state())

    def save_trial_file(self, trial: Trial) -> None:
        write_json(self.trial_dir(trial.trial_id) / "trial.json", trial.get_state())

    def reload(self) -> None:
        super().reload()
        orphans = [trial_id for trial_id in self.trials if trial_id not in self.start_order]
        for trial_id in orphans:  # written just before the kill, never recorded as started: hand it out again
            logger.info("search: trial %s was never recorded as started; it will be created again", trial_id)
            del self.trials[trial_id]
            shutil.rmtree(self.trial_dir(trial_id))
        for trial_id in list(self.retry_queue):
            if self.trials[trial_id].status in ENDED_STATUSES:
                # Its end is on disk, but the oracle saved it as still running (keras-tuner drops a trial from
                # its ongoing list only after saving, so this holds until the next trial is created): keep it.
                self.retry_queue.remove(trial_id)
                if trial_id not in self.end_order:
                    self.end_order.append(trial_id)
        resumed = [trial_id for trial_id in self.retry_queue if self.trials[trial_id].status == "RUNNING"]
        if resumed:
            logger.info("search: resuming; interrupted trial(s) %s run again from their start", ", ".join(resumed))
        self.save()
