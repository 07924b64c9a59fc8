"""``--format``: a Go template (runtime/template.py) or a bare path over inspect output.

Supported: everything :mod:`runtime.template` parses (``{{.Name}}``, ``{{json .Containers}}``,
``{{(index .NetworkSettings.Networks "net1").IPAddress}}``, ``{{join .Args " "}}``,
``{{range $name, $n := .NetworkSettings.Networks}}{{$name}}={{$n.IPAddress}} {{end}}``),
and a bare path such as ``.IPAM.Config[0].Subnet`` or ``json .Labels``.

Values print as Docker's Go templates print them: ``json`` is compact and unescaped (the
CLI's ``json`` function), maps print and range in key order (Go sorts map keys), null is
``<nil>``, ``index`` of a missing key is empty (a Go map's zero value).
"""

from __future__ import annotations

from typing import Any

from .errors import NetctlError
from .template import Template, show


def render(template: str, obj: Any) -> str:
    """Apply ``template`` to one inspect object.

    Raises:
        NetctlError: a template that does not parse (with the position, not the text), a
            path that does not exist, an unsupported action.
    """
    if "{{" in template or "}}" in template:
        return Template(template).execute(obj)
    expr = template.strip()
    if not expr.startswith(".") and not expr.startswith("json ."):
        raise NetctlError("template: a --format is a Go template such as '{{.Name}}' "
                          "or a path starting with '.'")
    return Template("{{" + expr + "}}").execute(obj)


__all__ = ["render", "show"]
