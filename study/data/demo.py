"""The built-in demo dataset: generated once into the cache folder and reused by every later run."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

from study.config import DemoConfig
from study.data.synthetic import GENERATOR_VERSION, write_demo_dataset

logger = logging.getLogger(__name__)

OFFICIAL_VAL_IMAGES = 16
COMPLETE_MARKER = "COMPLETE"


def demo_dataset(cfg: DemoConfig, cache_dir: Path) -> Path:
    """The demo's `chest_xray` folder; written to a temporary folder and renamed, so a kill leaves no half set."""
    identity = (GENERATOR_VERSION, cfg.train_images, cfg.test_images, cfg.normal_share, cfg.seed)
    key = hashlib.sha1(repr(identity).encode()).hexdigest()[:12]
    root = cache_dir / "demo" / key
    if (root / COMPLETE_MARKER).exists():
        logger.info("demo data: reusing %s", root)
        return root / "chest_xray"
    partial = root.with_name(f".{key}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    logger.info("demo data: generating %d synthetic films into %s", cfg.train_images + cfg.test_images, root)
    write_demo_dataset(
        partial,
        {"train": cfg.train_images, "val": OFFICIAL_VAL_IMAGES, "test": cfg.test_images},
        cfg.normal_share,
        cfg.seed,
    )
    (partial / COMPLETE_MARKER).write_text("ok\n", encoding="utf-8")
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root / "chest_xray"
