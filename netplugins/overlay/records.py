"""This host's own overlay endpoints, on disk (``<overlayDir>/endpoints/<net>/<cid>-<if>.json``).

The store holds every endpoint under the node's lease; these files are what the node knows
without the store: DEL finds the address and bridge to release, and a sync process that
(re)starts republishes them under its new lease and deletes keys of its node that have no
file (a DEL that ran while etcd was unreachable).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .model import EndpointRec, RecordError


@dataclass(frozen=True)
class Local:
    endpoint: EndpointRec
    bridge: str
    vni: int


def _dir(overlay_dir: str, network: str) -> str:
    return os.path.join(overlay_dir, "endpoints", network)


def path(overlay_dir: str, network: str, container_id: str, ifname: str) -> str:
    return os.path.join(_dir(overlay_dir, network), f"{container_id}-{ifname}.json")


def put(overlay_dir: str, rec: Local) -> None:
    """Raises: OSError."""
    ep = rec.endpoint
    p = path(overlay_dir, ep.network, ep.container_id, ep.ifname)
    os.makedirs(os.path.dirname(p), mode=0o700, exist_ok=True)
    tmp = f"{p}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump({"endpoint": json.loads(ep.to_json()), "bridge": rec.bridge, "vni": rec.vni}, fh)
    os.rename(tmp, p)


def _load(p: str) -> Local | None:
    try:
        with open(p) as fh:
            d = json.load(fh)
        return Local(EndpointRec.from_json(json.dumps(d["endpoint"])), str(d["bridge"]), int(d["vni"]))
    except (OSError, ValueError, KeyError, TypeError, RecordError):
        return None


def get(overlay_dir: str, network: str, container_id: str, ifname: str) -> Local | None:
    return _load(path(overlay_dir, network, container_id, ifname))


def remove(overlay_dir: str, network: str, container_id: str, ifname: str) -> None:
    try:
        os.unlink(path(overlay_dir, network, container_id, ifname))
    except FileNotFoundError:
        pass


def all_local(overlay_dir: str, network: str | None = None) -> list[Local]:
    """Every record (of one network, or of all)."""
    base = os.path.join(overlay_dir, "endpoints")
    try:
        nets = [network] if network else sorted(os.listdir(base))
    except FileNotFoundError:
        return []
    out = []
    for net in nets:
        try:
            files = sorted(os.listdir(os.path.join(base, net)))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for f in files:
            if f.endswith(".json"):
                rec = _load(os.path.join(base, net, f))
                if rec is not None:
                    out.append(rec)
    return out
