"""``netctl doctor`` on setups broken on purpose, in a throwaway host namespace.

Each test builds one broken path with netctl (plus ``ip``/``sysctl`` inside the
throwaway namespaces only), asserts the ✘ hop, the verdict and the fix, and where the
fix is a command, applies it and checks that doctor then calls the path healthy.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from nsutil import Netns
from test_doctor_support import OUTSIDE_PEER, SLEEPER, NetctlHost, failed, hop

from runtime.graph.render import dot_to

pytestmark = pytest.mark.netns


def test_healthy_path(host: NetctlHost) -> None:
    host.netctl("create", "--subnet", "172.30.1.0/24", "front")
    host.sleeper("web1", "--network", "front")
    host.sleeper("web2", "--network", "front", "--alias", "api")
    rc, r = host.doctor("web1", "web2")
    assert rc == 0, r
    assert r["verdict"]["ok"] and failed(r) == []
    assert r["verdict"]["summary"].startswith("healthy: web1 reaches web2 (ping 172.30.1.3: reply")
    assert hop(r, "dns")["summary"] == "web2 → 172.30.1.3"
    assert "netctl net=front" in hop(r, "firewall")["summary"]
    rc, r = host.doctor("web1", "api")  # an alias, resolved through dnsd
    assert rc == 0 and hop(r, "target")["summary"].startswith("api is a name of web2")
    text = host.run("doctor", "web1", "web2").stdout
    assert "  ✔ probe" in text and "verdict: ✔ healthy" in text


def test_different_networks(host: NetctlHost) -> None:
    host.netctl("create", "--subnet", "172.30.1.0/24", "front")
    host.netctl("create", "--subnet", "172.30.2.0/24", "back")
    host.sleeper("web1", "--network", "front")
    host.sleeper("db", "--network", "back")
    rc, r = host.doctor("web1", "db")
    assert rc == 3
    assert failed(r) == ["network", "firewall", "dns", "probe"]
    assert r["verdict"]["cause"] == "no-shared-network"
    assert r["verdict"]["fix"] == "connect them: netctl connect back web1"
    fw = hop(r, "firewall")["summary"]
    assert fw.startswith("dropped: table inet netctl chain forward -> in-") and "netctl net=back" in fw
    host.netctl("connect", "back", "web1")
    rc, r = host.doctor("web1", "db")
    assert rc == 0, r["verdict"]


def test_icc_off(host: NetctlHost) -> None:
    host.netctl("create", "--subnet", "172.30.3.0/24", "-o", "com.docker.network.bridge.enable_icc=false", "quiet")
    host.sleeper("c1", "--network", "quiet")
    host.sleeper("c2", "--network", "quiet")
    rc, r = host.doctor("c1", "c2")
    assert rc == 3
    assert "isolation" in failed(r) and "probe" in failed(r)
    assert r["verdict"]["cause"] == "icc-off"
    assert r["verdict"]["summary"].startswith("c1 cannot reach c2: icc is off on quiet")
    assert r["verdict"]["fix"].startswith("icc is off on quiet: put them on a network with icc on")
    assert any("isolated on" in e for e in hop(r, "isolation")["evidence"])


def test_internal_network_to_outside(host: NetctlHost, make_ns: Callable[..., Netns]) -> None:
    host.outside(make_ns)
    host.netctl("create", "--subnet", "172.30.4.0/24", "--internal", "sealed")
    host.netctl("create", "--subnet", "172.30.5.0/24", "open")
    # NET_ADMIN: the test adds a route inside the container further down
    host.sleeper("vault", "--network", "sealed", "--cap-add", "NET_ADMIN")
    rc, r = host.doctor("vault", OUTSIDE_PEER)
    assert rc == 3
    assert failed(r) == ["network", "route", "probe"]
    assert r["verdict"]["cause"] == "internal"
    assert r["verdict"]["summary"] == f"vault cannot reach {OUTSIDE_PEER}: sealed is internal: no traffic leaves it"
    assert r["verdict"]["fix"] == ("connect vault to a network that is not internal as well: "
                                   "netctl connect open vault")
    # without a route the probe never reaches the host: the kernel has nothing to say
    assert hop(r, "firewall")["status"] == "info"
    assert hop(r, "firewall")["summary"].startswith("no probe packet reached the host's firewall")
    # a route added by hand (the container may, for now): the kernel drops it in sealed's guard
    host.exec("vault", "ip", "route", "add", "default", "via", "172.30.4.1")
    rc, r = host.doctor("vault", OUTSIDE_PEER)
    assert rc == 3 and "firewall" in failed(r)
    fw = hop(r, "firewall")["summary"]
    assert fw.startswith("dropped: table inet netctl chain forward -> guard-") and "netctl net=sealed" in fw
    host.exec("vault", "ip", "route", "del", "default")
    host.netctl("connect", "open", "vault")
    rc, r = host.doctor("vault", OUTSIDE_PEER)
    assert rc == 0, r["verdict"]


def test_interface_set_down(host: NetctlHost) -> None:
    host.netctl("create", "--subnet", "172.30.6.0/24", "front")
    host.sleeper("web1", "--network", "front")
    # changing its own interface needs NET_ADMIN, which containers lack by default
    host.sleeper("web2", "--network", "front", "--cap-add", "NET_ADMIN")
    host.exec("web2", "ip", "link", "set", "eth0", "down")
    rc, r = host.doctor("web1", "web2")
    assert rc == 3
    assert "target interface" in failed(r)
    assert r["verdict"]["cause"] == "link-down"
    assert r["verdict"]["summary"] == "web1 cannot reach web2: eth0 in web2 is down"
    assert r["verdict"]["fix"] == "bring it up: netctl exec web2 -- ip link set eth0 up"
    host.exec("web2", "ip", "link", "set", "eth0", "up")
    rc, r = host.doctor("web1", "web2")
    assert rc == 0, r["verdict"]


def test_route_deleted(host: NetctlHost, make_ns: Callable[..., Netns]) -> None:
    host.outside(make_ns)
    host.netctl("create", "--subnet", "172.30.7.0/24", "front")
    host.sleeper("web1", "--network", "front", "--cap-add", "NET_ADMIN")
    host.exec("web1", "ip", "route", "del", "default")
    rc, r = host.doctor("web1", OUTSIDE_PEER)
    assert rc == 3
    assert failed(r) == ["route", "probe"]
    assert r["verdict"]["cause"] == "route-missing"
    assert r["verdict"]["summary"].endswith("the route default via 172.30.7.1 dev eth0 is missing in web1")
    fix = r["verdict"]["fix"]
    assert fix == "put it back: netctl exec web1 -- ip route add default via 172.30.7.1 dev eth0"
    host.netctl(*fix.removeprefix("put it back: netctl ").split())
    rc, r = host.doctor("web1", OUTSIDE_PEER)
    assert rc == 0, r["verdict"]


def test_ip_forward_off(host: NetctlHost, make_ns: Callable[..., Netns]) -> None:
    host.outside(make_ns)
    host.netctl("create", "--subnet", "172.30.8.0/24", "front")
    host.sleeper("web1", "--network", "front")
    host.ns.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"])  # the throwaway host only
    rc, r = host.doctor("web1", OUTSIDE_PEER)
    assert rc == 3
    assert failed(r) == ["forwarding", "probe"]
    assert r["verdict"]["cause"] == "ip-forward-off"
    assert r["verdict"]["fix"] == "turn it back on: sysctl -w net.ipv4.ip_forward=1"
    host.ns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    rc, r = host.doctor("web1", OUTSIDE_PEER)
    assert rc == 0, r["verdict"]
    assert any(e.startswith("masqueraded: ") for e in hop(r, "firewall")["evidence"]), hop(r, "firewall")


def test_name_on_the_default_bridge(host: NetctlHost) -> None:
    host.sleeper("old1")
    host.sleeper("old2")
    rc, r = host.doctor("old1", "old2")
    assert rc == 3
    assert failed(r) == ["dns"]
    assert r["probe"]["outcome"] == "ok"  # reachable by address, not by name
    assert r["verdict"]["cause"] == "no-dns-default-bridge"
    assert r["verdict"]["summary"] == (f"old1 reaches old2 at {host.ip('old2')}, but not by name: "
                                       "old1 is on the default bridge, which has no DNS")
    assert r["verdict"]["fix"].startswith("use a user-defined network: netctl create NET")


def _portmap_present() -> bool:
    from netplugins.delivery import default_dir

    return os.path.exists(os.path.join(default_dir(), "portmap"))


@pytest.mark.skipif(not _portmap_present(), reason="the portmap plugin executable is absent "
                    "(netplugins/bin/portmap): -p publishes nothing yet")
def test_published_port_on_loopback(host: NetctlHost) -> None:
    host.netctl("create", "--subnet", "172.30.9.0/24", "front")
    host.netctl("create", "--subnet", "172.30.12.0/24", "elsewhere")
    host.netctl("run", "-d", "--name", "srv", "--network", "front", "-p", "127.0.0.1:18080:80", "-p", "18081:80",
                "--", "socat", "TCP-LISTEN:80,fork,reuseaddr", "EXEC:cat")
    # from another network: the host (its gateway 172.30.12.1) is "outside" for the port
    host.sleeper("client", "--network", "elsewhere")
    rc, r = host.doctor("client", "host:18080")
    assert rc == 3
    assert "published port" in failed(r)
    assert r["verdict"]["cause"] == "port-loopback"
    assert r["verdict"]["summary"] == ("client cannot reach host:18080: port 18080 is published on 127.0.0.1 only: "
                                       "the host itself can reach it, client cannot")
    assert r["verdict"]["fix"].startswith("publish it on every address (netctl run -p 18080:80 ...)")
    assert r["probe"]["outcome"] != "ok"
    rc, r = host.doctor("client", "host:18081")  # the same server published on every address
    assert rc == 0, r
    # portmap's rules were checked against the plan it recorded, with the driver it used
    assert not [e for e in hop(r, "published port")["evidence"] if "could not check" in e], r


def test_graph_of_a_real_setup(host: NetctlHost, tmp_path: Path) -> None:
    host.netctl("create", "--subnet", "172.30.10.0/24", "front")
    host.netctl("create", "--subnet", "172.30.11.0/24", "--internal", "back")
    host.sleeper("web", "--network", "front", "--alias", "www")
    host.sleeper("db", "--network", "back")
    host.sleeper("old")
    host.netctl("connect", "back", "web")
    host.netctl("run", "-d", "--name", "side", "--network", "container:web", "--", *SLEEPER)
    dot = host.netctl("graph", "--format", "dot")
    for needle in ('"cluster_front"', '"cluster_back"', '"cluster_bridge"', '"ctr:web":if_eth0:e -> "br:front"',
                   '"ctr:web":if_eth1:e -> "br:back"', '"ctr:db":if_eth0:e -> "br:back"',
                   '"ctr:side" -> "ctr:web" [style=dashed', "172.30.10.2/24", "aliases: www",
                   "dnsd\\n172.30.10.1:53", "netctl0 (up)"):
        assert needle in dot, needle
    assert "(down)" not in dot and "(missing)" not in dot
    text = host.netctl("graph")
    assert "side → shares web's namespace" in text
    assert "network back  bridge br-" in text and "internal" in text
    out = tmp_path / "net.svg"
    host.netctl("graph", "-o", str(out))
    assert out.read_bytes().startswith(b"<?xml") and b"<svg" in out.read_bytes()
    assert dot_to(dot, "plain").startswith(b"graph ")  # the DOT netctl printed is valid
