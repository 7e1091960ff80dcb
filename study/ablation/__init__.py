"""The ablation stage and the factor evidence: the best configuration and one factor changed at a time,
retrained with several seeds, and what the search's own trials suggest per factor.

Public face: `run.run_ablation` (the stage), `tables.write_tables` (the citable tables), `stats` (intervals,
paired deltas, the paired patient bootstrap of test AUC) and `effects.write_search_effects` (observational).
Only `run` imports Keras.
"""
