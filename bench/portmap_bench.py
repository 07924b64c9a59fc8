"""ADD+DEL of a container with 1, 10, 100 published ports: our portmap vs the reference.

Run as root: ``.venv/bin/python bench/portmap_bench.py [--rounds 10]``. The script makes a
throwaway network namespace, re-runs itself inside it (``nsenter``), attaches one
container once with our bridge plugin, then times whole plugin processes chained after
that bridge result, as a runtime runs them:

- ours, nftables driver and iptables (legacy) driver, each in-process (``NETCTL_PLUGIND=0``)
  and through the warm plugin daemon;
- the reference ``/usr/lib/cni/portmap`` (iptables, nf_tables flavour on this host).

It also counts what one ADD leaves in the kernel per published port: lines of
``nft list table inet netctl-ports`` / ``iptables-legacy-save`` for ours, of
``iptables-save`` + ``ip6tables-save`` for the reference. The namespaces are deleted at
the end; the machine's own namespace is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.harness import base_env, fmt, time_call  # noqa: E402

REFERENCE = "/usr/lib/cni/portmap"
COUNTS = (1, 10, 100)
NET = "bench"


def mappings(n: int, step: int = 1) -> list[dict[str, Any]]:
    """``-p 20000-(20000+n-1):80-...``: what the runtime expands a range into; ``step=2``
    gives n separate ``-p`` options instead (no run of consecutive ports)."""
    return [{"hostPort": 20000 + step * i, "containerPort": 80 + i, "protocol": "tcp"}
            for i in range(n)]


def run(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def ruleset_lines() -> dict[str, int]:
    """Lines of each firewall listing (ours and the reference's)."""
    nft = run(["nft", "list", "table", "inet", "netctl-ports"])
    legacy = run(["iptables-legacy-save"]) + run(["ip6tables-legacy-save"])
    ref = run(["iptables-save"]) + run(["ip6tables-save"])

    def rules(text: str) -> int:
        # rules and user-defined chains (":NAME - [0:0]"); built-in chains stay with the table
        return sum(1 for line in text.splitlines()
                   if line.startswith("-A") or (line.startswith(":") and " - [" in line))

    return {"nft": len([x for x in nft.splitlines() if x.strip()]), "legacy": rules(legacy),
            "reference": rules(ref)}


class Bench:
    """One container, attached once; plugin processes chained after its bridge result."""

    def __init__(self, tmp: str, ctr_ns: str) -> None:
        from cniutil import plugin_dir

        self.tmp = tmp
        self.ctr = f"/run/netns/{ctr_ns}"
        self.pdir = plugin_dir()
        self.env = base_env() | {"CNI_CONTAINERID": "benchctr", "CNI_NETNS": self.ctr,
                                 "CNI_IFNAME": "eth0", "CNI_PATH": f"{self.pdir}:/usr/lib/cni",
                                 "NETCTL_PLUGIND": "0"}
        bridge = {"cniVersion": "1.0.0", "name": NET, "type": "bridge", "bridge": "br-bench",
                  "isGateway": True, "ipMasq": True, "hairpinMode": True,
                  "firewallDriver": "nftables", "stateDir": f"{tmp}/state",
                  "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.77.0.0/24"}]],
                           "dataDir": f"{tmp}/ipam"}}
        ms, rc, out = time_call([f"{self.pdir}/bridge"], self.env | {"CNI_COMMAND": "ADD"},
                                json.dumps(bridge).encode())
        assert rc == 0, out
        self.prev = json.loads(out)

    def conf(self, n: int, driver: str | None, step: int = 1) -> bytes:
        conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": NET, "type": "portmap",
                                "capabilities": {"portMappings": True}, "prevResult": self.prev}
        if n:
            conf["runtimeConfig"] = {"portMappings": mappings(n, step)}
        if driver:
            conf |= {"firewallDriver": driver, "stateDir": f"{self.tmp}/state"}
        return json.dumps(conf).encode()

    def cycle(self, exe: str, stdin: bytes, env: dict[str, str]) -> tuple[float, float]:
        """One ADD then one DEL; their milliseconds."""
        t_add, rc, out = time_call([exe], self.env | env | {"CNI_COMMAND": "ADD"}, stdin)
        assert rc == 0, f"{exe} ADD failed: {out!r}"
        t_del, rc, out = time_call([exe], self.env | env | {"CNI_COMMAND": "DEL"}, stdin)
        assert rc == 0, f"{exe} DEL failed: {out!r}"
        return t_add, t_del

    def per_port(self, exe: str, driver: str | None, key: str, step: int) -> str:
        """Lines one ADD adds to listing ``key``, for 1 and 100 ports, and per extra port."""
        added = {}
        for n in (1, 100):
            before = ruleset_lines()[key]
            stdin = self.conf(n, driver, step)
            time_call([exe], self.env | {"CNI_COMMAND": "ADD"}, stdin)
            added[n] = ruleset_lines()[key] - before
            time_call([exe], self.env | {"CNI_COMMAND": "DEL"}, stdin)
        return (f"lines added: 1 port {added[1]}, 100 ports {added[100]} "
                f"-> {(added[100] - added[1]) / 99:.2f} per extra port")


