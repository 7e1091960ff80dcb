"""`--data kaggle`: download Kermany's chest X-rays with kagglehub, once, into the cache folder."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from study.errors import UserInputError

logger = logging.getLogger(__name__)

KAGGLE_HANDLE = "paultimothymooney/chest-xray-pneumonia"
HOW_TO_FIX = (
    "check the internet connection; the dataset is public, but if Kaggle refuses, set a token from kaggle.com -> "
    "Settings -> API -> Generate New Token as KAGGLE_API_TOKEN (environment, Colab secret or ~/.kaggle/access_token) "
    "or a legacy key as KAGGLE_USERNAME and KAGGLE_KEY; or download the archive from "
    f"kaggle.com/datasets/{KAGGLE_HANDLE} yourself and pass --data PATH"
)


def download_kaggle_dataset(cache_dir: Path) -> Path:
    """The downloaded dataset's folder; kagglehub reuses its copy under the cache folder on later runs."""
    import kagglehub  # imported here: only this path needs it

    os.environ.setdefault("KAGGLEHUB_CACHE", str(cache_dir / "kagglehub"))
    logger.info("--data kaggle: fetching %s into %s", KAGGLE_HANDLE, os.environ["KAGGLEHUB_CACHE"])
    try:
        return Path(kagglehub.dataset_download(KAGGLE_HANDLE))
    except Exception as error:  # kagglehub raises requests, credential and HTTP errors of many kinds
        raise UserInputError(
            f"--data kaggle: could not download {KAGGLE_HANDLE} ({type(error).__name__}); {HOW_TO_FIX}"
        ) from error
