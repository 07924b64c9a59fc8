"""Where the store is and who this node is: flags, else NETCTL_STORE, NETCTL_NODE,
NETCTL_ADVERTISE, NETCTL_STORE_TTL."""

from __future__ import annotations

import os
import socket

DEFAULT_TTL = 30


def store_url(flag: str | None = None, env: dict[str, str] | None = None) -> str:
    """The store URL, or "" when none is configured (no overlays, everything as before)."""
    env = dict(os.environ) if env is None else env
    return (flag or env.get("NETCTL_STORE", "")).strip()


def node_name(flag: str | None = None, env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env
    return flag or env.get("NETCTL_NODE", "") or socket.gethostname()


def advertise(flag: str | None = None, env: dict[str, str] | None = None) -> str:
    """Raises: netplugins.overlay.vxlan.DataplaneError when there is no default route."""
    env = dict(os.environ) if env is None else env
    value = flag or env.get("NETCTL_ADVERTISE", "")
    if value:
        return value
    # lazy: the VXLAN module runs ip; only a default source address needs it
    from netplugins.overlay.vxlan import default_source

    return default_source()


def ttl(flag: int | None = None, env: dict[str, str] | None = None) -> int:
    """Raises: ValueError for a TTL that is not a positive integer."""
    env = dict(os.environ) if env is None else env
    value = flag if flag is not None else int(env.get("NETCTL_STORE_TTL", DEFAULT_TTL))
    if value < 2:
        raise ValueError(f"store TTL must be at least 2 seconds, not {value}")
    return value
