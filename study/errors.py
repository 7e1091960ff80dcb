"""Errors the CLI maps to exit codes (DESIGN.md section 4): bad input is 2, anything else is a bug (1)."""

from __future__ import annotations


class UserInputError(Exception):
    """Bad input from the user (arguments, config, data layout): one clear line, exit code 2."""


class ConfigError(UserInputError):
    """A config key that is unknown, missing, of the wrong type or out of range."""


class DataLayoutError(UserInputError):
    """A --data path that does not hold the expected Kaggle layout."""
