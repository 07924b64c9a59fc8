"""Read ``nft -j list ruleset`` into the evaluator's model (pure); ``iptparse`` reads
``iptables-legacy-save`` text.

Expressions the evaluator does not understand become a condition of field "unknown"
(so the rule is reported as not evaluated, never silently taken or ignored); no-op
statements (counter, log, mark setting) are dropped.
"""

from __future__ import annotations

import json
from typing import Any

from .netfilter import Action, Chain, Cond, Lookup, Rule, Ruleset

#: nft named priorities (nft(8), "PRIORITY")
NAMED_PRIO = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
PROTO_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "icmpv6", "132": "sctp"}
NOOP_STATEMENTS = {"counter", "log", "mangle", "notrack", "set", "map", "quota", "meter", "ct count"}
VERDICT_WORDS = {"accept", "drop", "return", "continue"}
#: data-map elements: key parts -> nat target "addr:port"
DataElems = tuple[tuple[tuple[str, ...], str], ...]


class ParseError(ValueError):
    """The text is not what the tool prints."""


# --- nftables -----------------------------------------------------------------------------

def _value(right: Any, sets: dict[tuple[str, str, str], tuple[str, ...]], fam: str, table: str) -> tuple[str, ...] | None:
    """A match's right-hand side as strings; None when it is not a plain value."""
    if isinstance(right, bool):
        return None
    if isinstance(right, str):
        if right.startswith("@"):
            return sets.get((fam, table, right[1:]))
        return (right,)
    if isinstance(right, int):
        return (str(right),)
    if isinstance(right, list):
        out: list[str] = []
        for item in right:
            vals = _value(item, sets, fam, table)
            if vals is None:
                return None
            out += vals
        return tuple(out)
    if isinstance(right, dict):
        if "prefix" in right:
            return (f"{right['prefix']['addr']}/{right['prefix']['len']}",)
        if "range" in right:
            lo, hi = right["range"]
            return (f"{lo}-{hi}",)
        if "set" in right:
            return _value(right["set"], sets, fam, table)
        if "elem" in right:
            return _value(right["elem"].get("val"), sets, fam, table)
    return None


def _left(left: Any) -> tuple[str, str, str | None]:
    """(field, text, implied l4proto) of a match's left-hand side; field "unknown" if foreign."""
    if isinstance(left, dict):
        if "meta" in left:
            key = left["meta"].get("key", "")
            field = {"iifname": "iifname", "oifname": "oifname", "l4proto": "l4proto",
                     "nfproto": "nfproto"}.get(key, "unknown")
            return field, f"meta {key}" if key not in ("iifname", "oifname") else key, None
        if "payload" in left:
            proto, fld = left["payload"].get("protocol", ""), left["payload"].get("field", "")
            if proto in ("ip", "ip6") and fld in ("saddr", "daddr"):
                return fld, f"{proto} {fld}", None
            if (proto, fld) in (("ip", "protocol"), ("ip6", "nexthdr")):
                return "l4proto", f"{proto} {fld}", None
            if fld in ("dport", "sport") and proto in ("tcp", "udp", "sctp", "th"):
                return fld, f"{proto} {fld}", None if proto == "th" else proto
            return "unknown", f"{proto} {fld}", None
        if "ct" in left:
            key = left["ct"].get("key", "")
            if key in ("state", "status"):
                return f"ct_{key}", f"ct {key}", None
            return "unknown", f"ct {key}", None
        if "fib" in left:
            fib = left["fib"]
            if fib.get("result") == "type" and fib.get("flags") == ["daddr"]:
                return "fib_daddr_type", "fib daddr type", None
    return "unknown", json.dumps(left, separators=(",", ":")), None


def _show(values: tuple[str, ...], field: str) -> str:
    vals = [f'"{v}"' if field in ("iifname", "oifname") else v for v in values]
    if len(vals) == 1:
        return vals[0]
    if field.startswith("ct_"):
        return ",".join(vals)
    return "{ " + ", ".join(vals) + " }"


def _match(m: dict[str, Any], sets: dict[tuple[str, str, str], tuple[str, ...]], fam: str,
           table: str) -> list[Cond]:
    field, ltext, implied = _left(m.get("left"))
    op = m.get("op", "==")
    values = _value(m.get("right"), sets, fam, table)
    if field == "unknown" or values is None or op not in ("==", "!=", "in"):
        text = f"{ltext} {op} {json.dumps(m.get('right'), separators=(',', ':'))}"
        return [Cond("unknown", op, (), text)]
    if field == "l4proto":
        values = tuple(PROTO_NUMBERS.get(v, v) for v in values)
    op = "!=" if op == "!=" else "=="
    text = f"{ltext} {'!= ' if op == '!=' else ''}{_show(values, field)}"
    conds = [Cond(field, op, values, text)]
    if implied is not None:
        conds.insert(0, Cond("l4proto", "==", (implied,), ""))
    return conds


