"""A Go text/template subset for ``--format`` (pure): parse once, then execute on JSON data.

What users' scripts write against ``docker inspect``: fields (``.A.B``, with ``[N]`` list
indexing as a netctl extension), ``$`` and variables (``{{$x := .Name}}``,
``{{range $k, $v := .Networks}}``), pipelines (``.Args | join " "``), parentheses with
fields after them (``(index .NetworkSettings.Networks "net1").IPAddress``), ``range``,
``if``/``else``, ``with``, ``{{-`` / ``-}}`` trimming, and Docker's functions: ``json``,
``join``, ``split``, ``upper``, ``lower``, ``title``, ``index``, ``len``, ``print``,
``println``, ``printf``, ``eq``, ``ne``, ``not``, ``and``, ``or``.

Errors carry the position (``template: :LINE:COL: ...``) and never the template text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import NetctlError
from .tplfuncs import FUNCS, show, truth


class TemplateError(NetctlError):
    """A template that does not parse or cannot be executed on the data."""


# ---- lexing -------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<num>-?\d+)
  | (?P<var>\$[A-Za-z0-9_]*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])*)+|\.)
  | (?P<decl>:=)
  | (?P<punct>[()|,=])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)


@dataclass
class Tok:
    kind: str
    text: str
    pos: int    # offset in the whole template
    end: int


@dataclass
class Node:
    kind: str                                   # text, action, range, if, with
    pos: int
    text: str = ""
    pipe: list[list[Any]] = field(default_factory=list)   # commands of the pipeline
    decl: list[str] = field(default_factory=list)         # variables declared by it
    body: list[Node] = field(default_factory=list)
    other: list[Node] = field(default_factory=list)       # the else branch


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src

    def where(self, pos: int) -> str:
        line = self.src.count("\n", 0, pos) + 1
        col = pos - (self.src.rfind("\n", 0, pos) + 1) + 1
        return f"template: :{line}:{col}"

    def fail(self, pos: int, msg: str) -> TemplateError:
        return TemplateError(f"{self.where(pos)}: {msg}")

    # actions: (pos of '{{', inner text start, inner text end, trim left, trim right, end)
    def actions(self) -> list[tuple[int, int, int, bool, bool, int]]:
        out: list[tuple[int, int, int, bool, bool, int]] = []
        i = 0
        while True:
            start = self.src.find("{{", i)
            stray = self.src.find("}}", i)
            if stray != -1 and not out and (start == -1 or stray < start):
                # text "}}" is legal in Go, but before any action it is a typo such as
                # "{.Name}}": say so instead of printing the template back
                raise self.fail(stray, 'unexpected "}}" outside an action')
            if start == -1:
                return out
            inner = start + 2
            trim_left = self.src.startswith("- ", inner) or self.src.startswith("-\t", inner)
            if trim_left:
                inner += 1
            close = self.src.find("}}", inner)
            if close == -1:
                raise self.fail(start, "unclosed action")
            nxt = self.src.find("{{", inner)
            if nxt != -1 and nxt < close:
                raise self.fail(nxt, 'unexpected "{{" in action')
            trim_right = close - 2 >= inner and self.src[close - 2:close] in (" -", "\t-")
            end_inner = close - 1 if trim_right else close
            out.append((start, inner, end_inner, trim_left, trim_right, close + 2))
            i = close + 2

    def tokens(self, begin: int, end: int) -> list[Tok]:
        out = []
        pos = begin
        while pos < end:
            m = _TOKEN.match(self.src, pos, end)
            if m is None:
                raise self.fail(pos, f"unexpected character {self.src[pos]!r} in action")
            kind = m.lastgroup or ""
            if kind != "ws":
                out.append(Tok(kind, m.group(), pos, m.end()))
            pos = m.end()
        return out

    def parse(self) -> list[Node]:
        root: list[Node] = []
        stack: list[tuple[Node | None, list[Node]]] = [(None, root)]
        text_from = 0
        pending_trim = False
        for start, inner, end_inner, trim_l, trim_r, after in self.actions():
            text = self.src[text_from:start]
            if pending_trim:
                text = text.lstrip()
            if trim_l:
                text = text.rstrip()
            if text:
                stack[-1][1].append(Node("text", text_from, text=text))
            pending_trim = trim_r
            text_from = after
            toks = self.tokens(inner, end_inner)
            if not toks:
                raise self.fail(start, "missing value for command")
            head = toks[0]
            if head.kind == "ident" and head.text in ("range", "if", "with"):
                node = Node(head.text, start)
                self.pipeline(toks[1:], node, head)
                stack[-1][1].append(node)
                stack.append((node, node.body))
            elif head.kind == "ident" and head.text == "else":
                owner = stack[-1][0]
                if owner is None or len(toks) > 1 or stack[-1][1] is owner.other:
                    raise self.fail(head.pos, "unexpected {{else}}")
                stack[-1] = (owner, owner.other)
            elif head.kind == "ident" and head.text == "end":
                if len(stack) == 1 or len(toks) > 1:
                    raise self.fail(head.pos, "unexpected {{end}}")
                stack.pop()
            else:
                node = Node("action", start)
                self.pipeline(toks, node, head)
                stack[-1][1].append(node)
        if len(stack) > 1:
            owner = stack[-1][0]
            assert owner is not None
            raise self.fail(owner.pos, f"unexpected EOF: {{{{{owner.kind}}}}} without {{{{end}}}}")
        text = self.src[text_from:]
        if pending_trim:
            text = text.lstrip()
        if text:
            root.append(Node("text", text_from, text=text))
        return root

    def pipeline(self, toks: list[Tok], node: Node, head: Tok) -> None:
        """Fill ``node.decl`` and ``node.pipe`` from an action's tokens."""
        if not toks:
            raise self.fail(head.end, f"missing value for {head.text}")
        # declarations: $x := ..., or $k, $v := ... (range only)
        decl_at = next((i for i, t in enumerate(toks) if t.kind == "decl"), -1)
        if decl_at >= 0:
            names = toks[:decl_at]
            if (not names or names[0].kind != "var" or
                    (len(names) == 3 and (names[1].text != "," or names[2].kind != "var")) or
                    len(names) not in (1, 3) or (len(names) == 3 and node.kind != "range")):
                raise self.fail(toks[decl_at].pos, "bad variable declaration")
            node.decl = [names[0].text] + ([names[2].text] if len(names) == 3 else [])
            toks = toks[decl_at + 1:]
            if not toks:
                raise self.fail(head.end, "missing value after :=")
        node.pipe = []
        cmd: list[Tok] = []
        for t in toks + [Tok("punct", "|", toks[-1].end, toks[-1].end)]:
            if t.kind == "punct" and t.text == "|" and not self._open(cmd):
                if not cmd:
                    raise self.fail(t.pos, "missing command in pipeline")
                node.pipe.append(self.command(cmd))
                cmd = []
            else:
                cmd.append(t)
        if cmd:
            raise self.fail(next(t.pos for t in cmd if t.text == "("), "unclosed left paren")

    @staticmethod
    def _open(toks: list[Tok]) -> bool:
        depth = 0
        for t in toks:
            if t.kind == "punct" and t.text == "(":
                depth += 1
            elif t.kind == "punct" and t.text == ")":
                depth -= 1
        return depth > 0

    def command(self, toks: list[Tok]) -> list[Any]:
        """A command: a list of operands (an operand is a tuple describing one value)."""
        out: list[Any] = []
        i = 0
        while i < len(toks):
            operand, i = self.operand(toks, i)
            out.append(operand)
        return out

    def operand(self, toks: list[Tok], i: int) -> tuple[Any, int]:
        t = toks[i]
        if t.kind == "punct" and t.text == "(":
            depth, j = 1, i + 1
            while j < len(toks) and depth:
                if toks[j].kind == "punct":
                    depth += {"(": 1, ")": -1}.get(toks[j].text, 0)
                j += 1
            if depth:
                raise self.fail(t.pos, "unclosed left paren")
            inner = Node("action", t.pos)
            self.pipeline(toks[i + 1:j - 1], inner, t)
            value: Any = ("pipe", t.pos, inner.pipe)
            # fields right after the closing paren: (index .M "k").IPAddress
            if j < len(toks) and toks[j].kind == "field" and toks[j].pos == toks[j - 1].end \
                    and toks[j].text != ".":
                value = ("chain", toks[j].pos, value, _fields(toks[j].text))
                j += 1
            return value, j
        if t.kind == "field":
            return ("field", t.pos, _fields(t.text)), i + 1
        if t.kind == "var":
            # $x.A.B arrives as var + field tokens that touch
            if i + 1 < len(toks) and toks[i + 1].kind == "field" and toks[i + 1].pos == t.end \
                    and toks[i + 1].text != ".":
                return ("var", t.pos, t.text, _fields(toks[i + 1].text)), i + 2
            return ("var", t.pos, t.text, []), i + 1
        if t.kind == "str":
            try:
                return ("lit", t.pos, json.loads(t.text)), i + 1
            except ValueError:
                raise self.fail(t.pos, "bad string syntax") from None
        if t.kind == "raw":
            return ("lit", t.pos, t.text[1:-1]), i + 1
        if t.kind == "num":
            return ("lit", t.pos, int(t.text)), i + 1
        if t.kind == "ident":
            if t.text in ("true", "false"):
                return ("lit", t.pos, t.text == "true"), i + 1
            if t.text == "nil":
                return ("lit", t.pos, None), i + 1
            if t.text not in FUNCS:
                raise self.fail(t.pos, f'function "{t.text}" not defined')
            return ("func", t.pos, t.text), i + 1
        raise self.fail(t.pos, f"unexpected {t.text!r} in operand")


