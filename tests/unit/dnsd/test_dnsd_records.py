"""Records: scoping by requester, lookups, PTR, upstream choice, tolerance of bad files."""

from __future__ import annotations

import json
from pathlib import Path

from dnsd import config
from dnsd.records import Records, build_records, load_records
from dnsd.wire import T_A, T_AAAA


def test_same_network_resolves_case_insensitively(records: Records) -> None:
    assert records.lookup("10.89.1.2", "10.89.1.1", "c2", T_A) == ["10.89.1.3"]
    assert records.lookup("10.89.1.2", "10.89.1.1", "C2.", T_A) == ["10.89.1.3"]
    assert records.lookup("10.89.1.2", "10.89.1.1", "HOST1", T_A) == ["10.89.1.2"]
    assert records.lookup("10.89.1.2", "10.89.1.1", "1" * 12, T_A) == ["10.89.1.2"]


def test_other_network_is_invisible(records: Records) -> None:
    assert records.lookup("10.89.1.2", "10.89.1.1", "c3", T_A) is None
    assert records.lookup("10.89.2.2", "10.89.2.1", "web", T_A) is None
    # the listener does not widen a known requester's scope
    assert records.lookup("10.89.2.2", "10.89.1.1", "c1", T_A) is None


def test_container_on_two_networks_sees_both(records: Records) -> None:
    assert records.lookup("10.89.1.4", "10.89.1.1", "c1", T_A) == ["10.89.1.2"]
    assert records.lookup("10.89.2.4", "10.89.2.1", "c3", T_A) == ["10.89.2.2"]
    # and is seen with the address of the shared network only
    assert records.lookup("10.89.1.2", "10.89.1.1", "c12", T_A) == ["10.89.1.4"]
    assert records.lookup("10.89.2.2", "10.89.2.1", "c12", T_A) == ["10.89.2.4"]


def test_shared_alias_returns_every_address(records: Records) -> None:
    assert records.lookup("10.89.1.3", "10.89.1.1", "web", T_A) == ["10.89.1.2", "10.89.1.3"]


def test_known_name_missing_family_is_empty_not_unknown(records: Records) -> None:
    assert records.lookup("10.89.1.2", "10.89.1.1", "c2", T_AAAA) == []
    assert records.lookup("10.89.1.3", "10.89.1.1", "c1", T_AAAA) == ["fd10:89:1::2"]
    assert records.lookup("10.89.1.3", "10.89.1.1", "c1", 15) == []  # MX


def test_name_dot_network(records: Records) -> None:
    assert records.lookup("10.89.1.2", "10.89.1.1", "c2.net1", T_A) == ["10.89.1.3"]
    assert records.lookup("10.89.1.2", "10.89.1.1", "c3.net2", T_A) is None
    assert records.lookup("10.89.1.4", "10.89.1.1", "c3.net2", T_A) == ["10.89.2.2"]
    assert records.lookup("10.89.1.4", "10.89.1.1", "c3.net1", T_A) is None


def test_unknown_source_sees_only_the_listeners_network(records: Records) -> None:
    assert records.lookup("10.89.1.200", "10.89.1.1", "c1", T_A) == ["10.89.1.2"]
    assert records.lookup("10.89.1.200", "10.89.1.1", "c3", T_A) is None
    assert records.lookup("10.89.1.1", "10.89.1.1", "c2", T_A) == ["10.89.1.3"]  # the host
    assert records.lookup("10.89.2.200", "10.89.2.1", "c3", T_A) == ["10.89.2.2"]


def test_source_outside_every_subnet_gets_no_scope(records: Records) -> None:
    assert records.scope("192.168.7.7", "10.89.1.1") is None
    # an address of net2's subnet asking net1's listener is a stranger there
    assert records.scope("10.89.2.200", "10.89.1.1") is None
    assert records.scope("10.89.1.9", "10.0.0.1") is None  # not a listener at all


def test_ipv6_requester(records: Records) -> None:
    assert records.lookup("fd10:89:1::2", "fd10:89:1::1", "c2", T_A) == ["10.89.1.3"]
    assert records.lookup("fd10:89:1::99", "fd10:89:1::1", "c1", T_AAAA) == ["fd10:89:1::2"]


