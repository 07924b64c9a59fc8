"""Run another plugin: find its executable on CNI_PATH and exec it (spec section 4).

Used for IPAM delegation. When the executable found is one of ours, the command function
is called in this process instead of exec'ing it: the same code, environment and stdin,
without paying another interpreter start-up. Any other plugin (the reference host-local,
dhcp, ...) is exec'd exactly as a runtime would.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Mapping

from ..registry import IPAM_PLUGINS, is_our_plugin, load_funcs
from . import errors
from .errors import CniError
from .skel import run
from .types import Result
from .version import at_least


def find_in_path(ptype: str, path: tuple[str, ...]) -> str:
    """The executable for ``ptype`` in the CNI_PATH directories.

    Raises:
        CniError: code 103 naming the type and the path when it is not found.
    """
    if not ptype or "/" in ptype:
        raise CniError(errors.INVALID_CONFIG, f"invalid plugin type {ptype!r}")
    for directory in path:
        candidate = os.path.join(directory, ptype)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CniError(errors.DELEGATE_FAILURE,
                   f"failed to find plugin {ptype!r} in path {list(path)}")


def exec_plugin(exe: str, env: Mapping[str, str], stdin: bytes) -> bytes:
    """Exec a plugin; return its stdout.

    Raises:
        CniError: the plugin's own error object, or code 103 when it could not be run or
            printed no error object.
    """
    # lazy: only foreign plugins are exec'd: ~5 ms of imports otherwise spent
    import subprocess

    for attempt in range(6):
        try:
            proc = subprocess.run([exe], input=stdin, env=dict(env), capture_output=True, timeout=120)
            break
        except OSError as exc:
            # libcni retries "text file busy": the binary is being replaced
            if exc.errno == errno.ETXTBSY and attempt < 5:
                time.sleep(0.2)
                continue
            raise CniError(errors.DELEGATE_FAILURE, f"failed to run plugin {exe!r}", str(exc)) from None
        except subprocess.TimeoutExpired:
            raise CniError(errors.TRY_AGAIN_LATER, f"plugin {exe!r} timed out") from None
    if proc.returncode == 0:
        return proc.stdout
    try:
        obj = json.loads(proc.stdout)
        if isinstance(obj, dict) and "code" in obj:
            raise CniError.from_dict(obj)
    except ValueError:
        pass
    text = (proc.stderr or proc.stdout).decode(errors="replace").strip()
    raise CniError(errors.DELEGATE_FAILURE, f"plugin {exe!r} failed with status {proc.returncode}", text)


def delegate(ptype: str, command: str, stdin: bytes, env: Mapping[str, str],
             path: tuple[str, ...]) -> bytes:
    """Run ``ptype`` with CNI_COMMAND=``command`` and the same stdin; return its stdout.

    Used for IPAM delegation: when ``ptype`` turns out to be one of our plugins that is not
    an IPAM plugin, it is refused (it would delegate to itself).

    Raises:
        CniError: as :func:`exec_plugin`, or what our in-process plugin raised; code 7 for
            our own non-IPAM plugin.
    """
    exe = find_in_path(ptype, path)
    child_env = dict(env)
    child_env["CNI_COMMAND"] = command
    ours = is_our_plugin(exe)
    if ours is not None:
        if ours not in IPAM_PLUGINS:
            # e.g. a link named like an IPAM plugin to our bridge: it would delegate to itself
            raise CniError(errors.INVALID_CONFIG, f"invalid config: plugin {ptype!r} ({exe}) is "
                           f"netctl's {ours!r} plugin, not an IPAM plugin")
        try:
            funcs = load_funcs(ours)
        except (KeyError, ImportError):
            funcs = None
        if funcs is not None:
            outcome = run(funcs, child_env, stdin)
            if outcome.exit_code == 0:
                return outcome.stdout
            raise CniError.from_dict(json.loads(outcome.stdout))
    return exec_plugin(exe, child_env, stdin)


def speaks_gc(ptype: str, env: Mapping[str, str], path: tuple[str, ...]) -> bool:
    """Whether the IPAM plugin ``ptype`` supports GC (CNI 1.1.0 or later, per its VERSION).

    Ours do. A foreign one is asked: the Debian reference host-local stops at 1.0.0 and
    answers GC with "missing containerID", and the main plugin's GC (a network's removal)
    must not fail because its IPAM is older; that IPAM's leases then stay where they are.

    Raises:
        CniError: code 103 when the plugin is not on the path.
    """
    exe = find_in_path(ptype, path)
    if is_our_plugin(exe) is not None:
        return True
    child_env = dict(env)
    child_env["CNI_COMMAND"] = "VERSION"
    try:
        answer = json.loads(exec_plugin(exe, child_env, b'{"cniVersion": "1.1.0"}'))
        versions = answer.get("supportedVersions") or []
        return any(at_least(str(v), "1.1.0") for v in versions)
    except (CniError, ValueError, AttributeError):
        return False  # no usable VERSION answer: it will not understand GC either


def delegate_add(ptype: str, stdin: bytes, env: Mapping[str, str], path: tuple[str, ...]) -> Result:
    """IPAM ADD: run the delegate and parse its result.

    Raises:
        CniError: the delegate's error, or code 6 for an unreadable result.
    """
    out = delegate(ptype, "ADD", stdin, env, path)
    try:
        return Result.from_dict(json.loads(out))
    except ValueError as exc:
        raise CniError(errors.DECODE_FAILURE, f"failed to decode the result of {ptype!r}", str(exc)) from None
