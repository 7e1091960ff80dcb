"""Several machines, one study: keras-tuner's chief/worker mode behind --chief and --worker.

The chief holds the Hyperband oracle (keras-tuner's gRPC server) and owns the results folder: it runs the
data stage, hands out trials, and after the search evaluates, explains and reports. Workers train the
trials: they read the split from the shared results folder and the films from the shared cache, and write
only checkpoints, per-epoch histories and their own log. keras-tuner reads the role from three environment
variables, which work on their own too.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from study.budget import format_duration
from study.errors import UserInputError
from study.results import Manifest, ResultsPaths, read_manifest

logger = logging.getLogger(__name__)

ID_VARIABLE = "KERASTUNER_TUNER_ID"
IP_VARIABLE = "KERASTUNER_ORACLE_IP"
PORT_VARIABLE = "KERASTUNER_ORACLE_PORT"
SINGLE_TUNER_ID = "tuner0"
WAIT_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Role:
    """This process's part in the study: the only one (single), the chief, or a worker."""

    kind: str
    tuner_id: str
    host: str | None = None
    port: int | None = None

    @property
    def is_worker(self) -> bool:
        return self.kind == "worker"

    @property
    def is_chief(self) -> bool:
        return self.kind == "chief"


SINGLE = Role("single", SINGLE_TUNER_ID)


def _address(flag: str, text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserInputError(f"{flag} {text}: expected HOST:PORT, e.g. {flag} 10.0.0.5:8000")
    return host, int(port)


def resolve_role(chief: str | None, worker: str | None, environ: Mapping[str, str]) -> Role:
    """--chief / --worker HOST:PORT, else keras-tuner's own environment variables, else a single machine."""
    if chief and worker:
        raise UserInputError("--chief and --worker: give one; this machine is either the chief or a worker")
    if chief or worker:
        flag, text = ("--chief", chief) if chief else ("--worker", worker)
        host, port = _address(flag, str(text))
        if chief:
            return Role("chief", "chief", host, port)
        tuner_id = environ.get(ID_VARIABLE) or f"worker-{socket.gethostname()}"
        if "chief" in tuner_id:
            raise UserInputError(f"{ID_VARIABLE}={tuner_id}: a worker's id must not contain 'chief'")
        return Role("worker", tuner_id, host, port)
    if IP_VARIABLE in environ:
        missing = [name for name in (PORT_VARIABLE, ID_VARIABLE) if not environ.get(name)]
        if missing:
            raise UserInputError(
                f"{IP_VARIABLE} is set but {missing[0]} is not: set {ID_VARIABLE}, {IP_VARIABLE} and "
                f"{PORT_VARIABLE} together, or pass --chief/--worker HOST:PORT"
            )
        host, port = _address(PORT_VARIABLE, f"{environ[IP_VARIABLE]}:{environ[PORT_VARIABLE]}")
        tuner_id = environ[ID_VARIABLE]
        return Role("chief" if "chief" in tuner_id else "worker", tuner_id, host, port)
    return SINGLE


def export_role(role: Role, environ: MutableMapping[str, str]) -> None:
    """keras-tuner decides chief/worker behaviour from the environment when a tuner is built."""
    if role.kind == "single":
        return
    environ[ID_VARIABLE] = role.tuner_id
    environ[IP_VARIABLE] = str(role.host)
    environ[PORT_VARIABLE] = str(role.port)


def _why_not_yet(manifest: Manifest | None) -> str:
    """What the folder shows, so a worker waiting on a chief that ran --prepare-only (and will search later, if
    at all) does not look like one waiting on a chief that is busy with its data stage."""
    if manifest is None:
        return " (no study there yet)"
    if manifest.status == "partial" and "data" in manifest.stages_done:
        return (
            " (the chief's last run stopped after its data stage, as --prepare-only does: it starts the search"
            " when run again)"
        )
    return ""


def wait_for_chief_data(paths: ResultsPaths, timeout_seconds: float = 6 * 3600.0) -> Manifest:
    """A worker trains only once the chief's data stage has written the split into the shared results folder
    and its search has recorded the Keras backend the study trains on, which the worker must share (the chief
    serves no trials before that)."""
    deadline = time.monotonic() + timeout_seconds
    announced: str | None = None  # the reason last logged: said again only when the folder shows another
    while True:
        manifest = read_manifest(paths.manifest)
        if manifest is not None and "data" in manifest.stages_done and manifest.trained_backend is not None:
            return manifest
        if manifest is not None and manifest.status in ("failed", "interrupted"):
            raise UserInputError(f"--results {paths.root}: the chief's run {manifest.status} before its search")
        reason = _why_not_yet(manifest)
        if reason != announced:
            logger.info(
                "worker: waiting up to %s until the chief's search has started in %s%s",
                format_duration(timeout_seconds), paths.root, reason,
            )  # fmt: skip
            announced = reason
        if time.monotonic() > deadline:
            raise UserInputError(f"--results {paths.root}: no chief started a search here (shared folder?)")
        time.sleep(WAIT_POLL_SECONDS)
