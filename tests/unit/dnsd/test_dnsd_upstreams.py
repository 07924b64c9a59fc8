"""resolv.conf parsing and refresh."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dnsd.upstreams import ResolvConf, parse_resolv_conf, parse_upstream


def test_parse_resolv_conf() -> None:
    text = """# comment
; also a comment
search example.com
nameserver 127.0.0.53
nameserver 10.0.0.1 10.0.0.2
nameserver not-an-ip
nameserver fe80::1%lo
nameserver 127.0.0.53
nameserver fe80::2%nosuchif0
options edns0 trust-ad
nameserver
"""
    got = [str(u) for u in parse_resolv_conf(text)]
    assert got == ["127.0.0.53", "10.0.0.1", "fe80::1%lo"]


def test_link_local_zone_becomes_scope_id() -> None:
    up = parse_upstream("fe80::1%lo")
    assert len(up.sockaddr) == 4 and up.sockaddr[3] == socket_if_index("lo")


def socket_if_index(name: str) -> int:
    import socket

    return socket.if_nametoindex(name)


def test_parse_upstream_rejects_names() -> None:
    with pytest.raises(ValueError):
        parse_upstream("dns.google")


def test_resolv_conf_follows_changes(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 192.0.2.1\n")
    rc = ResolvConf(str(path), interval=0)
    assert [str(u) for u in rc.servers] == ["192.0.2.1"]
    tmp = tmp_path / "new"
    tmp.write_text("nameserver 192.0.2.2\nnameserver 192.0.2.3\n")
    os.replace(tmp, path)  # how resolvconf/systemd replace it
    assert [str(u) for u in rc.servers] == ["192.0.2.2", "192.0.2.3"]
    path.unlink()
    assert rc.servers == []
