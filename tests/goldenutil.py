"""Golden files: the one place that compares output with tests/golden/ and rewrites it.

A golden file is named by its path below tests/golden/ (``"firewall/dual-stack.nft"``).
Text is compared exactly; anything else is compared as the JSON text
``json.dumps(obj, indent=2, sort_keys=sort_keys) + "\\n"`` (exactly too: ``True`` and
``1`` or ``1`` and ``1.0`` differ, as they do for a reader of the file).

Rewrite goldens only on purpose, then review the diff::

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/firewall
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest

#: tests/golden/
GOLDEN_ROOT = Path(__file__).resolve().parent / "golden"
UPDATE_ENV = "UPDATE_GOLDEN"


def golden_path(name: str) -> Path:
    """The path of golden file ``name`` (relative to tests/golden/)."""
    return GOLDEN_ROOT / name


def read_golden(name: str) -> str:
    """The text of golden file ``name``; a missing file fails the test with how to make it."""
    path = golden_path(name)
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; create it with {UPDATE_ENV}=1 and review it")
    return path.read_text()


def golden_names(directory: str, *suffixes: str) -> set[str]:
    """File names in tests/golden/``directory`` ending in one of ``suffixes`` (".nft")."""
    return {p.name for p in (GOLDEN_ROOT / directory).iterdir() if p.suffix in suffixes}


def render_golden(actual: object, *, sort_keys: bool = False) -> str:
    """The text a golden file holds for ``actual`` (a str as is, else JSON)."""
    if isinstance(actual, str):
        return actual
    return json.dumps(actual, indent=2, sort_keys=sort_keys) + "\n"


def assert_golden(name: str, actual: object, *, sort_keys: bool = False) -> None:
    """Compare ``actual`` with golden file ``name``; with ``UPDATE_GOLDEN=1`` rewrite it instead.

    ``sort_keys`` sorts JSON object keys (for output whose key order is not meaningful).
    """
    text = render_golden(actual, sort_keys=sort_keys)
    if os.environ.get(UPDATE_ENV) == "1":
        path = golden_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    expected = read_golden(name)
    if text != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), text.splitlines(keepends=True),
            f"golden/{name}", "actual", n=2))
        pytest.fail(f"{name} differs from the golden file ({UPDATE_ENV}=1 rewrites it):\n{diff}",
                    pytrace=False)


def iptables_sections(name: str) -> dict[str, list[str]]:
    """The ``-A`` lines of an iptables golden file by section (``"ipv4 nat"``: lines).

    The files hold one ``*<family> <table>`` header per section, then chain and rule lines
    as ``iptables-save`` prints them; integration tests look for these lines in the kernel.
    """
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in read_golden(name).splitlines():
        if line.startswith("*"):
            current = sections.setdefault(line[1:], [])
        elif line.startswith("-A "):
            if current is None:
                pytest.fail(f"golden file {name}: {line!r} comes before any *<family> <table> line")
            current.append(line)
    return sections
