"""The error object a plugin prints when everything else failed (stdlib only).

Used where the normal error path cannot be trusted: the plugin module failed to import,
the skeleton itself raised, memory or stack ran out. It must not fail in turn: the
output is built with as little as possible and falls back to a fixed text.
"""

from __future__ import annotations

import os
import sys

INTERNAL = 100  #: netplugins.cni.errors.INTERNAL (not imported: that module may be what broke)
DEFAULT_VERSION = "1.1.0"
#: printed when even formatting the error fails (out of memory)
FIXED = b'{"cniVersion": "1.1.0", "code": 100, "msg": "internal error"}\n'


def config_version(stdin: bytes) -> str:
    """The config's cniVersion found without a JSON parser (the input may be what broke
    it), or :data:`DEFAULT_VERSION` when there is none that looks like a version."""
    marker = b'"cniVersion"'
    at = stdin.find(marker)
    if at < 0:
        return DEFAULT_VERSION
    rest = stdin[at + len(marker):at + len(marker) + 40].lstrip(b" \t\r\n:")
    if rest[:1] != b'"':
        return DEFAULT_VERSION
    end = rest.find(b'"', 1)
    value = rest[1:end] if end > 1 else b""
    if not value or len(value) > 16 or any(c not in b"0123456789." for c in value):
        return DEFAULT_VERSION
    return value.decode("ascii")


def error_json(stdin: bytes, code: int, msg: str, details: str = "") -> bytes:
    """The spec's error object in the config's version; :data:`FIXED` if that fails."""
    try:
        # lazy: the shim's failure path, which has no json loaded yet
        import json

        obj = {"cniVersion": config_version(stdin), "code": code, "msg": msg}
        if details:
            obj["details"] = details
        return (json.dumps(obj, indent=2) + "\n").encode()
    except BaseException:  # noqa: BLE001 - out of memory, a broken json module: still answer
        return FIXED


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, never raising (its __str__ may be what fails)."""
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001
        text = ""
    name = type(exc).__name__
    out = f"{name}: {text[:500]}" if text else name
    try:
        # notes: what a failed rollback left behind (netplugins.cni.rollback)
        for note in getattr(exc, "__notes__", ()):
            out += f"; {note}"
    except BaseException:  # noqa: BLE001
        pass
    return out


def fail(stdin: bytes, exc: BaseException, msg: str = "internal error") -> int:
    """Print code 100 naming ``exc`` on stdout and one line on stderr; return the exit code.

    Never raises, whatever stdout and stderr are.
    """
    details = describe(exc)
    out = error_json(stdin, INTERNAL, msg, details)
    for fd, data in ((1, out), (2, f"netplugins: {msg}: {details}\n".encode(errors="replace"))):
        try:
            _write_all(fd, data)
        except BaseException:  # noqa: BLE001 - closed stdout/stderr: nothing more to do
            pass
    return 1


def _write_all(fd: int, data: bytes) -> None:
    # straight to the descriptor: sys.stdout's buffer may hold half of an earlier write
    try:
        sys.stdout.flush()
    except BaseException:  # noqa: BLE001
        pass
    while data:
        data = data[os.write(fd, data):]
