"""The agent's pure parts: dnsd back-off, policy records, status text; the attachment lock."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from netplugins.cni import attlock
from netplugins.firewall.desired import (
    load_policies,
    policy_from_record,
    remove_policy,
    save_policy,
)
from netplugins.firewall.errors import FirewallError
from netplugins.firewall.plan import NetworkPolicy
from runtime.agent.supervise import FREE_RESTARTS, MAX_DELAY, Backoff
from runtime.commands.agent import render_status


def test_backoff_restarts_at_once_then_doubles_up_to_the_cap() -> None:
    b = Backoff()
    delays = []
    for i in range(12):
        b.died(now=100.0 + i, ran_for=0.3)
        delays.append(b.delay)
    assert delays[:FREE_RESTARTS] == [0.0] * FREE_RESTARTS
    assert delays[FREE_RESTARTS:FREE_RESTARTS + 3] == [0.5, 1.0, 2.0]
    assert max(delays) == MAX_DELAY
    assert not b.may_try(100.0 + 11) and b.may_try(100.0 + 11 + MAX_DELAY)
    b.died(now=500.0, ran_for=60.0)  # it had run fine for a minute: not a crash loop
    assert b.delay == 0.0 and b.streak == 0 and b.may_try(500.0)


def test_policy_record_round_trip_and_tolerance(tmp_path: Path) -> None:
    pol = NetworkPolicy(name="web", bridge="br-web", subnets=("10.1.0.0/24",), internal=True)
    save_policy(str(tmp_path), pol, "nftables")
    got, bad = load_policies(str(tmp_path))
    assert bad == [] and len(got) == 1
    assert got[0].policy == pol and got[0].driver == "nftables"
    # fields of a newer version are ignored, missing ones take their defaults
    d = policy_from_record({"name": "n2", "bridge": "br2", "subnets": ["10.2.0.0/24"],
                            "driver": "iptables", "futureFlag": 1})
    assert d.policy.masquerade is True and d.driver == "iptables"
    with pytest.raises(FirewallError):
        policy_from_record({"name": "n3", "bridge": "br3", "driver": "pf"})
    (tmp_path / "_policy" / "broken.json").write_text("{not json")
    got, bad = load_policies(str(tmp_path))
    assert len(got) == 1 and len(bad) == 1 and "broken.json" in bad[0]
    remove_policy(str(tmp_path), "web")
    remove_policy(str(tmp_path), "web")  # absent is fine
    assert load_policies(str(tmp_path))[0] == []


def test_render_status() -> None:
    assert "not running" in render_status({"running": False, "socket": "/x.sock"})
    text = render_status({
        "running": True, "pid": 42, "uptime_s": 7325, "activation": "systemd", "socket": "/s",
        "workers": {"ready": 4, "spare": 4, "calls_served": 10},
        "dnsd": {"state": "backoff", "pid": None, "restarts": 5, "next_retry_in": 4.0},
        "firewall": {"watch": "nftables notifications", "repairs_total": 2,
                     "last_pass": {"time": time.time(), "duration_ms": 12.5, "networks": 2,
                                   "attachments_with_ports": 1, "notes": ["old record"]},
                     "recent_repairs": ["t network web: rules restored"], "failures": ["x: y"]}})
    assert "pid 42, up 2h02m, started by systemd" in text
    assert "dnsd: backoff, 5 start(s) by the agent, next try in 4.0s" in text
    assert "2 repair(s) since start" in text and "repaired: t network web" in text
    assert "FAILED: x: y" in text and "note: old record" in text


def _hold(path: str, env: dict[str, str], seconds: float, started: object) -> None:
    with attlock.attachment_lock(env):
        started.set()  # type: ignore[attr-defined]
        time.sleep(seconds)


def test_attachment_lock_serialises_the_same_attachment(tmp_path: Path) -> None:
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0",
           "NETCTL_LOCK_DIR": str(tmp_path)}
    ctx = multiprocessing.get_context("fork")
    started = ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path), env, 0.4, started))
    holder.start()
    assert started.wait(10)
    t0 = time.monotonic()
    del_env = dict(env, CNI_COMMAND="DEL")
    with attlock.attachment_lock(del_env):
        waited = time.monotonic() - t0
        assert del_env[attlock.HELD_ENV] == attlock.attachment_key(env)
    holder.join()
    assert waited > 0.2, "DEL did not wait for the running ADD"
    # no lock file is left behind; other attachments never wait for this one
    assert os.listdir(tmp_path) == []
    other = dict(env, CNI_IFNAME="eth1")
    assert attlock.attachment_key(other) != attlock.attachment_key(env)


def test_attachment_lock_times_out_and_skips_nested_and_keyless_calls(tmp_path: Path) -> None:
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c2", "CNI_IFNAME": "eth0",
           "NETCTL_LOCK_DIR": str(tmp_path)}
    with attlock.attachment_lock(env):
        # a delegate exec'd by the holder (same key in its environment) does not wait
        with attlock.attachment_lock(dict(env)):
            pass
        ctx = multiprocessing.get_context("fork")
        q = ctx.Queue()

        def contend() -> None:
            try:
                with attlock.attachment_lock({k: v for k, v in env.items() if k != attlock.HELD_ENV},
                                             limit=0.2):
                    q.put("got it")
            except attlock.LockTimeout as exc:
                q.put(f"timeout: {exc}")

        p = ctx.Process(target=contend)
        p.start()
        p.join()
        assert q.get(timeout=5).startswith("timeout")
    for cmd in ("VERSION", "STATUS", "GC"):
        assert attlock.attachment_key({"CNI_COMMAND": cmd, "CNI_CONTAINERID": "x"}) is None
    assert attlock.lock_dir({"NETCTL_ROOT": "/r"}) == "/r/run/locks"
    assert attlock.lock_dir({}) == attlock.DEFAULT_DIR
    assert attlock.lock_dir({"NETCTL_LOCK_DIR": "relative"}) == attlock.DEFAULT_DIR


def test_systemd_units(tmp_path: Path) -> None:
    from runtime.agent.units import render_units, write_units

    units = render_units("/opt/x/bin/python")
    assert "ListenStream=/run/netctl/plugind.sock" in units["netctl-agent.socket"]
    svc = units["netctl-agent.service"]
    assert "ExecStart=/opt/x/bin/python -I -m runtime.agent run" in svc
    assert "WorkingDirectory=/" in svc and "Requires=netctl-agent.socket" in svc
    paths = write_units(str(tmp_path), "/opt/x/bin/python")
    assert sorted(os.path.basename(p) for p in paths) == ["netctl-agent.service", "netctl-agent.socket"]
    # the shipped copies are what the renderer gives for the documented install path
    root = Path(__file__).resolve().parents[3] / "contrib" / "systemd"
    for name, text in render_units("/opt/netctl/.venv/bin/python").items():
        assert (root / name).read_text() == text
