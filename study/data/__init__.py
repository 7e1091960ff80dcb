"""The data stage and its readers: every film opened once, de-duplicated, split by patient, decoded into a
cache that every later stage reads.

Public face: `prepare.prepare_data` (the stage), `readers` (split rows and decoded arrays for later stages),
`kaggle.download_kaggle_dataset` and `demo.demo_dataset` (where the films come from).
"""
