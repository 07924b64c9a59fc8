"""Overlay networks across hosts: cluster state in etcd, VXLAN data plane.

``model`` (keys and records, pure), ``store`` (the etcd client: transactions, leases,
watch), ``alloc`` (address and subnet choice, pure), ``vxlan`` (FDB/neighbour plans, pure,
and the thin ``ip``/``bridge`` driver), ``node`` (the node file the sync process writes
for the plugin). The plugin is ``netplugins.main.overlay``; the per-host sync process is
``runtime.overlay.syncd``.
"""
