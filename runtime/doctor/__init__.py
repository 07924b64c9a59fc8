"""``netctl doctor``: walk the path between a container and a target, hop by hop.

Two layers, as the style guide asks for plan vs apply:

- pure diagnosis (unit-tested with hand-built facts, no root): ``facts`` (frozen
  dataclasses of what was read; links, addresses, routes and neighbours in the netlink
  boundary's own types), ``target`` (the TARGET argument), ``state_facts`` (netctl state
  -> facts), ``path`` (which network, interface and address the traffic takes), ``fate``
  (which rule or policy, in any table, decided the probe's packets, from the kernel's
  trace), ``hops_ends`` / ``hops_link`` / ``hops_policy`` / ``hops_name`` /
  ``hops_overlay`` (the checks, recording into a ``walk.Walk``), ``diagnose`` (hops ->
  verdict and fix) and ``report`` (text and JSON).
- gathering: ``gather`` reads every namespace through the netlink boundary (``kernel``;
  no ``ip`` processes), netctl state and dnsd's configuration; asks the firewall drivers
  whether netctl's own rules are intact against what the plugins recorded (``ownrules``)
  and the overlay package what it programmed (``netplugins.overlay.inspect``); and runs
  ``probe`` (ping, TCP connect, UDP exchange, DNS query) inside the source namespace while
  ``netplugins.firewall.tracer`` has the kernel trace it. The trace table is the only
  change doctor makes, for the probe's duration, and it is removed again in every case.
"""
