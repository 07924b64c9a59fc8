"""``netctl doctor``: walk the path between a container and a target, hop by hop.

Two layers, as the style guide asks for plan vs apply:

- pure diagnosis (unit-tested with hand-built facts, no root): ``facts`` (frozen
  dataclasses of what was read), ``target`` (the TARGET argument), ``state_facts``
  (netctl state -> facts), ``path`` (which network, interface and address the traffic
  takes), ``netfilter`` (a small evaluator: which rule or policy decides one packet),
  ``nfparse``, ``iptparse`` and ``kernel`` (parsers of ``nft -j``, ``iptables-legacy-save`` and
  ``ip -j`` output), ``hops_ends`` / ``hops_link`` / ``hops_policy`` / ``hops_name``
  (the checks, sharing a ``walk.Walk``), ``diagnose`` (hops -> verdict and fix) and
  ``report`` (text and JSON).
- gathering: ``gather`` runs ``ip``/``nft``/``iptables-legacy-save`` (through
  ``nsenter --net`` for container namespaces), reads netctl state and dnsd's
  configuration, and runs ``probe`` (ping, TCP connect, UDP exchange, DNS query) inside
  the source namespace. It only reads and sends probe packets; it changes nothing.
"""
