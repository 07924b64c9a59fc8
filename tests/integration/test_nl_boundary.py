"""The netlink boundary against a real kernel, in throwaway namespaces.

Both implementations of ``PluginNetlink`` (our rtnetlink client and pyroute2) run the
bridge plugin's steps and whole ADD/CHECK/DEL calls; what they build, what they read
back and the plugin's result bytes must be the same. The pyroute2-only reads and writes
of ``HostNetlink`` (routes, lookups, neighbours, VXLAN and FDB) and doctor's read of a
namespace are checked here too. Everything runs in a forked child inside the namespace
(``overlaylab.in_netns``): the test process never changes namespace.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from nsutil import Netns
from overlaylab import in_netns

from netplugins.nl import bridge as nlb
from netplugins.nl.netns import entered, open_netns
from netplugins.nl.pyroute import Pyroute
from netplugins.nl.rtnl import Rtnl
from netplugins.nl.types import IFF_UP, NetlinkError

IMPLS: dict[str, Callable[[], Any]] = {"rtnl": Rtnl, "pyroute2": Pyroute}


def _impl(name: str) -> Any:
    return IMPLS[name]()


def stable(link: Any) -> Any:
    """A Link without what the kernel changes on its own between two reads: carrier
    (LOWER_UP, RUNNING) and the port's STP state (a bridge port goes learning -> forwarding)."""
    from dataclasses import replace

    return replace(link, flags=link.flags & ~0x10040, port_state=None)


def _bridge_steps(impl: str, ctr_path: str) -> dict[str, Any]:
    """The plugin's ADD steps on ``impl``, then everything read back with both."""
    cfd = open_netns(ctr_path)
    with entered(ctr_path):
        cnl = _impl(impl)
    with _impl(impl) as nl, cnl:
        index, mac = nlb.ensure_bridge(nl, "nlbr0", 1400, True, "02:11:00:00:00:01", mark="netctl net=nl")
        again = nlb.ensure_bridge(nl, "nlbr0", 1400, True, "02:11:00:00:00:99", mark="netctl net=nl")
        nlb.ensure_bridge_room(nl, "nlbr0", index, nlb.BRIDGE_MAX_PORTS)  # counts the ports: none yet
        nlb.ensure_gateway(nl, "nlbr0", index, "10.66.0.1/24", False)
        nlb.ensure_gateway(nl, "nlbr0", index, "fd66::1/64", False)
        nlb.ensure_gateway(nl, "nlbr0", index, "10.66.0.1/24", False)  # present: no change
        nlb.create_veth(nl, "nlveth0", "02:11:00:00:00:02", "eth0", "02:11:00:00:00:03", cfd, 1400, index, "nlbr0")
        nlb.setup_host_port(nl, "nlveth0", hairpin=True, isolated=True)
        mtu = nlb.configure_container_iface(cnl, "eth0", [("10.66.0.5/24", "10.66.0.1")],
                                            [("0.0.0.0/0", "10.66.0.1"), ("10.77.0.0/16", None)])
        ports = nl.count_ports(index)
        with pytest.raises(Exception) as other:
            nlb.ensure_gateway(nl, "nlbr0", index, "10.66.9.1/24", False)
    os.close(cfd)
    seen: dict[str, Any] = {"index": index, "mac": mac, "again": again, "mtu": mtu, "ports": ports,
                            "other": str(other.value)}
    for reader in IMPLS:  # each implementation reads what ``impl`` built
        with _impl(reader) as r:
            seen[f"{reader}:bridge"] = r.get_link("nlbr0")
            seen[f"{reader}:veth"] = r.get_link("nlveth0")
            seen[f"{reader}:addrs"] = sorted((a.cidr, a.scope) for a in r.addresses(index))
        with entered(ctr_path), _impl(reader) as r:
            eth0 = r.get_link("eth0")
            seen[f"{reader}:eth0"] = eth0
            seen[f"{reader}:eth0 addrs"] = sorted(a.cidr for a in r.addresses(eth0.index) if a.scope == 0)
            seen[f"{reader}:routes"] = sorted(r.route_destinations())
    with open("/proc/sys/net/ipv6/conf/nlveth0/accept_ra") as fh:
        seen["accept_ra"] = fh.read().strip()
    with entered(ctr_path), open("/proc/sys/net/ipv4/conf/eth0/arp_notify") as fh:
        seen["arp_notify"] = fh.read().strip()
    with _impl(impl) as nl:
        seen["deleted"] = (nlb.delete_link(nl, "nlveth0"), nlb.delete_link(nl, "nlveth0"))
    with entered(ctr_path), _impl(impl) as r:
        seen["eth0 after"] = r.get_link("eth0")
    return seen


