"""topo trainer/models."""
