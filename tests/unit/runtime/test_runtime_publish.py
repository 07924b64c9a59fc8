"""``-p`` specs (runtime/containers.parse_publish), with Docker's forms."""

from __future__ import annotations

import pytest

from runtime.containers import parse_publish
from runtime.errors import NetctlError
from runtime.models import PortMapping as P


@pytest.mark.parametrize(("spec", "expected"), [
    ("80", [P(0, 80, "tcp", "")]),
    ("80/udp", [P(0, 80, "udp", "")]),
    ("80/TCP", [P(0, 80, "tcp", "")]),
    ("8080:80", [P(8080, 80, "tcp", "")]),
    ("8080:80/sctp", [P(8080, 80, "sctp", "")]),
    ("127.0.0.1:8080:80", [P(8080, 80, "tcp", "127.0.0.1")]),
    ("127.0.0.1::80/udp", [P(0, 80, "udp", "127.0.0.1")]),
    ("[::1]:8080:80", [P(8080, 80, "tcp", "::1")]),
    ("[::1]::80", [P(0, 80, "tcp", "::1")]),
    ("8000-8002:80-82", [P(8000, 80, "tcp", ""), P(8001, 81, "tcp", ""), P(8002, 82, "tcp", "")]),
    ("90-91", [P(0, 90, "tcp", ""), P(0, 91, "tcp", "")]),
    ("65535:1", [P(65535, 1, "tcp", "")]),
])
def test_valid(spec: str, expected: list[P]) -> None:
    assert parse_publish(spec) == expected


@pytest.mark.parametrize("spec", [
    "", "0", "70000", "8080:0", "abc", "8080:abc", "8080:", "80/icmp", "5-3",
    "8000-8001:80-82",        # ranges of different lengths
    "1.2.3.4:80",             # an address is not a host port
    "bad:8080:80",            # nor is "bad" an address
    "300.1.1.1:8080:80",
    "[::1:8080:80",           # unclosed bracket
    "[nope]:8080:80",
    "1:2:3:4",
])
def test_invalid(spec: str) -> None:
    with pytest.raises(NetctlError):
        parse_publish(spec)
