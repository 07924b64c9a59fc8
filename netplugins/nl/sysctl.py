"""Read and write /proc/sys in the current network namespace (net.* is per namespace)."""

from __future__ import annotations

import os


def sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/") if "/" not in key else f"/proc/sys/{key}"


def read(key: str) -> str | None:
    """The value of ``key`` ("net/ipv4/ip_forward"), or None when it does not exist."""
    try:
        with open(sysctl_path(key)) as fh:
            return fh.read().strip()
    except OSError:
        return None


def write(key: str, value: str) -> None:
    """Set ``key`` unless it already has ``value`` (saves a write and keeps audit logs quiet).

    Raises:
        OSError: when the key cannot be written.
    """
    if read(key) == value:
        return
    fd = os.open(sysctl_path(key), os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
