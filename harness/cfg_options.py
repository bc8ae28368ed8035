"""`--cfg-options KEY=VALUE ...`: the values mmcv 1.7's `DictAction` (mmcv/utils/config.py) would give, without
importing mmcv (the CLI starts without it).

As in mmcv: outer quotes are stripped and every space removed; `a,b` is the list ['a', 'b'], `[a,b]` a list,
`(a,b)` a tuple, brackets nest (`[(1,2),(3,4)]`); each scalar is an int, else a float, else True/False (any case),
else None (`None` exactly), else the string. Unlike mmcv, a malformed option (no `=`, unbalanced brackets) is a
ReproError, not an AssertionError or ValueError.

A job keeps its options as text (`normalize`: KEY -> VALUE in this syntax) and the engine parses them (`parse`):
JSON has no tuples, so a parsed `(512,512)` would reach mmcv as a list after job.json.

Example::

    >>> parse(["model.test_cfg.mode=whole", "data.test.pipeline.1.img_ratios=[0.5,1.0]", "x=a,b"])
    {'model.test_cfg.mode': 'whole', 'data.test.pipeline.1.img_ratios': [0.5, 1.0], 'x': ['a', 'b']}
"""
from __future__ import annotations

from harness.errors import ReproError

FIX = "write KEY=VALUE, e.g. model.test_cfg.mode=whole or crop_size=(512,512)"


def scalar(text: str):
    """int, float, True/False, None or the string itself (mmcv's `_parse_int_float_bool`)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return None if text == "None" else text


def _balanced(text: str) -> bool:
    return text.count("(") == text.count(")") and text.count("[") == text.count("]")


def _next_comma(text: str) -> int:
    """The index of the first comma outside brackets (len(text) when there is none)."""
    for index, char in enumerate(text):
        if char == "," and _balanced(text[:index]):
            return index
    return len(text)


def value(text: str):
    """One option's value, parsed as mmcv's `DictAction._parse_iterable` does."""
    text = text.strip("'\"").replace(" ", "")
    is_tuple = text.startswith("(") and text.endswith(")")
    if is_tuple or (text.startswith("[") and text.endswith("]")):
        text = text[1:-1]
    elif "," not in text:
        return scalar(text)
    values = []
    while text:
        if not _balanced(text):          # where mmcv asserts
            raise ReproError(f"--cfg-options value '{text}' has unbalanced brackets", fix=FIX)
        comma = _next_comma(text)
        values.append(value(text[:comma]))
        text = text[comma + 1:]
    return tuple(values) if is_tuple else values


def to_text(parsed) -> str:
    """A parsed value back in the syntax `value` reads: (1,2) -> '(1,2)', [0.5,1.0] -> '[0.5,1.0]', None -> 'None'."""
    if isinstance(parsed, tuple):
        return "(" + ",".join(to_text(v) for v in parsed) + ")"
    if isinstance(parsed, list):
        return "[" + ",".join(to_text(v) for v in parsed) + "]"
    return str(parsed)


def normalize(options: dict | list | tuple | None) -> dict[str, str]:
    """KEY=VALUE strings (as on the command line) or a {key: value} dict -> {key: VALUE text}, each checked by
    parsing it (a malformed option is refused here, before anything starts)."""
    if not options:
        return {}
    if isinstance(options, dict):
        items = [(str(k), v if isinstance(v, str) else to_text(v)) for k, v in options.items()]
    else:
        items = []
        for item in options:
            if "=" not in item:
                raise ReproError(f"--cfg-options expects KEY=VALUE, got '{item}'", fix=FIX)
            items.append(tuple(item.split("=", 1)))
    out = {}
    for key, text in items:
        text = text.strip("'\"").replace(" ", "")
        value(text)
        out[key] = text
    return out


def parse(options: dict | list | tuple | None) -> dict:
    """KEY=VALUE strings, or a job's {key: VALUE text} -> {key: value} as mmcv's DictAction gives them. A value that
    is not a string (a job written before the options were kept as text) is taken as it is."""
    if isinstance(options, dict):
        return {str(k): value(v) if isinstance(v, str) else v for k, v in options.items()}
    return {key: value(text) for key, text in normalize(options).items()}
