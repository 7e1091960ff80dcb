"""The evaluate stage: the threshold chosen on validation, then the test set scored once, with CIs over
patients.

Public face: `stage.evaluate_best_model` (the stage, Keras) and `metrics` (threshold rules, point metrics,
the cluster bootstrap; numpy only).
"""
