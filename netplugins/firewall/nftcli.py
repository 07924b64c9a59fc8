"""Running nft commands (both nftables drivers: networks and published ports; doctor).

A command runs through libnftables in this process when the library loads (``libnft``),
else through the ``nft`` executable; both give the same exit code, output and error text.
``NETCTL_NFT=cli`` forces the executable (tests run both ways).
"""

from __future__ import annotations

import os

from .errors import FirewallError
from .which import which


class NftResult:
    """What one nft command gave: the fields of ``subprocess.CompletedProcess`` we read."""

    __slots__ = ("args", "returncode", "stdout", "stderr")

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def find_nft() -> str | None:
    """Path of the ``nft`` executable, or ``None`` when it is not installed."""
    return which("nft")


def _in_process(nft: str, args: list[str], stdin: str | None) -> tuple[str, bool] | None:
    """(command text, JSON output) for the argument forms libnftables can run, else None.

    Only where the ``nft`` executable asked for exists: a driver told to use a path that
    is not there must fail as the executable would, not quietly act anyway."""
    if os.environ.get("NETCTL_NFT", "lib") == "cli" or not os.access(nft, os.X_OK):
        return None
    if args == ["-f", "-"] and stdin is not None:
        return stdin, False
    json = args[:1] == ["-j"]
    words = args[1:] if json else args
    if not words or any(w.startswith("-") for w in words):
        return None
    return " ".join(words), json


def run_nft(nft: str, args: list[str], stdin: str | None = None) -> NftResult:
    """Run ``nft args`` (with ``stdin`` as a script for ``-f -``) and capture its output.

    Raises:
        FirewallError: nft could not be started or did not finish within 60 s.
    """
    form = _in_process(nft, args, stdin)
    if form is not None:
        # lazy: only nftables hosts load libnftables (~1 ms)
        from . import libnft

        lib = libnft.library()
        if lib is not None:
            try:
                code, out, err = libnft.run(lib, form[0], json=form[1])
            except MemoryError as exc:
                raise FirewallError("libnftables failed", str(exc)) from None
            return NftResult([nft, *args], code, out, err)
    # lazy: ~5 ms a plugin process, only when nft runs as a process
    import subprocess

    try:
        proc = subprocess.run([nft, *args], input=stdin, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FirewallError(f"cannot run {nft}", str(exc)) from None
    return NftResult(proc.args, proc.returncode, proc.stdout, proc.stderr)
