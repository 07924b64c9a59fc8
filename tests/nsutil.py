"""Throwaway network namespaces for integration tests.

Every namespace made here is named ``nctest-<random>`` and removed by its owner, even
when a test fails. Commands run in a namespace through ``nsenter --net`` only, so that
bind mounts and files stay visible (``ip netns exec`` would add a private mount
namespace, see issue 2).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

NETNS_DIR = "/run/netns"


def can_use_netns() -> bool:
    """Return True when this process may create network namespaces (root, iproute2)."""
    return os.geteuid() == 0 and shutil.which("ip") is not None and shutil.which("nsenter") is not None


@dataclass
class Netns:
    """A named network namespace under /run/netns that this test created."""

    name: str
    #: processes started in this namespace with :meth:`spawn`, stopped by PID on delete
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{NETNS_DIR}/{self.name}"

    @classmethod
    def create(cls, prefix: str = "nctest") -> Netns:
        """Create a fresh namespace with ``lo`` up.

        Raises:
            subprocess.CalledProcessError: if iproute2 fails.
        """
        ns = cls(f"{prefix}-{secrets.token_hex(4)}")
        subprocess.run(["ip", "netns", "add", ns.name], check=True)
        ns.run(["ip", "link", "set", "lo", "up"])
        return ns

    def cmd(self, argv: Sequence[str]) -> list[str]:
        """The argv that runs ``argv`` inside this namespace."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in this namespace and capture its output as text."""
        return subprocess.run(
            self.cmd(argv),
            check=check,
            input=input.decode() if isinstance(input, bytes) else input,
            env=None if env is None else dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a shell snippet in this namespace."""
        return self.run(["sh", "-c", script], check=check)

    def spawn(self, argv: Sequence[str], **kw: object) -> subprocess.Popen[bytes]:
        """Start a background process in this namespace; it is killed by PID on delete."""
        proc = subprocess.Popen(self.cmd(argv), **kw)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def delete(self) -> None:
        """Stop our processes and remove the namespace (and every link inside it)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(3)
        # processes our plugins started inside the throwaway host (dnsd, the plugin daemon
        # and its workers): they belong to this test, found by their namespace, stopped by
        # PID; scanned again until none is left, as a dying daemon may just have forked
        for _ in range(50):
            pids = pids_in_netns(self.path)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        subprocess.run(["ip", "netns", "delete", self.name], check=False, capture_output=True)


def pids_in_netns(path: str) -> list[int]:
    """PIDs of processes whose network namespace is the one bound at ``path``."""
    try:
        target = os.stat(path)
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            found.append(int(entry))
    return found


@contextmanager
def netns(prefix: str = "nctest") -> Iterator[Netns]:
    """A namespace for the duration of a ``with`` block."""
    ns = Netns.create(prefix)
    try:
        yield ns
    finally:
        ns.delete()


def connect(a: Netns, b: Netns, a_if: str, b_if: str) -> None:
    """Join two namespaces with a veth pair (``a_if`` in ``a``, ``b_if`` in ``b``)."""
    tmp = f"nct{secrets.token_hex(3)}"
    a.run(["ip", "link", "add", a_if, "type", "veth", "peer", "name", tmp])
    a.run(["ip", "link", "set", tmp, "netns", b.path])
    b.run(["ip", "link", "set", tmp, "name", b_if])
    a.run(["ip", "link", "set", a_if, "up"])
    b.run(["ip", "link", "set", b_if, "up"])


def wait_for(pred, timeout: float = 5.0, interval: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``pred`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return bool(value)
        time.sleep(interval)


def root_netns_snapshot() -> dict[str, str]:
    """What the machine's own network namespace looks like, counters stripped.

    Compared before and after the test session: tests must never change it.
    """
    def out(argv: list[str]) -> str:
        if shutil.which(argv[0]) is None:
            return f"<{argv[0]} not installed>"
        res = subprocess.run(argv, capture_output=True, text=True)
        return res.stdout if res.returncode == 0 else f"<rc {res.returncode}: {res.stderr.strip()}>"

    def strip_counters(text: str) -> str:
        import re

        text = re.sub(r"\[\d+:\d+\]", "[0:0]", text)
        return "\n".join(line for line in text.splitlines() if not line.startswith("#"))

    snap = {
        "links": out(["ip", "-o", "link", "show"]),
        "addrs": out(["ip", "-o", "addr", "show"]),
        "routes": out(["ip", "route", "show", "table", "all"]),
        "iptables": strip_counters(out(["iptables-save"])),
        "iptables-legacy": strip_counters(out(["iptables-legacy-save"])),
        "ip6tables": strip_counters(out(["ip6tables-save"])),
        "nft": out(["nft", "list", "ruleset"]),
    }
    for key in ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"):
        try:
            with open(f"/proc/sys/{key}") as fh:
                snap[key] = fh.read().strip()
        except OSError:
            snap[key] = "<absent>"
    # link lines carry volatile state bits (e.g. operstate of the uplink); keep names + kinds
    import re

    snap["links"] = "\n".join(
        sorted(re.sub(r"^\d+: ([^:@]+)[:@].*$", r"\1", line) for line in snap["links"].splitlines())
    )
    snap["addrs"] = "\n".join(
        sorted(re.sub(r"\s+valid_lft.*$", "", line) for line in snap["addrs"].splitlines())
    )
    return snap
