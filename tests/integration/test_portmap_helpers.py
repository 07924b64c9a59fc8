"""Shared helpers of portmap's integration tests (this module holds no tests).

A :class:`PortLab` is a throwaway host namespace with an uplink to an "outside" client
(host 192.0.2.1/24, client 192.0.2.2/24 with its default route via the host) in which our
``bridge`` and ``portmap`` executables run chained, as a runtime would run a conflist.
Containers are more throwaway namespaces; servers in them are socat processes stopped by
PID when their namespace goes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cniutil import PluginRun, plugin_dir, run_plugin
from nsutil import Netns, connect, wait_for

HOST_IP = "192.0.2.1"
CLIENT_IP = "192.0.2.2"
HOST_IP6 = "2001:db8::1"
CLIENT_IP6 = "2001:db8::2"
DRIVERS = ("nftables", "iptables")


def mapping(host: int, ctr: int, proto: str = "tcp", host_ip: str = "") -> dict[str, Any]:
    """A runtimeConfig.portMappings entry."""
    m: dict[str, Any] = {"hostPort": host, "containerPort": ctr, "protocol": proto}
    if host_ip:
        m["hostIP"] = host_ip
    return m


def serve_tcp(ns: Netns, port: int, word: str) -> None:
    """TCP servers (IPv4 and IPv6) in ``ns`` answering ``<word> <client address>``."""
    for kind, opts in (("TCP4-LISTEN", ""), ("TCP6-LISTEN", ",ipv6only=1")):
        ns.spawn(["socat", f"{kind}:{port},fork,reuseaddr{opts}",
                  f"SYSTEM:echo {word} $SOCAT_PEERADDR"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for table in ("tcp", "tcp6"):
        assert wait_for(lambda t=table: f":{port:04X} " in ns.run(["cat", f"/proc/net/{t}"]).stdout,
                        timeout=5)


#: a UDP server answering every datagram (socat's UDP-RECVFROM,fork drops some under load)
UDP_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(sys.argv[2].encode() + b"\\n", peer)
"""


def serve_udp(ns: Netns, port: int, word: str) -> None:
    """A UDP server (IPv4 and IPv6) in ``ns`` answering every datagram with ``<word>``."""
    ns.spawn(["python3", "-c", UDP_SERVER, str(port), word],
             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: f":{port:04X} " in ns.run(["cat", "/proc/net/udp6"]).stdout, timeout=5)


def said(word: str, peer: str) -> str:
    """What :func:`serve_tcp` answers to ``peer`` (socat prints IPv6 peers exploded)."""
    import ipaddress

    ip = ipaddress.ip_address(peer)
    return f"{word} [{ip.exploded}]" if ip.version == 6 else f"{word} {ip}"


