"""topo cli."""
