"""Are netctl's own rules for the path intact? Asked of the firewall drivers themselves.

doctor does not parse rules to answer this: it builds the same policy the bridge plugin
installs (from the network's conflist options) and the same published-port plan
portmap installs, and calls the driver's ``check_network`` / ``check_ports``, the code
CNI CHECK runs. Reading only: nothing is changed.
"""

from __future__ import annotations

from netplugins.firewall.desired import DesiredNetwork, load_policies
from netplugins.firewall.driver import get_driver, get_port_driver
from netplugins.firewall.errors import FirewallError
from netplugins.firewall.plan import NetworkPolicy
from netplugins.firewall.ports import PortMapping, plan_ports

from .facts import Attachment, ContainerInfo, NetworkInfo, RuleCheck


def network_policy(net: NetworkInfo) -> NetworkPolicy:
    """The policy the bridge plugin installs for ``net`` (runtime/conflist.py's options:
    ``ipMasq`` = masquerade and not internal, ``internal``, ``isolate`` always on, ``icc``),
    for networks whose plugin recorded none (the recorded one also knows the forwarding
    guard).

    Raises:
        FirewallError: the stored network is not a valid policy.
    """
    return NetworkPolicy(name=net.name, bridge=net.bridge, subnets=net.subnets,
                         masquerade=net.masquerade and not net.internal, internal=net.internal,
                         isolate=True, icc=net.icc)


def recorded_policies(state_dir: str | None) -> dict[str, DesiredNetwork]:
    """The policies the bridge plugin recorded when it installed each network's rules (the
    agent restores the same ones), by network name."""
    if not state_dir:
        return {}
    found, _bad = load_policies(state_dir)
    return {d.policy.name: d for d in found}


def check_networks(nets: list[NetworkInfo], driver: str | None = None,
                   state_dir: str | None = None) -> tuple[RuleCheck, ...]:
    """The driver's check of each bridge network's rules: against the policy the plugin
    recorded (with the driver it used) when there is one, else against the policy rebuilt
    from the conflist options."""
    out = []
    recorded = recorded_policies(state_dir)
    for net in nets:
        if net.driver != "bridge" or not net.bridge:
            continue
        what = f"network {net.name}"
        try:
            rec = recorded.get(net.name)
            drv = get_driver(rec.driver if rec is not None and driver is None else driver)
            policy = rec.policy if rec is not None else network_policy(net)
            out.append(RuleCheck(what, drv.name, tuple(drv.check_network(policy))))
        except FirewallError as exc:
            out.append(RuleCheck(what, driver or "", error=f"{exc} {exc.details}".strip()))
    return tuple(out)


def check_ports(ctr: ContainerInfo, att: Attachment, driver: str | None = None) -> RuleCheck | None:
    """The port driver's check of ``ctr``'s published ports on ``att`` (portmap's CHECK)."""
    if not ctr.ports or not att.addresses:
        return None
    what = f"published ports of {ctr.name}"
    try:
        maps = [PortMapping(p.host_port, p.container_port, p.protocol, p.host_ip) for p in ctr.ports]
        plan = plan_ports(att.network, ctr.id, att.ifname, maps, att.addresses)
        drv = get_port_driver(driver)
        return RuleCheck(what, drv.name, tuple(drv.check_ports(plan)))
    except FirewallError as exc:
        return RuleCheck(what, driver or "", error=f"{exc} {exc.details}".strip())
