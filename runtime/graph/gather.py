"""Read what the graph shows: netctl state, the host's links, dnsd (no changes made)."""

from __future__ import annotations

from netplugins.nl.types import NetlinkError

from ..containers import alive
from ..doctor.gather import read_dnsd
from ..doctor.state_facts import container_info
from ..paths import Paths
from ..state import State
from .model import GraphModel, GRemote, build_model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from netplugins.nl.host import HostNetlink


def host_links(nl: HostNetlink | None = None) -> dict[str, bool]:
    """Link name -> administratively up, in the namespace netctl runs in (through ``nl``
    when given), {} when unreadable."""
    try:
        if nl is not None:
            return {lk.name: lk.up for lk in nl.links()}
        # pyroute2 costs ~170 ms to import: only commands that read the kernel pay it
        from netplugins.nl.pyroute import open_host

        with open_host() as own:
            return {lk.name: lk.up for lk in own.links()}
    except NetlinkError:
        return {}


def gather_model(paths: Paths) -> GraphModel:
    """The graph of everything netctl knows, with link states from the kernel."""
    state = State(paths)
    nets = tuple(state.networks())
    stored = state.containers()
    by_id = {c.id: c for c in stored}
    ctrs = tuple(container_info(c, by_id, alive(c)) for c in stored)
    node, remotes = overlay_remotes(paths, [n.name for n in nets if n.driver == "overlay"])
    return build_model(nets, ctrs, host_links(), read_dnsd(paths), node, remotes)


def overlay_remotes(paths: Paths, overlays: list[str]) -> tuple[str, tuple[GRemote, ...]]:
    """This node's name and the containers of other hosts on ``overlays``, from the store
    (nothing when there is no overlay, no node file or no answer)."""
    if not overlays:
        return "", ()
    # lazy: only overlay networks need it (cluster store client, pyroute2)
    from netplugins.overlay import node as nodefile
    from netplugins.overlay.store import Store, StoreError

    try:
        me = nodefile.read(paths.overlay, require_alive=False)
        snap = Store(me.store, light=True).snapshot()
    except (nodefile.NodeFileError, StoreError):
        return "", ()
    return me.node, tuple(GRemote(e.network, e.node, snap.nodes[e.node].advertise if e.node in snap.nodes else e.vtep,
                                  e.names[0] if e.names else e.container_id[:12], e.ip)
                          for e in snap.endpoints if e.network in overlays and e.node != me.node)
