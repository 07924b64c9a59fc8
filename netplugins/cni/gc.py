"""GC input: the attachments the runtime still considers valid (spec 1.1, GC)."""

from __future__ import annotations

from .errors import INVALID_CONFIG, CniError
from .netconf import decode_json

#: a netctl extension of the GC input: ``true`` when the runtime keeps the network (its
#: periodic ``netctl gc``), absent when the GC is the network's last (``netctl network rm``).
#: Network-wide state a user would notice (host-local's round-robin position) then stays;
#: other plugins ignore it, as they must ignore keys they do not know (spec: plugin config).
KEEP_NETWORK = "netctl.dev/keep-network"


def keeps_network(conf: dict[str, object]) -> bool:
    """Whether the runtime said the network stays (:data:`KEEP_NETWORK`)."""
    return conf.get(KEEP_NETWORK) is True


def valid_attachments(stdin: bytes) -> set[tuple[str, str]]:
    """``{(containerID, ifname)}`` from ``cni.dev/valid-attachments``.

    Accepts the early name ``cni.dev/attachments`` too (cni#1101); libcni sends both. An
    empty list is meaningful (release everything); a missing key is refused rather than
    read as empty, because guessing "nothing is valid" would tear down live containers.

    Raises:
        CniError: code 7 when the key is missing or the list is malformed.
    """
    conf = decode_json(stdin)
    raw = conf.get("cni.dev/valid-attachments")
    if raw is None:
        raw = conf.get("cni.dev/attachments")
    if raw is None:
        raise CniError(INVALID_CONFIG, "invalid config: GC needs cni.dev/valid-attachments")
    if not isinstance(raw, list):
        raise CniError(INVALID_CONFIG, "invalid config: cni.dev/valid-attachments must be a list")
    out: set[tuple[str, str]] = set()
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("containerID"), str):
            raise CniError(INVALID_CONFIG, "invalid config: malformed entry in cni.dev/valid-attachments",
                           repr(item))
        out.add((item["containerID"], str(item.get("ifname", ""))))
    return out
