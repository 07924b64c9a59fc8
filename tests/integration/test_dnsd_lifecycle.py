"""dnsd life cycle in real namespaces: live updates, listeners coming and going, start-up.

Each test builds its own small topology in throwaway namespaces (``host_ns`` plays
the host; dnsd is started inside it and dies with it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_dnsd_support import Netns, connect, dig, start_dnsd, wait_for  # noqa: E402

from dnsd import config, control  # noqa: E402

pytestmark = pytest.mark.netns


def bridge(host: Netns, name: str, ip: str) -> None:
    host.run(["ip", "link", "add", name, "type", "bridge"])
    host.run(["ip", "addr", "add", f"{ip}/24", "dev", name])
    host.run(["ip", "link", "set", name, "up"])


def container(host: Netns, make_ns: Callable[..., Netns], br: str, ip: str) -> Netns:
    ctr = make_ns()
    hostif = "v" + ip.replace(".", "")[-10:]
    connect(host, ctr, hostif, "eth0")
    host.run(["ip", "link", "set", hostif, "master", br])
    ctr.run(["ip", "addr", "add", f"{ip}/24", "dev", "eth0"])
    return ctr


def listening(host: Netns, pid: int) -> dict[str, str]:
    """dnsd's UDP listen addresses -> socket inode."""
    out = host.run(["ss", "-Hlnupe"]).stdout
    found = {}
    for line in out.splitlines():
        if f"pid={pid}," in line:
            addr = line.split()[3].rsplit(":", 1)[0].strip("[]")
            found[addr] = next(f for f in line.split() if f.startswith("ino:"))
    return found


# queries "tgt" until it has sent >= 2000 and the stop file exists; prints a summary
CLIENT = r"""
import json, os, socket, struct, sys, time
gw, stop = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2.0)
sent = lost = wrong = 0
while sent < 2000 or not os.path.exists(stop):
    qid = sent & 0xFFFF
    s.sendto(struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + b"\x03tgt\x00\x00\x01\x00\x01", (gw, 53))
    sent += 1
    try:
        while True:
            r = s.recv(512)
            if r[:2] == struct.pack("!H", qid):
                break
    except socket.timeout:
        lost += 1
        continue
    if (r[3] & 15) != 0 or r[7] != 1 or r[-4:] != socket.inet_aton("10.89.1.3"):
        wrong += 1
    time.sleep(0.0005)
print(json.dumps({"sent": sent, "lost": lost, "wrong": wrong}))
"""


def test_updates_during_a_query_stream_lose_nothing(
    host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path
) -> None:
    bridge(host_ns, "br1", "10.89.1.1")
    cli = container(host_ns, make_ns, "br1", "10.89.1.2")
    d = str(tmp_path / "dns")
    config.write_network(d, "net1", ["10.89.1.1"], ["10.89.1.0/24"])
    config.write_entry(d, "net1", "c" * 64, "eth0", ["cli"], ["10.89.1.2"], [])
    config.write_entry(d, "net1", "7" * 64, "eth0", ["tgt"], ["10.89.1.3"], [])
    (tmp_path / "resolv.conf").write_text("")
    pid = start_dnsd(host_ns, d, str(tmp_path / "resolv.conf"))
    inode = listening(host_ns, pid)["10.89.1.1"]
    stop = tmp_path / "stop"
    client = cli.spawn([sys.executable, "-c", CLIENT, "10.89.1.1", str(stop)], stdout=subprocess.PIPE)
    try:
        for i in range(50):
            config.write_entry(d, "net1", f"{i:064x}", "eth0", [f"new{i}"], [f"10.89.1.{10 + i}"], [])
            # rewrite the very entry the client asks for (same address, one more alias)
            config.write_entry(d, "net1", "7" * 64, "eth0", ["tgt", f"tgt{i}"], ["10.89.1.3"], [])
            if i % 5 == 4:
                config.remove_entry(d, "net1", f"{i - 2:064x}", "eth0")
            if i % 10 == 0:  # a listener appears on another address...
                config.write_network(d, "churn", ["10.89.9.1"], ["10.89.9.0/24"])
            elif i % 10 == 5:  # ...and goes away again
                config.remove_network(d, "churn")
            control.reload(d)
            wait_for(lambda: False, timeout=0.01)  # spread the updates over the stream
        assert client.poll() is None, "the client finished before the updates: test is void"
    finally:
        stop.touch()
        out, _ = client.communicate(timeout=60)
    result = json.loads(out)
    assert result["sent"] >= 2000
    assert result == {"sent": result["sent"], "lost": 0, "wrong": 0}
    assert dig(cli, "10.89.1.1", "new49").answers == ["10.89.1.59"]
    assert dig(cli, "10.89.1.1", "tgt49").answers == ["10.89.1.3"]
    assert dig(cli, "10.89.1.1", "new47").status == "SERVFAIL"  # removed; no upstream to ask
    assert listening(host_ns, pid)["10.89.1.1"] == inode  # the socket was never re-created


