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

    def checkpoints_needed(self) -> set[str]:
        """Trials whose weights may still be read: the best so far (the search's model), and every trial of
        an open round that a continuation still to come (or one not yet ended) may start from."""
        needed = {trial.trial_id for trial in self.get_best_trials(1) if trial.status == "COMPLETED"}
        for bracket in self.brackets:
            rounds = bracket["rounds"]
            for round_num in range(len(rounds) - 1):
                children = {info["past_id"]: info["id"] for info in rounds[round_num + 1]}
                next_round_open = len(rounds[round_num + 1]) < self.round_size(bracket["bracket_num"], round_num + 1)
                for info in rounds[round_num]:
                    child = children.get(info["id"])
                    if (child is None and next_round_open) or (
                        child in self.trials and self.trials[child].status not in ENDED_STATUSES
                    ):
                        needed.add(info["id"])
        return needed

    def save(self) -> None:
        write_json(self.oracle_file(), self.get_state())

    def save_trial_file(self, trial: Trial) -> None:
        write_json(self.trial_dir(trial.trial_id) / "trial.json", trial.get_state())

    def reload(self) -> None:
        self._forget_unreadable_trials()
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

    def _forget_unreadable_trials(self) -> None:
        """A trial whose trial.json is missing or unreadable (lost with a runtime, or cut short on a copy) is
        treated as not run, and so is every trial started after it: keras-tuner numbers a new trial by how many
        it knows, so a gap would hand out a number in use. Hyperband then fills their slots again."""
        oracle_file = self.oracle_file()
        if not oracle_file.exists():
            return
        state = json.loads(oracle_file.read_text(encoding="utf-8"))
        readable = set()
        for trial_file in oracle_file.parent.glob("trial_*/trial.json"):
            try:
                readable.add(json.loads(trial_file.read_text(encoding="utf-8"))["trial_id"])
            except (OSError, ValueError, KeyError):
                continue
        started: list[str] = state["start_order"]
        unreadable = [index for index, trial_id in enumerate(started) if trial_id not in readable]
        if not unreadable:
            return
        lost = set(started[unreadable[0] :])
        logger.warning("search: trial(s) %s lost or unreadable; their slots are run again", ", ".join(sorted(lost)))
        lost_hashes = {state["id_to_hash"].get(trial_id) for trial_id in lost}
        state["tried_so_far"] = [value_hash for value_hash in state["tried_so_far"] if value_hash not in lost_hashes]
        state["start_order"] = [trial_id for trial_id in started if trial_id not in lost]
        for key in ("end_order", "retry_queue"):
            state[key] = [trial_id for trial_id in state[key] if trial_id not in lost]
        for key in ("ongoing_trials", "run_times", "id_to_hash"):
            state[key] = {name: value for name, value in state[key].items() if name not in lost and value not in lost}
        for bracket in state["brackets"]:
            bracket["rounds"] = [[info for info in trials if info["id"] not in lost] for trials in bracket["rounds"]]
        for trial_id in lost:
            shutil.rmtree(self.trial_dir(trial_id), ignore_errors=True)
        write_json(oracle_file, state)