def _verdict(obj: Any) -> Action | None:
    """A verdict object ({"accept": null}, {"jump": {...}}, ...) as an Action."""
    if not isinstance(obj, dict) or len(obj) != 1:
        return None
    ((kind, arg),) = obj.items()
    if kind in VERDICT_WORDS:
        return Action(kind)
    if kind == "reject":
        return Action("reject")
    if kind in ("jump", "goto"):
        return Action(kind, target=arg.get("target", ""))
    return None


def _statement(expr: dict[str, Any], maps: dict[tuple[str, str, str], tuple[tuple[str, Action], ...]],
               dmaps: dict[tuple[str, str, str], DataElems], fam: str,
               table: str) -> tuple[Action | None, str, bool]:
    """(action, text, understood) of a non-match expression; action None = no-op."""
    ((kind, arg),) = expr.items()
    simple = _verdict(expr)
    if simple is not None:
        text = kind if kind not in ("jump", "goto") else f"{kind} {simple.target}"
        return simple, text, True
    if kind in NOOP_STATEMENTS:
        return None, kind, True
    if kind in ("dnat", "snat"):
        addr = arg.get("addr") if isinstance(arg, dict) else None
        port = arg.get("port") if isinstance(arg, dict) else None
        if isinstance(addr, str):
            target = (f"[{addr}]" if ":" in addr else addr) + (f":{port}" if isinstance(port, int) else "")
            return Action(kind, target=target), f"{kind} to {target}", True
        found = _nat_lookup(addr, dmaps, fam, table)
        if found is not None:
            lookup, key_text = found
            fam_word = f" {arg['family']}" if isinstance(arg.get("family"), str) else ""
            return Action(kind, lookup=lookup), f"{kind}{fam_word} to {key_text} map @{lookup.name}", True
        return Action("continue"), f"{kind} to {json.dumps(arg, separators=(',', ':'))}", False
    if kind in ("masquerade", "redirect"):
        return Action(kind), kind, True
    if kind == "vmap":
        key, _t, _i = _left(arg.get("key"))
        data = arg.get("data")
        mapping: tuple[tuple[str, Action], ...] | None = None
        if isinstance(data, str) and data.startswith("@"):
            mapping = maps.get((fam, table, data[1:]))
        elif isinstance(data, dict) and "set" in data:
            mapping = _elements(data["set"])
        if key in ("iifname", "oifname") and mapping is not None:
            return Action("vmap", key=key, mapping=mapping), f"{key} vmap {data if isinstance(data, str) else '{...}'}", True
        return Action("continue"), f"vmap {json.dumps(arg, separators=(',', ':'))}", False
    return Action("continue"), f"{kind} {json.dumps(arg, separators=(',', ':'))}", False


def _target(value: Any) -> str | None:
    """A data map's value ("172.30.9.2" or concat [addr, port]) as "addr[:port]"."""
    parts = value["concat"] if isinstance(value, dict) and "concat" in value else [value]
    if not parts or not isinstance(parts[0], str):
        return None
    addr = f"[{parts[0]}]" if ":" in parts[0] else parts[0]
    if len(parts) == 2 and isinstance(parts[1], int):
        return f"{addr}:{parts[1]}"
    return addr if len(parts) == 1 else None


def _data_elements(elems: Any) -> DataElems:
    """Data-map elements ``[key, value]`` -> ((key parts...), "addr:port") pairs."""
    out = []
    for pair in elems or []:
        if not isinstance(pair, list) or len(pair) != 2:
            continue
        key = pair[0]
        if isinstance(key, dict) and "elem" in key:
            key = key["elem"].get("val")
        parts = key["concat"] if isinstance(key, dict) and "concat" in key else [key]
        vals = [_value(p, {}, "", "") for p in parts]
        target = _target(pair[1])
        if target is None or any(v is None or len(v) != 1 for v in vals):
            continue
        out.append((tuple(v[0] for v in vals if v is not None), target))
    return tuple(out)


def _nat_lookup(addr: Any, dmaps: dict[tuple[str, str, str], DataElems], fam: str,
                table: str) -> tuple[Lookup, str] | None:
    """``dnat to KEY map @m`` (or an anonymous map) -> (Lookup, KEY as nft prints it);
    None when not understood."""
    if not isinstance(addr, dict) or "map" not in addr:
        return None
    key, data = addr["map"].get("key"), addr["map"].get("data")
    parts = key["concat"] if isinstance(key, dict) and "concat" in key else [key]
    lefts = [_left(p) for p in parts]
    fields = tuple(f for f, _t, _i in lefts)
    if "unknown" in fields:
        return None
    text = " . ".join(t for _f, t, _i in lefts)
    if isinstance(data, str) and data.startswith("@") and (fam, table, data[1:]) in dmaps:
        return Lookup(data[1:], fields, dmaps[(fam, table, data[1:])]), text
    if isinstance(data, dict) and "set" in data:
        return Lookup("{...}", fields, _data_elements(data["set"])), text
    return None


