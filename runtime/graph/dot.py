"""GraphModel -> Graphviz DOT text (pure; golden-tested).

Layout, left to right: published host ports, containers, bridges. Each network is a
cluster holding its bridge, its dnsd listener and the containers attached to it only;
a container on several networks sits outside the clusters, between them. A container
node has one row per veth pair ("eth0 ADDRESS ⇄ host veth") and the edge to the
bridge leaves from that row, so edges need no labels (labels crowd the bridges at 20
containers). Anything down or missing is drawn red and dashed.
"""

from __future__ import annotations

from .model import GContainer, GEndpoint, GNetwork, GraphModel

RED = "#c0392b"
NET_COLORS = ("#3d6fb6", "#2e8b57", "#b7791f", "#7b4fa0", "#2c8c99", "#a0522d")
FILL = {"#3d6fb6": "#eef3fb", "#2e8b57": "#edf7f1", "#b7791f": "#fbf5ea", "#7b4fa0": "#f4eff8",
        "#2c8c99": "#ecf6f7", "#a0522d": "#f8f0eb"}


def q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _net_label(n: GNetwork) -> str:
    rows = [f"<b>{_html(n.name)}</b>"]
    for i, s in enumerate(n.subnets):
        gw = n.gateways[i] if i < len(n.gateways) else ""
        rows.append(_html(f"{s}  gw {gw}" if gw else s))
    flags = []
    if n.builtin:
        flags.append("default bridge, no DNS")
    elif not n.dns:
        flags.append("DNS off")
    if n.internal:
        flags.append("internal")
    if not n.icc:
        flags.append("icc off")
    if flags:
        rows.append(f"<i>{_html(', '.join(flags))}</i>")
    # each line left-aligned, under the left-justified cluster label (edges come from the right)
    return "<" + "".join(r + '<br align="left"/>' for r in rows) + ">"


def _ctr_label(c: GContainer, multi: bool) -> str:
    """An HTML-like table: name and short ID, then one row (a port) per veth pair."""
    rows = [f'<tr><td align="left"><b>{_html(c.name)}</b> <font point-size="8" color="#666666">'
            f"{c.id[:12]}</font></td></tr>"]
    for e in c.endpoints:
        addrs = ", ".join(e.addresses) or "no address"
        veth = f" ⇄ {e.host_veth}" if e.host_veth else ""
        where = f" ({e.network})" if multi else ""
        text = _html(f"{e.ifname} {addrs}{where}{veth}")
        if e.veth_state in ("down", "missing"):
            text = f'<font color="{RED}">{text} ({e.veth_state})</font>'
        rows.append(f'<tr><td align="left" port="{_port(e)}">{text}</td></tr>')
        if e.aliases:
            rows.append(f'<tr><td align="left"><i>{_html("aliases: " + ", ".join(e.aliases))}</i></td></tr>')
    notes = []
    if c.joined_to:
        notes.append(f"in {c.joined_to}'s namespace")
    elif c.mode in ("host", "none"):
        notes.append(f"network {c.mode}")
    if not c.running:
        notes.append("stopped")
    for note in notes:
        rows.append(f'<tr><td align="left"><i>{_html(note)}</i></td></tr>')
    return '<<table border="0" cellborder="0" cellspacing="0" cellpadding="1">' + "".join(rows) + "</table>>"


def _port(e: GEndpoint) -> str:
    """The table cell (DOT port) of an endpoint: its interface name, made DOT-safe."""
    return "if_" + "".join(ch if ch.isalnum() else "_" for ch in e.ifname)


def _cid(c: GContainer) -> str:
    return q(f"ctr:{c.name}")


def _bid(n: GNetwork) -> str:
    return q(f"br:{n.name}")


def _edge(c: GContainer, e: GEndpoint, net: GNetwork) -> str:
    """The veth pair as an edge from the container's interface row to the bridge."""
    attrs = ""
    if e.veth_state in ("down", "missing"):
        attrs = f" [color={q(RED)}, style=dashed]"
    return f"  {_cid(c)}:{_port(e)}:e -> {_bid(net)}{attrs};"


