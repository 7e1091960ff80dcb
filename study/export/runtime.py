"""Running an exported TFLite model: LiteRT's interpreter (`ai-edge-litert`), which needs no TensorFlow.

TensorFlow's own `tf.lite.Interpreter` is deprecated and warns on every construction, so it is only the
fallback where `ai-edge-litert` is not installed. A model takes one film at a time (batch 1, as a device
would run it), as raw uint8 pixels: the preprocessing is inside the model.
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

WARMUP_RUNS = 5


def _interpreter_class() -> tuple[type, str]:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        return tf.lite.Interpreter, "tf.lite"
    return Interpreter, "ai-edge-litert"


class TfliteModel:
    """One .tflite file with its interpreter: P(positive) per film, and the time one film takes."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        interpreter_class, self.runtime = _interpreter_class()
        self.path = path
        self._interpreter: Any = interpreter_class(model_path=str(path), num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]

    @property
    def resolution(self) -> int:
        return int(self._input["shape"][1])

    def _run(self, film: np.ndarray) -> float:
        self._interpreter.set_tensor(self._input["index"], film[None].astype(self._input["dtype"]))
        self._interpreter.invoke()
        output = self._interpreter.get_tensor(self._output["index"]).ravel()
        scale, zero_point = self._output.get("quantization", (0.0, 0))
        value = float(output[0])
        return (value - zero_point) * scale if scale else value

    def predict(self, films: np.ndarray) -> np.ndarray:
        """P(positive) for uint8 films (N x H x W x C), one invocation per film."""
        return np.array([self._run(film) for film in films], dtype=np.float64)

    def latency_ms(self, film: np.ndarray, runs: int) -> float:
        """Median wall time of one film, in milliseconds, over `runs` invocations after a warm-up."""
        for _ in range(WARMUP_RUNS):
            self._run(film)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            self._run(film)
            times.append(time.perf_counter() - started)
        return 1000.0 * statistics.median(times)
