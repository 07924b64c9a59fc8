"""Read the live ``inet netctl`` table from ``nft -j list table`` output (pure).

nft 1.0.6 prints no chain comments in JSON, so ownership is read from rule and map
element comments and from our chain names. Rules are turned back into the text form
``nftables.render_rule`` produces, for the subset of expressions we write; anything
else becomes its JSON, so CHECK reports it instead of failing on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import FirewallError
from .plan import network_owner

TABLE_FAMILY = "inet"
TABLE_NAME = "netctl"


@dataclass(frozen=True)
class LiveRule:
    """A rule as listed: its chain, handle, text (without comment) and comment."""

    chain: str
    handle: int
    body: str
    comment: str | None = None

    @property
    def text(self) -> str:
        """Body plus comment, comparable with ``nftables.render_rule``."""
        return f'{self.body} comment "{self.comment}"' if self.comment else self.body


@dataclass(frozen=True)
class LiveElement:
    """A verdict-map element: ``key : verdict`` with an optional comment."""

    map: str
    key: str
    verdict: str
    comment: str | None = None


@dataclass(frozen=True)
class LiveTable:
    """The objects of our table; ``exists`` is False when the table is absent."""

    exists: bool = False
    #: chain name -> hook ("" for a regular chain)
    chains: dict[str, str] = field(default_factory=dict)
    maps: frozenset[str] = frozenset()
    rules: tuple[LiveRule, ...] = ()
    elements: tuple[LiveElement, ...] = ()
    #: count of objects of other kinds (sets, counters, flowtables...) someone else added
    foreign_objects: int = 0

    def chain_rules(self, chain: str) -> list[LiveRule]:
        """Rules of one chain in listing order."""
        return [r for r in self.rules if r.chain == chain]

    def networks(self) -> set[str]:
        """Network names found in owner tags of rules and elements."""
        names = set()
        for comment in [r.comment for r in self.rules] + [e.comment for e in self.elements]:
            net = network_owner(comment)
            if net is not None:
                names.add(net)
        return names


ABSENT = LiveTable()


def parse_table(text: str) -> LiveTable:
    """Parse ``nft -j list table inet netctl`` output.

    Raises:
        FirewallError: the text is not the JSON nft prints.
    """
    try:
        doc = json.loads(text)
        items = doc["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise FirewallError("cannot parse 'nft -j list table' output", str(exc)) from None
    chains: dict[str, str] = {}
    maps: set[str] = set()
    rules: list[LiveRule] = []
    elements: list[LiveElement] = []
    foreign = 0
    exists = False
    for item in items:
        kind, obj = next(iter(item.items()))
        if kind == "metainfo":
            continue
        if kind == "table":
            exists = True
        elif kind == "chain":
            chains[obj["name"]] = obj.get("hook", "")
        elif kind == "map" and obj.get("map") == "verdict":
            maps.add(obj["name"])
            for pair in obj.get("elem", []):
                elements.append(_element(obj["name"], pair))
        elif kind == "rule":
            rules.append(
                LiveRule(
                    obj["chain"],
                    int(obj["handle"]),
                    decompile(obj.get("expr", [])),
                    obj.get("comment"),
                )
            )
        else:
            foreign += 1
    return LiveTable(exists, chains, frozenset(maps), tuple(rules), tuple(elements), foreign)


def _element(map_name: str, pair: Any) -> LiveElement:
    key, verdict = pair
    comment = None
    if isinstance(key, dict) and "elem" in key:
        comment = key["elem"].get("comment")
        key = key["elem"]["val"]
    return LiveElement(map_name, str(key), _verdict(verdict), comment)


def decompile(exprs: list[dict[str, Any]]) -> str:
    """Text of a rule's expressions, in ``render_rule`` syntax for what we write."""
    return " ".join(_expr(e) for e in exprs)


def _expr(expr: dict[str, Any]) -> str:
    kind, val = next(iter(expr.items()))
    if kind == "match":
        left = _operand(val["left"])
        # interface names are quoted strings in nft syntax; addresses and states are not
        right = _value(val["right"], quote=left in ("iifname", "oifname"))
        op = val.get("op", "==")
        if op in ("==", "in"):
            return f"{left} {right}"
        return f"{left} {op} {right}"
    if kind == "vmap":
        return f"{_operand(val['key'])} vmap {_value(val['data'])}"
    if kind == "counter":
        return "counter"
    if kind in ("accept", "drop", "return", "masquerade", "jump", "goto"):
        return _verdict(expr)
    return json.dumps(expr, sort_keys=True)


def _operand(val: Any) -> str:
    if isinstance(val, dict):
        if "meta" in val:
            return (
                f"meta {val['meta']['key']}"
                if val["meta"]["key"] == "nfproto"
                else val["meta"]["key"]
            )
        if "payload" in val:
            return f"{val['payload']['protocol']} {val['payload']['field']}"
        if "ct" in val:
            return f"ct {val['ct']['key']}"
    return json.dumps(val, sort_keys=True)


def _value(val: Any, quote: bool = False) -> str:
    if isinstance(val, str):
        return f'"{val}"' if quote else val
    if isinstance(val, list):
        return ",".join(_value(v, quote) for v in val)
    if isinstance(val, dict):
        if "prefix" in val:
            return f"{val['prefix']['addr']}/{val['prefix']['len']}"
        if "set" in val:
            return "{ " + ", ".join(_value(v, quote) for v in val["set"]) + " }"
    return json.dumps(val, sort_keys=True)


def _verdict(val: Any) -> str:
    if isinstance(val, dict):
        kind, arg = next(iter(val.items()))
        if kind in ("jump", "goto"):
            return f"{kind} {arg['target']}"
        if arg is None:
            return kind
    return json.dumps(val, sort_keys=True)
