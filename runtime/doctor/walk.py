"""The state shared by the hop checks while they walk one path (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from .facts import Attachment, ContainerInfo, DoctorFacts, Link, Network, RouteLookup
from .path import PathPlan
from .report import Findings


@dataclass(kw_only=True)
class Walk(Findings):
    """Facts, the chosen path and the findings so far."""

    facts: DoctorFacts
    plan: PathPlan

    @property
    def src(self) -> ContainerInfo:
        return self.facts.source

    @property
    def dst(self) -> ContainerInfo | None:
        return self.facts.target.container

    @property
    def sname(self) -> str:
        return self.src.name

    @property
    def tname(self) -> str:
        """How to call the target in sentences."""
        t = self.facts.target
        if t.container is not None:
            return t.container.name
        if t.kind == "address" and t.address is not None:
            return t.address
        return t.text

    def net(self, att: Attachment | None) -> Network | None:
        return self.facts.network(att.network) if att is not None else None

    def host_link(self, name: str) -> Link | None:
        return self.facts.host.view.link(name) if name else None

    def src_lookup(self) -> RouteLookup | None:
        view = self.src.view
        if view is None or self.plan.address is None:
            return None
        return view.lookup(self.plan.address)

    def user_networks(self, names: tuple[str, ...]) -> list[Network]:
        """The user-defined bridge networks among ``names``, in order."""
        nets = [self.facts.network(n) for n in names]
        return [n for n in nets if n is not None and not n.builtin and n.driver == "bridge"]

    def exec_in(self, container: ContainerInfo) -> str:
        """The command prefix that runs something inside a container."""
        return f"netctl exec {container.name} --"
