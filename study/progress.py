"""One progress reporter for the study's long loops: a live bar on a terminal, a log line every few
seconds elsewhere (Colab cells, log files, CI), so a long step is never silent and never floods a log."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TypeVar

from tqdm import tqdm

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
LOG_EVERY_SECONDS = 15.0


def track(items: Sequence[Item], what: str, unit: str = "film") -> Iterator[Item]:
    """Yield `items`, reporting progress on `what` as it goes."""
    if sys.stderr.isatty():
        yield from tqdm(items, desc=what, unit=unit, mininterval=1.0, leave=False)
        return
    started = last = time.monotonic()
    for done, item in enumerate(items):
        now = time.monotonic()
        if now - last >= LOG_EVERY_SECONDS and done:
            rate = done / (now - started)
            remaining = (len(items) - done) / rate
            logger.info("%s: %d/%d %ss (%.0f/s, about %.0f s left)", what, done, len(items), unit, rate, remaining)
            last = now
        yield item
