"""Put the node's firewall back the way the plugins left it (``netctl firewall reload``).

The desired state is what the plugins recorded (netplugins.firewall.desired: one policy
per network; portmap's attachment records: the published ports). For each network the
reconciler takes the same per-network lock the plugins take when they install or remove
rules, re-reads the record under it (a DEL may just have removed the network), asks the
network's driver what differs and, if anything does, re-applies the whole network with
the driver's own ``setup_network`` (nftables: one ``nft -f`` transaction; iptables: one
restore per family). Published ports likewise, per attachment, with ``setup_ports``.

Fail closed: when the published ports of an attachment that relies on ``route_localnet``
(127.0.0.1 published) cannot be restored, the 127.0.0.0/8 guard may be missing too, so
``route_localnet`` is turned off on that bridge (moby#45610, CVE-2025-54388).

Only our own tables and tagged rules are ever written: the drivers never touch rules of
other tools.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field

from netplugins.firewall.desired import load_policies, policy_from_record
from netplugins.firewall.driver import get_driver, get_port_driver
from netplugins.firewall.errors import FirewallError
from netplugins.firewall.ports import PortsPlan
from netplugins.main.attachments import Attachments
from netplugins.meta import localnet
from netplugins.meta.portmap import RECORDS, desired_ports


@dataclass
class ReconcileReport:
    """What one pass found and did."""

    started: float = 0.0
    duration_ms: float = 0.0
    networks: int = 0
    attachments_with_ports: int = 0
    #: one line per repair made ("network net1: restored: chain ... is missing")
    repairs: list[str] = field(default_factory=list)
    #: what could not be repaired (the pass goes on with the rest)
    failures: list[str] = field(default_factory=list)
    #: records that cannot be used (older versions, unreadable files)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self, repaired: bool = True) -> str:
        what = f"{self.networks} network(s), {self.attachments_with_ports} attachment(s) with ports"
        if not self.repairs and not self.failures:
            return f"firewall in sync: {what} checked in {self.duration_ms:.0f} ms"
        done = "repair(s)" if repaired else "difference(s) found, nothing changed (--check)"
        return (f"{len(self.repairs)} {done}, {len(self.failures)} failure(s) over {what} "
                f"in {self.duration_ms:.0f} ms")


def reconcile(state_dir: str, *, repair: bool = True) -> ReconcileReport:
    """Check (and with ``repair``, restore) every recorded network and published port.

    Never raises: every failure is reported in the result.
    """
    report = ReconcileReport(started=time.time())
    t0 = time.perf_counter()
    policies, bad = load_policies(state_dir)
    report.notes += bad
    for desired in policies:
        _network(state_dir, desired.policy.name, report, repair)
    plans, bad = desired_ports(state_dir)
    report.notes += bad
    for plan, driver, dev in plans:
        _ports(state_dir, plan, driver, dev, report, repair)
    report.duration_ms = (time.perf_counter() - t0) * 1e3
    return report


def _network(state_dir: str, network: str, report: ReconcileReport, repair: bool) -> None:
    att = Attachments(state_dir, network)
    try:
        with att.locked():
            # re-read under the lock: the record may be gone or changed since the listing
            path = os.path.join(state_dir, "_policy", f"{network}.json")
            try:
                with open(path) as fh:
                    desired = policy_from_record(json.load(fh))
            except FileNotFoundError:
                return
            report.networks += 1
            if desired.driver == "none":
                return
            driver = get_driver(desired.driver)
            problems = driver.check_network(desired.policy)
            if not problems:
                return
            if not repair:
                report.repairs.append(f"network {network}: needs repair: {problems[0]}"
                                      + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
                return
            driver.setup_network(desired.policy)
            report.repairs.append(f"network {network}: rules restored ({desired.driver}): "
                                  f"{problems[0]}" + (f" (+{len(problems) - 1} more)"
                                                      if len(problems) > 1 else ""))
    except (FirewallError, OSError, ValueError) as exc:
        report.failures.append(f"network {network}: {exc}")


def _ports(state_dir: str, plan: object, driver_name: str, dev: str, report: ReconcileReport,
           repair: bool) -> None:
    assert isinstance(plan, PortsPlan)
    recs = Attachments(os.path.join(state_dir, RECORDS), plan.network)
    what = f"ports of {plan.container_id[:12]}/{plan.ifname} on {plan.network}"
    try:
        with recs.locked():
            if recs.get(plan.container_id, plan.ifname) is None:
                return  # removed by a DEL since the listing
            report.attachments_with_ports += 1
            driver = get_port_driver(driver_name or None)
            problems = driver.check_ports(plan)
            if not problems:
                return
            if not repair:
                report.repairs.append(f"{what}: needs repair: {problems[0]}")
                return
            try:
                driver.setup_ports(plan)
            except FirewallError as exc:
                report.failures.append(f"{what}: {exc}")
                _fail_closed(dev, report)
                return
            report.repairs.append(f"{what}: restored ({driver.name}): {problems[0]}"
                                  + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    except (FirewallError, OSError, ValueError) as exc:
        report.failures.append(f"{what}: {exc}")
        _fail_closed(dev, report)


def _fail_closed(dev: str, report: ReconcileReport) -> None:
    """route_localnet off on ``dev``: without the guard rule it exposes 127.0.0.0/8."""
    if not dev or not localnet.is_enabled(dev):
        return
    try:
        localnet.disable(dev)
        report.failures.append(f"route_localnet turned off on {dev}: the 127.0.0.0/8 guard "
                               "could not be restored (ports published on 127.0.0.1 stop answering)")
    except OSError as exc:
        report.failures.append(f"cannot turn route_localnet off on {dev}: {exc}")
