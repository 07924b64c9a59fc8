"""Running the ``nft`` command (both nftables drivers: networks and published ports)."""

from __future__ import annotations

import shutil
import subprocess

from .errors import FirewallError

#: CNI runtimes may pass a short PATH; nft lives in sbin on Debian
_FALLBACK_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"


def find_nft() -> str | None:
    """Path of the ``nft`` executable, or ``None`` when it is not installed."""
    return shutil.which("nft") or shutil.which("nft", path=_FALLBACK_PATH)


def run_nft(nft: str, args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``nft args`` (with ``stdin`` as a script for ``-f -``) and capture its output.

    Raises:
        FirewallError: nft could not be started or did not finish within 60 s.
    """
    try:
        return subprocess.run([nft, *args], input=stdin, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FirewallError(f"cannot run {nft}", str(exc)) from None
