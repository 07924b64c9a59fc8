"""Range and range-set parsing: defaults as the reference fills them, and every bad input."""

from __future__ import annotations

import pytest

from ipam.errors import ConfigError
from ipam.ranges import address as IPAddress
from ipam.ranges import parse_range_set, parse_range_sets


def one(obj: dict) -> dict[str, str]:
    return parse_range_set([obj], 0).ranges[0].to_dict()


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"subnet": "10.1.0.0/24"},
         {"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.1", "rangeEnd": "10.1.0.254", "gateway": "10.1.0.1"}),
        ({"subnet": "10.1.0.0/24", "gateway": "10.1.0.254"},
         {"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.1", "rangeEnd": "10.1.0.254", "gateway": "10.1.0.254"}),
        ({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.100", "rangeEnd": "10.1.0.200"},
         {"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.100", "rangeEnd": "10.1.0.200", "gateway": "10.1.0.1"}),
        ({"subnet": "10.1.0.0/30"},
         {"subnet": "10.1.0.0/30", "rangeStart": "10.1.0.1", "rangeEnd": "10.1.0.2", "gateway": "10.1.0.1"}),
        # IPv6 has no broadcast: the last address is allocatable
        ({"subnet": "fd00:1::/64"},
         {"subnet": "fd00:1::/64", "rangeStart": "fd00:1::1", "rangeEnd": "fd00:1::ffff:ffff:ffff:ffff",
          "gateway": "fd00:1::1"}),
        # empty strings mean "default", as podman writes them
        ({"subnet": "10.1.0.0/24", "gateway": "", "rangeStart": ""},
         {"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.1", "rangeEnd": "10.1.0.254", "gateway": "10.1.0.1"}),
    ],
)
def test_defaults_filled_in(obj: dict, expected: dict) -> None:
    assert one(obj) == expected


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({}, "invalid range set 0: a range needs a subnet"),
        ({"subnet": "10.1.0.0"}, "expected CIDR notation"),
        ({"subnet": "banana/24"}, "invalid subnet 'banana/24': not a CIDR"),
        ({"subnet": "10.1.0.5/24"}, "it is not a network address (did you mean 10.1.0.0/24?)"),
        ({"subnet": "10.1.0.0/31"}, "network 10.1.0.0/31 too small to allocate from"),
        ({"subnet": "10.1.0.0/32"}, "too small to allocate from"),
        ({"subnet": "fd00::/127"}, "network fd00::/127 too small to allocate from"),
        ({"subnet": "10.1.0.0/24", "rangeStart": "10.2.0.5"}, "rangeStart 10.2.0.5 is outside subnet 10.1.0.0/24"),
        ({"subnet": "10.1.0.0/24", "rangeEnd": "10.1.1.5"}, "rangeEnd 10.1.1.5 is outside subnet 10.1.0.0/24"),
        ({"subnet": "10.1.0.0/24", "rangeStart": "fd00::5"}, "rangeStart fd00::5 is outside subnet"),
        ({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.9", "rangeEnd": "10.1.0.3"},
         "rangeStart 10.1.0.9 is after rangeEnd 10.1.0.3"),
        ({"subnet": "10.1.0.0/24", "gateway": "10.9.0.1"}, "gateway 10.9.0.1 is outside subnet 10.1.0.0/24"),
        ({"subnet": "10.1.0.0/24", "gateway": "10.1.0.255"}, "is the network or broadcast address"),
        ({"subnet": "10.1.0.0/24", "gateway": "nope"}, "invalid gateway 'nope': not an IP address"),
        # IPv6 scopes (which the standard library's ipaddress would take) are no address of a range
        ({"subnet": "fe80::/64", "gateway": "fe80::1%eth0"}, "invalid gateway 'fe80::1%eth0': not an IP address"),
        ({"subnet": "fd00::%eth0/64"}, "invalid subnet 'fd00::%eth0/64': not a CIDR"),
        ({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.1", "rangeEnd": "10.1.0.1"}, "has no address left"),
        ("10.1.0.0/24", "a range must be an object"),
    ],
)
def test_bad_range(obj: object, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_range_set([obj], 0)
    assert message in str(exc.value)
    assert exc.value.code == 7


def test_range_set_rules() -> None:
    with pytest.raises(ConfigError, match="a range set must be a non-empty list"):
        parse_range_set([], 2)
    with pytest.raises(ConfigError, match="mixes IPv4 and IPv6"):
        parse_range_set([{"subnet": "10.1.0.0/24"}, {"subnet": "fd00::/64"}], 0)
    with pytest.raises(ConfigError, match=r"ranges 10.1.0.10-10.1.0.20 and 10.1.0.15-10.1.0.30 overlap"):
        parse_range_set([{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.20"},
                         {"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.15", "rangeEnd": "10.1.0.30"}], 0)
    # disjoint ranges of one subnet, and ranges of two subnets, are fine
    rs = parse_range_set([{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.20"},
                          {"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.30", "rangeEnd": "10.1.0.40"},
                          {"subnet": "10.2.0.0/24"}], 0)
    assert str(rs) == "10.1.0.10-10.1.0.20,10.1.0.30-10.1.0.40,10.2.0.1-10.2.0.254"
    assert rs.subnets() == "10.1.0.0/24,10.2.0.0/24"
    assert rs.capacity() == 11 + 11 + 253


def test_range_sets_must_not_overlap() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_range_sets([[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/64"}], [{"subnet": "10.1.0.0/16"}]])
    assert str(exc.value) == "range set 0 (10.1.0.0/24) overlaps with range set 2 (10.1.0.0/16)"
    with pytest.raises(ConfigError, match="no IP ranges specified"):
        parse_range_sets([])
    sets = parse_range_sets([[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/64"}]])
    assert [s.version for s in sets] == [4, 6]


def test_capacity_and_membership() -> None:
    (rng,) = parse_range_set([{"subnet": "10.1.0.0/29", "rangeStart": "10.1.0.0", "rangeEnd": "10.1.0.7"}], 0)
    # network, gateway (.1) and broadcast are inside start..end and never handed out
    assert rng.capacity() == 5
    assert rng.is_reserved(IPAddress("10.1.0.0"))
    assert rng.is_reserved(IPAddress("10.1.0.1"))
    assert rng.is_reserved(IPAddress("10.1.0.7"))
    assert not rng.is_reserved(IPAddress("10.1.0.6"))
    rs = parse_range_set([{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.100", "rangeEnd": "10.1.0.110"}], 0)
    # a requested address may be outside rangeStart..End but inside the subnet (Docker's
    # static addresses outside --ip-range); outside the subnet it belongs to no range
    assert rs.range_for(IPAddress("10.1.0.50")) is rs.ranges[0]
    assert rs.range_for(IPAddress("10.1.1.50")) is None
    assert rs.range_for(IPAddress("fd00::5")) is None
