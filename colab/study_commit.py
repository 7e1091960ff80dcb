"""Print the commit that started the study mirrored at MIRROR (nothing for a new study), so the notebook resumes
a study on the code that started it rather than on a newer main:

    python colab/study_commit.py /content/drive/MyDrive/xray-study
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from study.results.restore import study_commit  # importable from the repository root put on the path above


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python colab/study_commit.py MIRROR", file=sys.stderr)
        return 2
    mirror = Path(argv[0])
    commit = study_commit(mirror) if mirror.is_dir() else None
    if commit:
        print(commit)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