@pytest.mark.parametrize("impl", list(IMPLS))
def test_bridge_steps_build_the_same_on_both(impl: str, make_ns: Callable[..., Netns]) -> None:
    host, ctr = make_ns("nctest-nlh"), make_ns("nctest-nlc")
    seen = in_netns(host.path, _bridge_steps, impl, ctr.path)
    br = seen["rtnl:bridge"]
    assert stable(seen["rtnl:bridge"]) == stable(seen["pyroute2:bridge"])  # both parse the link alike
    assert br.kind == "bridge" and br.up and br.flags & 0x100 and br.mtu == 1400
    assert br.mac == "02:11:00:00:00:01" and br.alias == "netctl net=nl"
    assert seen["again"] == (seen["index"], "02:11:00:00:00:01")  # an existing bridge keeps its MAC
    veth = seen["rtnl:veth"]
    assert stable(veth) == stable(seen["pyroute2:veth"])
    assert veth.kind == "veth" and veth.up and veth.master == br.index and veth.mac == "02:11:00:00:00:02"
    assert veth.isolated is True and veth.port_state in ("forwarding", "disabled", "learning", "listening")
    assert seen["rtnl:addrs"] == seen["pyroute2:addrs"]
    assert ("10.66.0.1/24", 0) in seen["rtnl:addrs"] and ("fd66::1/64", 0) in seen["rtnl:addrs"]
    eth0 = seen["rtnl:eth0"]
    assert stable(eth0) == stable(seen["pyroute2:eth0"]) and eth0.up and eth0.mac == "02:11:00:00:00:03" and eth0.mtu == 1400
    assert seen["rtnl:eth0 addrs"] == seen["pyroute2:eth0 addrs"] == ["10.66.0.5/24"]
    assert seen["rtnl:routes"] == seen["pyroute2:routes"]
    assert {"0.0.0.0/0", "10.66.0.0/24", "10.77.0.0/16"} <= set(seen["rtnl:routes"])
    assert seen["mtu"] == 1400 and seen["ports"] == 1
    assert "already has an IP address different from 10.66.9.1/24" in seen["other"]
    assert seen["accept_ra"] == "0" and seen["arp_notify"] == "1"
    assert seen["deleted"] == (True, False) and seen["eth0 after"] is None  # the peer went with it


def _errors(impl: str) -> dict[str, Any]:
    with _impl(impl) as nl:
        out: dict[str, Any] = {"absent": nl.get_link("nosuch")}
        for name, call in (("del", lambda: nl.del_link("nosuch")),
                           ("addr", lambda: nl.del_addr(1, "10.9.9.9/32")),
                           ("exists", lambda: nl.add_bridge("lo", "02:00:00:00:00:01", 0, IFF_UP))):
            try:
                call()
                out[name] = None
            except NetlinkError as exc:
                out[name] = exc.code
        return out


@pytest.mark.parametrize("impl", list(IMPLS))
def test_errors_are_one_class_with_the_errno(impl: str, make_ns: Callable[..., Netns]) -> None:
    got = in_netns(make_ns("nctest-nlh").path, _errors, impl)
    assert got == {"absent": None, "del": errno.ENODEV, "addr": errno.EADDRNOTAVAIL, "exists": errno.EEXIST}


# --- whole plugin calls: the result bytes on both implementations -------------------------

