"""Building the backbone of each stage, and rebuilding a trained encoder from its checkpoint."""

from __future__ import annotations

from typing import Any

from torch import nn

from topo.store_schema import Geometry
from topo.trainer.checkpoint import CheckpointError, backbone_state, load_checkpoint
from topo.trainer.config import TrainConfig
from topo.trainer.models.fusion import FusedEncoder, MoEFusion
from topo.trainer.models.topology_encoder import TopologyEncoder
from topo.trainer.models.visual import VisualEncoder


def visual_encoder(cfg: TrainConfig, g: Geometry) -> VisualEncoder:
    """The timm visual encoder of ``cfg`` for stores of geometry ``g`` (small-input stem at ≤ 64 px unless set)."""
    small = cfg.small_input if cfg.small_input is not None else (cfg.image_size or g.height) <= 64
    return VisualEncoder(cfg.backbone, in_chans=g.channels, small_input=small)


def topology_encoder(cfg: TrainConfig, g: Geometry) -> TopologyEncoder:
    """The paper's topology encoder sized for the store's ``k0``/``k1`` and ``cfg``'s width."""
    return TopologyEncoder(
        k0=g.k0,
        k1=g.k1,
        width=cfg.topo_width,
        self_attention=cfg.self_attention,
        cross_attention=cfg.cross_attention,
        hierarchical=cfg.hierarchical,
        pooling=cfg.topo_pooling,
    )


def _load_part(module: nn.Module, checkpoint: str, expected_stage: str) -> dict[str, Any]:
    ck = load_checkpoint(checkpoint)
    stage = ck["config"]["stage"]
    if stage != expected_stage:
        raise CheckpointError(f"{checkpoint} is a {stage!r} checkpoint; expected a {expected_stage!r} one")
    module.load_state_dict(backbone_state(ck["model"]))
    return ck


def build_backbone(
    cfg: TrainConfig, g: Geometry, *, load_inits: bool = True
) -> VisualEncoder | TopologyEncoder | FusedEncoder:
    """The module a method trains in ``cfg.stage``: visual encoder, topology encoder, or the fused model.

    For the joint stage the two encoders start from the stage-1 and stage-2 checkpoints when given (the paper's
    three stages); without them the joint stage is the "without pretraining" ablation.
    """
    if cfg.stage == "visual":
        return visual_encoder(cfg, g)
    if cfg.stage == "topo":
        return topology_encoder(cfg, g)
    vis, topo = visual_encoder(cfg, g), topology_encoder(cfg, g)
    if load_inits and cfg.init_visual:
        _load_part(vis, cfg.init_visual, "visual")
    if load_inits and cfg.init_topo:
        _load_part(topo, cfg.init_topo, "topo")
    fusion = MoEFusion(visual_dim=vis.feat_dim, topo_dim=topo.feat_dim, experts=cfg.experts, gate=cfg.gate)
    return FusedEncoder(vis, topo, fusion)


def encoder_from_checkpoint(checkpoint: str) -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
    """The trained online backbone of a checkpoint, its config and the raw checkpoint (eval mode)."""
    ck = load_checkpoint(checkpoint)
    cfg = TrainConfig.from_json(ck["config"])
    g = Geometry.from_json(ck["geometry"])
    enc = build_backbone(cfg, g, load_inits=False)
    enc.load_state_dict(backbone_state(ck["model"]))
    return enc.eval(), cfg, ck
