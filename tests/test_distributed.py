"""Several machines: roles from flags or keras-tuner's variables, and one chief with two workers on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from study.errors import UserInputError
from study.results import Manifest, ResultsPaths, read_csv
from study.search.distributed import ID_VARIABLE, IP_VARIABLE, PORT_VARIABLE, resolve_role, wait_for_chief_data
from tests.conftest import smoke_command


def test_a_worker_waits_until_the_chief_has_recorded_its_backend(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker checks its Keras backend against the chief's manifest, so it must not start on a manifest that
    has the data stage done but no backend yet: it would train unchecked (the chief records the backend as its
    search starts). Waiting on a chief that ran --prepare-only, it says so."""
    paths = ResultsPaths(tmp_path)
    prepared = replace(Manifest.new("run_study.py --chief", {}, None), stages_done=("data",), status="partial")
    prepared.write(paths.manifest)
    with caplog.at_level(logging.INFO), pytest.raises(UserInputError, match="no chief started a search"):
        wait_for_chief_data(paths, timeout_seconds=0.0)
    assert "waiting up to 0s" in caplog.text and "--prepare-only" in caplog.text
    caplog.clear()
    paths.manifest.unlink()
    with caplog.at_level(logging.INFO), pytest.raises(UserInputError, match="no chief started a search"):
        wait_for_chief_data(paths, timeout_seconds=0.0)
    assert "no study there yet" in caplog.text and "--prepare-only" not in caplog.text
    replace(prepared, backend="jax").write(paths.manifest)
    assert wait_for_chief_data(paths, timeout_seconds=0.0).trained_backend == "jax"


def test_flags_give_the_role() -> None:
    chief = resolve_role("10.0.0.5:8000", None, {})
    assert (chief.kind, chief.tuner_id, chief.host, chief.port) == ("chief", "chief", "10.0.0.5", 8000)
    worker = resolve_role(None, "10.0.0.5:8000", {ID_VARIABLE: "worker-gpu1"})
    assert (worker.kind, worker.tuner_id) == ("worker", "worker-gpu1")
    assert resolve_role(None, "10.0.0.5:8000", {}).tuner_id.startswith("worker-")
    assert resolve_role(None, None, {}).kind == "single"


def test_keras_tuner_variables_work_on_their_own() -> None:
    environ = {ID_VARIABLE: "chief", IP_VARIABLE: "10.0.0.5", PORT_VARIABLE: "8000"}
    assert resolve_role(None, None, environ).is_chief
    assert resolve_role(None, None, {**environ, ID_VARIABLE: "tuner7"}).is_worker


@pytest.mark.parametrize(
    ("chief", "worker", "environ", "expected"),
    [
        ("10.0.0.5:8000", "10.0.0.5:8000", {}, "give one"),
        ("10.0.0.5", None, {}, "--chief 10.0.0.5: expected HOST:PORT"),
        (None, "host:99999", {}, "--worker host:99999"),
        (None, "host:8000", {ID_VARIABLE: "chief-2"}, ID_VARIABLE),
        (None, None, {IP_VARIABLE: "10.0.0.5"}, PORT_VARIABLE),
    ],
)
def test_bad_roles_name_the_flag(chief: str | None, worker: str | None, environ: dict[str, str], expected: str) -> None:
    with pytest.raises(UserInputError, match=re.escape(expected)):
        resolve_role(chief, worker, environ)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _launch(command: list[str], environ: dict[str, str], output: Path) -> subprocess.Popen[bytes]:
    with output.open("wb") as sink:  # a file, not a pipe: three processes must never block on a full pipe
        return subprocess.Popen(command, cwd=output.parent, env=environ, stdout=sink, stderr=subprocess.STDOUT)


@pytest.mark.slow
@pytest.mark.xdist_group("long")
def test_chief_and_two_workers_run_every_planned_trial_exactly_once(smoke_cache: Path, tmp_path: Path) -> None:
    results, address = tmp_path / "results", f"127.0.0.1:{_free_port()}"
    environ = {key: value for key, value in os.environ.items() if not key.startswith("KERASTUNER_")}
    # What is tested is who trains which trial, not what a trial learns: a frozen backbone traces in a few
    # seconds instead of about twenty, and every process must use the same config.
    frozen = ("--set", "space.unfrozen_layers=[0]")
    # What is distributed is the search; later stages run on the chief alone, as on one machine.
    chief = smoke_command(results, smoke_cache, *frozen, "--chief", address, "--stages", "data,search")
    processes = {"chief": _launch(chief, environ, tmp_path / "chief")}
    for name in ("worker-a", "worker-b"):
        command = smoke_command(results, smoke_cache, *frozen, "--worker", address)
        processes[name] = _launch(command, {**environ, ID_VARIABLE: name}, tmp_path / name)
    for name, process in processes.items():
        process.wait(timeout=900)
        assert process.returncode == 0, f"{name}:\n{(tmp_path / name).read_text()[-3000:]}"

    plan = json.loads((results / "search" / "plan.json").read_text())
    trials = read_csv(results / "search" / "trials.csv")
    assert len(trials) == plan["total_trials"] and all(row["status"] == "COMPLETED" for row in trials)
    ran = {
        name: re.findall(r"trial \[(\d+)\] COMPLETED", (results / "logs" / f"{name}.log").read_text())
        for name in ("worker-a", "worker-b")
    }
    trained = sorted(ran["worker-a"] + ran["worker-b"])
    assert trained == sorted(row["trial_id"] for row in trials), "each trial once, by one worker"
    assert ran["worker-a"] and ran["worker-b"], "both workers trained"
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["status"] == "partial" and (results / "best" / "model.keras").is_file()