def _plugin_calls(impl: str, ctr_path: str, state_dir: str) -> list[tuple[int, bytes]]:
    """ADD, CHECK, a refused ADD (CNI_IFNAME taken), DEL, DEL again, ADD on a bridge name
    that is not a bridge: each call's exit code and stdout, with ``impl`` in the plugin."""
    import itertools

    import netplugins.main.bridge as plugin
    from netplugins.cni import skel
    from netplugins.cni.types import IPConfig, Result, Route

    plugin.Rtnl = IMPLS[impl]  # type: ignore[attr-defined,misc]  # the child process only
    nlb.Rtnl = IMPLS[impl]  # type: ignore[misc]  # bridge_check reads it from here
    macs = (f"02:22:00:00:00:{i:02x}" for i in itertools.count(1))
    plugin.random_mac = lambda: next(macs)  # type: ignore[attr-defined]

    def ipam(_stack: Any) -> tuple[Result, str]:
        return Result(ips=(IPConfig(address="10.67.0.5/24", gateway="10.67.0.1"),),
                      routes=(Route(dst="0.0.0.0/0"),)), ""

    funcs = skel.PluginFuncs(add=lambda a: plugin.cmd_add(a, ipam), delete=plugin.cmd_del, check=plugin.cmd_check)

    def call(command: str, conf: dict[str, Any], ifname: str = "eth0") -> tuple[int, bytes]:
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": "c0ffee", "CNI_NETNS": ctr_path,
               "CNI_IFNAME": ifname, "CNI_PATH": "/nonexistent"}
        out = skel.run(funcs, env, json.dumps(conf).encode())
        return out.exit_code, out.stdout

    conf = {"cniVersion": "1.0.0", "name": "nlnet", "type": "bridge", "bridge": "nlbr1", "isGateway": True,
            "ipMasq": False, "firewallDriver": "none", "stateDir": state_dir}
    calls = [call("ADD", conf)]
    prev = json.loads(calls[0][1])
    calls.append(call("CHECK", dict(conf, prevResult=prev)))
    calls.append(call("ADD", conf))  # eth0 exists now: refused, nothing changed
    calls.append(call("DEL", conf))
    calls.append(call("DEL", conf))
    cfd = open_netns(ctr_path)
    with Rtnl() as nl:  # a veth pair whose host end has the bridge's name
        nl.add_veth("nlnotbr", "02:33:00:00:00:01", 0, 0, "nlpeer", "02:33:00:00:00:02", cfd)
    os.close(cfd)
    calls.append(call("ADD", dict(conf, bridge="nlnotbr")))
    return calls


def test_plugin_result_bytes_are_identical_on_both(make_ns: Callable[..., Netns], tmp_path: Any) -> None:
    """The same namespaces, one implementation after the other (the first's DEL leaves the
    bridge, which the second then adopts, as a second container's ADD would)."""
    host, ctr = make_ns("nctest-nlh"), make_ns("nctest-nlc")
    runs = {}
    for impl in IMPLS:
        runs[impl] = in_netns(host.path, _plugin_calls, impl, ctr.path, str(tmp_path / impl))
        host.run(["ip", "link", "del", "nlnotbr"], check=False)
    assert runs["rtnl"] == runs["pyroute2"]
    codes = [code for code, _ in runs["rtnl"]]
    assert codes == [0, 0, 1, 0, 0, 1]
    add = json.loads(runs["rtnl"][0][1])
    assert add["ips"] == [{"address": "10.67.0.5/24", "gateway": "10.67.0.1", "interface": 2}]
    assert json.loads(runs["rtnl"][2][1])["code"] == 106
    refused = json.loads(runs["rtnl"][5][1])
    assert refused["code"] == 7 and "not a bridge" in refused["msg"]


# --- the overlay's operations (both) and the reads only pyroute2 implements ---------------

def _overlay_ops(impl: str) -> dict[str, Any]:
    """The VXLAN device and its entries made with ``impl``, read back with both."""
    out: dict[str, Any] = {}
    with _impl(impl) as h:
        h.add_bridge("nlbr2", "02:44:00:00:00:01", 0, IFF_UP)
        br = h.get_link("nlbr2")
        h.add_vxlan("nlvx0", 4242, "10.68.0.1", 4789)
        with pytest.raises(NetlinkError) as again:
            h.add_vxlan("nlvx0", 4242, "10.68.0.1", 4789)
        out["again"] = again.value.code
        vx = h.get_link("nlvx0")
        h.set_link(vx.index, flags=IFF_UP, change=IFF_UP, mtu=1350, master=br.index)
        h.replace_fdb(vx.index, "02:44:00:00:00:07", "192.0.2.7")
        h.replace_fdb(vx.index, "02:44:00:00:00:08", "192.0.2.8")
        h.replace_neigh(vx.index, "10.68.0.7", "02:44:00:00:00:07")
        h.replace_neigh(vx.index, "10.68.0.7", "02:44:00:00:00:07")  # replace: no EEXIST
        for reader in IMPLS:
            with _impl(reader) as r:
                out[f"{reader}:vx"] = stable(r.get_link("nlvx0"))
                out[f"{reader}:fdb"] = sorted((e.mac, e.dst) for e in r.fdb(vx.index) if e.dst)
                out[f"{reader}:neigh"] = [(n.ip, n.state, n.lladdr) for n in r.neighbours(vx.index)]
        h.del_fdb(vx.index, "02:44:00:00:00:07", "192.0.2.7")
        h.del_neigh(vx.index, "10.68.0.7")
        out["fdb after"] = sorted((e.mac, e.dst) for e in h.fdb(vx.index) if e.dst)
        out["neigh after"] = h.neighbours(vx.index)
        out["bridge"] = br.index
    return out


