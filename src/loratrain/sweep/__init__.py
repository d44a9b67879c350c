"""Sweeps: one config per combination of varied values (`build.py`), recorded in a sweep.toml (`record.py`)."""
