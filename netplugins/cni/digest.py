"""The digest of an attachment (container ID + interface name): veth names and lock files.

The builtin SHA-256 (same digest as hashlib's): hashlib would load OpenSSL, ~2.5 ms in
every plugin process.
"""

from __future__ import annotations

try:
    from _sha256 import sha256  # CPython <= 3.11
except ImportError:  # pragma: no cover - 3.12 renamed it; hashlib is the portable way
    from hashlib import sha256


def attachment_digest(container_id: str, ifname: str) -> str:
    """Hex SHA-256 of ``container_id NUL ifname`` (undecodable bytes kept, never raises)."""
    return sha256(f"{container_id}\0{ifname}".encode("utf-8", "surrogateescape")).hexdigest()
