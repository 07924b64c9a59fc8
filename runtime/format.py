"""``--format``: a Go-template-like or JSON-path selection over inspect output (pure).

Supported: ``{{.Name}}``, ``{{.IPAM.Config}}``, ``{{json .Containers}}``,
``{{index .Options "key"}}``, ``{{range .IPAM.Config}}{{.Subnet}} {{end}}``, and a bare
path such as ``.IPAM.Config[0].Subnet`` or ``json .Labels``.

Values print as Docker's Go templates print them: ``json`` is compact and unescaped (the
CLI's ``json`` function), maps print and range in key order (Go sorts map keys), null is
``<nil>``, ``index`` of a missing key is empty (a Go map's zero value).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import NetctlError

_TOKEN = re.compile(r"\{\{\s*(.*?)\s*\}\}")


def _path(obj: Any, path: str) -> Any:
    path = path.strip()
    if path in (".", ""):
        return obj
    if not path.startswith("."):
        raise NetctlError(f"template: {path!r}: unsupported action or a path that does not start with '.'")
    cur = obj
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path):
        key, idx = part
        try:
            if key:
                cur = cur[key]
            else:
                cur = cur[int(idx)]
        except (KeyError, IndexError, TypeError):
            raise NetctlError(f"template: {path}: no such field or index") from None
    return cur


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_show(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_show(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _eval(expr: str, obj: Any) -> str:
    if expr.startswith("json "):
        return _json(_path(obj, expr[5:]))
    m = re.match(r'^index\s+(\S+)\s+"([^"]*)"$', expr)
    if m:
        container = _path(obj, m.group(1))
        if not isinstance(container, dict):
            raise NetctlError(f"template: index of {m.group(1)}: not a map")
        value = container.get(m.group(2))
        return "" if value is None else _show(value)
    return _show(_path(obj, expr))


def render(template: str, obj: Any) -> str:
    """Apply ``template`` to one inspect object.

    Raises:
        NetctlError: for a path that does not exist or an unsupported action.
    """
    if "{{" not in template:
        return _eval(template.strip(), obj)
    out = []
    pos = 0
    tokens = list(_TOKEN.finditer(template))
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        out.append(template[pos:tok.start()])
        expr = tok.group(1)
        if expr.startswith("range "):
            depth, j = 1, i + 1
            while j < len(tokens) and depth:
                inner = tokens[j].group(1)
                depth += inner.startswith("range ")
                depth -= inner == "end"
                j += 1
            if depth:
                raise NetctlError("template: range without end")
            body = template[tok.end():tokens[j - 1].start()]
            items = _path(obj, expr[6:])
            seq = [items[k] for k in sorted(items)] if isinstance(items, dict) else items or []
            out.extend(render(body, item) for item in seq)
            pos = tokens[j - 1].end()
            i = j
            continue
        out.append(_eval(expr, obj))
        pos = tok.end()
        i += 1
    out.append(template[pos:])
    return "".join(out)
