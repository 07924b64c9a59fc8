"""Container capabilities as Docker grants them (pure).

A container starts with Docker's default set (``DEFAULT``: no NET_ADMIN, SYS_ADMIN,
SYS_MODULE ...); ``--cap-add`` / ``--cap-drop`` / ``--privileged`` change it with
Docker's rules (moby ``oci/caps.TweakCapabilities``):

- ``--privileged``: every capability, whatever the other two say;
- ``--cap-add ALL``: every capability except those dropped;
- ``--cap-drop ALL``: only those added;
- otherwise: the default set, minus the dropped, plus the added.

Names are case-insensitive, with or without the ``CAP_`` prefix; an unknown name is an
error. The launcher (``runtime/launch.py``) receives the resulting set as numbers and
applies it to the bounding, permitted and effective sets (inheritable and ambient stay
empty, as in Docker since CVE-2022-24769) with ``no_new_privs``.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import NetctlError

#: capability numbers of linux/capability.h
NUMBERS: dict[str, int] = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
NAMES: dict[int, str] = {n: name for name, n in NUMBERS.items()}

#: Docker's default set (moby oci/caps/defaults.go), in its order
DEFAULT: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
ALL = "ALL"


def last_cap() -> int:
    """The highest capability the running kernel knows (``/proc/sys/kernel/cap_last_cap``);
    the highest we know when it cannot be read."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            return min(int(fh.read().strip()), max(NAMES))
    except (OSError, ValueError):
        return max(NAMES)


def all_caps(last: int | None = None) -> tuple[str, ...]:
    """Every capability up to ``last`` (default: the running kernel's), by number."""
    top = last_cap() if last is None else last
    return tuple(NAMES[n] for n in sorted(NAMES) if n <= top)


def normalize(names: Iterable[str], option: str) -> list[str]:
    """``["net_admin", "CAP_SYS_TIME", "all"]`` -> ``["CAP_NET_ADMIN", "CAP_SYS_TIME", "ALL"]``,
    without duplicates.

    Raises:
        NetctlError: an unknown capability name (naming the option it came from).
    """
    out: list[str] = []
    for raw in names:
        name = raw.strip().upper()
        if name != ALL and not name.startswith("CAP_"):
            name = "CAP_" + name
        if name != ALL and name not in NUMBERS:
            raise NetctlError(f"invalid {option} {raw!r}: unknown capability "
                              "(see capabilities(7); ALL means every one)")
        if name not in out:
            out.append(name)
    return out


def effective(cap_add: Iterable[str] = (), cap_drop: Iterable[str] = (), privileged: bool = False,
              last: int | None = None) -> tuple[str, ...]:
    """The capabilities a container gets, sorted by number (Docker's rules, module docstring).

    Raises:
        NetctlError: an unknown capability name.
    """
    every = all_caps(last)
    if privileged:
        return every
    add = normalize(cap_add, "--cap-add")
    drop = normalize(cap_drop, "--cap-drop")
    if ALL in add:
        chosen = {c for c in every if c not in drop}
    elif ALL in drop:
        chosen = set(add)
    else:
        chosen = (set(DEFAULT) - set(drop)) | set(add)
    # a name the running kernel does not know cannot be granted
    return tuple(c for c in every if c in chosen)


def numbers(caps: Iterable[str]) -> list[int]:
    """Capability names -> numbers (for the launcher's ``--caps``)."""
    return sorted(NUMBERS[c] for c in caps)


def decode_mask(mask: int) -> tuple[str, ...]:
    """A ``CapEff:`` mask of /proc/PID/status -> names (unknown bits as ``CAP_<n>``)."""
    return tuple(NAMES.get(n, f"CAP_{n}") for n in range(mask.bit_length()) if mask >> n & 1)
