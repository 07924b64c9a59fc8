"""The plugin skeleton: environment + stdin in, result or error JSON out.

:func:`run` is pure (no exit, no global state, no stdout): it is what the warm plugin
daemon calls. :func:`main` wraps it for a process. Plugins provide plain command functions
in a :class:`PluginFuncs`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import lastresort
from .env import CmdArgs, check_known_args, parse_env
from .errors import DECODE_FAILURE, INCOMPATIBLE_VERSION, INTERNAL, IO_FAILURE, CniError
from .netconf import decode_json
from .types import Result
from .version import CURRENT, SUPPORTED_VERSIONS, at_least, require_supported

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs every plugin process ~3 ms; annotations are strings here
    # lazy: ~4 ms a plugin process; only a call that logs loads it
    import logging
    from typing import Any, NoReturn

__all__ = ["CmdArgs", "PluginFuncs", "Outcome", "run", "main", "log_level", "setup_logging"]


def _log() -> logging.Logger:
    """The skeleton's logger; logging is imported only when something is logged (it costs
    every plugin process ~4 ms, and a successful call logs nothing)."""
    # lazy: ~4 ms a plugin process; only a call that logs loads it
    import logging

    return logging.getLogger("netplugins")


def configure_logging(env: Mapping[str, str]) -> None:
    """Log to stderr as ``name: message`` at NETCTL_LOG_LEVEL (default WARNING).

    Done only when a level was asked for or a loaded plugin module uses logging: otherwise
    nothing can log at WARNING or above, and what logs lower (debug details of an error)
    imports logging itself and is not shown at the default level. An invalid level never
    stops the plugin (see :func:`log_level`).
    """
    if "NETCTL_LOG_LEVEL" not in env and "logging" not in sys.modules:
        return
    setup_logging(env)


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
    """The cniVersion of stdin, for printing an error in it; CURRENT if unreadable.

    Never raises: it runs on the error path, often for input that is what failed
    (nested too deeply for the decoder, not UTF-8, ...).
    """
    try:
        obj = json.loads(stdin)
        version = obj.get("cniVersion") if isinstance(obj, dict) else None
    except Exception:  # noqa: BLE001 - RecursionError, MemoryError, ValueError ...
        return CURRENT
    if not isinstance(version, str) or not 0 < len(version) <= 16:
        return CURRENT
    return version


def log_level(value: str | None) -> tuple[int, str]:
    """The logging level NETCTL_LOG_LEVEL names (WARNING when unset), and a complaint.

    An invalid value must never stop a plugin (it used to raise in logging setup, before
    the error handler): it gives WARNING and a non-empty complaint to log.
    """
    import logging  # only when something logs: it costs every plugin process ~4 ms

    if not value:
        return logging.WARNING, ""
    name = value.strip().upper()
    level = logging.getLevelName(name) if name.isascii() and name.isalpha() else None
    if isinstance(level, int):
        return level, ""
    if name.isdigit() and len(name) <= 3:
        return int(name), ""
    return logging.WARNING, f"ignoring invalid NETCTL_LOG_LEVEL {value!r}: using WARNING"


def setup_logging(env: Mapping[str, str]) -> None:
    """Log to stderr at NETCTL_LOG_LEVEL (a process running one plugin command)."""
    # lazy: ~4 ms a plugin process; only a call that logs loads it
    import logging

    level, complaint = log_level(env.get("NETCTL_LOG_LEVEL"))
    logging.basicConfig(level=level, stream=sys.stderr, format="%(name)s: %(message)s")
    if complaint:
        _log().warning("%s", complaint)


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

    Never raises (bar KeyboardInterrupt and SystemExit): every failure becomes an error
    result. A bug, MemoryError or RecursionError becomes code 100 with the exception in
    ``details``, never a traceback; the daemon's worker calls this too, and an exception
    escaping here would kill the worker and turn the answer into code 11.
    """
    try:
        try:
            args = parse_env(env, stdin)
            out = _dispatch(funcs, args)
            return Outcome(0, out)
        except CniError as err:
            _log().debug("plugin error: %s", err)
            return error_outcome(err, stdin)
        except Exception as exc:  # noqa: BLE001 - the spec wants an error object, not a traceback
            internal = CniError(INTERNAL, "internal error", lastresort.describe(exc))
            # the traceback goes to the debug log only: stderr stays one readable line
            _log().debug("internal error", exc_info=True)
            return error_outcome(internal, stdin)
    except Exception as exc:  # noqa: BLE001 - the error path failed (out of memory ...)
        out = lastresort.error_json(stdin, INTERNAL, "internal error", lastresort.describe(exc))
        return Outcome(1, out, b"internal error\n")


def error_outcome(err: CniError, stdin: bytes) -> Outcome:
    """The outcome that reports ``err`` in the config's version.

    Raises:
        Exception: only when formatting fails (MemoryError); :func:`run` catches it.
    """
    version = _config_version(stdin)
    return Outcome(1, _dump(err.to_dict(version)), f"{err}\n".encode(errors="replace"))


def about(funcs: PluginFuncs) -> str:
    """What a plugin prints when run by hand without CNI_COMMAND (as the reference skel)."""
    return f"{funcs.about}\nCNI protocol versions supported: {', '.join(funcs.versions)}\n"


def main(funcs: PluginFuncs) -> NoReturn:
    """Process entry point: read env and stdin, print, exit.

    Whatever happens (a bad environment, out of memory, an interrupt), the process prints
    an error object and exits non-zero: never a traceback.
    """
    stdin: list[bytes] = []  # filled once read: the last resort answers in its cniVersion
    try:
        code = _main(funcs, stdin)
    except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt included: still answer
        code = lastresort.fail(b"".join(stdin), exc)
    sys.exit(code)


def _main(funcs: PluginFuncs, stdin_sink: list[bytes]) -> int:
    """:func:`main` without the last-resort guard; returns the exit code."""
    configure_logging(os.environ)
    if not os.environ.get("CNI_COMMAND"):
        sys.stderr.write(about(funcs))
        return 0
    try:
        stdin = sys.stdin.buffer.read()
    except (OSError, AttributeError, ValueError) as exc:
        # AttributeError: started with fd 0 closed, sys.stdin is None
        err = CniError(IO_FAILURE, "failed to read stdin", lastresort.describe(exc))
        emit(Outcome(1, _dump(err.to_dict(CURRENT)), f"{err}\n".encode()))
        return 1
    stdin_sink.append(stdin)
    outcome = run(funcs, os.environ, stdin)
    emit(outcome)
    return outcome.exit_code


def emit(outcome: Outcome) -> None:
    """Write an outcome to this process's stdout and stderr."""
    if outcome.stdout:
        sys.stdout.buffer.write(outcome.stdout)
        sys.stdout.buffer.flush()
    if outcome.stderr and (outcome.exit_code != 0):
        try:
            sys.stderr.buffer.write(outcome.stderr)
            sys.stderr.buffer.flush()
        except (OSError, AttributeError, ValueError):
            pass  # stdout carries the answer; a closed stderr (None) must not add a second one
