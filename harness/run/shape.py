"""Typed JSON files: a dataclass is the one definition of a file's fields; this module turns it into the file's
dict (`to_dict`), back (`from_dict`, checking every field's type), and into the JSON Schema in docs/
(`json_schema`). A leaf: it imports no other harness module.

Field types are the JSON ones: str, int, float (an int is accepted), bool, None, Any, list[T], dict[str, T],
Literal[...], unions, and nested dataclasses. A field whose default is UNSET is left out of the file until set
(job.json holds only the fields of its kind); a field without a default is required.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union

from harness.errors import ReproError


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


class ShapeError(ValueError):
    """A file's field is missing, unknown or of the wrong type; the message names it (`launch.gpus: ...`)."""


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def to_dict(obj) -> dict:
    """The dataclass as the file's dict, UNSET fields left out, nested dataclasses as dicts, in field order."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is UNSET:
            continue
        out[f.name] = to_dict(value) if dataclasses.is_dataclass(value) else value
    return out


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if tp is Any:
        return "anything"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "an object"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _convert(value, tp, where: str):
    """`value` checked against `tp`; nested dataclasses built from their dicts."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _convert(value, arg, where)
            except ShapeError:
                continue
        raise ShapeError(f"{where}: expected {_type_name(tp)}, got {_show(value)}")
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise ShapeError(f"{where}: expected {_type_name(tp)}, got {_show(value)}")
    if tp is type(None):
        if value is None:
            return None
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return from_dict(tp, value, where)
    elif origin is list:
        if isinstance(value, (list, tuple)):
            (item,) = typing.get_args(tp) or (Any,)
            return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            _, item = typing.get_args(tp) or (str, Any)
            return {k: _convert(v, item, f"{where}.{k}") for k, v in value.items()}
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, tp):
        return value
    raise ShapeError(f"{where}: expected {_type_name(tp)}, got {_show(value)}")


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def from_dict(cls, data: dict, where: str = "", strict: bool = True):
    """`cls` from a file's dict, every field's type checked; an unknown key is refused when `strict`."""
    if not isinstance(data, dict):
        raise ShapeError(f"{where or cls.__name__}: expected an object, got {_show(data)}")
    hints = _hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}." if where else ""
    if strict:
        unknown = [k for k in data if k not in known]
        if unknown:
            raise ShapeError(f"{prefix}{unknown[0]}: not a field of {cls.__name__} (known: {', '.join(known)})")
    values = {}
    for name, f in known.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ShapeError(f"{prefix}{name}: missing (required)")
            continue
        values[name] = _convert(data[name], hints[name], prefix + name)
    return cls(**values)


def checked(cls, data: dict, source: str, what: str, fix: str, strict: bool = True):
    """`from_dict` for a file a user hands over: a mismatch is one ReproError (`<source> is not <what>: <field>`)."""
    try:
        return from_dict(cls, data, strict=strict)
    except ShapeError as exc:
        raise ReproError(f"{source} is not {what}: {exc}", fix=fix) from None


def check(cls, data: dict, where: str = "", strict: bool = True) -> None:
    """Raise ShapeError naming the first field of `data` that does not fit `cls`."""
    from_dict(cls, data, where, strict)


def _schema_of(tp) -> dict:
    origin = typing.get_origin(tp)
    if tp is Any:
        return {}
    if origin in (Union, types.UnionType):
        options = [_schema_of(a) for a in typing.get_args(tp)]
        if all(set(o) == {"type"} and isinstance(o["type"], str) for o in options):
            return {"type": [o["type"] for o in options]}
        return {"anyOf": options}
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if tp is type(None):
        return {"type": "null"}
    if dataclasses.is_dataclass(tp):
        return json_schema(tp, top=False)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return {"type": "array", "items": _schema_of(item)} if item is not Any else {"type": "array"}
    if origin is dict:
        _, item = typing.get_args(tp) or (str, Any)
        return {"type": "object", "additionalProperties": _schema_of(item)} if item is not Any else {"type": "object"}
    return {"type": {str: "string", int: "integer", float: "number", bool: "boolean"}[tp]}


def json_schema(cls, top: bool = True, title: str | None = None, schema_id: str | None = None) -> dict:
    """The JSON Schema (draft 2020-12) of `cls`: each field's type and one-line description (its `doc` metadata),
    required = the fields without a default, no other properties."""
    hints = _hints(cls)
    props, required = {}, []
    for f in dataclasses.fields(cls):
        prop = _schema_of(hints[f.name])
        if f.metadata.get("doc"):
            prop = {"description": f.metadata["doc"], **{k: v for k, v in prop.items() if k != "description"}}
        props[f.name] = prop
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    out: dict = {}
    if top:
        out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        if schema_id:
            out["$id"] = schema_id
        out["title"] = title or cls.__name__
    if cls.__doc__:
        out["description"] = " ".join(cls.__doc__.split())
    out.update({"type": "object", "properties": props, "required": required, "additionalProperties": False})
    return out


def doc(text: str, **kw) -> Any:
    """A dataclass field with a one-line description for the schema: `seed: int | None = doc("...", default=None)`."""
    return dataclasses.field(metadata={"doc": text}, **kw)
