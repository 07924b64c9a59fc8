"""Read ``iptables-legacy-save`` text into the evaluator's model (pure).

Rules are kept as the save line (that is how they are shown); options the evaluator
does not understand become an "unknown" condition, so the rule is reported as not
evaluated instead of being taken or ignored silently.
"""

from __future__ import annotations

import shlex

from .netfilter import Action, Chain, Cond, Rule, Ruleset
from .nfparse import PROTO_NUMBERS, ParseError

#: (table, built-in chain) -> (hook, priority)
LEGACY_HOOKS = {
    ("filter", "INPUT"): ("input", 0), ("filter", "FORWARD"): ("forward", 0),
    ("filter", "OUTPUT"): ("output", 0), ("nat", "PREROUTING"): ("prerouting", -100),
    ("nat", "INPUT"): ("input", 100), ("nat", "OUTPUT"): ("output", -100),
    ("nat", "POSTROUTING"): ("postrouting", 100), ("mangle", "FORWARD"): ("forward", -150),
    ("raw", "PREROUTING"): ("prerouting", -300),
}
TARGETS = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return",
           "MASQUERADE": "masquerade", "DNAT": "dnat", "SNAT": "snat", "REDIRECT": "redirect"}
NOOP_TARGETS = {"LOG", "NFLOG", "MARK", "CONNMARK", "CHECKSUM", "TRACE", "CT", "NOTRACK"}


def _ipt_rule(line: str) -> tuple[str, Rule]:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise ParseError(f"bad iptables-save line {line!r}: {exc}") from None
    chain = words[1]
    conds: list[Cond] = []
    comment = None
    action = Action("continue")
    neg = False
    i = 2
    opts = {"-s": "saddr", "--source": "saddr", "-d": "daddr", "--destination": "daddr",
            "-i": "iifname", "--in-interface": "iifname", "-o": "oifname", "--out-interface": "oifname",
            "-p": "l4proto", "--protocol": "l4proto", "--dport": "dport", "--destination-port": "dport",
            "--sport": "sport", "--source-port": "sport", "--dports": "dport", "--sports": "sport",
            "--ctstate": "ct_state", "--state": "ct_state", "--ctstatus": "ct_status"}
    while i < len(words):
        w = words[i]
        arg = words[i + 1] if i + 1 < len(words) else ""
        if w == "!":
            neg = True
            i += 1
            continue
        op = "!=" if neg else "=="
        if w in opts:
            field = opts[w]
            vals = tuple(v.replace(":", "-") if field in ("dport", "sport") else v for v in arg.split(","))
            if field in ("ct_state", "ct_status"):
                vals = tuple(v.lower() for v in vals)
            if field == "l4proto":
                vals = tuple(PROTO_NUMBERS.get(v, v.lower()) for v in vals)
            conds.append(Cond(field, op, vals, f"{'! ' if neg else ''}{w} {arg}"))
            i += 2
        elif w == "-m":
            i += 2
        elif w == "--comment":
            comment = arg
            i += 2
        elif w == "--dst-type":
            vals = ("local",) if arg == "LOCAL" else ()
            conds.append(Cond("fib_daddr_type" if vals else "unknown", op, vals, f"{'! ' if neg else ''}{w} {arg}"))
            i += 2
        elif w in ("-j", "--jump", "-g", "--goto"):
            kind = TARGETS.get(arg)
            if kind is not None:
                action = Action(kind)
            elif arg in NOOP_TARGETS:
                action = Action("continue")
            else:
                action = Action("goto" if w in ("-g", "--goto") else "jump", target=arg)
            i += 2
        elif w in ("--to-destination", "--to-source"):
            action = Action(action.kind, target=arg)
            i += 2
        else:
            j = i + 1
            while j < len(words) and not words[j].startswith("-") and words[j] != "!":
                j += 1
            conds.append(Cond("unknown", op, (), " ".join(words[i:j])))
            i = j
        neg = False
    return chain, Rule(tuple(conds), action, line, comment)


def parse_iptables_save(text: str, family: str = "ip") -> Ruleset:
    """``iptables-legacy-save`` (or ``ip6tables-legacy-save`` with family "ip6") -> Ruleset.

    Raises:
        ParseError: a rule line cannot be split into words.
    """
    table = ""
    policies: dict[str, str | None] = {}
    rules: dict[str, list[Rule]] = {}
    order: list[tuple[str, str]] = []
    out: list[Chain] = []

    def flush() -> None:
        for tbl, name in order:
            hook = LEGACY_HOOKS.get((tbl, name))
            pol = policies.get(name)
            out.append(Chain("iptables-legacy", family, tbl, name, tuple(rules.get(name, [])),
                             hook=hook[0] if hook else None, type=tbl if hook else None,
                             priority=hook[1] if hook else 0, policy=pol.lower() if pol else None))

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            flush()
            table, policies, rules, order = line[1:], {}, {}, []
        elif line.startswith(":"):
            parts = line[1:].split()
            policies[parts[0]] = parts[1] if len(parts) > 1 and parts[1] != "-" else None
            order.append((table, parts[0]))
        elif line.startswith("-A "):
            chain, rule = _ipt_rule(line)
            rules.setdefault(chain, []).append(rule)
        elif line == "COMMIT":
            flush()
            table, policies, rules, order = "", {}, {}, []
    flush()
    return Ruleset(tuple(out))
