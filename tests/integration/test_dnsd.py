"""dnsd in real namespaces: scoping, PTR, forwarding, fail-over, TCP, truncation, listeners.

One topology for the whole module (namespaces are slow to make), all in throwaway
namespaces: ``host`` with bridges br1 (net1, v4+v6), br2 (net2), br3 (net3, internal),
a veth with another host address, and fake upstream servers on loopback;
containers a, b (net1), c (net2), ab (net1 + net2) and i (net3) attached by veth.
dnsd is started inside ``host`` through ``ensure_running`` and queried with dig.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_dnsd_support import Netns, connect, dig, spawn_upstream, start_dnsd, wait_for  # noqa: E402

from dnsd import config, control  # noqa: E402

pytestmark = pytest.mark.netns

IDS = {k: f"{i:x}" * 64 for i, k in enumerate(["a", "b", "c", "ab", "i"], start=10)}


@dataclass
class Topo:
    host: Netns
    ctrs: dict[str, Netns]
    dns_dir: str
    upstream_log: Path
    pid: int


def attach(host: Netns, ctr: Netns, bridge: str, hostif: str, ctrif: str, v4: str, v6: str | None = None) -> None:
    connect(host, ctr, hostif, ctrif)
    host.run(["ip", "link", "set", hostif, "master", bridge])
    ctr.run(["ip", "addr", "add", f"{v4}/24", "dev", ctrif])
    if v6:
        ctr.run(["ip", "-6", "addr", "add", f"{v6}/64", "dev", ctrif, "nodad"])


@pytest.fixture(scope="module")
def topo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topo]:
    work = tmp_path_factory.mktemp("dnsd-it")
    made: list[Netns] = []
    try:
        host = Netns.create("nctest-host")
        made.append(host)
        for br, v4, v6 in (("br1", "10.89.1.1", "fd10:89:1::1"), ("br2", "10.89.2.1", None),
                           ("br3", "10.89.3.1", None)):
            host.run(["ip", "link", "add", br, "type", "bridge"])
            host.run(["ip", "addr", "add", f"{v4}/24", "dev", br])
            if v6:
                host.run(["ip", "-6", "addr", "add", f"{v6}/64", "dev", br, "nodad"])
            host.run(["ip", "link", "set", br, "up"])
        # another address of the "host" (a veth pair: this kernel has no dummy module);
        # dnsd must not answer there
        host.run(["ip", "link", "add", "xtra0", "type", "veth", "peer", "name", "xtra1"])
        host.run(["ip", "addr", "add", "192.168.77.1/24", "dev", "xtra0"])
        host.run(["ip", "link", "set", "xtra0", "up"])
        host.run(["ip", "link", "set", "xtra1", "up"])
        ctrs = {}
        for name in ("a", "b", "c", "ab", "i"):
            ctrs[name] = Netns.create(f"nctest-c{name}")
            made.append(ctrs[name])
        attach(host, ctrs["a"], "br1", "va", "eth0", "10.89.1.2", "fd10:89:1::2")
        attach(host, ctrs["b"], "br1", "vb", "eth0", "10.89.1.3")
        attach(host, ctrs["c"], "br2", "vc", "eth0", "10.89.2.2")
        attach(host, ctrs["ab"], "br1", "vab1", "eth0", "10.89.1.4")
        attach(host, ctrs["ab"], "br2", "vab2", "eth1", "10.89.2.4")
        attach(host, ctrs["i"], "br3", "vi", "eth0", "10.89.3.2")
        for name, gw in (("a", "10.89.1.1"), ("b", "10.89.1.1"), ("c", "10.89.2.1"), ("ab", "10.89.1.1")):
            ctrs[name].run(["ip", "route", "add", "default", "via", gw])

        # upstreams on the host's loopback: .2 answers, .3 is closed, .4 is silent, .5 SERVFAILs
        log = work / "upstream.log"
        log.write_text("")
        for ip, mode in (("127.0.0.2", "answer"), ("127.0.0.4", "silent"), ("127.0.0.5", "servfail"),
                         ("127.0.0.6", "silent"), ("127.0.0.7", "silent")):
            spawn_upstream(host, ip, mode, log)
        resolv = work / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.2\n")

        d = str(work / "dns")
        config.write_network(d, "net1", ["10.89.1.1", "fd10:89:1::1"], ["10.89.1.0/24", "fd10:89:1::/64"])
        config.write_network(d, "net2", ["10.89.2.1"], ["10.89.2.0/24"],
                             upstreams=["127.0.0.3", "127.0.0.4", "127.0.0.2"])
        config.write_network(d, "net3", ["10.89.3.1"], ["10.89.3.0/24"], internal=True)
        config.write_entry(d, "net1", IDS["a"], "eth0", ["a", "svc", IDS["a"][:12], "host-a"],
                           ["10.89.1.2"], ["fd10:89:1::2"])
        config.write_entry(d, "net1", IDS["b"], "eth0", ["b", "svc"], ["10.89.1.3"], [],
                           upstreams=["127.0.0.5", "127.0.0.2"])
        config.write_entry(d, "net2", IDS["c"], "eth0", ["c"], ["10.89.2.2"], [])
        # ab's own upstreams never answer: its forwards hang for 3 x 1 s
        silent = ["127.0.0.4", "127.0.0.6", "127.0.0.7"]
        config.write_entry(d, "net1", IDS["ab"], "eth0", ["ab"], ["10.89.1.4"], [], upstreams=silent)
        config.write_entry(d, "net2", IDS["ab"], "eth1", ["ab"], ["10.89.2.4"], [], upstreams=silent)
        config.write_entry(d, "net3", IDS["i"], "eth0", ["i"], ["10.89.3.2"], [])
        for k in range(40):  # a big shared name for truncation (addresses need not be live)
            config.write_entry(d, "net1", f"{k:064x}", "eth0", [f"p{k}", "pool"], [f"10.89.1.{100 + k}"], [])
        pid = start_dnsd(host, d, str(resolv))
        yield Topo(host, ctrs, d, log, pid)
        control.stop(d)
    finally:
        for ns in reversed(made):
            ns.delete()


def test_same_network_names_aliases_short_id_hostname(topo: Topo) -> None:
    a = topo.ctrs["a"]
    assert dig(a, "10.89.1.1", "b").answers == ["10.89.1.3"]
    assert dig(a, "10.89.1.1", "B").answers == ["10.89.1.3"]
    b = topo.ctrs["b"]
    for name in ("a", IDS["a"][:12], "host-a", "HOST-A"):
        r = dig(b, "10.89.1.1", name)
        assert r.answers == ["10.89.1.2"], r.raw
    assert dig(b, "10.89.1.1", "a.net1").answers == ["10.89.1.2"]


def test_other_network_gets_nxdomain(topo: Topo) -> None:
    r = dig(topo.ctrs["c"], "10.89.2.1", "a", timeout=4)
    assert r.status == "NXDOMAIN" and r.answers == []
    r = dig(topo.ctrs["a"], "10.89.1.1", "c")
    assert r.status == "NXDOMAIN"


def test_container_on_both_networks_resolves_both(topo: Topo) -> None:
    ab = topo.ctrs["ab"]
    assert dig(ab, "10.89.1.1", "a").answers == ["10.89.1.2"]
    assert dig(ab, "10.89.1.1", "c").answers == ["10.89.2.2"]
    assert dig(ab, "10.89.2.1", "b").answers == ["10.89.1.3"]
    # and is seen by each side with the address of the shared network
    assert dig(topo.ctrs["c"], "10.89.2.1", "ab", timeout=4).answers == ["10.89.2.4"]


def test_shared_alias_round_robin(topo: Topo) -> None:
    firsts = set()
    for _ in range(4):
        r = dig(topo.ctrs["a"], "10.89.1.1", "svc")
        assert sorted(r.answers) == ["10.89.1.2", "10.89.1.3"]
        firsts.add(r.answers[0])
    assert len(firsts) == 2


def test_ptr_of_a_container_address(topo: Topo) -> None:
    assert dig(topo.ctrs["a"], "10.89.1.1", "10.89.1.3", "PTR").answers == ["b.net1."]
    assert dig(topo.ctrs["b"], "10.89.1.1", "fd10:89:1::2", "PTR").answers == ["a.net1."]


def test_aaaa_of_v4_only_container_is_empty_noerror(topo: Topo) -> None:
    r = dig(topo.ctrs["a"], "10.89.1.1", "b", "AAAA")
    assert r.status == "NOERROR" and r.answers == []
    assert dig(topo.ctrs["b"], "10.89.1.1", "a", "AAAA").answers == ["fd10:89:1::2"]


def test_ipv6_listener(topo: Topo) -> None:
    assert dig(topo.ctrs["a"], "fd10:89:1::1", "b").answers == ["10.89.1.3"]


def test_forwarding_and_nxdomain_pass_through(topo: Topo) -> None:
    a = topo.ctrs["a"]
    assert dig(a, "10.89.1.1", "www.fwd.test").answers == ["192.0.2.10"]
    assert dig(a, "10.89.1.1", "nothing.example").status == "NXDOMAIN"
    assert dig(a, "10.89.1.1", "www.fwd.test", tcp=True).answers == ["192.0.2.10"]


def test_dead_and_silent_upstreams_fail_over_within_client_timeout(topo: Topo) -> None:
    # net2: 127.0.0.3 refuses (ICMP), 127.0.0.4 never answers (1 s), then 127.0.0.2
    r = dig(topo.ctrs["c"], "10.89.2.1", "failover.fwd.test", timeout=4)
    assert r.answers == ["192.0.2.10"]
    # b's own upstreams: 127.0.0.5 answers SERVFAIL, then 127.0.0.2
    assert dig(topo.ctrs["b"], "10.89.1.1", "servfail.fwd.test").answers == ["192.0.2.10"]


def test_hanging_forward_does_not_block_other_queries(topo: Topo) -> None:
    ab = topo.ctrs["ab"]
    slow = ab.spawn(["dig", "@10.89.1.1", "-q", "hang.fwd.test", "+tries=1", "+timeout=6"],
                    stdout=subprocess.PIPE)
    assert wait_for(lambda: "hang.fwd.test" in topo.upstream_log.read_text())
    # while dnsd waits up to 3 s on silent upstreams, local names answer at once
    # (dig's shortest time-out, 1 s, would expire if the loop were blocked)
    for name in ("a", "b", "c"):
        assert dig(ab, "10.89.1.1", name, timeout=1).status == "NOERROR"
    assert slow.poll() is None  # the forward was really still pending
    out, _ = slow.communicate(timeout=15)
    assert b"status: SERVFAIL" in out  # all three silent: SERVFAIL, well before dig's 6 s


def test_internal_only_container_gets_no_forwarding(topo: Topo) -> None:
    i = topo.ctrs["i"]
    r = dig(i, "10.89.3.1", "internal-leak.fwd.test")
    assert r.status == "NXDOMAIN"
    assert dig(i, "10.89.3.1", "i").answers == ["10.89.3.2"]
    assert "internal-leak.fwd.test" not in topo.upstream_log.read_text()


def test_nothing_answers_on_other_host_addresses(topo: Topo) -> None:
    a = topo.ctrs["a"]
    r = dig(a, "192.168.77.1", "b", timeout=1, check=False)
    assert r.status is None  # no reply (port unreachable)
    r = dig(a, "192.168.77.1", "b", timeout=1, tcp=True, check=False)
    assert r.status is None
    # dnsd's own sockets (the fake upstreams also listen on :53, on loopback)
    for proto in ("-Hlnup", "-Hlntp"):
        lines = [ln for ln in topo.host.run(["ss", proto]).stdout.splitlines() if f"pid={topo.pid}," in ln]
        bound = {ln.split()[3].rsplit(":", 1)[0].strip("[]") for ln in lines}
        assert bound == {"10.89.1.1", "fd10:89:1::1", "10.89.2.1", "10.89.3.1"}, proto


def test_host_itself_is_an_unknown_source_scoped_by_listener(topo: Topo) -> None:
    assert dig(topo.host, "10.89.1.1", "a").answers == ["10.89.1.2"]
    assert dig(topo.host, "10.89.1.1", "c").status == "NXDOMAIN"


def test_truncation_over_udp_and_full_answer_over_tcp(topo: Topo) -> None:
    a = topo.ctrs["a"]
    r = dig(a, "10.89.1.1", "pool", "A", "+noedns", "+ignore")
    assert "tc" in r.flags and r.answers == []
    r = dig(a, "10.89.1.1", "pool", tcp=True)
    assert len(r.answers) == 40 and "tc" not in r.flags
    r = dig(a, "10.89.1.1", "pool", "A", "+bufsize=1232")
    assert len(r.answers) == 40
