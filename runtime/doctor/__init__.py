"""``netctl doctor``: walk the path between a container and a target, hop by hop.

Two layers, as the style guide asks for plan vs apply:

- pure diagnosis (unit-tested with hand-built facts, no root): ``facts`` (frozen
  dataclasses of what was read), ``target`` (the TARGET argument), ``state_facts``
  (netctl state -> facts), ``path`` (which network, interface and address the traffic
  takes), ``trace`` (the temporary nftables trace table and the kernel's trace
  reports: which rule or policy, in any table, decided the probe's packets), ``kernel``
  (the netlink boundary's links, addresses and routes -> facts), ``hops_ends`` / ``hops_link`` / ``hops_policy`` / ``hops_name``
  (the checks, sharing a ``walk.Walk``), ``diagnose`` (hops -> verdict and fix) and
  ``report`` (text and JSON).
- gathering: ``gather`` reads every namespace through the netlink boundary
  (``netplugins.nl``, no ``ip`` processes), reads netctl state and dnsd's configuration, asks the firewall drivers
  whether netctl's own rules are intact (``ownrules``), and runs ``probe`` (ping, TCP
  connect, UDP exchange, DNS query) inside the source namespace while ``tracer`` has
  the kernel trace it. The trace table is the only change doctor makes, for the
  probe's duration, and it is removed again in every case.
"""
