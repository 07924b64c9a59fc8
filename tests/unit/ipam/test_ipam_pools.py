"""Default subnet pools and overlap checks (pure functions; the probe is in integration)."""

from __future__ import annotations

import pytest

from ipam.errors import ConfigError, PoolExhausted, SubnetOverlap
from ipam.pools import DEFAULT_POOLS_V4, HostPrefix, Pool, check_overlap, pick_subnet, ula_pool


@pytest.mark.parametrize(
    ("existing", "host", "expected"),
    [
        ({}, [], "172.17.0.0/16"),
        ({"a": ["172.17.0.0/16"]}, [], "172.18.0.0/16"),
        ({"a": ["172.17.0.0/16", "fd00::/64"], "b": ["172.18.0.0/16"]}, [], "172.19.0.0/16"),
        # a host address inside a candidate blocks it
        ({}, ["172.17.5.1/24"], "172.18.0.0/16"),
        # a VPN route covering all of 172.16/12 skips every /16 at once
        ({}, ["172.16.0.0/12"], "192.168.0.0/20"),
        # a default route counts for nothing
        ({}, ["0.0.0.0/0", "::/0"], "172.17.0.0/16"),
        # a small route inside 192.168/16 blocks one /20 only
        ({}, ["172.16.0.0/12", "192.168.1.0/24"], "192.168.16.0/20"),
        # an existing network smaller than a candidate blocks it too
        ({"small": ["172.17.3.0/24"]}, [HostPrefix("172.18.0.0/15", "host route 172.18.0.0/15 dev tun0")],
         "172.20.0.0/16"),
        ({}, ["172.16.0.0/12", "192.168.0.0/17"], "192.168.128.0/20"),
    ],
)
def test_pick_subnet(existing: dict, host: list, expected: str) -> None:
    assert pick_subnet(existing, host) == expected


def test_default_pools_cover_docker_ranges() -> None:
    taken: dict[str, list[str]] = {}
    picked = []
    while True:
        try:
            picked.append(pick_subnet(taken, []))
        except PoolExhausted as err:
            assert err.code == 110
            assert "could not find an available, non-overlapping IPv4 address pool" in str(err)
            break
        taken[f"n{len(picked)}"] = [picked[-1]]
    assert picked[:3] == ["172.17.0.0/16", "172.18.0.0/16", "172.19.0.0/16"]
    assert picked[14] == "172.31.0.0/16"
    assert picked[15] == "192.168.0.0/20" and picked[-1] == "192.168.240.0/20"
    assert len(picked) == 15 + 16
    assert DEFAULT_POOLS_V4[-1] == Pool("192.168.0.0/16", 20)


def test_ipv6_pool_is_a_stable_ula_per_host() -> None:
    pool = ula_pool("machine-a")
    assert pool == ula_pool("machine-a") and pool != ula_pool("machine-b")
    assert pool.base.startswith("fd") and pool.base.endswith("::/48") and pool.size == 64
    first = pick_subnet({}, [], family=6, pools=[pool])
    assert first == pool.base.replace("/48", "/64")
    second = pick_subnet({"x": [first]}, [], family=6, pools=[pool])
    assert second != first and second.endswith("/64")
    assert pick_subnet({}, [], family=6).startswith("fd")


def test_custom_pools() -> None:
    pools = [Pool("10.89.0.0/16", 24)]
    assert pick_subnet({"podman": ["10.89.0.0/24"]}, [], pools=pools) == "10.89.1.0/24"
    with pytest.raises(PoolExhausted):
        pick_subnet({}, ["10.0.0.0/8"], pools=pools)


def test_check_overlap_names_the_other_party() -> None:
    check_overlap("10.1.0.0/24", {"a": ["10.2.0.0/24"]}, ["10.3.0.0/16", "0.0.0.0/0"])
    with pytest.raises(SubnetOverlap) as exc:
        check_overlap("10.1.0.0/16", {"a": ["10.2.0.0/24"], "b": ["fd00::/64", "10.1.200.0/24"]}, [])
    assert str(exc.value) == "subnet 10.1.0.0/16 overlaps with network 'b' (10.1.200.0/24)"
    assert exc.value.code == 7
    with pytest.raises(SubnetOverlap) as exc:
        check_overlap("10.8.0.0/24", {}, [HostPrefix("10.8.0.0/16", "host route 10.8.0.0/16 dev tun0")])
    assert str(exc.value) == "subnet 10.8.0.0/24 overlaps with host route 10.8.0.0/16 dev tun0"
    with pytest.raises(SubnetOverlap, match="overlaps with host prefix 10.1.0.7/32"):
        check_overlap("10.1.0.0/24", {}, ["10.1.0.7/32"])
    # different families never overlap
    check_overlap("fd00::/64", {"a": ["10.0.0.0/8"]}, [])


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="did you mean 10.1.0.0/24"):
        check_overlap("10.1.0.5/24", {}, [])
    with pytest.raises(ConfigError, match="invalid subnet 'garbage' of network 'a'"):
        pick_subnet({"a": ["garbage"]}, [])
    with pytest.raises(ValueError, match="family must be 4 or 6"):
        pick_subnet({}, [], family=5)
