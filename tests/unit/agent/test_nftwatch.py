"""Splitting nftables notifications into transactions and their processes (pure)."""

from __future__ import annotations

from runtime.agent.nftwatch import NFNL_SUBSYS_NFTABLES, NFT_MSG_NEWGEN, newgen_pid, transactions

NEWTABLE = (NFNL_SUBSYS_NFTABLES << 8) | 0
NEWGEN = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN


def _attr(kind: int, data: bytes) -> bytes:
    raw = (4 + len(data)).to_bytes(2, "little") + kind.to_bytes(2, "little") + data
    return raw + b"\0" * (-len(raw) % 4)


def _msg(kind: int, payload: bytes) -> bytes:
    body = b"\x01\x00\x00\x00" + payload  # nfgenmsg: family, version, res_id
    return (16 + len(body)).to_bytes(4, "little") + kind.to_bytes(2, "little") + b"\0" * 10 + body


def _gen(pid: int | None) -> bytes:
    attrs = _attr(1, (7).to_bytes(4, "big"))
    if pid is not None:
        attrs += _attr(2, pid.to_bytes(4, "big")) + _attr(3, b"nft\0")
    return _msg(NEWGEN, attrs)


def test_each_transaction_names_its_process() -> None:
    data = _msg(NEWTABLE, b"") + _msg(NEWTABLE, b"") + _gen(4321) + _msg(NEWTABLE, b"") + _gen(99)
    assert transactions(data) == ([4321, 99], 0)


def test_changes_after_the_last_newgen_are_pending() -> None:
    assert transactions(_gen(5) + _msg(NEWTABLE, b"") + _msg(NEWTABLE, b"")) == ([5], 2)
    assert transactions(_msg(NEWTABLE, b"")) == ([], 1)


def test_a_newgen_without_a_process_and_garbage() -> None:
    assert newgen_pid(_gen(None)) is None
    assert transactions(_gen(None)) == ([None], 0)
    assert transactions(b"\x03\x00") == ([], 0)
    assert transactions((8).to_bytes(4, "little") + b"\0" * 12) == ([], 0)  # length < header
