"""One strict reader for every TOML file the harness reads (reproduction.toml, dataset.toml, tolerances.toml).

A schema declares each field's type; `read(path, schema, what)` parses the file and checks it against the schema,
so a file is either exactly what its schema says or one ReproError naming the file and the field:

- an unknown key is refused, naming the closest known one (`field 'files.sufix' is not a dataset field; did you
  mean 'suffix'?`);
- a wrong type is refused with the expected type (`field 'baseline' must be bool, found 'false'`): no string reads
  as a bool, no bool as an int, no string as a list;
- a missing required field is refused; an optional one gets its default.

Schemas are plain values: a Python type (`str`, `int`, `float`: an int is accepted and made a float, `bool`),
`NAME` (a string that becomes one path component: no separator, no `..`, not empty), `FRAGMENT` (part of a
file name, e.g. a suffix: no separator), `RELPATH` (a relative path
inside a folder: no `..` component, not absolute), `List(item)`, `Table({key: spec})` with `Optional(spec,
default)` for keys that may be left out, and `Map(spec)` (a table whose keys are names the file chooses, each
value checked against `spec`). Reads only TOML: no torch, mmcv or mmseg.
"""
from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from harness.errors import ReproError


@dataclass(frozen=True)
class _PathKind:
    """A string that becomes (part of) a path: `name` is one component, `relpath` a relative path below a folder."""
    kind: str

    def problem(self, value: str) -> str | None:
        """Why `value` cannot be used as this kind of path (None: it can)."""
        if "\0" in value:
            return "holds a NUL character"
        if not value:
            return None if self.kind == "fragment" else "is empty"
        if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or PureWindowsPath(value).drive:
            return "is an absolute path"
        parts = value.replace("\\", "/").split("/")
        if ".." in parts:
            return "climbs out of its folder with '..'"
        if self.kind != "relpath" and len(parts) > 1:
            return "holds a path separator where one name is meant"
        if self.kind == "name" and value == ".":
            return "is '.', not a name"
        return None


NAME = _PathKind("name")
FRAGMENT = _PathKind("fragment")      # part of a file name (a prefix, a suffix): may be empty, never a separator
RELPATH = _PathKind("relpath")


@dataclass(frozen=True)
class List:
    item: Any


@dataclass(frozen=True)
class Optional:
    spec: Any
    default: Any = None


@dataclass(frozen=True)
class Table:
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Map:
    """A table whose keys the file chooses (split names, protocols, reproduction ids); `key` checks each key."""
    value: Any
    key: _PathKind | None = NAME


def fail(path: Path | str, where: str, what: str, fix: str | None = None) -> ReproError:
    """The one error shape: `<file>: field '<dotted.name>' <what>`."""
    return ReproError(f"{path}: field '{where}' {what}", fix=fix)


def _type_name(spec) -> str:
    if isinstance(spec, _PathKind):
        return "a relative path (str)" if spec.kind == "relpath" else "a file name (str)"
    if isinstance(spec, List):
        return f"a list of {_type_name(spec.item)}"
    if isinstance(spec, (Table, Map)):
        return "a table"
    return spec.__name__


class _Checker:
    def __init__(self, path: Path | str, what: str, fix: str | None):
        self.path, self.what, self.fix = path, what, fix

    def fail(self, where: str, what: str) -> ReproError:
        return fail(self.path, where, what, self.fix)

    def wrong(self, where: str, spec, value) -> ReproError:
        return self.fail(where, f"must be {_type_name(spec)}, found {value!r}")

    def check(self, where: str, spec, value):
        if isinstance(spec, Table):
            return self.table(where, spec, value)
        if isinstance(spec, Map):
            if not isinstance(value, dict):
                raise self.wrong(where, spec, value)
            out = {}
            for key, item in value.items():
                if spec.key is not None and (problem := spec.key.problem(key)):
                    raise self.fail(f"{where}.{key}", f"{problem} (a key here becomes a path)")
                out[key] = self.check(f"{where}.{key}", spec.value, item)
            return out
        if isinstance(spec, List):
            if not isinstance(value, list):
                raise self.wrong(where, spec, value)
            return [self.check(f"{where}[{i}]", spec.item, item) for i, item in enumerate(value)]
        if isinstance(spec, _PathKind):
            if not isinstance(value, str):
                raise self.wrong(where, spec, value)
            if problem := spec.problem(value):
                raise self.fail(where, f"{problem}, found {value!r}")
            return value
        if spec is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.wrong(where, spec, value)
            return float(value)
        # bool is an int in Python: an int field must not accept `true`, nor a bool field `1`
        if not isinstance(value, spec) or (isinstance(value, bool) and spec is not bool):
            raise self.wrong(where, spec, value)
        return value

    def table(self, where: str, spec: Table, value) -> dict:
        if not isinstance(value, dict):
            raise self.wrong(where or "(top level)", spec, value)
        prefix = f"{where}." if where else ""
        unknown = [key for key in value if key not in spec.fields]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(spec.fields), n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else \
                f"; known: {', '.join(spec.fields)}" if spec.fields else ""
            raise self.fail(f"{prefix}{unknown[0]}", f"is not a {self.what} field{hint}")
        out = {}
        for key, sub in spec.fields.items():
            if key not in value:
                if isinstance(sub, Optional):
                    out[key] = sub.default
                    continue
                raise self.fail(f"{prefix}{key}", "is missing")
            out[key] = self.check(f"{prefix}{key}", sub.spec if isinstance(sub, Optional) else sub, value[key])
        return out


def check(path: Path | str, data: dict, schema: Table, what: str, fix: str | None = None) -> dict:
    """`data` (a parsed TOML document) checked against `schema`, optional fields filled with their defaults."""
    return _Checker(path, what, fix).table("", schema, data)


def load(path: Path) -> dict:
    """The parsed TOML document; an unreadable file or a syntax error is one ReproError naming the file."""
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ReproError(f"cannot read {path}: {exc}", fix="fix the TOML syntax of that file") from exc


def read(path: Path, schema: Table, what: str, fix: str | None = None) -> dict:
    """load(path) checked against `schema` (see check)."""
    return check(path, load(path), schema, what, fix)


def finite(path: Path | str, where: str, value: float, fix: str | None = None) -> float:
    """A float field that must be a finite number (TOML allows nan and inf)."""
    if not math.isfinite(value):
        raise fail(path, where, f"must be a finite number, found {value!r}", fix)
    return value
