"""Stage 3: BYOL on the fused (visual + topology + MoE) encoder lowers its loss on a fixed batch."""

from __future__ import annotations

import pytest
import torch

from topo.trainer.methods import build_method
from topo.trainer.models.fusion import FusedEncoder, MoEFusion
from topo.trainer.models.topology_encoder import TopologyEncoder
from topo.trainer.models.visual import VisualEncoder


def _view(g: torch.Generator) -> dict[str, torch.Tensor]:
    n0 = torch.randint(1, 48, (8,), generator=g)
    n1 = torch.randint(0, 96, (8,), generator=g)
    births0 = torch.rand(8, 48, 1, generator=g)
    births1 = torch.rand(8, 96, 1, generator=g)
    return {
        "image": torch.randn(8, 1, 28, 28, generator=g),
        "pd_h0": torch.cat([births0, births0 + torch.rand(8, 48, 1, generator=g)], -1),
        "n_h0": n0,
        "pd_h1": torch.cat([births1, births1 + torch.rand(8, 96, 1, generator=g)], -1),
        "n_h1": n1,
    }


@pytest.mark.slow  # ~9 s on two busy cores
def test_byol_stage3_lowers_its_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    vis = VisualEncoder("resnet18", in_chans=1, small_input=False)
    topo = TopologyEncoder(width=32, heads=4)
    fused = FusedEncoder(vis, topo, MoEFusion(visual_dim=vis.feat_dim, topo_dim=topo.feat_dim))
    method = build_method("byol", fused, fused.feat_dim, proj_hidden_dim=64, proj_dim=32, pred_hidden_dim=64)
    g = torch.Generator().manual_seed(1)
    v1, v2 = _view(g), _view(g)
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for step in range(8):
        out = method(v1, v2)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        method.on_step_end(step, 100)
        losses.append(float(out.loss.detach()))
    assert losses[-1] < losses[0]
    assert fused.last_gate_weights is not None and fused.last_gate_weights.shape == (8, 5)