def inside(rounds: int) -> None:
    from nsutil import Netns

    tmp = tempfile.mkdtemp(prefix="pmbench-")
    ctr = Netns.create("nctest-pmbench-ctr")
    daemon = None
    try:
        bench = Bench(tmp, ctr.name)
        sock = f"{tmp}/plugind.sock"
        daemon = subprocess.Popen([sys.executable, "-m", "netplugins.daemon", "--socket", sock],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        ours = f"{bench.pdir}/portmap"
        variants = [
            ("ours nftables, in-process", ours, "nftables", {}),
            ("ours nftables, daemon", ours, "nftables", {"NETCTL_PLUGIND": "1", "NETCTL_PLUGIND_SOCKET": sock}),
            ("ours iptables, in-process", ours, "iptables", {}),
            ("ours iptables, daemon", ours, "iptables", {"NETCTL_PLUGIND": "1", "NETCTL_PLUGIND_SOCKET": sock}),
            ("reference portmap (iptables-nft)", REFERENCE, None, {}),
        ]
        print(f"ADD and DEL, {rounds} rounds each, contiguous host ports (-p 20000-...:80-...)")
        for n in (0, *COUNTS):
            print(f"-- {n} published port{'s' if n != 1 else ''}" + (" (no-op path)" if not n else ""))
            for label, exe, driver, env in variants:
                stdin = bench.conf(n, driver)
                bench.cycle(exe, stdin, env)  # warm-up (page cache, daemon workers)
                adds, dels = zip(*(bench.cycle(exe, stdin, env) for _ in range(rounds)), strict=True)
                print("  " + fmt(f"{label} ADD", adds))
                print("  " + fmt(f"{label} DEL", dels))
        print("-- what one ADD leaves in the kernel (listing lines)")
        for step, kind in ((1, "one range 20000-20099"), (2, "100 separate ports")):
            for label, exe, driver, key in (("ours nftables", ours, "nftables", "nft"),
                                            ("ours iptables", ours, "iptables", "legacy"),
                                            ("reference", REFERENCE, None, "reference")):
                print(f"  {kind:<22} {label:<14} {bench.per_port(exe, driver, key, step)}")
        left = ruleset_lines()
        assert left["nft"] == 0 and left["legacy"] == 0, f"bench left rules behind: {left}"
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(5)
        ctr.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args.rounds)
        return
    if os.geteuid() != 0:
        sys.exit("portmap_bench: needs root (it creates throwaway network namespaces)")
    if not os.access(REFERENCE, os.X_OK):
        sys.exit(f"portmap_bench: the reference plugin {REFERENCE} is not installed")
    ns = f"nctest-pmbench-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "--", "ip", "link", "set", "lo", "up"],
                       check=True)
        subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "--", sys.executable,
                        os.path.abspath(__file__), "--inside", "--rounds", str(args.rounds)],
                       check=True)
    finally:
        # processes started inside (the plugin daemon, dnsd) go with their namespace
        from nsutil import pids_in_netns

        for pid in pids_in_netns(f"/run/netns/{ns}"):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "delete", ns], check=False)


if __name__ == "__main__":
    main()