def _tunnels(model: GraphModel) -> list[str]:
    """Overlays: one cluster per other host with its containers, and from each overlay's
    bridge a bold dashed edge (the VXLAN tunnel) to that host's containers on it."""
    out = []
    for node, vtep in model.remote_hosts():
        out.append(f"  subgraph {q('cluster_host_' + node)} {{")
        out.append(f"    label=<<b>{_html(node)}</b> {_html(vtep)}<br align=\"left\"/>>; labeljust=l; "
                   "style=\"rounded,dashed\"; color=\"#555555\";")
        for r in model.remotes:
            if r.node == node:
                out.append(f"    {q('rctr:' + r.node + ':' + r.network + ':' + r.name)} "
                           f"[label={q(r.name + chr(10) + r.address + ' (' + r.network + ')')}];")
        out.append("  }")
    for r in model.remotes:
        out.append(f"  {q('br:' + r.network)} -> {q('rctr:' + r.node + ':' + r.network + ':' + r.name)} "
                   f"[style=\"bold,dashed\", color=\"#555555\", tooltip={q('VXLAN to ' + r.vtep)}];")
    return out


def render_dot(model: GraphModel) -> str:
    """The whole picture as DOT text (deterministic: model order, no timestamps)."""
    nets = {n.name: n for n in model.networks}
    out = [
        "digraph netctl {",
        "  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=11, nodesep=0.18, ranksep=0.9, "
        "newrank=true, labelloc=t, label=" + q(model.title()) + "];",
        "  node [fontname=\"Helvetica\", fontsize=10, shape=box, style=\"rounded,filled\", "
        "fillcolor=\"#ffffff\", margin=\"0.12,0.04\"];",
        "  edge [fontname=\"Helvetica\", fontsize=8, color=\"#666666\", fontcolor=\"#444444\", arrowhead=none];",
    ]
    placed: set[str] = set()
    for i, n in enumerate(model.networks):
        color = NET_COLORS[i % len(NET_COLORS)]
        out.append(f"  subgraph {q('cluster_' + n.name)} {{")
        style = "rounded,filled,dashed" if n.internal else "rounded,filled"  # dashed: nothing leaves it
        out.append(f"    label={_net_label(n)}; labeljust=l; style={q(style)}; color={q(color)}; "
                   f"fillcolor={q(FILL[color])};")
        br_attrs = [f"label={q(n.bridge + ' (' + n.bridge_state + ')' if n.bridge_state else n.bridge)}",
                    "shape=box", "style=filled", f"fillcolor={q(color)}", "fontcolor=\"#ffffff\""]
        if n.bridge_state in ("down", "missing"):
            br_attrs += [f"fillcolor={q(RED)}"]
        out.append(f"    {_bid(n)} [{', '.join(br_attrs)}];")
        if n.dns_listen:
            label = "dnsd\n" + "\n".join(f"{a}:53" for a in n.dns_listen)
            out.append(f"    {q('dns:' + n.name)} [label={q(label)}, shape=note, fillcolor=\"#fffbe6\"];")
        for c in model.members(n.name):
            if len(c.endpoints) == 1:
                out.append(f"    {_cid(c)} [label={_ctr_label(c, False)}];")
                placed.add(c.name)
        out.append("  }")
    for c in model.containers:
        if c.name in placed:
            continue
        style = ", style=\"rounded,dashed\"" if c.joined_to or not c.endpoints else ""
        out.append(f"  {_cid(c)} [label={_ctr_label(c, len(c.endpoints) > 1)}{style}];")
    for n in model.networks:
        if n.dns_listen:
            out.append(f"  {_bid(n)} -> {q('dns:' + n.name)} [style=dotted, label=\"listens\"];")
    for c in model.containers:
        for e in c.endpoints:
            if e.network in nets:
                out.append(_edge(c, e, nets[e.network]))
        if c.joined_to:
            out.append(f"  {_cid(c)} -> {q('ctr:' + c.joined_to)} [style=dashed, label=\"shares netns\", "
                       "constraint=false];")
    out += _tunnels(model)
    ports = [(c, p) for c in model.containers for p in c.ports]
    if ports:
        out.append("  subgraph cluster_ports {")
        out.append("    label=<<b>host ports</b>>; style=\"rounded\"; color=\"#999999\";")
        for _c, p in ports:
            pid = q(f"port:{p.host_text()}/{p.protocol}")
            out.append(f"    {pid} [label={q(p.host_text() + '/' + p.protocol)}, shape=cds, "
                       "fillcolor=\"#f2f2f2\"];")
        out.append("  }")
        for c, p in ports:
            pid = q(f"port:{p.host_text()}/{p.protocol}")
            out.append(f"  {pid} -> {_cid(c)} [label={q('→ ' + str(p.container_port) + '/' + p.protocol)}, "
                       "arrowhead=normal];")
    out.append("}")
    return "\n".join(out) + "\n"
