"""IPAM plugins (the CNI wrappers; the address management itself is the ``ipam`` package)."""
