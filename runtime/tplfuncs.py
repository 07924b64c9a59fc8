"""The functions and printing rules of ``--format`` templates (runtime/template.py), as
Docker's CLI and Go's text/template define them (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any


def show(value: Any) -> str:
    """A value as Go's fmt prints it (maps in key order, null as <nil>)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{show(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(show(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    return str(value)


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil and empty strings, lists and maps are false."""
    return not (value is None or value is False or value == 0 or
                (isinstance(value, str | list | dict) and len(value) == 0))


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            # a missing key gives the map's zero value: "" for a map of strings (Docker's
            # Options, Labels are map[string]string), nil otherwise
            zero = "" if all(isinstance(v, str) for v in item.values()) else None
            item = item.get(key, zero)
        elif isinstance(item, list | str) and isinstance(key, int):
            if not 0 <= key < len(item):
                raise ValueError(f"index out of range: {key}")
            item = item[key]
        elif item is None:
            return None
        else:
            raise ValueError(f"cannot index {type(item).__name__} with {key!r}")
    return item


def _join(items: Any, sep: str) -> str:
    if not isinstance(items, list):
        raise ValueError("join needs a list")
    return sep.join(show(i) for i in items)


def _printf(fmt: str, *args: Any) -> str:
    it = iter(args)

    def one(m: re.Match[str]) -> str:
        if m.group() == "%%":
            return "%"
        value = next(it, None)
        if m.group() == "%q":
            return json.dumps(show(value) if not isinstance(value, str) else value)
        return show(value)

    return re.sub(r"%[svdq%]", one, fmt)


FUNCS: dict[str, Callable[..., Any]] = {
    "json": lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False),
    "join": _join,
    "split": lambda s, sep: str(s).split(sep),
    "upper": lambda s: str(s).upper(),
    "lower": lambda s: str(s).lower(),
    "title": lambda s: str(s).title(),
    "index": _index,
    "len": lambda v: len(v) if v is not None else 0,
    "print": lambda *a: "".join(show(x) for x in a),
    "println": lambda *a: " ".join(show(x) for x in a) + "\n",
    "printf": _printf,
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
    "not": lambda v: not truth(v),
    "and": lambda *a: next((x for x in a if not truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truth(x)), a[-1]),
}
