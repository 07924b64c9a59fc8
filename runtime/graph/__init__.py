"""``netctl graph``: networks, containers, veth pairs, published ports and dnsd, drawn.

``model`` builds a pure GraphModel from doctor's facts about state and the kernel;
``dot`` and ``text`` render it (pure, golden-tested); ``render`` adds SVG through
Graphviz; ``gather`` reads state and the host's links.
"""
