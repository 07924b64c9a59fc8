"""A two-bridge "host" for the firewall driver tests, plus its baseline test.

Layout (all in throwaway namespaces; the host is ``host_ns``)::

    a1 10.91.1.2  a2 10.91.1.3 --- nb1 10.91.1.1/24 fd91:1::1/64 --+
    b1 10.91.2.2  b2 10.91.2.3 --- nb2 10.91.2.1/24 fd91:2::1/64 --+-- host --- up0 192.0.2.1/24 fd00:2::1/64
                                                                              |
                                               outside 192.0.2.2/24 fd00:2::2/64 (no route back to 10.91/16)

The outside has no route to the container subnets, so container -> outside works only
when the host masquerades; an echo server there tells which source address it saw.
test_firewall_drivers.py (one suite for both drivers) imports the helpers here (pytest
puts this directory on sys.path).
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nsutil import Netns, wait_for

ECHO_PORT = 7777

#: runs one driver operation inside a namespace (driver code acts on its own netns)
FW_SCRIPT = r"""
import json, sys
from netplugins.firewall import FirewallError, NetworkPolicy, get_driver, teardown_network_everywhere
a = json.loads(sys.argv[1])
try:
    out = None
    if a["op"] == "everywhere":
        teardown_network_everywhere(a["name"], nft_lock_path=a["lock"], xtables_lock_path=a["lock"])
    else:
        drv = get_driver(a["driver"], lock_path=a["lock"])
        for item in a.get("policies", []):
            p = NetworkPolicy(**item)
            if a["op"] == "setup":
                drv.setup_network(p)
            elif a["op"] == "check":
                out = (out or []) + drv.check_network(p)
        for name in a.get("names", []):
            drv.teardown_network(name)
        if a["op"] == "list":
            out = sorted(drv.list_networks())
except FirewallError as exc:
    print(json.dumps({"error": str(exc)}))
    sys.exit(1)
