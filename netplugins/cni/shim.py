"""What a plugin executable runs: ask the warm daemon, else run in this process.

Imported by every plugin call, so it imports only what is built in or C (``posix``,
``_socket``): ``json`` and ``socket`` alone would add ~13 ms (they pull in ``re`` and
``enum``), ``os`` ~1.3 ms and ``_struct`` ~0.3 ms under ``python -IS`` (which imports no
``site``, so no ``os`` either); headers are packed with ``int.to_bytes`` instead. The
daemon (netplugins.daemon) keeps pyroute2, netaddr and the plugin modules imported and
forks a worker per call that enters the caller's mount and network namespaces, so the
outcome is the same as running here.

Wire format (both directions, one message each way on a Unix stream socket):
  request: !III (len type, len env, len stdin), type, env as b"K=V\\0...", stdin;
           our /proc/self/ns/net and /proc/self/ns/mnt as SCM_RIGHTS on the first bytes
  ack:     one byte b"A" as soon as the worker holds the whole request
  reply:   !iII (exit code, len stdout, len stderr), stdout, stderr

Only a call that was never acknowledged may be run again in-process: after the ack the
worker may have changed the kernel, so a broken connection then is reported, not retried.
"""

import _socket
import posix
import sys

DEFAULT_SOCKET = "/run/netctl/plugind.sock"
#: what every plugin of ours answers to VERSION (a test keeps it equal to their FUNCS.versions)
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
REQ_HDR = "!III"
REP_HDR = "!iII"
ACK = b"A"


class DaemonLost(Exception):
    """The daemon took the call and then went away: the outcome is unknown."""


def _u32(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, "big") for v in values)


def _native_ints(values: list[int]) -> bytes:
    """``struct.pack(f"{n}i", *values)``: SCM_RIGHTS wants the machine's own int layout."""
    return b"".join(v.to_bytes(4, sys.byteorder, signed=True) for v in values)


def socket_path(env: dict[str, str]) -> str | None:
    """Where the daemon listens, or None when the caller disabled it (NETCTL_PLUGIND=0)."""
    if env.get("NETCTL_PLUGIND", "1") in ("0", "off", "no", "false"):
        return None
    return env.get("NETCTL_PLUGIND_SOCKET") or DEFAULT_SOCKET


def recv_exact(sock: _socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes. Raises: ConnectionError on a short read."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        buf += chunk
    return buf


def encode_env(env: dict[str, str]) -> bytes:
    return b"\0".join(f"{k}={v}".encode("utf-8", "surrogateescape") for k, v in env.items())


def decode_env(blob: bytes) -> dict[str, str]:
    out = {}
    for item in blob.split(b"\0"):
        if item:
            key, _, value = item.decode("utf-8", "surrogateescape").partition("=")
            out[key] = value
    return out


def call_daemon(path: str, ptype: str, env: dict[str, str], stdin: bytes) -> tuple[int, bytes, bytes]:
    """Run the plugin in the daemon; return (exit code, stdout, stderr).

    Raises:
        OSError: the call never reached a worker (the caller may run it in-process).
        DaemonLost: a worker took the call but no reply came (it must not run again).
    """
    tbytes = ptype.encode()
    eblob = encode_env(env)
    head = _u32(len(tbytes), len(eblob), len(stdin))  # REQ_HDR
    fds = [posix.open("/proc/self/ns/net", posix.O_RDONLY | posix.O_CLOEXEC),
           posix.open("/proc/self/ns/mnt", posix.O_RDONLY | posix.O_CLOEXEC)]
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
        sock.sendmsg([head + tbytes], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, _native_ints(fds))])
        sock.sendall(eblob + stdin)
        if recv_exact(sock, 1) != ACK:
            raise ConnectionError("unexpected answer from the plugin daemon")
        try:
            rep = recv_exact(sock, 12)  # REP_HDR
            code = int.from_bytes(rep[:4], "big", signed=True)
            nout, nerr = int.from_bytes(rep[4:8], "big"), int.from_bytes(rep[8:], "big")
            body = recv_exact(sock, nout + nerr)
        except OSError as exc:
            raise DaemonLost(str(exc)) from None
    finally:
        sock.close()
        for fd in fds:
            posix.close(fd)
    return code, body[:nout], body[nout:]


def config_version(stdin: bytes) -> str | None:
    """The ``cniVersion`` string of a config, found without a JSON parser; None when the
    input is not plainly a JSON object with one such key (the full path handles those)."""
    text = stdin.strip()
    if not text.startswith(b"{") or not text.endswith(b"}") or text.count(b'"cniVersion"') != 1:
        return None
    rest = text.split(b'"cniVersion"', 1)[1].lstrip()
    if not rest.startswith(b":"):
        return None
    rest = rest[1:].lstrip()
    if not rest.startswith(b'"'):
        return None
    end = rest.find(b'"', 1)
    value = rest[1:end]
    if end < 2 or len(value) > 16 or any(c not in b"0123456789." for c in value):
        return None
    return value.decode()


