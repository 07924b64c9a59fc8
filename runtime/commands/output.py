"""What several commands print the same way: tables, and per-name results with errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import NetctlError


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns three spaces apart, as docker's tables (first row: headings)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(col.ljust(w) for col, w in zip(r, widths, strict=True)).rstrip())


def for_each(names: Sequence[str], action: Callable[[str], str]) -> int:
    """Run ``action`` on every name, printing what it returns or one ``Error:`` line; carry on
    past failures (as ``docker rm a b`` does) and return 1 if any failed."""
    failed = False
    for name in names:
        try:
            print(action(name))
        except NetctlError as exc:
            print(f"Error: {exc.msg}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def print_inspect(objs: Sequence[dict[str, Any]], fmt: str) -> None:
    """Inspect objects as an indented JSON list, or each through ``--format``."""
    if not fmt:
        print(json.dumps(list(objs), indent=4))
        return
    # lazy: netctl start-up; only --format needs it
    from ..format import render

    for obj in objs:
        print(render(fmt, obj))


def check_format(fmt: str) -> None:
    """Parse ``--format`` before doing any work: a malformed one fails first, alone.

    Raises:
        NetctlError: the template's error, with its position.
    """
    if fmt and ("{{" in fmt or "}}" in fmt):
        # lazy: netctl start-up; only --format needs it
        from ..template import Template

        Template(fmt)
