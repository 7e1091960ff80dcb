"""Every error the user can act on: the CLI maps UserInputError to exit code 2 with its one line; anything else
is a bug (exit 1)."""

from __future__ import annotations


class UserInputError(Exception):
    """Bad input from the user (arguments, config, data layout): one clear line, exit code 2."""


class ConfigError(UserInputError):
    """A config key that is unknown, missing, of the wrong type or out of range."""


class DataLayoutError(UserInputError):
    """A --data path that does not hold the expected Kaggle layout."""


class SearchFailedError(UserInputError):
    """No trial completed (every setting failed): exit 2 pointing at trials.csv, not a traceback."""


class StudyBusyError(UserInputError):
    """Another live process is writing the same results folder."""


class ResultsFormatError(UserInputError):
    """A results file this version of the tool cannot read: another format, or a missing or mistyped key."""


class ReportInputError(UserInputError):
    """The folder cannot be reported on at all: missing, or its manifest is unreadable or of another format."""
