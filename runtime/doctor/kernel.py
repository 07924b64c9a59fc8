"""Parse what iproute2 prints with ``-j`` into facts (pure; the commands run in ``gather``)."""

from __future__ import annotations

import json
from typing import Any

from .facts import Link, Neighbour, Route, RouteLookup


def _load(text: str) -> list[dict[str, Any]]:
    """``ip -j`` output: a JSON list (empty output means an empty list).

    Raises:
        ValueError: not JSON, or not a list.
    """
    text = text.strip()
    if not text:
        return []
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("ip -j output is not a JSON list")
    return [d for d in data if isinstance(d, dict)]


def parse_links(text: str) -> tuple[Link, ...]:
    """``ip -j -d addr show`` -> links with their addresses, kind and bridge-port flags.

    Raises:
        ValueError: the text is not ``ip -j`` output.
    """
    out = []
    for d in _load(text):
        flags = d.get("flags") or []
        info = d.get("linkinfo") or {}
        slave = info.get("info_slave_data") or {}
        is_port = info.get("info_slave_kind") == "bridge"
        addrs = tuple(f"{a['local']}/{a['prefixlen']}" for a in d.get("addr_info") or []
                      if "local" in a and a.get("scope") != "link")
        out.append(Link(
            name=str(d.get("ifname", "")),
            index=int(d.get("ifindex", 0)),
            up="UP" in flags,
            lower_up="LOWER_UP" in flags,
            kind=str(info.get("info_kind", "")),
            master=d.get("master"),
            isolated=bool(slave.get("isolated")) if is_port else None,
            port_state=str(slave.get("state")) if is_port and "state" in slave else None,
            addresses=addrs,
        ))
    return tuple(out)


def parse_routes(text: str) -> tuple[Route, ...]:
    """``ip -j route show`` -> routes of the main table.

    Raises:
        ValueError: the text is not ``ip -j`` output.
    """
    return tuple(Route(dst=str(d.get("dst", "")), dev=d.get("dev"), gateway=d.get("gateway"))
                 for d in _load(text) if d.get("type", "unicast") == "unicast")


def parse_neighbours(text: str) -> tuple[Neighbour, ...]:
    """``ip -j neigh show`` -> entries (the first state word, e.g. REACHABLE).

    Raises:
        ValueError: the text is not ``ip -j`` output.
    """
    out = []
    for d in _load(text):
        state = d.get("state") or ["NONE"]
        out.append(Neighbour(address=str(d.get("dst", "")), dev=str(d.get("dev", "")),
                             state=str(state[0]), lladdr=d.get("lladdr")))
    return tuple(out)


def parse_route_get(dst: str, text: str, stderr: str = "", returncode: int = 0) -> RouteLookup:
    """``ip -j route get DST`` -> a lookup; a failure keeps the kernel's words.

    Raises:
        ValueError: success, but the text is not ``ip -j`` output.
    """
    if returncode != 0:
        err = stderr.strip().removeprefix("RTNETLINK answers:").strip() or f"ip route get failed ({returncode})"
        return RouteLookup(dst=dst, kind="unreachable", error=err)
    rows = _load(text)
    if not rows:
        return RouteLookup(dst=dst, kind="unreachable", error="no route")
    d = rows[0]
    kind = str(d.get("type", "unicast"))
    return RouteLookup(dst=dst, dev=d.get("dev"), gateway=d.get("gateway"), src=d.get("prefsrc"),
                       kind=kind, error=None if kind in ("unicast", "local") else kind)


def parse_sysctl(text: str) -> bool | None:
    """A 0/1 sysctl value; None when unreadable."""
    text = text.strip()
    return {"0": False, "1": True}.get(text)