def _fields(text: str) -> list[str | int]:
    out: list[str | int] = []
    for name, idx in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", text):
        out.append(name if name else int(idx))
    return out


# ---- execution ------------------------------------------------------------------------------

class Template:
    """A parsed template; :meth:`execute` applies it to one object."""

    def __init__(self, src: str) -> None:
        """Raises: TemplateError for a template that does not parse (with its position)."""
        self._p = _Parser(src)
        self.nodes = self._p.parse()

    def execute(self, data: Any) -> str:
        """Raises: TemplateError when a field, index or function fails on ``data``."""
        out: list[str] = []
        self._run(self.nodes, data, {"$": data}, out)
        return "".join(out)

    def _run(self, nodes: list[Node], dot: Any, env: dict[str, Any], out: list[str]) -> None:
        for n in nodes:
            if n.kind == "text":
                out.append(n.text)
            elif n.kind == "action":
                value = self._pipe(n.pipe, dot, env)
                if n.decl:
                    env[n.decl[0]] = value      # a declaration prints nothing
                else:
                    out.append(show(value))
            elif n.kind in ("if", "with"):
                value = self._pipe(n.pipe, dot, env)
                scope = dict(env)
                if n.decl:
                    scope[n.decl[0]] = value
                if truth(value):
                    self._run(n.body, value if n.kind == "with" else dot, scope, out)
                else:
                    self._run(n.other, dot, scope, out)
            else:  # range
                value = self._pipe(n.pipe, dot, env)
                if isinstance(value, dict):
                    pairs = [(k, value[k]) for k in sorted(value)]
                elif isinstance(value, list):
                    pairs = list(enumerate(value))
                elif value is None:
                    pairs = []
                else:
                    raise self._p.fail(n.pos, f"range can't iterate over {show(value)}")
                if not pairs:
                    self._run(n.other, dot, dict(env), out)
                for key, item in pairs:
                    scope = dict(env)
                    if len(n.decl) == 2:
                        scope[n.decl[0]], scope[n.decl[1]] = key, item
                    elif n.decl:
                        scope[n.decl[0]] = item
                    self._run(n.body, item, scope, out)

    def _pipe(self, pipe: list[list[Any]], dot: Any, env: dict[str, Any]) -> Any:
        value: Any = None
        for i, cmd in enumerate(pipe):
            args = cmd if i == 0 else [*cmd, ("value", cmd[0][1], value)]
            value = self._command(args, dot, env)
        return value

    def _command(self, cmd: list[Any], dot: Any, env: dict[str, Any]) -> Any:
        head = cmd[0]
        if head[0] == "func":
            args = [self._operand(a, dot, env) for a in cmd[1:]]
            try:
                return FUNCS[head[2]](*args)
            except (TypeError, ValueError, KeyError, IndexError) as exc:
                raise self._p.fail(head[1], f'error calling {head[2]}: {exc}') from None
        if len(cmd) > 1:
            raise self._p.fail(cmd[1][1], "can't give argument to non-function")
        return self._operand(head, dot, env)

    def _operand(self, op: Any, dot: Any, env: dict[str, Any]) -> Any:
        kind, pos = op[0], op[1]
        if kind in ("lit", "value"):
            return op[2]
        if kind == "field":
            return self._walk(dot, op[2], pos)
        if kind == "var":
            if op[2] not in env:
                raise self._p.fail(pos, f"undefined variable: {op[2]}")
            return self._walk(env[op[2]], op[3], pos)
        if kind == "pipe":
            return self._pipe(op[2], dot, env)
        if kind == "chain":
            return self._walk(self._operand(op[2], dot, env), op[3], pos)
        if kind == "func":
            return self._command([op], dot, env)
        raise self._p.fail(pos, "bad operand")  # not reachable from the parser

    def _walk(self, value: Any, path: list[str | int], pos: int) -> Any:
        for step in path:
            if isinstance(step, int):
                if not isinstance(value, list) or not 0 <= step < len(value):
                    raise self._p.fail(pos, f"executing: index [{step}] out of range")
                value = value[step]
            elif isinstance(value, dict):
                if step not in value:
                    raise self._p.fail(pos, f"executing: can't evaluate field {step}")
                value = value[step]
            else:
                what = "nil" if value is None else type(value).__name__
                raise self._p.fail(pos, f"executing: can't evaluate field {step} in {what}")
        return value
