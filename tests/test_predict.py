"""predict.py serves the study's best model as the study scored it, and survives the files real folders hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import predict
from study.config import config_from_json
from study.data.cache import open_and_fit
from study.results import BestTrial, DataSummary, Threshold, read_csv
from tests.conftest import ROOT, SmokeRun

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("smoke")]


def _test_folder(run: SmokeRun) -> Path:
    return Path(DataSummary.read(run.paths.data_summary).data_root) / "test"


def _served_the_test_folder_as_the_study_did(smoke: SmokeRun, out: Path, model: str, tolerance: float) -> int:
    """Every test film came back in `out` under the path the study recorded, with the study's probability (to
    `tolerance`), labelled at the study's threshold by the named model. Returns the film count."""
    expected = {
        row["path"]: float(row["prob"]) for row in read_csv(smoke.paths.predictions_csv) if row["split"] == "test"
    }
    served = {row["path"]: row for row in read_csv(out)}
    assert set(served) == set(expected), "every test film predicted, under the path the study recorded"
    threshold = Threshold.read(smoke.paths.threshold).threshold
    for path, prob in expected.items():
        served_prob = float(served[path]["prob_pneumonia"])
        assert abs(served_prob - prob) < tolerance, path
        assert served[path]["label"] == ("PNEUMONIA" if served_prob >= threshold else "NORMAL"), path
    assert {row["model"] for row in served.values()} == {model}
    return len(expected)


def test_predict_reproduces_the_studys_test_predictions(smoke: SmokeRun, tmp_path: Path) -> None:
    out, cams = tmp_path / "predictions.csv", tmp_path / "cams"
    folder = str(_test_folder(smoke))
    assert predict.main(["--results", str(smoke.paths.root), folder, "--out", str(out), "--gradcam", str(cams)]) == 0
    films = _served_the_test_folder_as_the_study_did(smoke, out, "keras", 1e-5)
    assert len(list(cams.glob("*.png"))) == films


def _write_odd_folder(folder: Path, film: Path) -> None:
    folder.mkdir()
    picture = Image.open(film).convert("L")
    (folder / "empty.jpeg").write_bytes(b"")
    data = film.read_bytes()
    (folder / "truncated.jpeg").write_bytes(data[: len(data) // 2])
    (folder / "notes.txt").write_text("not a film")
    picture.save(folder / "plain.png")
    sixteen = (np.asarray(picture, dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(sixteen).save(folder / "sixteen_bit.png")
    picture.convert("CMYK").save(folder / "cmyk.jpeg")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "__MACOSX").mkdir()
    (folder / "__MACOSX" / "._plain.png").write_bytes(b"\x00\x05\x16\x07")


def test_unreadable_files_are_listed_and_the_others_predicted(
    smoke: SmokeRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    film = next(_test_folder(smoke).glob("PNEUMONIA/*.jpeg"))
    _write_odd_folder(tmp_path / "odd", film)
    out = tmp_path / "predictions.csv"
    assert predict.main(["--results", str(smoke.paths.root), str(tmp_path / "odd"), "--out", str(out)]) == 0
    served = {Path(row["path"]).name: row for row in read_csv(out)}
    assert set(served) == {"plain.png", "sixteen_bit.png", "cmyk.jpeg"}
    probs = {name: float(row["prob_pneumonia"]) for name, row in served.items()}
    assert probs["sixteen_bit.png"] == pytest.approx(probs["plain.png"], abs=1e-6), "a lossless encoding, one answer"
    # The CMYK JPEG is lossy: the same film up to compression noise, which a model may weigh (a 2-epoch smoke
    # model moved 0.12 on it); what must hold is that it decodes to the plain film's pixels, not an inverted film
    size = BestTrial.read(smoke.paths.best_hyperparameters).resolution
    aspect = config_from_json(smoke.paths.config.read_text(), smoke.paths.config).data.aspect
    plain, cmyk = (open_and_fit(str(tmp_path / "odd" / name), [size], aspect) for name in ("plain.png", "cmyk.jpeg"))
    assert not isinstance(plain, str) and not isinstance(cmyk, str)
    gap = np.abs(plain[1][0].astype(int) - cmyk[1][0].astype(int)).mean()
    assert gap < 8.0, "CMYK decodes to the plain film (2.3 grey levels apart measured; inverted: 83)"
    errors = capsys.readouterr().err
    for name, reason in (("empty.jpeg", "zero bytes"), ("truncated.jpeg", "truncated"), ("notes.txt", "not an image")):
        assert any(name in line and reason in line for line in errors.splitlines()), (name, errors)
    assert ".DS_Store" not in errors and "__MACOSX" not in errors


def test_a_study_that_has_not_finished_evaluate_is_refused(prepared: SmokeRun, tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(ROOT / "predict.py"),
        "--results",
        str(prepared.paths.root),
        str(_test_folder(prepared)),
    ]
    completed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].startswith("predict.py: --results ")
    assert "evaluate" in completed.stderr and "Traceback" not in completed.stderr
    assert not (tmp_path / "predictions.csv").exists()


def test_an_exported_file_predicts_as_the_study_did_without_tensorflow(smoke: SmokeRun, tmp_path: Path) -> None:
    """The float32 TFLite file serves the test folder with the study's probabilities (to float32 rounding), and
    neither TensorFlow nor Keras is imported on the way: a device has neither."""
    out = tmp_path / "predictions.csv"
    script = (
        "import sys, predict; code = predict.main(sys.argv[1:]); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported TensorFlow'; sys.exit(code)"
    )
    command = [
        sys.executable, "-c", script, "--results", str(smoke.paths.root), "--model", "tflite-fp32",
        str(_test_folder(smoke)), "--out", str(out),
    ]  # fmt: skip
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    _served_the_test_folder_as_the_study_did(smoke, out, "tflite-fp32", 1e-4)


def test_a_variant_the_study_did_not_export_is_refused(
    smoke: SmokeRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    shutil.copytree(smoke.paths.root, results, ignore=shutil.ignore_patterns("tensorboard", "gradcam", "ablation"))
    (results / "export" / "model_int8.tflite").unlink()
    out = tmp_path / "predictions.csv"
    arguments = ["--results", str(results), "--model", "tflite-int8", str(_test_folder(smoke)), "--out", str(out)]
    code = predict.main(arguments)
    assert code == 2 and not out.exists()
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("predict.py: --model tflite-int8: ") and "model_int8.tflite" in line
