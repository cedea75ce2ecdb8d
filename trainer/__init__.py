"""topo trainer."""