def test_reverse_is_scoped(records: Records) -> None:
    assert records.reverse("10.89.1.3", "10.89.1.1", "10.89.1.2") == ["c1.net1."]
    assert records.reverse("10.89.1.3", "10.89.1.1", "fd10:89:1::2") == ["c1.net1."]
    assert records.reverse("10.89.2.2", "10.89.2.1", "10.89.1.2") == []
    assert records.reverse("10.89.2.2", "10.89.2.1", "10.89.2.4") == ["c12.net2."]


def test_listen_ips_and_upstream_choice(records: Records) -> None:
    assert records.listen_ips == {"10.89.1.1", "fd10:89:1::1", "10.89.2.1", "10.89.3.1"}
    c3 = records.scope("10.89.2.2", "10.89.2.1")
    c4 = records.scope("10.89.2.5", "10.89.2.1")
    c1 = records.scope("10.89.1.2", "10.89.1.1")
    c12 = records.scope("10.89.1.4", "10.89.1.1")
    ci = records.scope("10.89.3.2", "10.89.3.1")
    assert c3 and [str(u) for u in c3.upstreams] == ["10.2.2.53"]  # container's own
    assert c4 and [str(u) for u in c4.upstreams] == ["10.1.1.53"]  # its network's
    assert c1 and c1.upstreams == () and c1.forward  # empty: host resolv.conf
    assert c12 and [str(u) for u in c12.upstreams] == ["10.1.1.53"]
    assert ci and not ci.forward  # only internal networks


def test_duplicate_addresses_are_merged(tmp_path: Path) -> None:
    d = str(tmp_path)
    config.write_network(d, "n", ["10.0.0.1"], ["10.0.0.0/24"])
    config.write_entry(d, "n", "a" * 64, "eth0", ["x", "x"], ["10.0.0.2"], [])
    config.write_entry(d, "n", "a" * 64, "eth1", ["x"], ["10.0.0.2"], [])
    assert load_records(d).lookup("10.0.0.2", "10.0.0.1", "x", T_A) == ["10.0.0.2"]


def test_bad_files_are_skipped_not_fatal(tmp_path: Path) -> None:
    d = str(tmp_path)
    config.write_network(d, "n", ["10.0.0.1"], ["10.0.0.0/24"])
    config.write_entry(d, "n", "a" * 64, "eth0", ["good"], ["10.0.0.2"], [])
    edir = tmp_path / "entries" / "n"
    (edir / "garbage.json").write_text("{not json")
    (edir / "list.json").write_text("[1, 2]")
    (edir / "badip.json").write_text(json.dumps({"names": ["bad"], "ipv4": ["10.0.0.300"]}))
    (edir / "space.json").write_text(json.dumps({"names": ["has space", "ok2"], "ipv4": ["10.0.0.3"]}))
    (edir / ".tmp-partial.json").write_text('{"names": ["tmp"], "ipv4": ["10.0.0.9"]}')
    (tmp_path / "networks" / "broken.json").write_text(json.dumps({"listen": ["nope"]}))
    # entries of a network without a network file are ignored
    config.write_entry(d, "ghost", "b" * 64, "eth0", ["ghost"], ["10.0.0.4"], [])
    recs = load_records(d)
    assert recs.lookup("10.0.0.2", "10.0.0.1", "good", T_A) == ["10.0.0.2"]
    assert recs.lookup("10.0.0.2", "10.0.0.1", "ok2", T_A) == ["10.0.0.3"]
    for name in ("bad", "has space", "tmp", "ghost"):
        assert recs.lookup("10.0.0.2", "10.0.0.1", name, T_A) is None
    assert recs.listen_ips == {"10.0.0.1"}
    problems = " ".join(recs.problems)
    assert "'has space'" in problems and "10.0.0.300" in problems and "network broken" in problems


def test_empty_config() -> None:
    recs = build_records({}, {})
    assert recs.listen_ips == frozenset()
    assert recs.scope("10.0.0.2", "10.0.0.1") is None


def test_snapshot_is_immutable_between_loads(topo_dir: str) -> None:
    before = load_records(topo_dir)
    config.write_entry(topo_dir, "net1", "9" * 64, "eth0", ["late"], ["10.89.1.9"], [])
    after = load_records(topo_dir)
    assert before.lookup("10.89.1.2", "10.89.1.1", "late", T_A) is None
    assert after.lookup("10.89.1.2", "10.89.1.1", "late", T_A) == ["10.89.1.9"]
