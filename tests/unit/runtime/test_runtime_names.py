"""Error messages name containers by name (runtime/names.py)."""

from __future__ import annotations

from runtime.names import name_containers

A = "a1" * 32
B = "b2" * 32
NAMES = {A: "web1", B: "db"}


def test_full_ids_become_names() -> None:
    msg = f"requested address 10.0.0.2 is already in use by container {A} (interface eth0)"
    assert name_containers(msg, NAMES) == \
        "requested address 10.0.0.2 is already in use by container web1 (interface eth0)"


def test_owner_tags_become_names() -> None:
    msg = (f"port 8080/tcp is already allocated by container {B}: 0.0.0.0:8080/tcp -> "
           f"10.0.0.3:80 (netctl net=n1 cid={B} if=eth0)")
    out = name_containers(msg, NAMES)
    assert out == ("port 8080/tcp is already allocated by container db: 0.0.0.0:8080/tcp -> "
                   "10.0.0.3:80 container db (eth0)")
    # an abbreviated cid in a long tag ("<prefix>~<hash>") still finds its container
    short = name_containers(f"x (netctl net=longname cid={A[:20]}~k3j2 if=eth1)", NAMES)
    assert short == "x container web1 (eth1)"


def test_unknown_ids_stay() -> None:
    other = "c3" * 32
    assert name_containers(f"held by {other}", NAMES) == f"held by {other}"
    assert name_containers("no ids here", NAMES) == "no ids here"
