"""End to end: ``netctl run -p/-P`` and ``netctl port`` in a throwaway host namespace.

The real netctl (``python -m runtime.cli`` through ``nsenter --net=<host>``, private
NETCTL_ROOT) runs the conflist bridge -> portmap; an outside client namespace reaches the
published ports through the host's address.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from netctlutil import Netctl, netctl_fixture  # noqa: F401 - the netctl fixture
from nsutil import Netns, wait_for
from test_portmap_helpers import CLIENT_IP, HOST_IP, UDP_SERVER, ask_tcp, ask_udp, port_rules

from runtime.containers import EPHEMERAL_PORTS

pytestmark = pytest.mark.netns

SERVE = "socat TCP-LISTEN:{port},fork,reuseaddr 'SYSTEM:echo {word} $SOCAT_PEERADDR'"


def serving(n: Netctl, name: str, *opts: str, port: int = 80) -> str:
    """Run a container whose command is a TCP server on ``port``; wait until it listens."""
    cid = n.run_d(name, *opts, cmd=("sh", "-c", SERVE.format(port=port, word=name)))
    assert wait_for(lambda: f":{port:04X} " in n.exec(name, "cat", "/proc/net/tcp").stdout, timeout=10)
    return cid


def ports_of(n: Netctl, name: str) -> list[str]:
    return n("port", name).stdout.splitlines()


def test_run_publish_and_port(netctl: Netctl, host_ns: Netns, client: Netns) -> None:
    netctl("create", "--subnet", "172.23.0.0/24", "web")
    serving(netctl, "web1", "--network", "web", "-p", "8080:80", "-p", "127.0.0.1:9090:80",
            "-p", "5000-5002:6000-6002/udp")
    assert ports_of(netctl, "web1") == [
        "80/tcp -> 0.0.0.0:8080", "80/tcp -> 127.0.0.1:9090", "6000/udp -> 0.0.0.0:5000",
        "6001/udp -> 0.0.0.0:5001", "6002/udp -> 0.0.0.0:5002"]
    assert ask_tcp(client, HOST_IP, 8080) == f"web1 {CLIENT_IP}"
    assert ask_tcp(host_ns, "127.0.0.1", 8080) == "web1 172.23.0.1"
    assert ask_tcp(host_ns, "127.0.0.1", 9090) == "web1 172.23.0.1"
    assert ask_tcp(client, HOST_IP, 9090, timeout=1) == ""
    server = netctl.path("udp_server.py")
    with open(server, "w") as fh:
        fh.write(UDP_SERVER)
    netctl.exec("web1", "sh", "-c", f"python3 {server} 6001 udp >/dev/null 2>&1 &")
    assert wait_for(lambda: ":1771 " in netctl.exec("web1", "cat", "/proc/net/udp6").stdout)
    assert ask_udp(client, HOST_IP, 5001) == "udp"
    assert "0.0.0.0:8080->80/tcp" in netctl("ps").stdout
    assert netctl("check", "web1").stdout.strip() == "ok"

    # a second container on the same host port is refused, and leaves nothing behind
    before = netctl.snapshot()
    proc = netctl("run", "-d", "--name", "web2", "--network", "web", "-p", "8080:80", "--",
                  "sleep", "600", check=False)
    assert proc.returncode != 0
    assert "port 8080/tcp is already allocated by container web1" in proc.stderr
    assert netctl.snapshot() == before

    netctl("container", "rm", "-f", "web1")
    assert ask_tcp(client, HOST_IP, 8080, timeout=1) == ""
    assert port_rules(host_ns) == []
    # the port is free again
    serving(netctl, "web2", "--network", "web", "-p", "8080:80")
    assert ask_tcp(client, HOST_IP, 8080) == f"web2 {CLIENT_IP}"


def test_publish_all_picks_free_ports_from_the_documented_range(netctl: Netctl, host_ns: Netns,
                                                                client: Netns) -> None:
    lo, hi = EPHEMERAL_PORTS
    # a host process holds the first port of the range: -P must skip it
    host_ns.spawn(["socat", f"TCP-LISTEN:{lo},reuseaddr,fork", "SYSTEM:echo host"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: f":{lo:04X} " in host_ns.run(["cat", "/proc/net/tcp"]).stdout)
    serving(netctl, "pa", "-P", "-p", "80")
    serving(netctl, "pb", "-P", "-p", "80")
    (pa,), (pb,) = ports_of(netctl, "pa"), ports_of(netctl, "pb")
    port_a, port_b = int(pa.rsplit(":", 1)[1]), int(pb.rsplit(":", 1)[1])
    assert lo < port_a < port_b <= hi
    assert ask_tcp(client, HOST_IP, port_a) == f"pa {CLIENT_IP}"
    assert ask_tcp(client, HOST_IP, port_b) == f"pb {CLIENT_IP}"
    assert ask_tcp(client, HOST_IP, lo) == "host"  # the host process keeps its port
    # a fixed port of the same container is not picked again for another of its ports
    netctl.run_d("pc", "-P", "-p", f"{port_b + 1}:80", "-p", "81")
    assert ports_of(netctl, "pc") == [f"80/tcp -> 0.0.0.0:{port_b + 1}",
                                      f"81/tcp -> 0.0.0.0:{port_b + 2}"]


def test_publish_all_skips_ports_another_runtime_published(netctl: Netctl) -> None:
    """Another libcni runtime (containerd, nerdctl, CRI-O) caches what it published under
    its own cache directory: -P reads it there, not from portmap's firewall rules."""
    lo, _ = EPHEMERAL_PORTS
    other = os.path.join(netctl.root, "other-cni")
    os.makedirs(os.path.join(other, "results"))
    entry = {"kind": "cniCacheV1", "containerId": "c0ffee", "ifName": "eth0", "networkName": "k8s-pod-network",
             "netns": "/var/run/netns/cni-1", "config": "",
             "capabilityArgs": {"portMappings": [{"hostPort": lo, "containerPort": 80, "protocol": "tcp"},
                                                 {"hostPort": lo + 1, "containerPort": 80, "protocol": "udp"}]},
             "result": {"cniVersion": "1.0.0", "ips": []}}
    with open(os.path.join(other, "results", "k8s-pod-network-c0ffee-eth0"), "w") as fh:
        json.dump(entry, fh)
    netctl.extra_env["NETCTL_CNI_CACHE_DIRS"] = other
    netctl.run_d("pa", "-P", "-p", "80", "-p", "80/udp")
    # tcp skips lo, udp (picked after it, upwards) skips lo + 1
    assert ports_of(netctl, "pa") == [f"80/tcp -> 0.0.0.0:{lo + 1}", f"80/udp -> 0.0.0.0:{lo + 2}"]


def test_a_port_held_on_the_host_is_refused(netctl: Netctl, host_ns: Netns) -> None:
    host_ns.spawn(["socat", "TCP-LISTEN:7070,reuseaddr,fork", "SYSTEM:echo host"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: ":1B9E " in host_ns.run(["cat", "/proc/net/tcp"]).stdout)
    proc = netctl("run", "-d", "--name", "busy", "-p", "7070:80", "--", "sleep", "600", check=False)
    assert proc.returncode != 0 and "port 7070/tcp is already in use on the host" in proc.stderr
    assert netctl("ps", "-a", "-q").stdout.strip() == ""
    assert port_rules(host_ns) == []
