"""A script of this repository run in a child Python where some packages cannot be imported, as on a machine
without them: the report without TensorFlow, Keras or keras-tuner; the GPU benchmark on JAX without TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import runpy, sys
BLOCKED = set(sys.argv[1].split(","))
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Blocker())
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_without(
    packages: set[str], script: Path, args: list[str], timeout: int, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python script args...` from the repository's root, with `packages` (top-level names) unimportable;
    output captured as text."""
    command = [sys.executable, "-c", CHILD, ",".join(sorted(packages)), str(script), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env, check=False)