print(json.dumps({"result": out}))
"""


def fw_argv(ns: Netns, op: str, driver: str, lock: Path, **kw: Any) -> list[str]:
    """The command running one driver operation in ``ns``."""
    args = {"op": op, "driver": driver, "lock": str(lock), **kw}
    return ns.cmd([sys.executable, "-c", FW_SCRIPT, json.dumps(args)])


def fw(ns: Netns, op: str, driver: str, lock: Path, **kw: Any) -> Any:
    """Run a driver operation in ``ns``; return its result, fail the test on an error."""
    res = subprocess.run(
        fw_argv(ns, op, driver, lock, **kw), capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, f"{op} failed: {res.stdout}{res.stderr}"
    return json.loads(res.stdout.splitlines()[-1])["result"]


def policy(name: str, bridge: str, *subnets: str, **flags: bool) -> dict[str, Any]:
    """A NetworkPolicy as JSON-able keyword arguments."""
    return {"name": name, "bridge": bridge, "subnets": list(subnets), **flags}


NET_A = policy("net-a", "nb1", "10.91.1.0/24", "fd91:1::/64")
NET_B = policy("net-b", "nb2", "10.91.2.0/24", "fd91:2::/64")


@dataclass
class Topo:
    """The namespaces of the layout in the module docstring."""

    host: Netns
    ctr: dict[str, Netns]
    outside: Netns
    lock: Path
    addr: dict[str, str] = field(default_factory=dict)

    def pings(self, probes: list[tuple[str, str]]) -> dict[tuple[str, str], bool]:
        """Ping (1 packet, 1 s) from each container to each address, all at once."""
        procs = {
            (src, dst): subprocess.Popen(
                self.ctr[src].cmd(["ping", "-n", "-c1", "-W1", dst]),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for src, dst in probes
        }
        return {k: p.wait(10) == 0 for k, p in procs.items()}

    def start_echo(self) -> None:
        """Serve the peer address seen by the outside on TCP port 7777 (v4 and v6)."""
        for listen in (
            f"TCP4-LISTEN:{ECHO_PORT},fork,reuseaddr",
            f"TCP6-LISTEN:{ECHO_PORT},fork,reuseaddr,ipv6only=1",
        ):
            self.outside.spawn(
                ["socat", listen, "SYSTEM:echo $SOCAT_PEERADDR"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        listening = lambda: self.outside.run(["ss", "-ltnH"]).stdout.count(f":{ECHO_PORT} ") >= 2  # noqa: E731
        assert wait_for(listening), "echo server did not start"

    def peer_seen_by_outside(self, src: str, dst: str) -> str:
        """The source address the outside saw for a TCP connection from container ``src``."""
        target = f"TCP6:[{dst}]:{ECHO_PORT}" if ":" in dst else f"TCP4:{dst}:{ECHO_PORT}"
        res = self.ctr[src].run(["socat", "-T2", "-u", target, "-"], check=False, timeout=10)
        raw = res.stdout.strip().strip("[]")
        try:
            return str(ipaddress.ip_address(raw))  # socat prints IPv6 unabbreviated
        except ValueError:
            return f"<no answer: {res.stdout!r} {res.stderr!r}>"


def build_topology(host: Netns, make_ns: Callable[..., Netns], lock: Path) -> Topo:
    """Create the bridges, containers and the outside; enable forwarding in ``host`` only."""
    outside = make_ns("nctest-out")
    ctr = {name: make_ns(f"nctest-{name}") for name in ("a1", "a2", "b1", "b2")}
    # IPv6 addresses go on links that are already up and skip DAD: an address added to
    # a down link (or a tentative one) lost the first neighbour solicitation here, so the
    # first ping over it took a 1 s retransmit and the 1 s ping timeout failed
    for ns in (host, outside, *ctr.values()):
        ns.run(
            [
                "sysctl",
                "-qw",
                "net.ipv6.conf.default.accept_dad=0",
                "net.ipv6.conf.all.accept_dad=0",
            ]
        )
    host_batch = [f"link add up0 type veth peer name eth0 netns {outside.name}"]
    host_batch += [
        "link set up0 up",
        "addr add 192.0.2.1/24 dev up0",
        "addr add fd00:2::1/64 dev up0 nodad",
    ]
    for net in (1, 2):
        host_batch += [
            f"link add nb{net} type bridge",
            f"link set nb{net} up",
            f"addr add 10.91.{net}.1/24 dev nb{net}",
            f"addr add fd91:{net}::1/64 dev nb{net} nodad",
        ]
    addr: dict[str, str] = {}
    for name, ns in ctr.items():
        net, idx = (1 if name[0] == "a" else 2), 1 + int(name[1])
        host_batch += [
            f"link add v{name} type veth peer name eth0 netns {ns.name}",
            f"link set v{name} master nb{net} up",
        ]
        addr[name], addr[name + "6"] = f"10.91.{net}.{idx}", f"fd91:{net}::{idx}"
    host.run(["ip", "-batch", "-"], input="\n".join(host_batch) + "\n")
    for name, ns in ctr.items():
        net = 1 if name[0] == "a" else 2
        ns.run(
            ["ip", "-batch", "-"],
            input=f"link set eth0 up\naddr add {addr[name]}/24 dev eth0\naddr add {addr[name + '6']}/64 dev eth0 nodad\n"
            f"route add default via 10.91.{net}.1\nroute add ::/0 via fd91:{net}::1\n",
        )
    outside.run(
        ["ip", "-batch", "-"],
        input="link set eth0 up\naddr add 192.0.2.2/24 dev eth0\naddr add fd00:2::2/64 dev eth0 nodad\n",
    )
    # forwarding is per namespace: written from inside the throwaway host only
    host.run(["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
    return Topo(host, ctr, outside, lock, addr)


@pytest.fixture
def topo(host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path) -> Topo:
    """The two-bridge layout; everything is removed with the namespaces.

    test_firewall_drivers.py defines the same one-line fixture (a fixture imported into a
    test module would be registered there too, but unseen by linters and readers).
    """
    return build_topology(host_ns, make_ns, tmp_path / "fw.lock")


def nft_ruleset(ns: Netns) -> str:
    """``nft list ruleset`` of a namespace."""
    return ns.run(["nft", "list", "ruleset"]).stdout


def legacy_save(ns: Netns) -> str:
    """iptables-legacy-save + ip6tables-legacy-save of a namespace, comments stripped."""
    out = ns.run(["iptables-legacy-save"]).stdout + ns.run(["ip6tables-legacy-save"]).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith("#"))


# ---------------------------------------------------------------- the layout's own test


@pytest.mark.netns
def test_baseline_without_rules(topo: Topo) -> None:
    """Without firewall rules bridges route to each other and the outside is unreachable.

    This is what makes the driver tests meaningful: their isolation and masquerade
    assertions fail on this same layout when the rules are missing.
    """
    a = topo.addr
    got = topo.pings([("a1", a["a2"]), ("a1", a["b1"]), ("b1", a["a16"]), ("a1", "192.0.2.2")])
    assert got == {
        ("a1", a["a2"]): True,
        ("a1", a["b1"]): True,
        ("b1", a["a16"]): True,
        ("a1", "192.0.2.2"): False,
    }
    assert "netctl" not in nft_ruleset(topo.host) and "NETCTL" not in legacy_save(topo.host)
