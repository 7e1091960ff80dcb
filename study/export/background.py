"""The export's conversions in a child process, started before the ablation and collected after it.

On a CPU the ablation keeps about one of two cores busy; the four TFLite conversions (the export's longest part,
about 30 s for the demo model) use the other meanwhile. The child is this module (`python -m
study.export.background`) on the TensorFlow backend whatever the study's backend: it binds its life to the
study's before it imports TensorFlow, then converts (`convert.convert_request`); the parent side imports no
TensorFlow. Only the conversions run beside the ablation: the files are scored and timed after it, so their
latencies are not measured against it.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


class ConversionJob:
    """The conversion of every variant, running in a child process on the TensorFlow backend. The study starts it
    before the ablation and collects it after, so on a CPU the conversions use the core the ablation leaves idle;
    a killed or restarted study kills it too (its files are written whole, and the next start converts anew)."""

    def __init__(self, model_path: Path, targets: dict[str, Path], calibration: np.ndarray) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="export-")
        scratch = Path(self._scratch.name).resolve()  # the child runs in the repository's folder
        np.save(scratch / "calibration.npy", calibration)
        self._errors = scratch / "errors.json"
        self.variants = tuple(targets)
        self.seconds = 0.0  # the conversions' wall time, from this start to the child's last write
        self._started = time.time()
        request = {"model": str(model_path.resolve()), "calibration": str(scratch / "calibration.npy"),
                   "targets": {variant: str(target.resolve()) for variant, target in targets.items()},
                   "errors": str(self._errors), "parent": os.getpid()}  # fmt: skip
        root = Path(__file__).resolve().parents[2]
        # The converter needs no GPU (the study's process holds it) and TensorFlow whatever this backend is.
        python_path = os.pathsep.join(filter(None, (str(root), os.environ.get("PYTHONPATH"))))
        environment = {**os.environ, "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""}
        environment["PYTHONPATH"] = python_path
        self._log = (scratch / "child.log").open("w+", encoding="utf-8")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "study.export.background", json.dumps(request)], env=environment, cwd=root,
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait(self) -> dict[str, str | None]:
        """Each variant's converter error, or None where its file was written; sets `seconds`."""
        code = self._process.wait()
        try:
            if code != 0:
                self._log.seek(0)
                last = (self._log.read().strip().splitlines() or ["no output"])[-1]
                logger.warning("export: the converting process failed (exit %d): %s", code, last)
                return {variant: f"converting process exit {code}: {last}" for variant in self.variants}
            outcome = json.loads(self._errors.read_text(encoding="utf-8"))
            errors: dict[str, str | None] = outcome["errors"]
            self.seconds = outcome["finished"] - self._started
        finally:
            self._log.close()
            self._scratch.cleanup()
        for variant, error in errors.items():
            if error is not None:
                logger.warning("export: %s failed to convert: %s", variant, error)
        return errors

    def cancel(self) -> None:
        """Stop the conversion (the study is failing or stopping); what it wrote whole stays usable."""
        self._process.kill()
        self._process.wait()
        self._log.close()
        self._scratch.cleanup()


PR_SET_PDEATHSIG = 1  # prctl's option (linux/prctl.h): a signal for this process when its parent dies


def _die_with_parent(parent: int) -> None:
    """On Linux, ask the kernel to kill this process when the study's process dies (kill -9 of a Colab runtime
    included), so no converter outlives the study and writes into a folder that another run has resumed; exit at
    once if the study died before the request took effect."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        sys.exit(1)


if __name__ == "__main__":
    child_request = json.loads(sys.argv[1])
    _die_with_parent(child_request["parent"])
    from study.export.convert import convert_request  # TensorFlow, seconds to import

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    convert_request(child_request)
