"""GC input: the attachments the runtime still considers valid (spec 1.1, GC)."""

from __future__ import annotations

from .errors import INVALID_CONFIG, CniError
from .netconf import decode_json


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
