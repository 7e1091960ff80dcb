"""One study, one writer: a second run_study.py on a results folder that a live process holds is refused.

The lock is `fcntl.flock` on results/.lock, so it dies with its process: a kill -9 never leaves a stale lock,
and a process that restarts itself to free memory (exec) lets go and takes it again at once. The file holds
the holder's PID and host, for the refusal's one line. Workers of a chief do not take it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from study.errors import StudyBusyError


@contextmanager
def single_writer(root: Path) -> Iterator[None]:
    """Hold results/.lock for the block, or raise StudyBusyError naming the live holder."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / ".lock"
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise StudyBusyError(
                f"--results {root}: another run_study.py is running this study ({holder}); wait for it to end, or "
                "stop it, then run this command again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"PID {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def live_writer(root: Path) -> str | None:
    """Who holds results/.lock now ("PID 123 on host"), or None when no live process does: a study whose
    manifest still says running but whose writer is gone was interrupted (killed, or its runtime died)."""
    path = root / ".lock"
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "a live process"
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return None
