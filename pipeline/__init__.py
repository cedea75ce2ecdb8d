"""topo pipeline."""
