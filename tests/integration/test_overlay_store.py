"""The cluster store against a real etcd (Debian's etcd-server) in its own namespace.

The client runs in a forked child inside that namespace (``overlaylab.in_netns``): the test
process never leaves the machine's namespace and nothing listens there.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
from nsutil import Netns
from overlaylab import Etcd, in_netns

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd-server not installed")]


@pytest.fixture(scope="module")
def etcd() -> Iterator[Etcd]:
    ns = Netns.create("nctest-etcd")
    server = Etcd(ns, "198.18.61.1")
    try:
        ns.run(["ip", "addr", "add", "198.18.61.1/32", "dev", "lo"])
        server.start()
        yield server
    finally:
        server.remove()
        ns.delete()


def _net(name: str, subnet: str, vni: int):  # type: ignore[no-untyped-def]
    from netplugins.overlay.model import OverlayNet

    return OverlayNet(name, "a" * 64, subnet, subnet.rsplit(".", 1)[0] + ".1", vni)


def _ep(net: str, ip: str, cid: str, node: str = "h1"):  # type: ignore[no-untyped-def]
    from netplugins.overlay.model import EndpointRec, mac_for

    return EndpointRec(net, ip, mac_for(ip), node, "198.18.60.11", cid, "eth0", ("x",))


def _create_race(url: str) -> tuple[bool, bool, bool]:
    """Two creators read at the same revision: only the first wins; a re-read wins."""
    from netplugins.overlay.store import Store

    s = Store(url)
    rev, _ = s.networks()
    first = s.create_network(_net("race-a", "10.70.0.0/24", 5000), rev)
    second = s.create_network(_net("race-b", "10.70.1.0/24", 5001), rev)   # stale read
    rev2, _ = s.networks()
    third = s.create_network(_net("race-b", "10.70.1.0/24", 5001), rev2)
    s.delete_network("race-a")
    s.delete_network("race-b")
    return first, second, third


def test_network_create_is_one_transaction_against_the_read_revision(etcd: Etcd) -> None:
    assert in_netns(etcd.ns.path, _create_race, etcd.url) == (True, False, True)


def _claims(url: str, light: bool) -> dict[str, object]:
    from netplugins.overlay.store import LeaseGone, Store

    s = Store(url, light=light)
    rev, _ = s.networks()
    assert s.create_network(_net("claims", "10.71.0.0/24", 5002), rev)
    _n, crev = s.network("claims")  # type: ignore[misc]
    lease = s.grant(3)
    out: dict[str, object] = {}
    out["first"] = s.claim(_ep("claims", "10.71.0.2", "c1" * 32), lease, crev)
    out["dup"] = s.claim(_ep("claims", "10.71.0.2", "c2" * 32), lease, crev)
    out["rm_refused"] = not s.delete_network("claims")
    # DEL of another container's lease on the same address changes nothing
    s.release(_ep("claims", "10.71.0.2", "c2" * 32))
    out["still"] = [e.container_id[:2] for e in s.endpoints("claims")]
    try:
        s.claim(_ep("claims", "10.71.0.3", "c3" * 32), 0x7777, crev)
        out["bad_lease"] = "accepted"
    except LeaseGone:
        out["bad_lease"] = "refused"
    # the lease expires: its keys go, the address is free again, rm works
    time.sleep(5)
    out["after_ttl"] = [e.ip for e in s.endpoints("claims")]
    out["rm"] = s.delete_network("claims")
    return out


@pytest.mark.parametrize("light", [False, True], ids=["etcd3gw", "stdlib"])
def test_claims_are_exclusive_and_die_with_the_lease(etcd: Etcd, light: bool) -> None:
    """Both transports (etcd3gw for the sync process, stdlib for the plugin)."""
    out = in_netns(etcd.ns.path, _claims, etcd.url, light)
    assert out == {"first": True, "dup": False, "rm_refused": True, "still": ["c1"],
                   "bad_lease": "refused", "after_ttl": [], "rm": True}


def _unreachable(url: str, light: bool) -> str:
    from netplugins.overlay.store import Store, StoreUnavailable

    try:
        Store(url, timeout=1, light=light).snapshot()
    except StoreUnavailable as exc:
        return str(exc)
    return "answered"


@pytest.mark.parametrize("light", [False, True], ids=["etcd3gw", "stdlib"])
def test_unreachable_store_is_named(etcd: Etcd, light: bool) -> None:
    msg = in_netns(etcd.ns.path, _unreachable, "http://198.18.61.1:1", light)
    assert msg == "etcd store http://198.18.61.1:1 is unreachable: Connection refused"
