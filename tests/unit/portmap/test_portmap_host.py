"""Host-side inputs of portmap: /proc/net sockets, /proc/net/route, conntrack listings."""

from __future__ import annotations

import socket

import pytest

from netplugins.firewall.ports import Forward
from netplugins.meta.conntrack import Flow, parse_flows, stale_flows
from netplugins.meta.hostsockets import (
    HostSocket,
    parse_proc_net,
    parse_sctp_eps,
    read_sockets,
    socket_conflicts,
)
from netplugins.meta.localnet import parse_route_dev

HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def line(local: str, remote: str, state: str, inode: int = 7) -> str:
    return f"   0: {local} {remote} {state} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1\n"


def test_tcp_listeners_only() -> None:
    text = HEAD + line("0100007F:1F90", "00000000:0000", "0A", 11) \
        + line("0100007F:1F91", "0100007F:D431", "01") + line("00000000:0016", "00000000:0000", "0A")
    assert parse_proc_net(text, "tcp", 4) == [HostSocket(4, "tcp", "127.0.0.1", 8080, 11),
                                              HostSocket(4, "tcp", "0.0.0.0", 22, 7)]


def test_ipv6_addresses_and_v4_mapped() -> None:
    text = HEAD + line("00000000000000000000000000000000:1F90", "0" * 32 + ":0000", "0A") \
        + line("00000000000000000000000001000000:0050", "0" * 32 + ":0000", "0A") \
        + line("0000000000000000FFFF00000100007F:0051", "0" * 32 + ":0000", "0A")
    assert [(s.address, s.port) for s in parse_proc_net(text, "tcp", 6)] == [
        ("::", 8080), ("::1", 80), ("127.0.0.1", 81)]


def test_udp_bound_but_not_connected() -> None:
    text = HEAD + line("00000000:14E9", "00000000:0000", "07") + line("0100007F:9C40", "0100007F:0035", "01")
    assert [(s.address, s.port) for s in parse_proc_net(text, "udp", 4)] == [("0.0.0.0", 5353)]


def test_sctp_endpoints() -> None:
    text = (" ENDPT     SOCK   STY SST HBKT LPORT   UID INODE LADDRS\n"
            "ffff8a 0000 2   10  5    9000      0 4242 10.0.0.1 fd00::1\n")
    assert parse_sctp_eps(text) == [HostSocket(4, "sctp", "10.0.0.1", 9000, 4242),
                                    HostSocket(6, "sctp", "fd00::1", 9000, 4242)]


def fwd(port: int, host: str | None = None, fam: int = 4, proto: str = "tcp") -> Forward:
    return Forward(fam, proto, host, port, "10.0.0.2", 80)


@pytest.mark.parametrize("forward, sock, clash", [
    (fwd(8080), HostSocket(4, "tcp", "0.0.0.0", 8080), True),
    (fwd(8080), HostSocket(4, "tcp", "127.0.0.1", 8080), True),     # DNAT would hide it
    (fwd(8080), HostSocket(6, "tcp", "::", 8080), True),            # dual-stack listener
    (fwd(8080), HostSocket(6, "tcp", "::1", 8080), False),
    (fwd(8080), HostSocket(4, "udp", "0.0.0.0", 8080), False),
    (fwd(8080), HostSocket(4, "tcp", "0.0.0.0", 8081), False),
    (fwd(8080, "192.0.2.1"), HostSocket(4, "tcp", "127.0.0.1", 8080), False),
    (fwd(8080, "192.0.2.1"), HostSocket(4, "tcp", "192.0.2.1", 8080), True),
    (fwd(8080, "192.0.2.1"), HostSocket(4, "tcp", "0.0.0.0", 8080), True),
    (fwd(8080, fam=6), HostSocket(4, "tcp", "0.0.0.0", 8080), False),
])
def test_socket_conflicts(forward: Forward, sock: HostSocket, clash: bool) -> None:
    assert bool(socket_conflicts([forward], [sock])) == clash


def test_read_sockets_sees_a_listener_of_this_process() -> None:
    # read-only look at this namespace's /proc; the listener is our own, on loopback
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        found = [x for x in read_sockets({"tcp"}) if x.port == port]
    assert [(x.family, x.address) for x in found] == [(4, "127.0.0.1")]
    assert found[0].inode > 0


ROUTES = """Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
uplink	00000000	010200C0	0003	0	0	0	00000000	0	0	0
uplink	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
br-web	0001580A	00000000	0001	0	0	0	00FFFFFF	0	0	0
br-wide	0000580A	00000000	0001	0	0	0	0000FFFF	0	0	0
vpn	0001580A	050200C0	0003	0	0	0	00FFFFFF	0	0	0
"""


def test_route_to_the_container_is_the_longest_on_link_prefix() -> None:
    assert parse_route_dev(ROUTES, "10.88.1.2") == "br-web"
    assert parse_route_dev(ROUTES, "10.88.7.2") == "br-wide"
    assert parse_route_dev(ROUTES, "192.0.2.9") == "uplink"
    # only the default route (through a gateway) matches: never an uplink
    assert parse_route_dev(ROUTES, "172.16.0.2") is None


def test_conntrack_listing_and_stale_flows() -> None:
    text = ("udp      17 27 src=192.0.2.2 dst=192.0.2.1 sport=40053 dport=5353 [UNREPLIED] "
            "src=192.0.2.1 dst=192.0.2.2 sport=5353 dport=40053 mark=0 use=1\n"
            "udp      17 10 src=192.0.2.2 dst=198.51.100.7 sport=40054 dport=5353 "
            "src=198.51.100.7 dst=192.0.2.2 sport=5353 dport=40054 mark=0 use=1\n"
            "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.\n")
    flows = parse_flows(text)
    assert flows == [Flow("192.0.2.2", "192.0.2.1", 40053, 5353), Flow("192.0.2.2", "198.51.100.7", 40054, 5353)]
    assert stale_flows(flows, [fwd(5353, "192.0.2.1", proto="udp")]) == flows[:1]
    assert stale_flows(flows, [fwd(5354, "192.0.2.1", proto="udp")]) == []
