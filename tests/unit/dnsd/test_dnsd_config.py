"""Configuration writers: layout, validation, atomicity under concurrent processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dnsd import config
from dnsd.config import ConfigError, read_config


def test_layout_and_content(tmp_path: Path) -> None:
    d = str(tmp_path)
    config.write_network(d, "net1", ["10.89.0.1", "fd00::1"], ["10.89.0.0/24", "fd00::/64"],
                         upstreams=["1.1.1.1"])
    config.write_entry(d, "net1", "ab" * 32, "eth0", ["web", "alias", "web"], ["10.89.0.2"], ["fd00::2"])
    net = json.loads((tmp_path / "networks" / "net1.json").read_text())
    assert net == {"name": "net1", "listen": ["10.89.0.1", "fd00::1"],
                   "subnets": ["10.89.0.0/24", "fd00::/64"], "internal": False, "upstreams": ["1.1.1.1"]}
    entry = json.loads((tmp_path / "entries" / "net1" / f"{'ab' * 32}-eth0.json").read_text())
    assert entry == {"id": "ab" * 32, "names": ["web", "alias"], "ipv4": ["10.89.0.2"],
                     "ipv6": ["fd00::2"], "upstreams": []}
    assert not [f for f in os.listdir(tmp_path / "entries" / "net1") if f.startswith(".")]


@pytest.mark.parametrize(
    "call",
    [
        lambda d: config.write_network(d, "../evil", ["10.0.0.1"], []),
        lambda d: config.write_network(d, ".hidden", ["10.0.0.1"], []),
        lambda d: config.write_network(d, "n", ["10.0.0.300"], []),
        lambda d: config.write_network(d, "n", "10.0.0.1", []),
        lambda d: config.write_network(d, "n", ["10.0.0.1"], ["10.0.0.0/33"]),
        lambda d: config.write_entry(d, "n", "a/b", "eth0", ["x"], [], []),
        lambda d: config.write_entry(d, "n", "abc", "eth0", ["has space"], [], []),
        lambda d: config.write_entry(d, "n", "abc", "eth0", ["x"], ["fd00::1"], []),
        lambda d: config.write_entry(d, "n", "abc", "eth0", ["x"], [], ["10.0.0.1"]),
        lambda d: config.write_entry(d, "n", "abc", "eth0", "x", [], []),
        lambda d: config.remove_entry(d, "n", "..", "eth0"),
        lambda d: config.network_has_entries(d, "a/b"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        call(str(tmp_path))
    assert not list((tmp_path).rglob("*.json"))


def test_remove_is_idempotent_and_network_takes_its_entries(tmp_path: Path) -> None:
    d = str(tmp_path)
    config.remove_entry(d, "net1", "abc", "eth0")  # absent: fine
    config.remove_network(d, "net1")
    config.write_network(d, "net1", ["10.0.0.1"], ["10.0.0.0/24"])
    assert not config.network_has_entries(d, "net1")
    config.write_entry(d, "net1", "abc", "eth0", ["x"], ["10.0.0.2"], [])
    config.write_entry(d, "net1", "def", "eth0", ["y"], ["10.0.0.3"], [])
    assert config.network_has_entries(d, "net1")
    config.remove_entry(d, "net1", "abc", "eth0")
    assert config.network_has_entries(d, "net1")
    config.remove_network(d, "net1")
    assert not config.network_has_entries(d, "net1")
    assert not (tmp_path / "entries" / "net1").exists()
    assert read_config(d) == ({}, {})


def _writer(d: str, k: int, rounds: int) -> None:
    """One plugin process: its own entries plus a shared file everybody rewrites."""
    for r in range(rounds):
        config.write_network(d, "shared", ["10.0.0.1"], ["10.0.0.0/16"])
        config.write_entry(d, "shared", f"{k:064x}", "eth0", [f"c{k}", "svc"], [f"10.0.{k}.{r % 250 + 2}"], [])
        config.write_entry(d, "shared", "f" * 64, "eth0", [f"last-{k}-{r}"], ["10.0.255.2"], [])
        if r % 3 == 0:
            config.write_entry(d, "churn", f"{k:064x}", "eth0", ["x"], ["10.1.0.2"], [])
            config.remove_entry(d, "churn", f"{k:064x}", "eth0")
        if r % 5 == 0 and k % 4 == 0:
            config.remove_network(d, "churn")
            config.write_network(d, "churn", ["10.1.0.1"], ["10.1.0.0/16"])


def _reader(d: str, stop: multiprocessing.synchronize.Event, bad: multiprocessing.Queue) -> None:  # type: ignore[name-defined]
    while not stop.is_set():
        for root, _dirs, files in os.walk(d):
            for f in files:
                if f.endswith(".json") and not f.startswith("."):
                    try:
                        with open(os.path.join(root, f)) as fh:
                            json.load(fh)
                    except FileNotFoundError:
                        pass  # removed meanwhile: fine
                    except ValueError as exc:
                        bad.put(f"{f}: {exc}")


def test_twenty_concurrent_writers_never_expose_partial_files(tmp_path: Path) -> None:
    d = str(tmp_path)
    ctx = multiprocessing.get_context("fork")
    stop, bad = ctx.Event(), ctx.Queue()
    reader = ctx.Process(target=_reader, args=(d, stop, bad))
    reader.start()
    writers = [ctx.Process(target=_writer, args=(d, k, 30)) for k in range(20)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    stop.set()
    reader.join(10)
    assert all(w.exitcode == 0 for w in writers)
    problems = []
    while not bad.empty():
        problems.append(bad.get())
    assert problems == []
    networks, entries = read_config(d)
    assert "shared" in networks
    assert len(entries["shared"]) == 21  # 20 own + the shared one, each complete
    shared = [e for e in entries["shared"] if e["id"] == "f" * 64]
    assert len(shared) == 1 and shared[0]["names"][0].startswith("last-")
    leftovers = [p for p in tmp_path.rglob(".tmp-*")]
    assert leftovers == []


def test_config_module_is_cheap_to_import() -> None:
    code = "import sys, dnsd.config, dnsd.control; print(sorted(m for m in ('dnslib', 'asyncio', 'netaddr', 'subprocess') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
