"""Pure planning of published ports: mappings, families, tags, conflicts (no kernel)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netplugins.firewall.errors import FirewallError
from netplugins.firewall.plan import network_owner, parse_owner
from netplugins.firewall.ports import (
    TAG_LIMIT,
    Forward,
    Hairpin,
    PortMapping,
    Published,
    attachment_tag,
    duplicate_forwards,
    find_conflicts,
    plan_ports,
    tag_in_network,
)

V4, V6 = "10.88.1.2/24", "fd88::2/64"


def plan(*mappings: PortMapping, addrs: tuple[str, ...] = (V4,), cid: str = "c1", snat: bool = True):  # type: ignore[no-untyped-def]
    return plan_ports("web", cid, "eth0", mappings, addrs, snat=snat)


def test_empty_host_ip_covers_the_families_the_container_has() -> None:
    p = plan(PortMapping(8080, 80), addrs=(V4, V6))
    assert p.forwards == (
        Forward(4, "tcp", None, 8080, "10.88.1.2", 80),
        Forward(6, "tcp", None, 8080, "fd88::2", 80),
    )
    assert p.hairpins == (Hairpin(4, "10.88.1.2", "10.88.1.0/24"), Hairpin(6, "fd88::2", "fd88::/64"))
    assert plan(PortMapping(8080, 80)).families == (4,)


def test_wildcards_and_specific_addresses_select_one_family() -> None:
    p = plan(PortMapping(1, 1, host_ip="0.0.0.0"), PortMapping(2, 2, host_ip="::"),
             PortMapping(3, 3, "udp", "192.0.2.1"), addrs=(V4, V6))
    assert [(f.family, f.host_ip) for f in p.forwards] == [(4, None), (6, None), (4, "192.0.2.1")]


def test_host_ip_of_a_family_the_container_lacks_is_refused() -> None:
    with pytest.raises(FirewallError, match="no IPv6 address"):
        plan(PortMapping(80, 80, host_ip="2001:db8::1"))
    with pytest.raises(FirewallError, match="::1 cannot be forwarded"):
        plan(PortMapping(80, 80, host_ip="::1"), addrs=(V4, V6))
    with pytest.raises(FirewallError, match="no IP address"):
        plan(PortMapping(80, 80), addrs=())


@pytest.mark.parametrize("kwargs, words", [
    ({"host_port": 0, "container_port": 80}, "host port"),
    ({"host_port": 65536, "container_port": 80}, "host port"),
    ({"host_port": True, "container_port": 80}, "host port"),
    ({"host_port": "80", "container_port": 80}, "host port"),
    ({"host_port": 80, "container_port": None}, "container port"),
    ({"host_port": 80, "container_port": 80, "protocol": "icmp"}, "protocol"),
    ({"host_port": 80, "container_port": 80, "host_ip": "localhost"}, "host IP"),
])
def test_bad_mappings(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(FirewallError, match=words):
        PortMapping(**kwargs)  # type: ignore[arg-type]


def test_host_ip_is_normalised() -> None:
    assert PortMapping(80, 80, host_ip="2001:DB8:0::1").host_ip == "2001:db8::1"
    assert str(PortMapping(80, 81, "udp", "::1")) == "[::1]:80->81/udp"


def test_localnet_only_for_ipv4_ports_that_answer_on_loopback() -> None:
    assert plan(PortMapping(80, 80)).localnet
    assert plan(PortMapping(80, 80, host_ip="127.0.0.1")).localnet
    assert not plan(PortMapping(80, 80, host_ip="192.0.2.1")).localnet
    assert not plan(PortMapping(80, 80, host_ip="::"), addrs=(V4, V6)).localnet
    assert not plan(PortMapping(80, 80), snat=False).localnet
    assert plan(PortMapping(80, 80), snat=False).hairpins == ()


def test_tags_name_the_attachment_and_fit_nft_comments() -> None:
    assert attachment_tag("web", "c1", "eth0") == "netctl net=web cid=c1 if=eth0"
    cid = "f" * 64
    assert attachment_tag("web", cid, "eth0") == f"netctl net=web cid={cid} if=eth0"
    long_net, long_cid = "n" * 100, "c" * 200
    tag = attachment_tag(long_net, long_cid, "eth012345678901")
    assert len(tag) <= TAG_LIMIT
    assert tag == attachment_tag(long_net, long_cid, "eth012345678901")  # deterministic
    assert tag != attachment_tag(long_net, long_cid[:-1] + "d", "eth012345678901")
    assert tag_in_network(tag, long_net) and not tag_in_network(tag, "n" * 99)
    with pytest.raises(FirewallError):
        attachment_tag("web", "has space", "eth0")


@given(net=st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,99}", fullmatch=True),
       cid=st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,300}", fullmatch=True),
       ifname=st.from_regex(r"[a-z0-9]{1,15}", fullmatch=True))
def test_every_tag_fits_and_reads_back(net: str, cid: str, ifname: str) -> None:
    tag = attachment_tag(net, cid, ifname)
    assert len(tag) <= TAG_LIMIT
    owner = parse_owner(tag)
    assert owner is not None and owner.ifname == ifname and tag_in_network(tag, net)
    # network-level code must leave attachment entries alone
    assert network_owner(tag) is None


def test_duplicates_within_one_request() -> None:
    p = plan(PortMapping(80, 80), PortMapping(80, 81, host_ip="127.0.0.1"), PortMapping(80, 80, "udp"))
    dups = duplicate_forwards(p)
    assert [(a.host_port, b.host_ip) for a, b in dups] == [(80, "127.0.0.1")]


def pub(port: int, proto: str = "tcp", host: str | None = None, tag: str | None = "other",
        fam: int = 4, hi: int | None = None) -> Published:
    return Published(fam, proto, host, port, hi or port, tag)


@pytest.mark.parametrize("mapping, live, clash", [
    (PortMapping(8080, 80), pub(8080), True),
    (PortMapping(8080, 80), pub(8080, "udp"), False),
    (PortMapping(8080, 80), pub(8080, fam=6), False),
    (PortMapping(8080, 80), pub(8080, host="127.0.0.1"), True),
    (PortMapping(8080, 80, host_ip="127.0.0.1"), pub(8080), True),
    (PortMapping(8080, 80, host_ip="127.0.0.1"), pub(8080, host="127.0.0.1"), True),
    (PortMapping(8080, 80, host_ip="127.0.0.1"), pub(8080, host="192.0.2.1"), False),
    (PortMapping(8050, 80), pub(8000, hi=8099), True),
    (PortMapping(8100, 80), pub(8000, hi=8099), False),
    (PortMapping(8080, 80), pub(8080, tag=None), True),
    (PortMapping(8080, 80), pub(8080, tag="netctl net=web cid=c1 if=eth0"), False),  # itself
])
def test_conflicts(mapping: PortMapping, live: Published, clash: bool) -> None:
    assert bool(find_conflicts(plan(mapping), [live])) == clash
