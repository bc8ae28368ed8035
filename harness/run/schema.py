"""docs/job.schema.json and docs/result.schema.json, generated from their one definition (job.py, record.py).

    python -m harness.run.schema            # rewrite both
    python -m harness.run.schema --check    # exit 1 if a committed file differs from the definition

`validate(data, schema)` checks a file against one of them without any package: it knows the part of JSON Schema
that `shape.json_schema` writes (type, enum, anyOf, properties, required, additionalProperties, items).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.fileio import write_text_atomic
from harness.paths import REPO_ROOT
from harness.run.job import Job
from harness.run.record import Record
from harness.run.shape import json_schema

SCHEMAS = {
    "job.schema.json": (Job, "job.json", "repro.job"),
    "result.schema.json": (Record, "result.json (schema repro.result/1)", "repro.result/1"),
}


def schemas() -> dict[str, str]:
    """File name -> the schema's text, as committed under docs/."""
    out = {}
    for name, (cls, title, schema_id) in SCHEMAS.items():
        out[name] = json.dumps(json_schema(cls, title=title, schema_id=schema_id), indent=2) + "\n"
    return out


_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "null": type(None),
          "object": dict, "array": list}


def _is(value, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def validate(data, schema: dict, where: str = "$") -> list[str]:
    """Every place where `data` breaks `schema`, as `$.launch.gpus: ...` lines (empty: valid)."""
    errors: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(data, n) for n in names):
            return [f"{where}: {data!r:.60} is not of type {' or '.join(names)}"]
    if "enum" in schema and data not in schema["enum"]:
        return [f"{where}: {data!r:.60} is not one of {schema['enum']}"]
    if "anyOf" in schema and all(validate(data, option, where) for option in schema["anyOf"]):
        return [f"{where}: {data!r:.60} matches none of its allowed shapes"]
    if isinstance(data, dict):
        props = schema.get("properties", {})
        errors += [f"{where}: {name} is required" for name in schema.get("required", []) if name not in data]
        extra = schema.get("additionalProperties", True)
        for key, value in data.items():
            if key in props:
                errors += validate(value, props[key], f"{where}.{key}")
            elif extra is False:
                errors.append(f"{where}: {key} is not allowed (not in the schema)")
            elif isinstance(extra, dict):
                errors += validate(value, extra, f"{where}.{key}")
    if isinstance(data, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(data):
            errors += validate(value, schema["items"], f"{where}[{i}]")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.run.schema", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs")
    args = parser.parse_args(argv)
    stale = []
    for name, text in schemas().items():
        path = args.docs / name
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            write_text_atomic(path, text)
            print(f"wrote {path}")
    if stale:
        print(f"stale: {', '.join(stale)}; run `python -m harness.run.schema`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
