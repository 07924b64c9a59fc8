"""``netctl agent``: the per-host service that serves plugin calls warm, keeps dnsd alive
and restores the firewall (service.py); start/stop/status from the CLI (control.py)."""
