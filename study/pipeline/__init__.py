"""The study from config to report: the stage order, the manifest, and which study a folder holds."""

from study.pipeline.run import StudyRequest, run_study, run_worker

__all__ = ["StudyRequest", "run_study", "run_worker"]
