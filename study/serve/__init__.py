"""Serving a finished study's model on new films (predict.py).

Public face: `predict.load_servable` (the best model with the study's own preprocessing and threshold),
`predict.list_inputs` and `predict.predict_files`. Nothing here trains, and nothing repeats what the
results folder already records.
"""