def _addr(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def ask_tcp(ns: Netns, ip: str, port: int, timeout: float = 2) -> str:
    """What a TCP server at ``ip:port`` says to ``ns`` ('' when nothing answers)."""
    kind = "TCP6" if ":" in ip else "TCP4"
    res = ns.run(["socat", "-T", str(timeout), "-", f"{kind}:{_addr(ip, port)},connect-timeout={timeout}"],
                 check=False, input="", timeout=timeout * 3 + 5)
    return res.stdout.strip() if res.returncode == 0 else ""


def ask_udp(ns: Netns, ip: str, port: int, timeout: float = 1, sport: int | None = None) -> str:
    """What a UDP server at ``ip:port`` answers to one datagram ('' on silence)."""
    kind = "UDP6" if ":" in ip else "UDP4"
    opts = f",sourceport={sport}" if sport else ""
    # -t: after stdin's EOF socat waits 0.5 s for the answer (the server answers in ms)
    res = ns.run(["socat", "-t", "0.5", "-T", str(timeout), "-",
                  f"{kind}:{_addr(ip, port)}{opts}"],
                 check=False, input="ping\n", timeout=timeout * 3 + 5)
    return res.stdout.strip()


def port_rules(ns: Netns) -> list[str]:
    """Every line of published-port state in ``ns``: the nft table and legacy iptables rules."""
    out = []
    nft = ns.run(["nft", "list", "table", "inet", "netctl-ports"], check=False)
    if nft.returncode == 0:
        out += [f"nft: {line.strip()}" for line in nft.stdout.splitlines() if line.strip()]
    for tool in ("iptables-legacy-save", "ip6tables-legacy-save"):
        text = ns.run([tool], check=False).stdout
        out += [f"{tool}: {line}" for line in text.splitlines()
                if "NETCTL-PORTS" in line or "netctl" in line and "127.0.0.0/8" in line]
    return out


def wait_ipv6_ready(ns: Netns, dev: str) -> None:
    """Wait until ``dev``'s IPv6 addresses finished duplicate address detection."""
    assert wait_for(lambda: "tentative" not in ns.run(["ip", "-6", "addr", "show", "dev", dev]).stdout,
                    timeout=10)


def route_localnet(ns: Netns, dev: str) -> str:
    return ns.run(["cat", f"/proc/sys/net/ipv4/conf/{dev}/route_localnet"]).stdout.strip()


@dataclass
class PortLab:
    """Bridge + portmap, chained, in ``host``, with ``driver`` and state under ``tmp``."""

    host: Netns
    make_ns: Callable[..., Netns]
    tmp: Path
    driver: str
    env: dict[str, str] = field(default_factory=dict)
    version: str = "1.0.0"
    client: Netns | None = None

    @property
    def state_dir(self) -> Path:
        return self.tmp / "state"

    def add_client(self, ipv6: bool = False) -> Netns:
        """The outside client: host 192.0.2.1/24 on ``uplink``, client 192.0.2.2/24."""
        client = self.make_ns("nctest-cli")
        connect(self.host, client, "uplink", "eth0")
        self.host.run(["ip", "addr", "add", f"{HOST_IP}/24", "dev", "uplink"])
        client.run(["ip", "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0"])
        client.run(["ip", "route", "add", "default", "via", HOST_IP])
        if ipv6:
            for ns, ip, dev in ((self.host, HOST_IP6, "uplink"), (client, CLIENT_IP6, "eth0")):
                ns.run(["ip", "addr", "add", f"{ip}/64", "dev", dev, "nodad"])
            client.run(["ip", "-6", "route", "add", "default", "via", HOST_IP6])
        self.client = client
        return client

    def bridge_conf(self, net: str, subnet: str, subnet6: str | None = None) -> dict[str, Any]:
        ranges = [[{"subnet": subnet}]] + ([[{"subnet": subnet6}]] if subnet6 else [])
        routes = [{"dst": "0.0.0.0/0"}] + ([{"dst": "::/0"}] if subnet6 else [])
        return {"cniVersion": self.version, "name": net, "type": "bridge",
                "bridge": f"br-{net}"[:15], "isGateway": True, "isDefaultGateway": True,
                "ipMasq": True, "hairpinMode": True, "firewallDriver": self.driver,
                "stateDir": str(self.state_dir),
                "ipam": {"type": "host-local", "ranges": ranges, "routes": routes,
                         "dataDir": str(self.tmp / "ipam")}}

    def portmap_conf(self, net: str, mappings: Sequence[dict[str, Any]] | None,
                     prev: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
        conf: dict[str, Any] = {"cniVersion": self.version, "name": net, "type": "portmap",
                                "capabilities": {"portMappings": True},
                                "firewallDriver": self.driver, "stateDir": str(self.state_dir)}
        if mappings is not None:
            conf["runtimeConfig"] = {"portMappings": list(mappings)}
        if prev is not None:
            conf["prevResult"] = prev
        conf.update(extra)
        return conf

    def run(self, ptype: str, command: str, conf: dict[str, Any], ctr: Netns | None, cid: str,
            name: str = "", ifname: str = "eth0") -> PluginRun:
        args = f"IgnoreUnknown=1;K8S_POD_NAME={name}" if name else ""
        return run_plugin(self.host, ptype, command, conf, container_id=cid,
                          netns=ctr.path if ctr else "", ifname=ifname, cni_args=args,
                          env=self.env)

    def portmap(self, command: str, net: str, ctr: Netns | None, cid: str,
                mappings: Sequence[dict[str, Any]] | None, prev: dict[str, Any] | None = None,
                name: str = "", **extra: Any) -> PluginRun:
        return self.run("portmap", command, self.portmap_conf(net, mappings, prev, **extra),
                        ctr, cid, name)

    def attach(self, net: str, subnet: str, ctr: Netns, cid: str,
               mappings: Sequence[dict[str, Any]], name: str = "",
               subnet6: str | None = None) -> dict[str, Any]:
        """bridge ADD then portmap ADD (both must succeed); the final result."""
        res = self.run("bridge", "ADD", self.bridge_conf(net, subnet, subnet6), ctr, cid, name).ok().json
        out = self.portmap("ADD", net, ctr, cid, mappings, res, name).ok().json
        assert out == res, "portmap must pass prevResult through unchanged"
        return dict(out)

    def detach(self, net: str, subnet: str, ctr: Netns, cid: str,
               mappings: Sequence[dict[str, Any]] | None, prev: dict[str, Any] | None) -> None:
        """portmap DEL then bridge DEL (reverse order, as a runtime does)."""
        self.portmap("DEL", net, ctr, cid, mappings, prev).ok()
        self.run("bridge", "DEL", dict(self.bridge_conf(net, subnet), prevResult=prev), ctr, cid).ok()

    def records(self) -> list[str]:
        base = self.state_dir / "_portmap"
        return sorted(str(p.relative_to(base)) for p in base.rglob("*.json")) if base.exists() else []

    # what differs between the drivers, in one place: the tests are the same for both

    def delete_published(self, proto: str, port: int, tag: str, target: str) -> str:
        """Delete the entry publishing ``proto``/``port`` (any address) by hand; what CHECK
        then reports as missing."""
        if self.driver == "nftables":
            self.host.run(["nft", "delete", "element", "inet", "netctl-ports", "pm-any4",
                           f"{{ {proto} . {port} }}"])
            return f"pm-any4: element {proto} . {port}"
        self.host.run(["iptables-legacy", "-t", "nat", "-D", "NETCTL-PORTS", "-p", proto, "-m", proto,
                       "--dport", str(port), "-m", "comment", "--comment", tag,
                       "-j", "DNAT", "--to-destination", target])
        return f"rule missing: -A NETCTL-PORTS -p {proto} -m {proto} --dport {port}"

    def remove_loopback_guard(self) -> None:
        """Remove the rules that drop packets for 127.0.0.1 arriving from outside (moby#45610)."""
        if self.driver == "nftables":
            self.host.run(["nft", "flush", "chain", "inet", "netctl-ports", "guard"])
        else:
            self.host.run(["iptables-legacy", "-t", "raw", "-F", "PREROUTING"])


def container_ip(result: dict[str, Any], family: int = 4) -> str:
    """The container's address of ``family`` in a bridge result."""
    for ip in result["ips"]:
        addr = ip["address"].split("/")[0]
        if (":" in addr) == (family == 6):
            return str(addr)
    raise AssertionError(f"no IPv{family} address in {json.dumps(result)}")


def make_lab(host: Netns, make_ns: Callable[..., Netns], tmp: Path, driver: str,
             env: dict[str, str] | None = None) -> PortLab:
    plugin_dir()  # the executables exist before the first call
    return PortLab(host, make_ns, tmp, driver, dict(env or {"NETCTL_PLUGIND": "0"}))
