"""Published ports with iptables (legacy, through python-iptables): rendering, pure.

Layout, per IP family the attachment publishes in::

    nat: -A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment "netctl ports" -j NETCTL-PORTS
         -A OUTPUT [! -d ::1/128] -m addrtype --dst-type LOCAL -m comment ... -j NETCTL-PORTS
         -A POSTROUTING -m comment --comment "netctl ports" -j NETCTL-PORTS-MASQ
         -A NETCTL-PORTS [-d HOSTIP] -p tcp -m tcp --dport 8000:8099 -m comment --comment TAG
            -j DNAT --to-destination 10.88.1.2:80-179/8000
         -A NETCTL-PORTS-MASQ -s 127.0.0.0/8 -m conntrack --ctstate DNAT ... -j MASQUERADE   (IPv4)
         -A NETCTL-PORTS-MASQ -s SUBNET -d CIP -m conntrack --ctstate DNAT -m comment --comment TAG
            -j MASQUERADE                                                                 (hairpin)
    raw: -A PREROUTING -d 127.0.0.0/8 ! -i lo -m comment ... -j DROP                         (IPv4)

Runs of consecutive host ports that map to consecutive container ports become ONE rule
with a shifted port range (``--to-destination IP:80-179/8000``: DNAT revision 2, Linux
5.0+), so ``-p 8000-8099:80-179`` costs one DNAT rule, not a hundred. The rendering is
pure; ``IptablesPortsDriver`` applies it through ``ports_iptc.py`` (libiptc, one forked
child per family, under the xtables lock).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from .iptables import IptRule
from .ports import Forward, PortsPlan, Published

PORTS_CHAIN = "NETCTL-PORTS"
MASQ_CHAIN = "NETCTL-PORTS-MASQ"
#: comment of the skeleton rules (no ``net=``: they belong to nobody in particular)
SKELETON_TAG = "netctl ports"
GUARD_TAG = "netctl: 127.0.0.0/8 is reachable from lo only"
#: table -> our chains in it
CHAINS = {"nat": (PORTS_CHAIN, MASQ_CHAIN)}


def _comment(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("comment", (("comment", text),))


def _host(addr: str) -> str:
    ip = ipaddress.ip_address(addr)
    return f"{ip}/{ip.max_prefixlen}"


def skeleton_rules(family: int) -> list[IptRule]:
    """The rules every family with published ports needs, independent of containers."""
    local = ("addrtype", (("dst-type", "LOCAL"),))
    tag = _comment(SKELETON_TAG)
    rules = [
        IptRule(family, "nat", "PREROUTING", matches=(local, tag), target=PORTS_CHAIN),
        # ::1 cannot leave lo (no route_localnet for IPv6): refuse fast instead of hanging
        IptRule(family, "nat", "OUTPUT", dst="!::1/128" if family == 6 else None,
                matches=(local, tag), target=PORTS_CHAIN),
        IptRule(family, "nat", "POSTROUTING", matches=(tag,), target=MASQ_CHAIN),
    ]
    if family == 4:
        rules.append(IptRule(4, "nat", MASQ_CHAIN, src="127.0.0.0/8",
                             matches=(("conntrack", (("ctstate", "DNAT"),)), tag),
                             target="MASQUERADE"))
        rules.append(IptRule(4, "raw", "PREROUTING", dst="127.0.0.0/8", in_if="!lo",
                             matches=(_comment(GUARD_TAG),), target="DROP"))
    return rules


@dataclass(frozen=True)
class PortRange:
    """Consecutive forwards of one destination: host hlo..hhi -> container clo.. ."""

    family: int
    protocol: str
    host_ip: str | None
    container_ip: str
    host_lo: int
    host_hi: int
    container_lo: int

    @property
    def destination(self) -> str:
        """The DNAT target: ``ip:port`` or the shifted range ``ip:lo-hi/base``."""
        ip = f"[{self.container_ip}]" if self.family == 6 else self.container_ip
        if self.host_lo == self.host_hi:
            return f"{ip}:{self.container_lo}"
        hi = self.container_lo + self.host_hi - self.host_lo
        return f"{ip}:{self.container_lo}-{hi}/{self.host_lo}"


def compress(forwards: Iterable[Forward]) -> list[PortRange]:
    """Merge forwards into runs where host and container ports both step by one."""
    def key(f: Forward) -> tuple[int, str, str, str, int]:
        return (f.family, f.protocol, f.host_ip or "", f.container_ip, f.host_port)

    out: list[PortRange] = []
    for f in sorted(forwards, key=key):
        last = out[-1] if out else None
        if (
            last is not None
            and (last.family, last.protocol, last.host_ip, last.container_ip)
            == (f.family, f.protocol, f.host_ip, f.container_ip)
            and f.host_port == last.host_hi + 1
            and f.container_port == last.container_lo + f.host_port - last.host_lo
        ):
            out[-1] = PortRange(last.family, last.protocol, last.host_ip, last.container_ip,
                                last.host_lo, f.host_port, last.container_lo)
        else:
            out.append(PortRange(f.family, f.protocol, f.host_ip, f.container_ip,
                                 f.host_port, f.host_port, f.container_port))
    return out


def plan_rules(plan: PortsPlan) -> list[IptRule]:
    """The attachment's own rules: DNAT per port run, MASQUERADE per hairpin."""
    tag = _comment(plan.tag)
    rules = []
    for r in compress(plan.forwards):
        ports = str(r.host_lo) if r.host_lo == r.host_hi else f"{r.host_lo}:{r.host_hi}"
        rules.append(IptRule(
            r.family, "nat", PORTS_CHAIN, dst=_host(r.host_ip) if r.host_ip else None,
            proto=r.protocol, matches=((r.protocol, (("dport", ports),)), tag),
            target="DNAT", target_opts=(("to-destination", r.destination),)))
    for hp in plan.hairpins:
        rules.append(IptRule(
            hp.family, "nat", MASQ_CHAIN, src=hp.subnet, dst=_host(hp.container_ip),
            matches=(("conntrack", (("ctstate", "DNAT"),)), tag), target="MASQUERADE"))
    return rules


def published(rule: IptRule) -> Published | None:
    """A live DNAT rule of NETCTL-PORTS in driver-neutral form; ``None`` for other rules."""
    if rule.chain != PORTS_CHAIN or rule.target != "DNAT" or not rule.proto:
        return None
    opts = dict(dict(rule.matches).get(rule.proto, ()))
    dport = opts.get("dport") or opts.get("destination-port")
    if not dport:
        return None
    lo, _, hi = dport.partition(":")
    host = rule.dst.split("/")[0] if rule.dst and not rule.dst.startswith("!") else None
    return Published(rule.family, rule.proto, host, int(lo), int(hi or lo), rule.comment,
                     dict(rule.target_opts).get("to-destination", ""))


def render_save(plan: PortsPlan) -> str:
    """iptables-save style text of everything ``plan`` needs (golden files)."""
    lines: list[str] = []
    mine = plan_rules(plan)
    for fam in plan.families:
        for table in ("raw", "nat"):
            rules = [r for r in skeleton_rules(fam) + mine if r.family == fam and r.table == table]
            if not rules:
                continue
            lines.append(f"*ipv{fam} {table}")
            lines += [f":{c}" for c in CHAINS.get(table, ())]
            order = ["PREROUTING", "OUTPUT", "POSTROUTING", PORTS_CHAIN, MASQ_CHAIN]
            rules.sort(key=lambda r: order.index(r.chain))
            lines += [r.save_line() for r in rules]
    return "\n".join(lines) + "\n"
