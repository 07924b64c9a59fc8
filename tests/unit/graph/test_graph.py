"""``netctl graph``: model building and golden DOT/text output, on hand-built models.

The expected outputs live in tests/golden/graph/. Rewrite them only on purpose:
``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/graph`` (then review the diff,
and render the DOT with ``dot -Tpng`` to look at it).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest
from goldenutil import assert_golden

from runtime.doctor.facts import Attachment, ContainerInfo, DnsdInfo
from runtime.graph.dot import render_dot
from runtime.graph.model import GContainer, GEndpoint, GNetwork, GPort, GraphModel, build_model
from runtime.graph.render import render
from runtime.graph.text import render_text
from runtime.models import Network, PortMapping, Subnet


def small() -> GraphModel:
    """Two networks, a container on both, one in another's namespace, a published port,
    a host veth that is down."""
    return GraphModel(
        networks=(
            GNetwork("bridge", bridge="netctl0", subnets=("172.17.0.0/16",), gateways=("172.17.0.1",),
                     builtin=True, dns=False, bridge_state="up"),
            GNetwork("my_net2", bridge="br-6069690eae69", subnets=("172.22.16.0/24",),
                     gateways=("172.22.16.1",), dns=True, icc=False, bridge_state="up",
                     dns_listen=("172.22.16.1",)),
        ),
        containers=(
            GContainer("web1", "a1" * 32, mode="my_net2", endpoints=(
                GEndpoint("my_net2", "eth0", ("172.22.16.2/24",), "veth373ab22e", "up"),)),
            GContainer("web2", "b2" * 32, mode="my_net2", endpoints=(
                GEndpoint("my_net2", "eth0", ("172.22.16.3/24",), "vethaccb8973", "down", ("db",)),
                GEndpoint("bridge", "eth1", ("172.17.0.3/16",), "veth0badf00d", "up")),
                ports=(GPort(8080, 80, "tcp", "127.0.0.1"),)),
            GContainer("sidecar", "c3" * 32, mode="container:" + "a1" * 32, joined_to="web1"),
            GContainer("lonely", "d4" * 32, running=False, mode="none"),
        ),
        dnsd_pid=4242,
    )


def big() -> GraphModel:
    """3 networks and 20 containers: the size the picture must stay readable at."""
    nets = (
        GNetwork("bridge", bridge="netctl0", subnets=("172.17.0.0/16",), gateways=("172.17.0.1",),
                 builtin=True, dns=False, bridge_state="up"),
        GNetwork("frontend", bridge="br-f00000000001", subnets=("10.10.0.0/24",), gateways=("10.10.0.1",),
                 dns=True, bridge_state="up", dns_listen=("10.10.0.1",)),
        GNetwork("backend", bridge="br-b00000000002", subnets=("10.20.0.0/24",), gateways=("10.20.0.1",),
                 dns=True, internal=True, bridge_state="up", dns_listen=("10.20.0.1",)),
    )
    ctrs: list[GContainer] = []
    plan = ([("frontend",)] * 6 + [("backend",)] * 7 + [("bridge",)] * 3
            + [("frontend", "backend")] * 3 + [()])
    count = {"bridge": 1, "frontend": 1, "backend": 1}
    for i, networks in enumerate(plan):
        eps = []
        for j, net in enumerate(networks):
            count[net] += 1
            base = {"bridge": "172.17.0", "frontend": "10.10.0", "backend": "10.20.0"}[net]
            prefix = "16" if net == "bridge" else "24"
            eps.append(GEndpoint(net, f"eth{j}", (f"{base}.{count[net]}/{prefix}",), f"veth{i:02d}{j}aaaaa",
                                 "up", ("api",) if net == "backend" and i == 16 else ()))
        name = ("web", "api", "old", "gw")[0 if networks == ("frontend",) else 1 if networks == ("backend",)
                                          else 2 if networks == ("bridge",) else 3] + str(i)
        ports = (GPort(8000 + i, 80),) if networks == ("frontend",) and i < 3 else ()
        mode = networks[0] if networks else "container:" + f"{1:064x}"
        ctrs.append(GContainer(name, hashlib.sha256(name.encode()).hexdigest(), mode=mode, endpoints=tuple(eps), ports=ports,
                               joined_to="web1" if not networks else None))
    return GraphModel(nets, tuple(ctrs), dnsd_pid=99)


def test_small_dot_golden() -> None:
    assert_golden("graph/small.dot", render_dot(small()))


def test_big_dot_golden() -> None:
    assert_golden("graph/three-networks-twenty-containers.dot", render_dot(big()))


def test_small_text_golden() -> None:
    assert_golden("graph/small.txt", render_text(small()))


def test_dot_marks_down_links_and_joined_containers() -> None:
    dot = render_dot(small())
    assert '"ctr:web2":if_eth0:e -> "br:my_net2" [color="#c0392b", style=dashed];' in dot
    assert '"ctr:web2":if_eth1:e -> "br:bridge";' in dot
    assert "eth0 172.22.16.3/24 (my_net2) ⇄ vethaccb8973 (down)" in dot
    assert '"ctr:sidecar" -> "ctr:web1" [style=dashed, label="shares netns"' in dot
    assert '"port:127.0.0.1:8080/tcp" -> "ctr:web2"' in dot
    assert '"dns:my_net2" [label="dnsd\\n172.22.16.1:53"' in dot
    # web2 is on two networks: drawn outside both clusters
    inside = dot.split('subgraph "cluster_my_net2"')[1].split("  }")[0]
    assert '"ctr:web1"' in inside and '"ctr:web2" [' not in inside


def test_dot_quotes_odd_names() -> None:
    model = GraphModel(networks=(GNetwork('we"ird', bridge="br-x"),))
    assert 'subgraph "cluster_we\\"ird"' in render_dot(model)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_the_big_graph_renders_with_graphviz() -> None:
    svg = render(big(), "svg")
    assert isinstance(svg, bytes) and b"<svg" in svg and b"gw16" in svg
    res = subprocess.run(["dot", "-Tplain"], input=render_dot(big()).encode(), capture_output=True, check=True)
    nodes = [line for line in res.stdout.decode().splitlines() if line.startswith("node ")]
    assert len(nodes) == 20 + 3 + 2 + 3  # containers, bridges, dnsd listeners, ports


def test_build_model_from_facts() -> None:
    when = "2026-01-01T00:00:00Z"
    nets = (Network("1" * 64, "bridge", "bridge", when, "netctl0", [Subnet("172.17.0.0/16", "172.17.0.1")],
                    dns=False, builtin=True),
            Network("2" * 64, "host", "host", when, builtin=True),
            Network("3" * 64, "my_net2", "bridge", when, "br-1", [Subnet("172.22.16.0/24", "172.22.16.1")]))
    web = ContainerInfo("web", "a" * 64, mode="my_net2", attachments=(
        Attachment("my_net2", "eth0", ("172.22.16.2/24",), "172.22.16.1", host_veth="veth1"),),
        ports=(PortMapping(80, 80),))
    side = ContainerInfo("side", "b" * 64, mode="container:" + "a" * 64, joined_to="web",
                         attachments=web.attachments)
    m = build_model(nets, (web, side), {"netctl0": True, "br-1": False},
                    DnsdInfo(True, 7, listen=(("my_net2", ("172.22.16.1",)),)))
    assert [n.name for n in m.networks] == ["bridge", "my_net2"]  # host and none are not drawn
    br1 = m.networks[1]
    assert br1.bridge_state == "down" and br1.dns_listen == ("172.22.16.1",)
    assert [c.name for c in m.containers] == ["side", "web"]  # sorted by name
    side_g, web_g = m.containers
    assert web_g.endpoints[0].veth_state == "missing"
    assert side_g.endpoints == () and side_g.joined_to == "web"
    assert m.members("my_net2") == [web_g]
    unread = build_model(nets, (web,), {}, DnsdInfo())
    assert unread.networks[1].bridge_state == "" and unread.networks[1].dns_listen == ()


def test_render_rejects_unknown_formats() -> None:
    from runtime.errors import NetctlError

    with pytest.raises(NetctlError, match="unknown graph format"):
        render(small(), "jpeg")


def test_title_is_singular_for_one() -> None:
    one = GraphModel(networks=(GNetwork(name="n", driver="bridge", subnets=(), bridge="br0"),),
                     containers=(GContainer(name="c", id="abc"),))
    assert one.title() == "netctl: 1 network, 1 container"
    assert render_text(one).splitlines()[0] == "netctl: 1 network, 1 container"
    assert 'label="netctl: 1 network, 1 container"' in render_dot(one)
    assert GraphModel().title() == "netctl: 0 networks, 0 containers"


def test_host_links_come_from_the_netlink_boundary() -> None:
    from fakenl import FakeHost, link

    from runtime.graph.gather import host_links

    host = FakeHost(links_=[link(1, "lo"), link(2, "br-a", "bridge"), link(3, "vethdown", "veth", up=False)])
    assert host_links(host) == {"lo": True, "br-a": True, "vethdown": False}

    class Refusing(FakeHost):
        def links(self) -> list:  # type: ignore[type-arg]
            from netplugins.nl.types import NetlinkError

            raise NetlinkError(1)

    assert host_links(Refusing()) == {}
