"""Self-supervised losses, one module per paper.

Each loss is a pure function of embeddings, except :class:`DINOLoss`, a small module because it holds the
EMA centre. Each docstring states how the loss behaves across ranks.
"""

from topo.trainer.losses.barlow_twins import barlow_twins_loss
from topo.trainer.losses.byol import byol_loss
from topo.trainer.losses.dino import DINOLoss
from topo.trainer.losses.infonce import infonce_loss, symmetric_infonce_loss
from topo.trainer.losses.nt_xent import nt_xent_loss

__all__ = [
    "DINOLoss",
    "barlow_twins_loss",
    "byol_loss",
    "infonce_loss",
    "nt_xent_loss",
    "symmetric_infonce_loss",
]
