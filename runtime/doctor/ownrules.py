"""Are netctl's own rules for the path intact? Asked of the firewall drivers themselves.

doctor does not parse rules to answer this: it takes the policy the bridge plugin recorded
and the published-port plan portmap recorded (what the agent restores), and calls the
driver's ``check_network`` / ``check_ports``, the code CNI CHECK runs. Reading only.
"""

from __future__ import annotations

from netplugins.firewall.desired import load_policies
from netplugins.firewall.driver import get_driver, get_port_driver
from netplugins.firewall.errors import FirewallError
from netplugins.meta.portmap import desired_ports

from .facts import Attachment, ContainerInfo, Network, RuleCheck


def check_networks(nets: list[Network], state_dir: str) -> tuple[RuleCheck, ...]:
    """The driver's check of each bridge network's rules, against the policy the bridge
    plugin recorded when it installed them (the one the agent restores), with the driver
    it used. A network with addresses but no record cannot be checked, and says so: doctor
    does not rebuild the plugin's policy itself."""
    found, _bad = load_policies(state_dir)
    recorded = {d.policy.name: d for d in found}
    out = []
    for net in nets:
        rec = recorded.get(net.name)
        what = f"network {net.name}"
        if net.driver != "bridge" or not net.bridge or (rec is None and not net.subnets):
            continue
        if rec is None:
            out.append(RuleCheck(what, "", error="the bridge plugin recorded no firewall policy "
                                 "for it, so nothing can check or restore its rules"))
            continue
        try:
            drv = get_driver(rec.driver)
            out.append(RuleCheck(what, drv.name, tuple(drv.check_network(rec.policy))))
        except FirewallError as exc:
            out.append(RuleCheck(what, rec.driver, error=f"{exc} {exc.details}".strip()))
    return tuple(out)


def check_ports(ctr: ContainerInfo, att: Attachment, state_dir: str) -> RuleCheck | None:
    """The port driver's check of the ports portmap recorded for ``ctr`` on ``att`` (the
    plan the agent restores, with the driver portmap used: a rebuilt plan could differ,
    e.g. in SNAT), or why there is nothing to check."""
    if not ctr.ports or not att.addresses:
        return None
    what = f"published ports of {ctr.name}"
    plans, _bad = desired_ports(state_dir)
    rec = next(((p, d) for p, d, _dev in plans
                if (p.network, p.container_id, p.ifname) == (att.network, ctr.id, att.ifname)), None)
    if rec is None:
        return RuleCheck(what, "", error="portmap recorded no published ports for it, so nothing can check "
                         "or restore their rules")
    try:
        drv = get_port_driver(rec[1] or None)
        return RuleCheck(what, drv.name, tuple(drv.check_ports(rec[0])))
    except FirewallError as exc:
        return RuleCheck(what, rec[1], error=f"{exc} {exc.details}".strip())
