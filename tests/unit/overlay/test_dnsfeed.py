"""The sync process's DNS feed: remote containers as dnsd entries, local ones untouched."""

from __future__ import annotations

import json
from pathlib import Path

from dnsd import config as dnsconf
from netplugins.overlay.model import EndpointRec, mac_for
from runtime.overlay.dnsfeed import DnsFeed


def ep(ip: str, cid: str, names: tuple[str, ...], net: str = "ov1") -> EndpointRec:
    return EndpointRec(net, ip, mac_for(ip), "host2", "198.18.60.12", cid, "eth0", names)


def test_writes_remote_entries_and_removes_only_its_own(tmp_path: Path) -> None:
    dns, ov = str(tmp_path / "dnsd"), str(tmp_path / "overlay")
    # a local container's entry, written by the bridge plugin
    dnsconf.write_entry(dns, "ov1", "l" * 64, "eth0", ["local1"], ["10.0.0.2"], [])
    feed = DnsFeed(dns, ov)
    a, b = ep("10.0.0.3", "a" * 64, ("web", "alias")), ep("10.0.0.4", "b" * 64, ("db",), net="ov2")
    assert feed.sync([a, b])
    entry = json.loads((tmp_path / "dnsd/entries/ov1" / f"{'a' * 64}-eth0.json").read_text())
    assert entry["names"] == ["web", "alias"] and entry["ipv4"] == ["10.0.0.3"]
    assert (tmp_path / "dnsd/entries/ov2" / f"{'b' * 64}-eth0.json").exists()
    assert not feed.sync([a, b])  # nothing changed, nothing written
    # a restarted sync process knows what it wrote
    feed2 = DnsFeed(dns, ov)
    assert feed2.sync([b])
    assert not (tmp_path / "dnsd/entries/ov1" / f"{'a' * 64}-eth0.json").exists()
    assert (tmp_path / "dnsd/entries/ov1" / f"{'l' * 64}-eth0.json").exists()
    assert feed2.sync([])
    assert sorted(p.name for p in (tmp_path / "dnsd/entries").rglob("*.json")) == [f"{'l' * 64}-eth0.json"]
