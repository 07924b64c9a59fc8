"""The plugin skeleton: environment + stdin in, result or error JSON out.

:func:`run` is pure (no exit, no global state, no stdout): it is what the warm plugin
daemon calls. :func:`main` wraps it for a process. Plugins provide plain command functions
in a :class:`PluginFuncs`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .env import CmdArgs, check_known_args, parse_env
from .errors import DECODE_FAILURE, INCOMPATIBLE_VERSION, INTERNAL, CniError
from .netconf import decode_json
from .types import Result
from .version import CURRENT, SUPPORTED_VERSIONS, at_least, require_supported

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every plugin process ~3 ms; annotations are strings here
    import logging
    from typing import Any, NoReturn

__all__ = ["CmdArgs", "PluginFuncs", "Outcome", "run", "main"]



def _log() -> logging.Logger:
    """The skeleton's logger; logging is imported only when something is logged (it costs
    every plugin process ~4 ms, and a successful call logs nothing)."""
    import logging

    return logging.getLogger("netplugins")


def configure_logging(env: Mapping[str, str]) -> None:
    """Log to stderr as ``name: message`` at NETCTL_LOG_LEVEL (default WARNING).

    Done only when a level was asked for or a loaded plugin module uses logging: otherwise
    nothing can log at WARNING or above, and what logs lower (debug details of an error)
    imports logging itself and is not shown at the default level.
    """
    if "NETCTL_LOG_LEVEL" not in env and "logging" not in sys.modules:
        return
    import logging

    logging.basicConfig(level=env.get("NETCTL_LOG_LEVEL", "WARNING").upper(), stream=sys.stderr,
                        format="%(name)s: %(message)s")

AddFunc = Callable[[CmdArgs], Result]
VoidFunc = Callable[[CmdArgs], None]


@dataclass(frozen=True)
class PluginFuncs:
    """A plugin's command functions; a missing one answers 'not supported'."""

    add: AddFunc
    delete: VoidFunc
    check: VoidFunc | None = None
    status: VoidFunc | None = None
    gc: VoidFunc | None = None
    about: str = ""
    versions: tuple[str, ...] = SUPPORTED_VERSIONS
    #: CNI_ARGS keys this plugin understands; others need IgnoreUnknown=1
    known_args: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Outcome:
    """What a plugin process prints and how it exits."""

    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


def _dump(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def _config_version(stdin: bytes) -> str:
    """The cniVersion of stdin, for printing an error in it; CURRENT if unreadable."""
    try:
        obj = json.loads(stdin)
        version = obj.get("cniVersion") if isinstance(obj, dict) else None
        return version if isinstance(version, str) and version else CURRENT
    except (ValueError, UnicodeDecodeError):
        return CURRENT


def _dispatch(funcs: PluginFuncs, args: CmdArgs) -> bytes:
    """Run one command; return what goes to stdout.

    Raises:
        CniError: for every failure the runtime must see.
    """
    conf = decode_json(args.stdin)
    version = conf.get("cniVersion", "")
    if args.command == "VERSION":
        # VERSION answers whatever the caller asked with (spec: "cniVersion": <input>)
        asked = version if isinstance(version, str) and version else CURRENT
        return _dump({"cniVersion": asked, "supportedVersions": list(funcs.versions)})
    if not isinstance(version, str) or not version:
        raise CniError(DECODE_FAILURE, "network configuration has no cniVersion")
    require_supported(version, funcs.versions)
    check_known_args(args.args, funcs.known_args)
    cmd = args.command
    if cmd == "CHECK" and not at_least(version, "0.4.0"):
        raise CniError(INCOMPATIBLE_VERSION, "config version does not allow CHECK",
                       f"CHECK needs cniVersion >= 0.4.0, config is {version}")
    if cmd in ("STATUS", "GC") and not at_least(version, "1.1.0"):
        raise CniError(INCOMPATIBLE_VERSION, f"config version does not allow {cmd}",
                       f"{cmd} needs cniVersion >= 1.1.0, config is {version}")
    if cmd == "ADD":
        result = funcs.add(args)
        return _dump(result.to_dict(version))
    handler = {"DEL": funcs.delete, "CHECK": funcs.check, "STATUS": funcs.status, "GC": funcs.gc}[cmd]
    if handler is None:
        if cmd in ("GC", "STATUS"):
            # Nothing to collect / always ready: success is the honest answer here.
            return b""
        raise CniError(INCOMPATIBLE_VERSION, f"plugin does not support {cmd}")
    handler(args)
    return b""


def run(funcs: PluginFuncs, env: Mapping[str, str], stdin: bytes) -> Outcome:
    """Run a plugin command as the CNI spec says, without touching process state.

    Never raises: every failure becomes an error result (a bug becomes code 100 with the
    exception in ``details``, never a traceback on stdout).
    """
    try:
        args = parse_env(env, stdin)
        out = _dispatch(funcs, args)
        return Outcome(0, out)
    except CniError as err:
        version = _config_version(stdin)
        _log().debug("plugin error: %s", err)
        return Outcome(1, _dump(err.to_dict(version)), f"{err}\n".encode())
    except Exception as exc:  # noqa: BLE001 - the spec wants an error object, not a traceback
        version = _config_version(stdin)
        internal = CniError(INTERNAL, "internal error", f"{type(exc).__name__}: {exc}")
        # the traceback goes to the debug log only: stderr stays one readable line
        _log().debug("internal error", exc_info=True)
        return Outcome(1, _dump(internal.to_dict(version)), f"{internal}\n".encode())


def about(funcs: PluginFuncs) -> str:
    """What a plugin prints when run by hand without CNI_COMMAND (as the reference skel)."""
    return f"{funcs.about}\nCNI protocol versions supported: {', '.join(funcs.versions)}\n"


def main(funcs: PluginFuncs) -> NoReturn:
    """Process entry point: read env and stdin, print, exit."""
    import os

    configure_logging(os.environ)
    if not os.environ.get("CNI_COMMAND"):
        sys.stderr.write(about(funcs))
        sys.exit(0)
    try:
        stdin = sys.stdin.buffer.read()
    except OSError as exc:
        err = CniError(5, "failed to read stdin", str(exc))
        sys.stdout.buffer.write(_dump(err.to_dict(CURRENT)))
        sys.exit(1)
    outcome = run(funcs, os.environ, stdin)
    emit(outcome)
    sys.exit(outcome.exit_code)


def emit(outcome: Outcome) -> None:
    """Write an outcome to this process's stdout and stderr."""
    if outcome.stdout:
        sys.stdout.buffer.write(outcome.stdout)
        sys.stdout.buffer.flush()
    if outcome.stderr and (outcome.exit_code != 0):
        sys.stderr.buffer.write(outcome.stderr)
        sys.stderr.buffer.flush()
