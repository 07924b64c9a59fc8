"""What a plugin executable runs: ask the warm daemon, else run in this process.

Imported by every plugin call, so it uses the standard library only and nothing else of
ours until it knows it must run the plugin in-process. The daemon (netplugins.daemon)
keeps pyroute2, netaddr and the plugin modules imported and forks a worker per call that
enters the caller's mount and network namespaces, so the outcome is the same as running
here.
"""

from __future__ import annotations

import array
import base64
import json
import os
import socket
import struct
import sys

DEFAULT_SOCKET = "/run/netctl/plugind.sock"
_HDR = struct.Struct("!I")


def socket_path(env: dict[str, str] | os._Environ[str]) -> str | None:
    """Where the daemon listens, or None when the caller disabled it (NETCTL_PLUGIND=0)."""
    if env.get("NETCTL_PLUGIND", "1") in ("0", "off", "no", "false"):
        return None
    return env.get("NETCTL_PLUGIND_SOCKET") or DEFAULT_SOCKET


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes. Raises: ConnectionError on a short read."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("daemon closed the connection")
        buf += chunk
    return bytes(buf)


def call_daemon(path: str, ptype: str, env: dict[str, str], stdin: bytes) -> tuple[int, bytes, bytes]:
    """Run the plugin in the daemon; return (exit code, stdout, stderr).

    Our network and mount namespaces travel as file descriptors (SCM_RIGHTS), so the
    worker acts where we would have acted.

    Raises:
        OSError: when no daemon answers (the caller falls back to running in-process).
    """
    req = json.dumps({"type": ptype, "env": env,
                      "stdin": base64.b64encode(stdin).decode()}).encode()
    fds = [os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC),
           os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(path)
            sock.sendmsg([_HDR.pack(len(req)), req],
                         [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
            (size,) = _HDR.unpack(recv_exact(sock, _HDR.size))
            reply = json.loads(recv_exact(sock, size))
    finally:
        for fd in fds:
            os.close(fd)
    return (int(reply["exit"]), base64.b64decode(reply["stdout"]), base64.b64decode(reply["stderr"]))


def main(ptype: str) -> None:
    """Entry point of the executable named ``ptype``."""
    env = dict(os.environ)
    path = socket_path(env) if env.get("CNI_COMMAND") else None
    if path is not None:
        try:
            stdin = sys.stdin.buffer.read()
        except OSError:
            stdin = None
        if stdin is not None:
            try:
                code, out, err = call_daemon(path, ptype, env, stdin)
            except (OSError, ValueError, KeyError):
                code = -1
            if code >= 0:
                sys.stdout.buffer.write(out)
                sys.stdout.buffer.flush()
                if err:
                    sys.stderr.buffer.write(err)
                sys.exit(code)
            _run_here(ptype, env, stdin)
    from netplugins.registry import PLUGINS

    import importlib

    importlib.import_module(PLUGINS[ptype]).main()


def _run_here(ptype: str, env: dict[str, str], stdin: bytes) -> None:
    """No daemon: run the plugin in this process with stdin already read."""
    from netplugins.cni.skel import emit, run
    from netplugins.registry import load_funcs

    import logging

    logging.basicConfig(level=env.get("NETCTL_LOG_LEVEL", "WARNING").upper(), stream=sys.stderr,
                        format="%(name)s: %(message)s")
    outcome = run(load_funcs(ptype), env, stdin)
    emit(outcome)
    sys.exit(outcome.exit_code)
