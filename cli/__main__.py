"""``python -m topo.cli`` (used by ``torchrun --nproc-per-node N -m topo.cli train …``)."""

from topo.cli.app import main

main()
