"""topo trainer/eval."""
