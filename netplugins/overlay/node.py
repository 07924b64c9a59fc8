"""The node file: what the sync process tells the plugin on the same host.

``<overlayDir>/node.json`` (``/run/netctl/overlay`` or ``$NETCTL_ROOT/run/overlay``) holds
the store URL, the node name, its underlay address, the MTU for overlay links and the etcd
lease the node's keys live under. The sync process writes it (atomically) after every
(re)grant of its lease; it is also its readiness signal (``pid`` is the writer).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

FILE = "node.json"


class NodeFileError(Exception):
    """No usable node file: the sync process is not running (or not ready)."""


@dataclass(frozen=True)
class NodeInfo:
    store: str
    node: str
    advertise: str
    mtu: int            # underlay MTU minus the VXLAN overhead
    lease: int          # etcd lease ID of this node's keys
    ttl: int
    pid: int            # the sync process


def write(overlay_dir: str, info: NodeInfo) -> None:
    """Raises: OSError."""
    os.makedirs(overlay_dir, exist_ok=True)
    path = os.path.join(overlay_dir, FILE)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(asdict(info), fh)
    os.rename(tmp, path)


def read(overlay_dir: str, require_alive: bool = True) -> NodeInfo:
    """The node file, if its sync process is alive (or whatever it says, for readers
    such as doctor that must work when the sync process is down).

    Raises:
        NodeFileError: missing, unreadable, or written by a process that is gone.
    """
    path = os.path.join(overlay_dir, FILE)
    try:
        with open(path) as fh:
            d = json.load(fh)
        info = NodeInfo(store=str(d["store"]), node=str(d["node"]), advertise=str(d["advertise"]),
                        mtu=int(d["mtu"]), lease=int(d["lease"]), ttl=int(d["ttl"]), pid=int(d["pid"]))
    except FileNotFoundError:
        raise NodeFileError(f"the overlay sync process is not running on this host (no {path})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NodeFileError(f"unreadable overlay node file {path}: {exc}") from None
    if require_alive and not _alive(info.pid):
        raise NodeFileError(f"the overlay sync process (pid {info.pid}) of this host is not running")
    return info


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read()
        with open(f"/proc/{pid}/stat") as fh:
            zombie = fh.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return False
    return not zombie and b"runtime.overlay.syncd" in argv
