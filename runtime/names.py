"""Containers named by name in error messages (pure).

Plugins only know container IDs: host-local says "in use by container <64 hex>", portmap's
details carry owner tags ("netctl net=n1 cid=<id> if=eth0"). Users know names, and
Docker's messages name the container, so the runtime rewrites what it shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: an owner tag of the firewall (netplugins/firewall/ports.py attachment_tag); the cid may
#: be abbreviated as "<prefix>~<hash>" when the whole tag would be too long
_TAG = re.compile(r"\(?netctl net=\S+ cid=([0-9a-f]+)(?:~[0-9a-z]+)? if=(\S+?)\)?(?=[\s;,]|$)")
_ID = re.compile(r"\b[0-9a-f]{64}\b")


def _lookup(cid: str, names: Mapping[str, str]) -> str | None:
    if cid in names:
        return names[cid]
    hits = [name for full, name in names.items() if full.startswith(cid)]
    return hits[0] if len(hits) == 1 else None


def name_containers(msg: str, names: Mapping[str, str]) -> str:
    """``msg`` with container IDs and owner tags replaced by container names (``names``:
    ID -> name). IDs that belong to no known container stay as they are."""
    def tag(m: re.Match[str]) -> str:
        name = _lookup(m.group(1), names)
        return f"container {name} ({m.group(2)})" if name else m.group(0)

    def full_id(m: re.Match[str]) -> str:
        return names.get(m.group(0), m.group(0))

    return _ID.sub(full_id, _TAG.sub(tag, msg))
