"""The pyroute2 implementation's reading of kernel messages, without a kernel: messages are
encoded by pyroute2 and decoded again, as a reply would be, then turned into our results.
The same link read by our rtnetlink client's parser must give the same Link."""

from __future__ import annotations

import pytest

pytest.importorskip("pyroute2")

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # noqa: E402
from pyroute2.netlink.rtnl.rtmsg import rtmsg  # noqa: E402

from netplugins.nl.pyroute import _link, _route  # noqa: E402
from netplugins.nl.rtnl import _parse_link  # noqa: E402
from netplugins.nl.types import Link, nud_name  # noqa: E402


def roundtrip(msg: object) -> object:
    msg.encode()  # type: ignore[attr-defined]
    out = type(msg)(msg.data)  # type: ignore[attr-defined,call-arg]
    out.decode()  # type: ignore[attr-defined]
    return out


def port_msg() -> ifinfmsg:
    m = ifinfmsg()
    m["index"], m["flags"] = 5, 0x11043
    m["attrs"] = [["IFLA_IFNAME", "veth0"], ["IFLA_ADDRESS", "02:00:00:00:00:05"], ["IFLA_MTU", 1400],
                  ["IFLA_MASTER", 3], ["IFLA_LINK", 2], ["IFLA_IFALIAS", "netctl net=n"],
                  ["IFLA_LINKINFO", {"attrs": [
                      ["IFLA_INFO_KIND", "veth"], ["IFLA_INFO_SLAVE_KIND", "bridge"],
                      ["IFLA_INFO_SLAVE_DATA", {"attrs": [["IFLA_BRPORT_STATE", 3], ["IFLA_BRPORT_ISOLATED", 1]]}]]}]]
    return m


def test_a_bridge_port_reads_the_same_with_both_parsers() -> None:
    want = Link(index=5, name="veth0", flags=0x11043, mac="02:00:00:00:00:05", mtu=1400, kind="veth", master=3,
                peer=2, alias="netctl net=n", isolated=True, port_state="forwarding")
    decoded = roundtrip(port_msg())
    assert _link(decoded) == want
    assert _parse_link(bytes(decoded.data[16:])) == want  # type: ignore[attr-defined]  # minus nlmsghdr
    assert want.up and want.lower_up


def test_routes_and_neighbour_states() -> None:
    r = rtmsg()
    r["family"], r["dst_len"], r["type"] = 2, 0, 1
    r["attrs"] = [["RTA_OIF", 2], ["RTA_GATEWAY", "10.0.0.1"]]
    assert _route(roundtrip(r)).dst == "default" and _route(roundtrip(r)).gateway == "10.0.0.1"
    r["dst_len"], r["type"] = 24, 7
    r["attrs"] = [["RTA_DST", "10.9.0.0"]]
    got = _route(roundtrip(r))
    assert (got.dst, got.type, got.oif) == ("10.9.0.0/24", "unreachable", 0)
    assert nud_name(0x80) == "PERMANENT" and nud_name(0x04) == "STALE" and nud_name(0) == "NONE"