@pytest.mark.parametrize("impl", list(IMPLS))
def test_overlay_device_and_entries_on_both(impl: str, make_ns: Callable[..., Netns]) -> None:
    host = make_ns("nctest-nlh")
    host.sh("ip link add nlv0 type veth peer name nlv1 && ip addr add 10.68.0.1/24 dev nlv0 && ip link set nlv0 up")
    got = in_netns(host.path, _overlay_ops, impl)
    assert got["again"] == errno.EEXIST
    vx = got["rtnl:vx"]
    assert vx == got["pyroute2:vx"]
    assert vx.kind == "vxlan" and vx.up and vx.mtu == 1350 and vx.master == got["bridge"]
    assert got["rtnl:fdb"] == got["pyroute2:fdb"] == [("02:44:00:00:00:07", "192.0.2.7"),
                                                      ("02:44:00:00:00:08", "192.0.2.8")]
    assert got["rtnl:neigh"] == got["pyroute2:neigh"] == [("10.68.0.7", "PERMANENT", "02:44:00:00:00:07")]
    assert got["fdb after"] == [("02:44:00:00:00:08", "192.0.2.8")] and got["neigh after"] == []
    # what iproute2 shows of the device: no learning, ARP proxy, our VNI and port
    details = host.run(["ip", "-d", "link", "show", "nlvx0"]).stdout
    assert "vxlan id 4242" in details and "local 10.68.0.1" in details and "dstport 4789" in details
    assert "nolearning" in details and "proxy" in details


def _host_reads(ctr_path: str) -> dict[str, Any]:
    with entered(ctr_path), Pyroute() as c:
        eth0 = c.get_link("eth0")
        c.add_addr(eth0.index, "10.68.0.5/24")
        c.set_link(eth0.index, flags=IFF_UP, change=IFF_UP)
        c.add_route("0.0.0.0/0", "10.68.0.1", eth0.index)
        c.replace_neigh(eth0.index, "10.68.0.9", "02:44:00:00:00:09")
        out: dict[str, Any] = {"routes": c.routes(), "lookup": c.route_get("10.99.0.1"),
                               "neigh": c.neighbours(eth0.index), "links": [lk.name for lk in c.links()]}
        try:
            c.route_get("fd99::1")
            out["v6 lookup"] = None
        except NetlinkError as exc:
            out["v6 lookup"] = exc.code
    return out


def test_host_reads(make_ns: Callable[..., Netns]) -> None:
    host, ctr = make_ns("nctest-nlh"), make_ns("nctest-nlc")
    host.run(["ip", "link", "add", "nlv0", "type", "veth", "peer", "name", "eth0", "netns", ctr.name])
    got = in_netns(host.path, _host_reads, ctr.path)
    eth0 = 2
    assert [(r.dst, r.oif, r.gateway) for r in got["routes"] if r.family == 2] == [
        ("default", eth0, "10.68.0.1"), ("10.68.0.0/24", eth0, None)]
    assert (got["lookup"].oif, got["lookup"].gateway, got["lookup"].prefsrc) == (eth0, "10.68.0.1", "10.68.0.5")
    assert [(n.ip, n.state, n.lladdr) for n in got["neigh"]] == [("10.68.0.9", "PERMANENT", "02:44:00:00:00:09")]
    assert got["v6 lookup"] == errno.ENETUNREACH and got["links"] == ["lo", "eth0"]


def test_doctor_reads_another_namespace_without_nsenter(make_ns: Callable[..., Netns]) -> None:
    """open_host(netns): the socket is made inside the namespace, the caller stays home."""
    from runtime.doctor.gather import read_view

    host, ctr = make_ns("nctest-nlh"), make_ns("nctest-nlc")
    host.run(["ip", "link", "add", "nlv1", "type", "veth", "peer", "name", "eth0", "netns", ctr.name])
    ctr.sh("ip addr add 10.69.0.5/24 dev eth0 && ip link set eth0 up")

    def read() -> tuple[Any, str, str]:
        home = os.readlink("/proc/thread-self/ns/net")
        view = read_view(ctr.path, ("10.69.0.7", "10.99.0.1"))
        return view, home, os.readlink("/proc/thread-self/ns/net")

    view, before, after = in_netns(host.path, read)
    assert before == after
    eth0 = view.link("eth0")
    assert eth0 is not None and eth0.kind == "veth" and view.addresses(eth0) == ("10.69.0.5/24",)
    assert not eth0.lower_up  # its peer in the host is down
    assert view.lookup("10.69.0.7").dev == "eth0" and view.lookup("10.99.0.1").error == "Network is unreachable"
    with pytest.raises(Exception, match="cannot read the links of /nonexistent"):
        in_netns(host.path, read_view, "/nonexistent")
