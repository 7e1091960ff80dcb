"""Reloading after a kill: no completed trial lost or run again, the interrupted one run again, ids unshifted."""

from __future__ import annotations

import json
from pathlib import Path

import keras_tuner
from keras_tuner.engine.trial import Trial

from study.search.oracle import DurableHyperbandOracle, Refusal, trial_seed


def _oracle(directory: Path) -> DurableHyperbandOracle:
    space = keras_tuner.HyperParameters()
    space.Float("x", 0.0, 1.0)
    oracle = DurableHyperbandOracle(
        objective=keras_tuner.Objective("score", "max"), max_epochs=3, factor=3, seed=0, hyperparameters=space
    )
    oracle._set_project_dir(str(directory), "oracle")
    oracle.verbose = 0
    if Path(oracle._get_oracle_fname()).exists():
        oracle.reload()
    return oracle


def _finish(oracle: DurableHyperbandOracle, trial: keras_tuner.engine.trial.Trial, score: float) -> None:
    oracle.update_trial(trial.trial_id, {"score": score}, step=0)
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def test_interrupted_trial_is_handed_out_again_with_its_values(tmp_path: Path) -> None:
    first = _oracle(tmp_path)
    _finish(first, first.create_trial("tuner0"), 0.7)
    interrupted = first.create_trial("tuner0")  # the kill comes while it trains
    resumed = _oracle(tmp_path)
    again = resumed.create_trial("tuner0")
    assert again.trial_id == interrupted.trial_id
    assert again.hyperparameters.values == interrupted.hyperparameters.values
    assert resumed.trials["0000"].status == "COMPLETED" and resumed.trials["0000"].score == 0.7


def test_trial_ended_on_disk_but_not_in_the_oracle_is_not_run_again(tmp_path: Path) -> None:
    first = _oracle(tmp_path)
    trial = first.create_trial("tuner0")
    state_before_end = Path(first._get_oracle_fname()).read_text()
    _finish(first, trial, 0.6)
    Path(first._get_oracle_fname()).write_text(state_before_end)  # killed between trial.json and oracle.json
    resumed = _oracle(tmp_path)
    assert resumed.trials[trial.trial_id].status == "COMPLETED"
    assert resumed.create_trial("tuner0").trial_id != trial.trial_id
    assert trial.trial_id in resumed.end_order


def test_trial_written_before_the_oracle_recorded_it_is_created_again_under_its_id(tmp_path: Path) -> None:
    first = _oracle(tmp_path)
    _finish(first, first.create_trial("tuner0"), 0.5)
    state_before_create = Path(first._get_oracle_fname()).read_text()
    orphan = first.create_trial("tuner0")
    Path(first._get_oracle_fname()).write_text(state_before_create)  # killed between trial.json and oracle.json
    resumed = _oracle(tmp_path)
    assert orphan.trial_id not in resumed.trials
    recreated = resumed.create_trial("tuner0")
    assert (recreated.trial_id, recreated.hyperparameters.values) == (orphan.trial_id, orphan.hyperparameters.values)


def test_state_files_are_whole_json_after_every_write(tmp_path: Path) -> None:
    oracle = _oracle(tmp_path)
    _finish(oracle, oracle.create_trial("tuner0"), 0.5)
    project = Path(oracle._project_dir)
    for path in [project / "oracle.json", *project.glob("trial_*/trial.json")]:
        json.loads(path.read_text())
    assert not list(project.rglob("*.tmp")), "no temporary file left behind"


def test_trial_seed_depends_on_the_values_only() -> None:
    values = {"x": 0.25, "tuner/epochs": 1}
    assert trial_seed(0, values) == trial_seed(0, dict(reversed(values.items())))
    assert trial_seed(0, values) != trial_seed(0, {**values, "tuner/epochs": 3})
    assert trial_seed(0, values) != trial_seed(1, values)


def test_seed_zero_samples_the_same_trials_every_time(tmp_path: Path) -> None:
    """keras-tuner reads seed 0 as 'no seed'; a study seeded 0 must still sample reproducibly."""
    first, second = _oracle(tmp_path / "a"), _oracle(tmp_path / "b")
    assert first.create_trial("tuner0").hyperparameters.values == second.create_trial("tuner0").hyperparameters.values


class _RefuseSecond:
    """A ledger that admits one trial, then refuses: what the time budget does when the night runs out."""

    def __init__(self) -> None:
        self.ended_ids: list[str] = []

    def admit(self, oracle: DurableHyperbandOracle, trial: Trial, tuner_id: str) -> Refusal | None:
        if len(oracle.trials) < 2:
            return None
        return Refusal("not started: no time", "stopped by the time budget")

    def ended(self, oracle: DurableHyperbandOracle, trial: Trial) -> None:
        self.ended_ids.append(trial.trial_id)


def test_a_refused_trial_is_recorded_and_every_tuner_is_told_to_stop(tmp_path: Path) -> None:
    oracle = _oracle(tmp_path)
    ledger = _RefuseSecond()
    oracle.ledger = ledger
    _finish(oracle, oracle.create_trial("worker-a"), 0.5)
    refused = oracle.create_trial("worker-b")
    assert refused.status == "STOPPED"
    assert oracle.trials[refused.trial_id].status == "STOPPED"
    assert oracle.trials[refused.trial_id].message == "not started: no time"
    assert oracle.stopped == "stopped by the time budget"
    assert oracle.create_trial("worker-a").status == "STOPPED", "the other tuner stops too"
    assert not oracle.tuner_ids and not oracle.ongoing_trials, "a chief would now exit"
    assert ledger.ended_ids == ["0000", refused.trial_id]


def test_an_unreadable_trial_and_every_later_one_run_again_under_their_ids(tmp_path: Path) -> None:
    """A trial.json lost or cut on a copy: that trial and the ones started after it count as not run (a new
    trial is numbered by how many the oracle knows, so forgetting only the middle one would reuse an id)."""
    first = _oracle(tmp_path)
    for score in (0.5, 0.6, 0.7):
        _finish(first, first.create_trial("tuner0"), score)
    (Path(first._get_trial_dir("0001")) / "trial.json").write_text('{"trial_id": "00')  # cut short
    resumed = _oracle(tmp_path)
    assert sorted(resumed.trials) == ["0000"] and resumed.trials["0000"].score == 0.5
    again = resumed.create_trial("tuner0")
    assert again.trial_id == "0001" and again.status == "RUNNING"


def test_only_the_best_and_the_parents_still_to_continue_keep_their_checkpoints(tmp_path: Path) -> None:
    oracle = _oracle(tmp_path)  # max_epochs 3, factor 3: the first bracket's round 0 has 3 trials, 1 continues
    first_round = []
    for score in (0.5, 0.9, 0.6):
        first_round.append(oracle.create_trial("tuner0"))
        _finish(oracle, first_round[-1], score)
    assert oracle.checkpoints_needed() == {trial.trial_id for trial in first_round}  # round 1 not yet chosen
    continuation = oracle.create_trial("tuner0")
    assert continuation.hyperparameters.values["tuner/trial_id"] == first_round[1].trial_id
    assert oracle.checkpoints_needed() == {first_round[1].trial_id}  # the best, and the running one's parent
    _finish(oracle, continuation, 0.95)
    assert oracle.checkpoints_needed() == {continuation.trial_id}