def _elements(elems: Any) -> tuple[tuple[str, Action], ...]:
    """Verdict-map elements ``[key, verdict]`` -> (key, action) pairs (others skipped)."""
    out = []
    for pair in elems or []:
        if not isinstance(pair, list) or len(pair) != 2:
            continue
        key = pair[0]
        if isinstance(key, dict) and "elem" in key:
            key = key["elem"].get("val")
        act = _verdict(pair[1])
        if isinstance(key, str) and act is not None:
            out.append((key, act))
    return tuple(out)


def _nft_rule(obj: dict[str, Any], sets: dict[tuple[str, str, str], tuple[str, ...]],
              maps: dict[tuple[str, str, str], tuple[tuple[str, Action], ...]],
              dmaps: dict[tuple[str, str, str], DataElems]) -> Rule:
    fam, table = obj.get("family", ""), obj.get("table", "")
    conds: list[Cond] = []
    words: list[str] = []
    action = Action("continue")
    for expr in obj.get("expr", []):
        if not isinstance(expr, dict) or len(expr) != 1:
            continue
        if "match" in expr:
            new = _match(expr["match"], sets, fam, table)
            conds += new
            words += [c.text for c in new if c.text]
            continue
        act, text, understood = _statement(expr, maps, dmaps, fam, table)
        words.append(text)
        nat_fam = expr.get("dnat", expr.get("snat"))
        if isinstance(nat_fam, dict) and nat_fam.get("family") in ("ip", "ip6"):
            # "dnat ip to ..." applies to IPv4 packets only, "dnat ip6 to" to IPv6 ones
            conds.append(Cond("nfproto", "==", ("ipv4" if nat_fam["family"] == "ip" else "ipv6",)))
        if not understood:
            conds.append(Cond("unknown", text=text))
        elif act is not None and act.kind != "continue":
            action = act
    comment = obj.get("comment")
    text = " ".join(words) + (f' comment "{comment}"' if comment else "")
    return Rule(tuple(conds), action, text, comment)


def parse_nft_ruleset(text: str) -> Ruleset:
    """``nft -j list ruleset`` output -> Ruleset.

    Raises:
        ParseError: not the JSON nft prints.
    """
    try:
        items = json.loads(text or '{"nftables": []}')["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"not nft JSON output: {exc}") from None
    sets: dict[tuple[str, str, str], tuple[str, ...]] = {}
    maps: dict[tuple[str, str, str], tuple[tuple[str, Action], ...]] = {}
    dmaps: dict[tuple[str, str, str], DataElems] = {}
    for item in items:
        for kind in ("set", "map"):
            obj = item.get(kind) if isinstance(item, dict) else None
            if not obj:
                continue
            key = (obj.get("family", ""), obj.get("table", ""), obj.get("name", ""))
            if kind == "map" and obj.get("map") == "verdict":
                maps[key] = _elements(obj.get("elem"))
            elif kind == "map":
                dmaps[key] = _data_elements(obj.get("elem"))
            elif kind == "set":
                vals = _value(obj.get("elem", []), {}, key[0], key[1])
                if vals is not None:
                    sets[key] = vals
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: dict[tuple[str, str, str], list[Rule]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        if "chain" in item:
            c = item["chain"]
            key = (c.get("family", ""), c.get("table", ""), c.get("name", ""))
            chains[key] = c
            rules.setdefault(key, [])
        elif "rule" in item:
            r = item["rule"]
            key = (r.get("family", ""), r.get("table", ""), r.get("chain", ""))
            rules.setdefault(key, []).append(_nft_rule(r, sets, maps, dmaps))
    out = []
    for key, c in chains.items():
        prio = c.get("prio", 0)
        prio = NAMED_PRIO.get(prio, 0) if isinstance(prio, str) else int(prio)
        out.append(Chain("nftables", key[0], key[1], key[2], tuple(rules.get(key, [])),
                         hook=c.get("hook"), type=c.get("type"), priority=prio, policy=c.get("policy")))
    return Ruleset(tuple(out))


def merge(*rulesets: Ruleset) -> Ruleset:
    """One ruleset holding the chains of all."""
    return Ruleset(tuple(c for rs in rulesets for c in rs.chains))