def answer_version(stdin: bytes) -> bytes | None:
    """VERSION needs no plugin code: answer it here, or None to take the normal path."""
    version = config_version(stdin)
    if version is None:
        return None
    listed = ",\n    ".join(f'"{v}"' for v in SUPPORTED_VERSIONS)
    return (f'{{\n  "cniVersion": "{version}",\n  "supportedVersions": [\n    {listed}\n  ]\n}}\n').encode()


def main(ptype: str) -> None:
    """Entry point of the executable named ``ptype``: prints an error object, never a
    traceback, whatever fails (reading stdin, the daemon's socket, importing the plugin)."""
    try:
        _main(ptype)
    except Exception as exc:  # noqa: BLE001 - SystemExit (the normal exit) passes
        _last_resort(exc)


def _main(ptype: str) -> None:
    env = {k.decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape")
           for k, v in posix.environ.items()}
    if env.get("CNI_COMMAND") == "VERSION":
        try:
            stdin_v = sys.stdin.buffer.read()
        except (OSError, AttributeError):  # no stdin at all: sys.stdin is None
            stdin_v = b""
        quick = answer_version(stdin_v)
        if quick is not None:
            sys.stdout.buffer.write(quick)
            sys.stdout.buffer.flush()
            sys.exit(0)
        _run_here(ptype, env, stdin_v)
    path = socket_path(env) if env.get("CNI_COMMAND") else None
    if path is not None:
        try:
            stdin = sys.stdin.buffer.read()
        except (OSError, AttributeError):
            stdin = None
        if stdin is not None:
            try:
                code, out, err = call_daemon(path, ptype, env, stdin)
            except DaemonLost as exc:
                code, out, err = 1, _lost_error(stdin, str(exc)), b"netplugins: plugin daemon lost the call\n"
            except (OSError, ValueError):
                code = -1
            if code >= 0:
                if out:
                    sys.stdout.buffer.write(out)
                    sys.stdout.buffer.flush()
                if err and sys.stderr is not None:  # None: started with fd 2 closed
                    sys.stderr.buffer.write(err)
                    sys.stderr.buffer.flush()
                sys.exit(code)
            _run_here(ptype, env, stdin)
    if env.get("CNI_COMMAND"):
        try:
            stdin = sys.stdin.buffer.read()
        except (OSError, AttributeError):
            stdin = None  # unreadable: the skeleton below reports it (code 5)
        if stdin is not None:
            _run_here(ptype, env, stdin)
    # lazy: the fast path through the agent loads no plugin code
    import importlib

    # lazy: the fast path through the agent loads no plugin code
    from netplugins.registry import PLUGINS

    importlib.import_module(PLUGINS[ptype]).main()


def _lost_error(stdin: bytes, why: str) -> bytes:
    """Code 11 (try again later): the daemon died mid-call, what it did is unknown; the
    runtime's DEL (always sent after a failed ADD) cleans up whatever was done."""
    version = "1.1.0"
    marker = b'"cniVersion"'
    at = stdin.find(marker)
    if at >= 0:
        rest = stdin[at + len(marker):].lstrip(b" \t\r\n:")
        if rest[:1] == b'"':
            end = rest.find(b'"', 1)
            if 0 < end < 20:
                version = rest[1:end].decode("ascii", "replace")
    return (f'{{"cniVersion": "{version}", "code": 11, '
            f'"msg": "the plugin daemon stopped while running the command", '
            f'"details": "{why.replace(chr(34), chr(39))}"}}\n').encode()


def _run_here(ptype: str, env: dict[str, str], stdin: bytes) -> None:
    """No daemon: run the plugin in this process with stdin already read, holding the
    call's attachment lock (netplugins.cni.attlock) as a daemon worker would."""
    try:
        # lazy: the fast path through the agent loads no plugin code
        from netplugins.cni.attlock import LockTimeout, attachment_lock
        from netplugins.cni.errors import CniError
        from netplugins.cni.skel import configure_logging, emit, error_outcome, run
        from netplugins.registry import load_funcs

        funcs = load_funcs(ptype)
        configure_logging(env)  # after the import: only if something there uses logging
        try:
            with attachment_lock(env):
                outcome = run(funcs, env, stdin)
        except LockTimeout as exc:
            outcome = error_outcome(CniError(11, "another plugin call on this attachment is still "
                                             "running", str(exc)), stdin)
        except OSError as exc:
            outcome = error_outcome(CniError(5, "cannot take the attachment lock", str(exc)), stdin)
        emit(outcome)
        code = outcome.exit_code
    except Exception as exc:  # noqa: BLE001 - e.g. the plugin module failed to import
        _last_resort(exc, stdin)
    sys.exit(code)


def _last_resort(exc: BaseException, stdin: bytes | None = None) -> None:
    """Print the error object for ``exc`` (never a traceback) and exit 1."""
    # lazy: the fast path through the agent loads no plugin code
    from netplugins.cni.lastresort import fail

    if stdin is None:
        try:
            stdin = sys.stdin.buffer.read()
        except Exception:  # noqa: BLE001
            stdin = b""
    sys.exit(fail(stdin, exc, "failed to run the plugin"))
