"""The libiptc side of published ports: read, edit and commit one family's nat/raw tables.

Every function here runs in a forked child per family (``iptc_table.run_forked``: one
libxtables family per process) while the parent holds the xtables lock; the driver
(``ports_ipt_driver.IptablesPortsDriver``) calls them. Only that driver imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import FirewallError
from .iptables import IptRule
from .iptc_table import iptc_module, live_rules, open_table, to_iptc
from .ports import Published
from .ports_ipt import MASQ_CHAIN, PORTS_CHAIN, published, skeleton_rules

Select = Callable[[str | None], bool]
#: built-in chain -> whether our jump goes first (POSTROUTING: before other masquerades)
_FIRST = {"PREROUTING": False, "OUTPUT": False, "POSTROUTING": True}


def read_family(fam: int) -> list[Published]:
    """Every published port (DNAT rule of NETCTL-PORTS) of one family, all owners."""
    live = live_rules(open_table(fam, "nat"), fam)
    out = []
    for norm, _raw in live.get(PORTS_CHAIN, []):
        pub = published(norm)
        if pub is not None:
            out.append(pub)
    return out


def _owned(norm: IptRule) -> bool:
    """A rule in our chains that belongs to an attachment (not a skeleton rule)."""
    return norm.chain in (PORTS_CHAIN, MASQ_CHAIN) and norm.comment not in (None, "netctl ports")


def _sync_nat(table: Any, fam: int, add: list[IptRule], select: Select) -> tuple[bool, bool, int]:
    """Edit the nat table (uncommitted): (changed, published ports remain, rules removed)."""
    iptc = iptc_module()
    live = live_rules(table, fam)
    removed = 0
    for chain in (PORTS_CHAIN, MASQ_CHAIN):
        for norm, raw in live.get(chain, []):
            if _owned(norm) and select(norm.comment):
                iptc.Chain(table, chain).delete_rule(raw)
                removed += 1
    kept = sum(1 for c in (PORTS_CHAIN, MASQ_CHAIN) for n, _ in live.get(c, []) if _owned(n))
    remain = kept - removed + len(add) > 0
    changed = removed > 0
    skeleton = [r for r in skeleton_rules(fam) if r.table == "nat"]
    if remain:
        for chain in (PORTS_CHAIN, MASQ_CHAIN):
            if not table.is_chain(chain):
                table.create_chain(chain)
                changed = True
        for r in skeleton:
            lines = [n.save_line() for n, _ in live_rules(table, fam).get(r.chain, [])]
            if r.save_line() not in lines:
                ch = iptc.Chain(table, r.chain)
                if _FIRST.get(r.chain):
                    ch.insert_rule(to_iptc(r), 0)
                else:
                    ch.append_rule(to_iptc(r))
                changed = True
        for r in add:
            iptc.Chain(table, r.chain).append_rule(to_iptc(r))
            changed = True
    else:
        for builtin in ("PREROUTING", "OUTPUT", "POSTROUTING"):
            for norm, raw in live.get(builtin, []):
                if norm.target in (PORTS_CHAIN, MASQ_CHAIN):
                    iptc.Chain(table, builtin).delete_rule(raw)
                    changed = True
        for chain in (PORTS_CHAIN, MASQ_CHAIN):
            if table.is_chain(chain):
                table.flush_entries(chain)
                table.delete_chain(chain)
                changed = True
    return changed, remain, removed


def _sync_raw(fam: int, present: bool) -> None:
    """Add or remove the 127.0.0.0/8 guard (IPv4 only) and commit if it changed."""
    guards = [r for r in skeleton_rules(fam) if r.table == "raw"]
    if not guards:
        return
    iptc = iptc_module()
    table = open_table(fam, "raw")
    try:
        live = live_rules(table, fam).get("PREROUTING", [])
        have = [(n, raw) for n, raw in live if n.save_line() == guards[0].save_line()]
        if present and not have:
            iptc.Chain(table, "PREROUTING").insert_rule(to_iptc(guards[0]), 0)
        elif not present and have:
            for _n, raw in have:
                iptc.Chain(table, "PREROUTING").delete_rule(raw)
        else:
            return
        table.commit()
    except iptc.IPTCError as exc:
        raise FirewallError(f"iptables: cannot update the IPv{fam} raw table", str(exc)) from None
    finally:
        table.refresh()


def sync_family(fam: int, add: list[IptRule], select: Select) -> int:
    """Remove the rules whose tag ``select`` picks and append ``add``, in one nat commit;
    keep the skeleton exactly while published ports remain. Returns the rules removed.

    Raises:
        FirewallError: libiptc refused an edit or a commit.
    """
    iptc = iptc_module()
    table = open_table(fam, "nat")
    try:
        changed, remain, removed = _sync_nat(table, fam, add, select)
        if changed:
            table.commit()
    except iptc.IPTCError as exc:
        raise FirewallError(f"iptables: cannot update the IPv{fam} nat table", str(exc)) from None
    finally:
        table.refresh()
    _sync_raw(fam, remain)
    return removed


def check_family(fam: int, want: list[IptRule], tag: str) -> list[str]:
    """What of ``want`` (skeleton + the attachment's rules) is missing, what is stale."""
    problems = []
    lines: dict[str, list[str]] = {}
    wanted = {r.save_line() for r in want}
    for tname in ("nat", "raw"):
        for chain, rules in live_rules(open_table(fam, tname), fam).items():
            lines[f"{tname}/{chain}"] = [n.save_line() for n, _ in rules]
            problems += [f"IPv{fam} {tname}: stale rule: {n.save_line()}" for n, _ in rules
                         if n.comment == tag and n.save_line() not in wanted]
    for r in want:
        if r.save_line() not in lines.get(f"{r.table}/{r.chain}", []):
            problems.append(f"IPv{fam} {r.table}: rule missing: {r.save_line()}")
    return problems
