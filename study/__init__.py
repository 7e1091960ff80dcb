"""The chest X-ray Hyperband study: run_study.py drives `pipeline`; build_report.py drives `report`."""
