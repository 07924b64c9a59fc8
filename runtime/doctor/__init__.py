"""``netctl doctor``: walk the path between a container and a target, hop by hop.

Two layers, as the style guide asks for plan vs apply: a pure diagnosis of hand-buildable
facts (``facts`` -> ``diagnose`` -> ``report``, the checks in ``hops_*``), unit-tested
without root; and ``gather``, which reads state and the kernel (through the netlink
boundary) and sends the probe while the kernel traces it. The trace table is the only
change doctor makes, for the probe's duration, and it is removed again in every case.
Which module does what, and which readings live with the packages that own them:
docs/doctor.md, "Where the facts come from".
"""
