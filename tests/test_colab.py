"""The Colab notebook is a valid notebook whose commands are ones the real CLI accepts, and resumable."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from run_study import parse_args
from study.budget import parse_duration
from tests.gpu_benchmark_script import load_gpu_benchmark

NOTEBOOK = Path(__file__).resolve().parent.parent / "colab" / "overnight.ipynb"


@pytest.fixture(scope="module")
def notebook() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def _study_commands(notebook: nbformat.NotebookNode) -> list[list[str]]:
    lines = [line for cell in notebook.cells if cell.cell_type == "code" for line in cell.source.splitlines()]
    return [shlex.split(line)[2:] for line in lines if line.startswith("!python run_study.py")]


def test_notebook_is_valid(notebook: nbformat.NotebookNode) -> None:
    nbformat.validate(notebook)
    assert notebook.metadata["accelerator"] == "GPU"


def test_commands_parse_against_the_real_cli(notebook: nbformat.NotebookNode) -> None:
    commands = _study_commands(notebook)
    assert len(commands) >= 3, "prepare, run, resume"
    for argv in commands:
        args = parse_args(argv)
        assert args.data == "kaggle"
        assert str(args.results).startswith("/content/") and "/drive/" not in str(args.results), "runs locally"
        assert str(args.mirror).startswith("/content/drive/"), "mirrored to Drive, which survives a disconnect"
        assert str(args.cache).startswith("/content/") and "/drive/" not in str(args.cache), "cache on local disk"
        if args.time_budget is not None:
            assert parse_duration(args.time_budget, "--time-budget") is not None


def test_resume_cell_reruns_the_same_study(notebook: nbformat.NotebookNode) -> None:
    """Same results and cache folders and the same config: the pipeline continues the study instead of
    refusing it (only the time budget may differ between the run and the resume)."""
    runs = [parse_args(argv) for argv in _study_commands(notebook) if "--prepare-only" not in argv]
    assert len(runs) >= 2
    first, resume = runs[0], runs[-1]
    assert (resume.results, resume.mirror, resume.cache, resume.config, resume.overrides) == (
        first.results, first.mirror, first.cache, first.config, first.overrides,
    )  # fmt: skip


def test_report_cell_serves_the_results_folder(notebook: nbformat.NotebookNode) -> None:
    results = str(parse_args(_study_commands(notebook)[0]).results)
    report_cells = [cell.source for cell in notebook.cells if "report.html" in cell.source and cell.cell_type == "code"]
    assert report_cells and results in report_cells[-1]


def _code(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


def test_colab_keeps_its_own_stack_and_prints_it(notebook: nbformat.NotebookNode) -> None:
    """Installing requirements.txt would replace Colab's TensorFlow and Keras (built for its CUDA) with ours."""
    code = _code(notebook)
    assert "pip install -q -r requirements-colab.txt" in code and "-r requirements.txt" not in code
    colab_requirements = (NOTEBOOK.parent.parent / "requirements-colab.txt").read_text()
    assert not [line for line in colab_requirements.splitlines() if line.startswith(("tensorflow", "keras=", "keras>"))]
    assert "tf.__version__" in code and "keras.__version__" in code


def test_missing_kaggle_secrets_are_tolerated(notebook: nbformat.NotebookNode) -> None:
    code = _code(notebook)
    assert all(name in code for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"))
    assert "suppress(userdata.SecretNotFoundError, userdata.NotebookAccessError)" in code


def test_the_report_builds_from_drive_alone_and_drive_is_flushed_last(notebook: nbformat.NotebookNode) -> None:
    from build_report import parse_args as parse_report_args

    commands = [line for line in _code(notebook).splitlines() if line.startswith("!python build_report.py")]
    (command,) = commands
    args = parse_report_args(shlex.split(command)[2:])
    assert args.mirror == parse_args(_study_commands(notebook)[0]).mirror
    assert notebook.cells[-1].source.strip() == "drive.flush_and_unmount()"


def test_a_resume_checks_out_the_commit_that_started_the_study(notebook: nbformat.NotebookNode) -> None:
    """A fresh runtime clones the newest main; a study started on an older one must resume on its own commit,
    read from the mirror every run command writes to, before anything is installed or run."""
    code = _code(notebook)
    mirror = str(parse_args(_study_commands(notebook)[0]).mirror)
    assert f'MIRROR = "{mirror}"' in code
    pin = code.index('["python", "colab/study_commit.py", MIRROR]')
    assert code.index("git clone") < pin < code.index('["git", "checkout", "-q", commit]') < code.index("pip install")
    shell_lines = [line for line in code.splitlines() if line.startswith("!")]
    assert not [line for line in shell_lines if "$" in line.replace("$(", "")], "IPython expands $name in ! lines"


def test_a_new_study_has_no_commit_to_pin(tmp_path: Path) -> None:
    script = NOTEBOOK.parent / "study_commit.py"
    completed = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "no-mirror-yet")], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0 and completed.stdout == ""


def test_the_night_can_be_sized_first_and_its_figures_are_kept_on_drive(
    notebook: nbformat.NotebookNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark cell runs before the night's cell and rewrites its JSON on the local disk (a file replaced by
    a rename on Drive may come back as an older one), then copies it to Drive, failed or not, beside the study's
    mirror, not in it: the mirror's snapshots hold the study's files alone."""
    benchmark = load_gpu_benchmark(monkeypatch)
    lines = _code(notebook).splitlines()
    (command,) = [line for line in lines if line.startswith("!python benchmarks/gpu.py")]
    args = benchmark.parse_args(shlex.split(command)[2:])
    assert str(args.out).startswith("/content/") and "/drive/" not in str(args.out) and not args.quick
    # an earlier run's file is removed first; a run that fails still leaves what it measured, so the copy is its
    # own line (IPython runs it whatever the run's exit code), and only a file this run wrote is copied
    start = lines.index(command)
    assert lines[start - 1] == f"!rm -f {args.out}"
    words = shlex.split(lines[start + 1].removeprefix("!"), comments=True)
    assert words[:2] == ["test", "-f"] and words[3:5] == ["&&", "cp"] and len(words) == 7
    checked, source, target = words[2], words[5], words[6]
    mirror = parse_args(_study_commands(notebook)[0]).mirror
    assert Path(checked) == Path(source) == args.out
    assert target.startswith("/content/drive/") and mirror not in Path(target).parents
    night = next(line for line in lines if line.startswith("!python run_study.py") and "--time-budget" in line)
    assert lines.index(command) < lines.index(night)
