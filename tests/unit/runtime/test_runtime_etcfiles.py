"""A container's /etc/hosts, resolv.conf and the in-place rewrite (runtime/etcfiles.py)."""

from __future__ import annotations

import os
from pathlib import Path

from runtime.etcfiles import (
    HostResolv,
    parse_resolv_conf,
    render_hosts,
    render_resolv_conf,
    write_in_place,
)


def test_parse_resolv_conf() -> None:
    text = """# comment
nameserver 10.0.0.53
nameserver 127.0.0.53  # trailing comment
domain old.example
search a.example b.example
options edns0 timeout:2
options rotate
nameserver
garbage line
"""
    host = parse_resolv_conf(text)
    assert host.nameservers == ("10.0.0.53", "127.0.0.53")
    assert host.search == ("a.example", "b.example")   # the last search/domain line wins
    assert host.options == ("edns0", "timeout:2", "rotate")
    assert parse_resolv_conf("") == HostResolv()


def test_embedded_dns_resolv_conf() -> None:
    host = HostResolv(("10.0.0.53",), ("corp.example",), ("edns0",))
    text = render_resolv_conf(["172.22.16.1"], host)
    lines = [x for x in text.splitlines() if not x.startswith("#")]
    assert lines == ["nameserver 172.22.16.1", "search corp.example", "options ndots:0"]
    # every network's gateway answers; the host's servers are not listed (dnsd forwards)
    text = render_resolv_conf(["172.22.16.1", "172.22.17.1"], host)
    assert [x for x in text.splitlines() if x.startswith("nameserver")] == [
        "nameserver 172.22.16.1", "nameserver 172.22.17.1"]


def test_default_bridge_resolv_conf_drops_loopback_servers() -> None:
    host = HostResolv(("127.0.0.53", "10.0.0.53", "::1", "fe80::1%eth0"), ("corp.example",), ("edns0",))
    lines = render_resolv_conf([], host).splitlines()
    assert [x for x in lines if x.startswith("nameserver")] == ["nameserver 10.0.0.53", "nameserver fe80::1%eth0"]
    assert "search corp.example" in lines and "options edns0" in lines
    assert "ndots:0" not in "\n".join(lines)


def test_only_loopback_servers_gives_none_and_says_why() -> None:
    text = render_resolv_conf([], HostResolv(("127.0.0.53",), (), ()))
    assert "nameserver" not in text.replace("nameservers", "")
    assert "loopback" in text


def test_hosts() -> None:
    text = render_hosts("abc123", "web1", ["172.22.16.2", "172.17.0.3"])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "::1\tlocalhost ip6-localhost ip6-loopback" in lines
    assert "172.22.16.2\tabc123 web1" in lines and "172.17.0.3\tabc123 web1" in lines
    assert text.endswith("\n")
    # a hostname equal to the name is written once; no address, no entry
    assert "10.0.0.2\tweb1\n" in render_hosts("web1", "web1", ["10.0.0.2"])
    assert render_hosts("h", "n", []).count("\n") == 2


def test_write_in_place_keeps_the_inode(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("a much longer first version of the file\n" * 10)
    inode = os.stat(path).st_ino
    write_in_place(str(path), "short\n")
    assert path.read_text() == "short\n"
    assert os.stat(path).st_ino == inode
    big = "x" * 300_000 + "\n"
    write_in_place(str(path), big)
    assert path.read_text() == big
    new = tmp_path / "new"
    write_in_place(str(new), "created\n")
    assert new.read_text() == "created\n"
