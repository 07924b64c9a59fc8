"""The CNI_* environment: parse and validate it (spec section 2, "Parameters")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import INVALID_ENV, UNKNOWN_CONTAINER, CniError

COMMANDS = ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION")
#: matched with fullmatch: ``$`` would also accept a trailing newline (a lease file named "x\n.db")
CONTAINER_ID_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]*")
IFNAMSIZ = 15
#: the variables a plugin reads; each must be valid UTF-8 (code 4 otherwise)
ENV_VARS = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH")


@dataclass(frozen=True)
class CmdArgs:
    """One plugin invocation: what the runtime passed through the environment and stdin."""

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    #: CNI_ARGS as a dict
    args: dict[str, str] = field(default_factory=dict)
    #: CNI_PATH split on ':'
    path: tuple[str, ...] = ()
    stdin: bytes = b""
    #: the whole environment, passed on to delegated plugins
    env: Mapping[str, str] = field(default_factory=dict)


def is_utf8(text: str) -> bool:
    """False when ``text`` holds lone surrogates: bytes that were not UTF-8 in the
    environment (os.environ decodes them with surrogateescape) or a JSON ``\\udcxx`` escape."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_ifname(name: str) -> None:
    """Refuse an interface name the kernel would refuse (utils.ValidateInterfaceName).

    The kernel counts bytes (IFNAMSIZ includes the NUL), so the limit is on the UTF-8
    length; a name that is not UTF-8 could not be passed on to netlink or printed in a
    result, so it is refused here rather than failing half-way (it was code 100).

    Raises:
        CniError: code 4 naming CNI_IFNAME.
    """
    if not name:
        raise CniError(INVALID_ENV, "CNI_IFNAME is empty")
    if not is_utf8(name):
        raise CniError(INVALID_ENV, f"CNI_IFNAME {name!r} is not valid UTF-8")
    if len(name.encode()) > IFNAMSIZ:
        raise CniError(INVALID_ENV, f"CNI_IFNAME {name!r} is longer than {IFNAMSIZ} bytes")
    if name in (".", ".."):
        raise CniError(INVALID_ENV, f"CNI_IFNAME {name!r} is not a valid interface name")
    for ch in name:
        if ch in "/:\0" or ch.isspace() or not ch.isprintable():
            raise CniError(INVALID_ENV, f"CNI_IFNAME {name!r} contains an invalid character {ch!r}")


def parse_cni_args(text: str) -> dict[str, str]:
    """Parse ``K1=V1;K2=V2`` into a dict (``IgnoreUnknown`` kept; see :func:`check_known_args`).

    Raises:
        CniError: code 4 naming CNI_ARGS for a pair without '='.
    """
    out: dict[str, str] = {}
    if not text:
        return out
    for pair in text.split(";"):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CniError(INVALID_ENV, f"CNI_ARGS is invalid: {pair!r} is not KEY=VALUE")
        out[key] = value
    return out


def check_known_args(args: dict[str, str], known: frozenset[str]) -> None:
    """Apply the reference's IgnoreUnknown rule (pkg/types/args.go LoadArgs).

    A key the plugin does not know is an error unless ``IgnoreUnknown`` is 1 or true, which
    containerd and podman always send.

    Raises:
        CniError: code 4 naming the unknown key.
    """
    ignore = args.get("IgnoreUnknown", "").lower() in ("1", "true")
    if ignore:
        return
    for key in args:
        if key != "IgnoreUnknown" and key not in known:
            raise CniError(INVALID_ENV, f"CNI_ARGS: unknown argument {key!r}",
                           "set IgnoreUnknown=1 to ignore arguments this plugin does not use")


def parse_env(env: Mapping[str, str], stdin: bytes = b"") -> CmdArgs:
    """Build :class:`CmdArgs` from the environment, validating what the command needs.

    Like the reference skel: ADD and CHECK need CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME;
    DEL needs CNI_CONTAINERID and CNI_IFNAME (CNI_NETNS is optional); GC and STATUS need
    none of these. CNI_PATH is needed only by plugins that delegate, which say so.

    Raises:
        CniError: code 4 naming every missing or invalid variable, code 3 for an empty
            container ID where one is required.
    """
    for var in ENV_VARS:
        if not is_utf8(env.get(var, "")):
            raise CniError(INVALID_ENV, f"{var} {env[var]!r} is not valid UTF-8")
    command = env.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        if not command:
            raise CniError(INVALID_ENV, "required env variables [CNI_COMMAND] missing")
        raise CniError(INVALID_ENV, f"CNI_COMMAND {command!r} is not one of {', '.join(COMMANDS)}")
    needs_attachment = command in ("ADD", "DEL", "CHECK")
    missing = []
    if needs_attachment:
        for var in ("CNI_CONTAINERID", "CNI_IFNAME"):
            if var not in env:
                missing.append(var)
        if command != "DEL" and not env.get("CNI_NETNS"):
            missing.append("CNI_NETNS")
    if missing:
        raise CniError(INVALID_ENV, f"required env variables [{', '.join(missing)}] missing")
    container_id = env.get("CNI_CONTAINERID", "")
    ifname = env.get("CNI_IFNAME", "")
    if needs_attachment:
        if not container_id:
            raise CniError(UNKNOWN_CONTAINER, "CNI_CONTAINERID is empty")
        if not CONTAINER_ID_RE.fullmatch(container_id):
            raise CniError(INVALID_ENV, f"CNI_CONTAINERID {container_id!r} is invalid",
                           "it must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")
        validate_ifname(ifname)
    netns = env.get("CNI_NETNS", "")
    if netns and not netns.startswith("/"):
        raise CniError(INVALID_ENV, f"CNI_NETNS {netns!r} must be an absolute path")
    if "\0" in netns:
        raise CniError(INVALID_ENV, f"CNI_NETNS {netns!r} contains a NUL character")
    path = tuple(p for p in env.get("CNI_PATH", "").split(":") if p)
    return CmdArgs(
        command=command,
        container_id=container_id,
        netns=netns,
        ifname=ifname,
        args=parse_cni_args(env.get("CNI_ARGS", "")),
        path=path,
        stdin=stdin,
        env=dict(env),
    )
