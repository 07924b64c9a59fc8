"""Send packets with the kernel tracing them: add the trace table, read, always remove it.

Everything runs in the namespace this process is in (doctor: the one netctl runs in,
whose firewall it diagnoses). The reports
are read with ``nft -a monitor`` as a subprocess, not by decoding NFNLGRP_NFTRACE
messages here, because nft prints each rule exactly as ``nft list`` shows it (rules of
iptables-nft, Docker and firewalld included) with its handle: decoding the netlink
messages ourselves would give table, chain and handle only, and rebuilding the rule text
from its expressions would be a second nft. The monitor is started without the
``trace`` filter so that it also prints ruleset events: seeing the ``add table`` of our
own table proves it is subscribed before the probe is sent, and seeing its ``delete
table`` proves every trace event sent before has been read (one socket, in order).
"""

from __future__ import annotations

import os
import secrets
import select
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import FirewallError
from .nftcli import find_nft, run_nft
from .trace import (
    OWN_PREFIX,
    LegacyHit,
    TraceResult,
    TraceSpec,
    legacy_hits,
    parse_trace,
    render_table,
)
from .which import which

T = TypeVar("T")
#: tries to see our own ``add table`` in the monitor (it subscribes asynchronously)
ATTEMPTS = 5
#: seconds to wait for the monitor to show one of our ruleset changes
WAIT = 1.0


class _Monitor:
    """``nft -a monitor``, its output read line by line (raw reads: no buffering that
    ``select`` cannot see)."""

    def __init__(self, nft: str) -> None:
        self.proc = subprocess.Popen([nft, "-a", "monitor"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._buf = b""

    def wait_for(self, needle: str, timeout: float) -> bool:
        """Read until a line containing ``needle`` arrives; False on time-out or exit."""
        assert self.proc.stdout is not None
        end = time.monotonic() + timeout
        while True:
            while b"\n" in self._buf:
                raw, self._buf = self._buf.split(b"\n", 1)
                self.lines.append(raw.decode(errors="replace"))
                if needle in self.lines[-1]:
                    return True
            left = end - time.monotonic()
            chunk = (os.read(self.proc.stdout.fileno(), 65536)
                     if left > 0 and select.select([self.proc.stdout], [], [], left)[0] else b"")
            if not chunk:
                return False
            self._buf += chunk

    def ended(self) -> str:
        """Why the monitor ended by itself ("" while it runs)."""
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace").strip() or f"status {self.proc.returncode}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def legacy_tables() -> tuple[str, ...]:
    """The iptables-legacy tables loaded in this namespace ("ip filter", "ip6 nat", ...).

    Their rules run in the kernel too, but nftables tracing cannot see them. doctor does
    not evaluate them either (a Python evaluator of rules is what the trace replaced: it
    could only guess); it reports which of their counters rose during the probe."""
    found = []
    for fam, path in (("ip", "/proc/net/ip_tables_names"), ("ip6", "/proc/net/ip6_tables_names")):
        try:
            with open(path) as fh:
                found += [f"{fam} {name.strip()}" for name in fh if name.strip()]
        except OSError:
            continue  # the module is not loaded: no legacy table
    return tuple(sorted(found))


def _save_counters(tables: tuple[str, ...]) -> dict[str, str]:
    """``iptables-legacy-save -c`` per family that has legacy tables ("" when unreadable)."""
    out = {}
    for fam, tool in (("ip", "iptables-legacy-save"), ("ip6", "ip6tables-legacy-save")):
        path = which(tool)
        if path is None or not any(t.startswith(f"{fam} ") for t in tables):
            continue
        try:
            out[fam] = subprocess.run([path, "-c"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            out[fam] = ""
    return out


def _legacy_send(tables: tuple[str, ...], send: Callable[[], T]) -> tuple[T, tuple[LegacyHit, ...]]:
    """``send()``, with the legacy counters read before and after (when there are tables)."""
    if not tables:
        return send(), ()
    before = _save_counters(tables)
    result = send()
    after = _save_counters(tables)
    return result, tuple(h for fam, text in after.items() for h in legacy_hits(before.get(fam, ""), text, fam))


def _delete(nft: str, name: str) -> bool:
    try:
        return run_nft(nft, ["delete", "table", "inet", name]).returncode == 0
    except FirewallError:
        return False


def _add(nft: str, name: str, spec: TraceSpec, mon: _Monitor) -> tuple[bool, str | None]:
    """Add the trace table once the monitor is seen to report it (it subscribes
    asynchronously: a table it missed is taken away and added again); (added, error)."""
    for _ in range(ATTEMPTS):
        try:
            res = run_nft(nft, ["-f", "-"], render_table(name, spec))
        except FirewallError as exc:
            return False, f"cannot add the trace table: {exc} {exc.details}".strip()
        if res.returncode != 0:
            return False, f"nft refused the trace table: {res.stderr.strip()}"
        if mon.wait_for(f"add table inet {name}", WAIT):
            return True, None
        if not _delete(nft, name):
            return True, "nft monitor did not report our trace table"
        why = mon.ended()
        if why:
            return False, f"nft monitor ended: {why}"
    return False, "nft monitor did not report our trace table"


def traced(spec: TraceSpec, send: Callable[[], T]) -> tuple[T, TraceResult]:
    """Run ``send`` (the probe) with the kernel tracing the packets ``spec`` matches.

    The temporary table is removed in every case (errors, KeyboardInterrupt); when the
    probe cannot be traced, it is still sent and the result says why.
    """
    legacy = legacy_tables()
    nft = find_nft()
    try:
        mon = _Monitor(nft) if nft is not None else None
        reason = "nft is not installed"
    except OSError as exc:
        nft, mon, reason = None, None, f"nft monitor cannot start: {exc}"
    if nft is None or mon is None:
        result, hits = _legacy_send(legacy, send)
        return result, TraceResult(error=reason, legacy_tables=legacy, legacy=hits)
    name = f"{OWN_PREFIX}{secrets.token_hex(4)}"
    added = False
    try:
        added, error = _add(nft, name, spec, mon)
        result, hits = _legacy_send(legacy, send)
        if added:
            added = not _delete(nft, name)
            # its delete event comes after every trace event of the probe (one socket, in order)
            if not mon.wait_for(f"delete table inet {name}", 2.0) and error is None:
                error = "nft monitor did not report the end of the trace"
        # only the probe's packets: another doctor may be tracing its own at the same time;
        # a rule added while the monitor started shows as "unknown rule handle N", which
        # still names table, chain and handle
        ours = tuple(p for p in parse_trace(mon.lines) if spec.saddr in (p.saddr, p.daddr))
        return result, TraceResult(name, () if error else ours, error, legacy, hits)
    finally:
        if added:
            _delete(nft, name)
        mon.stop()
