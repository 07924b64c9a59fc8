"""netctl's side of overlay networks: the per-host sync process (``syncd``), the store
configuration (``config``) and the cluster verbs behind ``netctl create --driver overlay``
(``cluster``)."""