def test_removed_network_loses_its_listener_and_dnsd_exits_when_none_is_left(
    host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path
) -> None:
    bridge(host_ns, "br1", "10.89.1.1")
    bridge(host_ns, "br2", "10.89.2.1")
    c1 = container(host_ns, make_ns, "br1", "10.89.1.2")
    c2 = container(host_ns, make_ns, "br2", "10.89.2.2")
    d = str(tmp_path / "dns")
    config.write_network(d, "net1", ["10.89.1.1"], ["10.89.1.0/24"])
    config.write_network(d, "net2", ["10.89.2.1"], ["10.89.2.0/24"])
    config.write_entry(d, "net1", "1" * 64, "eth0", ["one"], ["10.89.1.2"], [])
    config.write_entry(d, "net2", "2" * 64, "eth0", ["two"], ["10.89.2.2"], [])
    (tmp_path / "resolv.conf").write_text("")
    pid = start_dnsd(host_ns, d, str(tmp_path / "resolv.conf"))
    before = listening(host_ns, pid)
    assert set(before) == {"10.89.1.1", "10.89.2.1"}
    assert dig(c2, "10.89.2.1", "two").answers == ["10.89.2.2"]

    config.remove_network(d, "net2")  # what the plugin does after the last container left
    control.reload(d)
    assert wait_for(lambda: set(listening(host_ns, pid)) == {"10.89.1.1"})
    assert listening(host_ns, pid)["10.89.1.1"] == before["10.89.1.1"]  # untouched
    assert dig(c2, "10.89.2.1", "two", timeout=1, check=False).status is None
    assert dig(c1, "10.89.1.1", "one").answers == ["10.89.1.2"]

    config.remove_entry(d, "net1", "1" * 64, "eth0")
    assert not config.network_has_entries(d, "net1")
    config.remove_network(d, "net1")  # no signal: inotify alone must notice
    assert wait_for(lambda: not control.is_dnsd_for(pid, d))
    assert control.read_pid(d) is None
    assert dig(c1, "10.89.1.1", "one", timeout=1, check=False).status is None


def test_twenty_concurrent_ensure_running_start_one_dnsd(
    host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path
) -> None:
    bridge(host_ns, "br1", "10.89.1.1")
    c1 = container(host_ns, make_ns, "br1", "10.89.1.2")
    d = str(tmp_path / "dns")
    config.write_network(d, "net1", ["10.89.1.1"], ["10.89.1.0/24"])
    config.write_entry(d, "net1", "1" * 64, "eth0", ["one"], ["10.89.1.2"], [])
    code = "import sys; from dnsd.control import ensure_running; print(ensure_running(sys.argv[1]))"
    procs = [host_ns.spawn([sys.executable, "-c", code, d], stdout=subprocess.PIPE) for _ in range(20)]
    pids = {int(p.communicate(timeout=60)[0]) for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(pids) == 1
    running = [pid for pid in _pids_in(host_ns) if control.is_dnsd_for(pid, d)]
    assert running == list(pids)
    assert dig(c1, "10.89.1.1", "one").answers == ["10.89.1.2"]
    # and a second dnsd by hand for the same directory refuses to start
    second = host_ns.run([sys.executable, "-m", "dnsd", "--dir", d], check=False)
    assert second.returncode == 1 and "already runs" in second.stderr


def test_listen_address_configured_after_start_and_manual_run_on_another_port(
    host_ns: Netns, make_ns: Callable[..., Netns], tmp_path: Path
) -> None:
    d = str(tmp_path / "dns")
    config.write_network(d, "late", ["10.89.5.1"], ["10.89.5.0/24"])
    config.write_entry(d, "late", "5" * 64, "eth0", ["five"], ["10.89.5.2"], [])
    (tmp_path / "resolv.conf").write_text("")
    # by hand, as documented; IP_FREEBIND lets it bind before the bridge has the address
    proc = host_ns.spawn([sys.executable, "-m", "dnsd", "--dir", d, "--port", "5353",
                          "--resolv-conf", str(tmp_path / "resolv.conf")], stderr=subprocess.PIPE)
    assert wait_for(lambda: control.find_running(d) == proc.pid and control.hup_handled(proc.pid))
    bridge(host_ns, "br5", "10.89.5.1")
    c5 = container(host_ns, make_ns, "br5", "10.89.5.2")
    assert dig(c5, "10.89.5.1", "five", "A", "-p", "5353").answers == ["10.89.5.2"]
    assert control.stop(d)
    assert proc.wait(10) == 0


def _pids_in(ns: Netns) -> list[int]:
    from nsutil import pids_in_netns

    return pids_in_netns(ns.path)
