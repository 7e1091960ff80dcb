"""The base of the results folder's JSON records: to_json/from_json and a checked read.

Each value is checked against its field's annotation on the way in, so a file another version wrote, or a
hand edit, fails with one line naming the file and the key instead of a KeyError deep in the report.
Written by hand rather than with a schema library: about 80 lines cover what the records use (nested
records, optional values, tuples, maps with integer keys, which JSON writes as strings).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from study.errors import ResultsFormatError
from study.results.io import atomic_write_text

RecordT = TypeVar("RecordT", bound="JsonRecord")


class JsonRecord:
    """What every record shares: to_json/from_json, and write/read on a path (atomic write, checked read)."""

    def to_json(self) -> str:
        return json.dumps(_plain(self), indent=2) + "\n"

    @classmethod
    def from_json(cls: type[RecordT], text: str, source: str = "JSON") -> RecordT:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as error:
            raise ResultsFormatError(f"{source}: not valid JSON ({error})") from error
        return _build(cls, payload, source)

    def write(self, path: Path) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def read(cls: type[RecordT], path: Path) -> RecordT:
        return cls.from_json(path.read_text(encoding="utf-8"), str(path))


def _plain(value: Any) -> Any:
    """A record as JSON data: tuples become lists, mapping keys strings; floats stay unrounded."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def _build(annotation: Any, value: Any, source: str, key: str = "") -> Any:
    """JSON data as `annotation` says it must be, or ResultsFormatError naming the file and key where not."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _build(arg, value, source, key)
            except ResultsFormatError:
                continue
        raise _error(source, key, f"{value!r} is not of type {annotation}")
    if origin is tuple:
        if not isinstance(value, list):
            raise _error(source, key, f"expected a list, found {value!r}")
        return tuple(_build(args[0], item, source, f"{key}[{i}]") for i, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise _error(source, key, f"expected an object, found {value!r}")
        key_type, item_type = args
        return {
            _dict_key(key_type, name, source, key): _build(item_type, item, source, _join(key, name))
            for name, item in value.items()
        }
    if dataclasses.is_dataclass(annotation):
        return _build_record(annotation, value, source, key)
    if annotation is Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, annotation) or (annotation is int and isinstance(value, bool)):
        raise _error(source, key, f"expected {annotation.__name__}, found {value!r}")
    return value


def _build_record(cls: Any, value: Any, source: str, key: str) -> Any:
    if not isinstance(value, dict):
        raise _error(source, key, f"expected an object, found {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise _error(source, _join(key, unknown[0]), "unknown key (written by another version of the tool?)")
    built = {}
    for name, field in fields.items():
        if name in value:
            built[name] = _build(hints[name], value[name], source, _join(key, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise _error(source, _join(key, name), "missing")
    return cls(**built)


def _dict_key(key_type: type, name: str, source: str, key: str) -> Any:
    try:
        return key_type(name)
    except ValueError as error:
        raise _error(source, _join(key, name), f"expected a key of type {key_type.__name__}") from error


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _error(source: str, key: str, problem: str) -> ResultsFormatError:
    return ResultsFormatError(f"{source}: key {key}: {problem}" if key else f"{source}: {problem}")
