"""``netctl agent run|start|status|stop`` and ``netctl firewall reload``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..agent import control
from ..agent.__main__ import add_run_options
from ..agent.__main__ import run as run_agent
from ..paths import Paths

#: ``agent status`` exit status when no agent runs (as ``systemctl status``)
NOT_RUNNING = 3


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "agent", help="the per-host agent: warm plugin calls, dnsd supervision, firewall repair",
        description="One agent per host (per NETCTL_ROOT) serves plugin calls from a warm process, "
                    "restarts dnsd when it dies and restores netctl's firewall rules when something "
                    "else removed them.")
    asub = p.add_subparsers(dest="agent_cmd", required=True, metavar="VERB")
    run = asub.add_parser("run", help="run the agent in the foreground (for a service manager)")
    add_run_options(run)
    run.set_defaults(func=cmd_run)
    start = asub.add_parser("start", help="start a detached agent unless one runs")
    start.add_argument("--socket", default=None, help="plugin socket (default: <run dir>/plugind.sock)")
    start.add_argument("--store", default=None, metavar="URL",
                       help="cluster store for overlay networks (default: NETCTL_STORE)")
    start.set_defaults(func=cmd_start)
    st = asub.add_parser("status", help="is it running; workers, dnsd, last firewall check, repairs",
                         epilog=f"exit status: 0 running, {NOT_RUNNING} not running")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.set_defaults(func=cmd_status)
    stop = asub.add_parser("stop", help="stop the agent and the dnsd it supervises "
                                        "(running plugin calls finish first)")
    stop.set_defaults(func=cmd_stop)

    units = asub.add_parser("units", help="write systemd units (socket activation) for this "
                                          "installation")
    units.add_argument("--dir", default=None, metavar="DIR",
                       help="write netctl-agent.socket and netctl-agent.service into DIR "
                            "(e.g. /etc/systemd/system); default: print them")
    units.set_defaults(func=cmd_units)

    fw = sub.add_parser("firewall", help="netctl's firewall rules")
    fsub = fw.add_subparsers(dest="firewall_cmd", required=True, metavar="VERB")
    reload = fsub.add_parser(
        "reload", help="restore netctl's rules once (after firewall-cmd --reload, nft flush ...)",
        description="Check every network's rules and published ports against what the plugins "
                    "recorded and restore what is missing or altered, as the agent does by itself. "
                    "For hosts that run no agent (netavark's firewall-reload).")
    reload.add_argument("--check", action="store_true",
                        help="only report what differs, change nothing (exit 1 if anything does)")
    reload.add_argument("--json", action="store_true", help="print the report as JSON")
    reload.set_defaults(func=cmd_firewall_reload)


def cmd_run(args: argparse.Namespace) -> int:
    return run_agent(args)


def cmd_start(args: argparse.Namespace) -> int:
    paths = Paths.from_env()
    try:
        pid, started = control.start(paths, socket_path=args.socket, wait=True, store=args.store)
    except OSError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    if started:
        print(f"agent started (pid {pid}), serving {args.socket or paths.plugind_socket}")
    elif pid:
        print(f"agent already running (pid {pid})")
    else:
        print(f"something else already listens on {args.socket or paths.plugind_socket} "
              "(a systemd socket unit?): not starting another agent")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    pid = control.stop(Paths.from_env(), progress=lambda msg: print(msg, file=sys.stderr))
    print(f"agent (pid {pid}) stopped" if pid else "no agent was running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    st = control.status(Paths.from_env())
    if args.json:
        print(json.dumps(st, indent=2))
    else:
        print(render_status(st))
    return 0 if st["running"] else NOT_RUNNING


def render_status(st: dict[str, Any]) -> str:
    """The human-readable status (pure)."""
    if not st.get("running"):
        return f"agent: not running (socket {st.get('socket')})"
    lines = [f"agent: running, pid {st['pid']}, up {_duration(st.get('uptime_s'))}, "
             f"started by {st.get('activation', 'self')}",
             f"socket: {st.get('socket')}"]
    w = st.get("workers") or {}
    lines.append(f"workers: {w.get('ready', '?')} ready of {w.get('spare', '?')}, "
                 f"{w.get('busy', 0)} busy, {w.get('calls_served', 0)} calls served")
    d = st.get("dnsd") or {}
    dns = f"dnsd: {d.get('state', '?')}"
    if d.get("pid"):
        dns += f", pid {d['pid']}"
    if d.get("restarts"):
        dns += f", {d['restarts']} start(s) by the agent"
    if d.get("state") == "backoff":
        dns += f", next try in {d.get('next_retry_in')}s (it keeps dying: see dnsd.log)"
    if d.get("last_error"):
        dns += f", last error: {d['last_error']}"
    lines.append(dns)
    ov = st.get("overlay")
    if ov:
        lines.append(f"overlay sync: {ov.get('state')}" + (f", pid {ov['pid']}" if ov.get("pid") else "")
                     + f", store {st.get('store')}, {ov.get('starts', 0)} start(s)"
                     + (f", last exit {ov['last_exit']}" if ov.get("last_exit") is not None else ""))
    fw = st.get("firewall") or {}
    last = fw.get("last_pass") or {}
    when = last.get("time")
    check = (f"last check {time.strftime('%H:%M:%S', time.localtime(when))} "
             f"({last.get('duration_ms')} ms, {last.get('networks')} network(s), "
             f"{last.get('attachments_with_ports')} with ports)" if when else "not checked yet")
    lines.append(f"firewall: watching {fw.get('watch', '?')}; {check}; "
                 f"{fw.get('repairs_total', 0)} repair(s) since start")
    lines += [f"  repaired: {r}" for r in fw.get("recent_repairs", [])[-5:]]
    lines += [f"  FAILED: {f}" for f in fw.get("failures", [])]
    lines += [f"  note: {n}" for n in last.get("notes", [])]
    return "\n".join(lines)


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def cmd_units(args: argparse.Namespace) -> int:
    # lazy: netctl start-up; only this verb needs it
    from ..agent.units import render_units, write_units

    if args.dir:
        for path in write_units(args.dir):
            print(path)
        print("then: systemctl daemon-reload && systemctl enable --now netctl-agent.socket",
              file=sys.stderr)
        return 0
    for name, text in render_units().items():
        print(f"# {name}\n{text}")
    return 0


def cmd_firewall_reload(args: argparse.Namespace) -> int:
    # lazy: netctl start-up; only this verb needs it
    from ..agent.reconcile import reconcile

    paths = Paths.from_env()
    report = reconcile(paths.bridge_state, repair=not args.check)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for line in report.repairs:
            print(line)
        for line in report.failures:
            print(f"Error: {line}", file=sys.stderr)
        for line in report.notes:
            print(f"note: {line}", file=sys.stderr)
        print(report.summary(repaired=not args.check))
    # --check: exit 1 when something differs, as diff does (scripts can test it)
    return 1 if report.failures or (args.check and report.repairs) else 0
