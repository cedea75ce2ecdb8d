"""Mixture-of-experts fusion of visual and topology features (TopoCL, 2026).

Both inputs are projected to ``proj_dim`` by 3-layer MLPs; up to five experts turn the pair into an
``expert_dim`` vector each, and a gating network on the concatenated projections weighs them per sample:

* ``"vision"``: vision-only, ``MLP(v)``.
* ``"topology"``: topology-only, ``MLP(t)``.
* ``"concat"``: ``MLP([v, t])``.
* ``"gated"``: ``MLP(g * v + (1 - g) * t)`` with ``g = sigmoid(W [v, t] + b)`` element-wise.
* ``"cross"``: bidirectional cross-attention with residuals over the 2-token sequence ``[v, t]``
  (see ``_CrossAttend``), then ``MLP([v', t'])``.

Every expert ends in a 3-layer MLP ``-> expert_dim -> expert_dim -> expert_dim``. ``FusedEncoder`` chains a
visual backbone, the topology encoder and the fusion into one ``view -> (B, expert_dim)`` encoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import torch
from torch import Tensor, nn

from topo.trainer.models.mlp import mlp

__all__ = ["EXPERTS", "GATES", "FusedEncoder", "FusionOutput", "MoEFusion"]

EXPERTS: tuple[str, ...] = ("vision", "topology", "concat", "gated", "cross")
GATES: tuple[str, ...] = ("learned", "uniform")

# Hidden widths of the gating network fixed by the paper (input 2 * proj_dim, output n_experts).
_GATE_HIDDEN = (256, 128)


class FusionOutput(NamedTuple):
    """Result of ``MoEFusion.forward``.

    Attributes:
        features: Fused features, shape ``(B, expert_dim)``.
        gate_weights: Softmax weights of the experts, shape ``(B, n_experts)``; column ``j`` belongs to
            ``MoEFusion.experts[j]``. Rows are non-negative and sum to 1.
    """

    features: Tensor
    gate_weights: Tensor


class _GatedBlend(nn.Module):
    """Element-wise blend ``g * v + (1 - g) * t`` with ``g = sigmoid(Linear([v, t]))``, shapes ``(B, D)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Linear(2 * dim, dim)

    def forward(self, v: Tensor, t: Tensor) -> Tensor:
        g = torch.sigmoid(self.gate(torch.cat([v, t], dim=-1)))
        return g * v + (1.0 - g) * t


class _CrossAttend(nn.Module):
    """Bidirectional cross-attention with residuals between two ``(B, D)`` vectors -> ``(B, 2 D)``.

    Design choice (the paper leaves it open): each modality is one token, and each modality's query
    attends over the 2-token sequence ``[v, t]`` with its own attention module (one per direction).
    With the other modality as the *only* key, softmax over one key is identically 1, so the attention
    would collapse to a linear map of the other vector and its query/key projections would never get a
    gradient. Over ``[v, t]`` the weights are real: they decide, per head and per sample, how much each
    modality takes from the other versus itself. Residuals: ``v' = v + attn_v(v, [v, t])`` and
    ``t' = t + attn_t(t, [v, t])``; the output is ``[v', t']``.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.vision_queries = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.topology_queries = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, v: Tensor, t: Tensor) -> Tensor:
        tokens = torch.stack([v, t], dim=1)
        v_att, _ = self.vision_queries(v[:, None], tokens, tokens, need_weights=False)
        t_att, _ = self.topology_queries(t[:, None], tokens, tokens, need_weights=False)
        return torch.cat([v + v_att[:, 0], t + t_att[:, 0]], dim=-1)


class _Expert(nn.Module):
    """One expert: an optional mixing step (``gated`` / ``cross``) and a 3-layer MLP to ``expert_dim``."""

    def __init__(self, kind: str, proj_dim: int, expert_dim: int, heads: int) -> None:
        super().__init__()
        assert kind in EXPERTS, kind
        self.kind = kind
        self.mix: nn.Module | None = None
        if kind == "gated":
            self.mix = _GatedBlend(proj_dim)
        elif kind == "cross":
            self.mix = _CrossAttend(proj_dim, heads)
        in_dim = 2 * proj_dim if kind in ("concat", "cross") else proj_dim
        self.head = mlp([in_dim, expert_dim, expert_dim, expert_dim], norm=True, final_act=False)

    def forward(self, v: Tensor, t: Tensor) -> Tensor:
        if self.kind == "vision":
            x = v
        elif self.kind == "topology":
            x = t
        elif self.kind == "concat":
            x = torch.cat([v, t], dim=-1)
        else:
            assert self.mix is not None
            x = self.mix(v, t)
        return self.head(x)


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _resolve_experts(experts: Iterable[str]) -> tuple[str, ...]:
    if isinstance(experts, str):
        raise ValueError(
            f"experts must be a collection of names, not the string {experts!r}; valid experts are {EXPERTS}"
        )
    names = list(experts)
    unknown = [e for e in names if e not in EXPERTS]
    if unknown:
        raise ValueError(f"unknown expert(s) {unknown}; valid experts are {EXPERTS}")
    if len(set(names)) != len(names):
        raise ValueError(f"experts contains duplicates: {names}; valid experts are {EXPERTS}")
    if not names:
        raise ValueError(f"experts must name at least one of {EXPERTS}, got an empty collection")
    # Canonical order, so a gate column always means the same expert whatever order the caller used.
    return tuple(e for e in EXPERTS if e in names)


class MoEFusion(nn.Module):
    """Mixture-of-experts fusion of a visual and a topology feature vector.

    Paper: TopoCL (2026), "MoE fusion"; the ``experts`` subsets are the "w/o expert" ablations of Table 5.
    Visual features ``(B, visual_dim)`` and topology features ``(B, topo_dim)`` are projected to
    ``proj_dim`` by 3-layer MLPs (hidden widths ``proj_dim``); each expert ends in a 3-layer MLP to
    ``expert_dim``; the gate ``2 * proj_dim -> 256 -> 128 -> n_experts`` on the concatenated projections,
    followed by a softmax, weighs the expert outputs per sample. Hidden layers use LayerNorm + ReLU so the
    module behaves the same for any batch size, including one.

    Args:
        visual_dim: Width of the visual features (2048 for ResNet-50, 512 for ResNet-18).
        topo_dim: Width of the topology features.
        proj_dim: Width both modalities are projected to.
        expert_dim: Width of each expert's output and of the fused features; also ``feat_dim``.
        heads: Attention heads of the ``"cross"`` expert; must divide ``proj_dim`` when it is used.
        experts: Names of the experts to build, a non-empty subset of ``EXPERTS``. They are kept in the
            canonical ``EXPERTS`` order (see ``self.experts``), which is also the gate-column order.
        gate: ``"learned"`` (the paper's gating network) or ``"uniform"`` (fixed equal weights, an ablation).

    Raises:
        ValueError: If ``experts`` is empty, has duplicates or unknown names (the message lists the valid
            ones), a size is not a positive integer, or ``heads`` does not divide ``proj_dim``.

    Examples:
        >>> import torch
        >>> fusion = MoEFusion(visual_dim=512)
        >>> out = fusion(torch.randn(3, 512), torch.randn(3, 256))
        >>> out.features.shape, out.gate_weights.shape
        (torch.Size([3, 512]), torch.Size([3, 5]))
        >>> MoEFusion(visual_dim=512, experts=("cross", "vision")).experts
        ('vision', 'cross')
    """

    def __init__(
        self,
        *,
        visual_dim: int,
        topo_dim: int = 256,
        proj_dim: int = 256,
        expert_dim: int = 512,
        heads: int = 4,
        experts: Iterable[str] = EXPERTS,
        gate: str = "learned",
    ) -> None:
        super().__init__()
        if gate not in GATES:
            raise ValueError(f"unknown gate {gate!r}; valid: {', '.join(GATES)}")
        self.gate_mode = gate
        for name, value in (
            ("visual_dim", visual_dim),
            ("topo_dim", topo_dim),
            ("proj_dim", proj_dim),
            ("expert_dim", expert_dim),
            ("heads", heads),
        ):
            _check_positive_int(name, value)
        self.experts = _resolve_experts(experts)
        if "cross" in self.experts and proj_dim % heads != 0:
            raise ValueError(f"proj_dim must be divisible by heads, got proj_dim={proj_dim}, heads={heads}")
        self.visual_dim = visual_dim
        self.topo_dim = topo_dim
        self.proj_dim = proj_dim
        self.expert_dim = expert_dim
        self.feat_dim = expert_dim

        self.visual_proj = mlp([visual_dim, proj_dim, proj_dim, proj_dim], norm=True, final_act=False)
        self.topo_proj = mlp([topo_dim, proj_dim, proj_dim, proj_dim], norm=True, final_act=False)
        self.expert_modules = nn.ModuleDict({name: _Expert(name, proj_dim, expert_dim, heads) for name in self.experts})
        self.gate = mlp([2 * proj_dim, *_GATE_HIDDEN, len(self.experts)], norm=True, final_act=False)

    def forward(self, visual: Tensor, topo: Tensor) -> FusionOutput:
        """Fuse a batch.

        Args:
            visual: Visual features, shape ``(B, visual_dim)``.
            topo: Topology features, shape ``(B, topo_dim)``.

        Returns:
            ``FusionOutput(features (B, expert_dim), gate_weights (B, n_experts))``.

        Raises:
            ValueError: If a shape does not match ``visual_dim`` / ``topo_dim`` or the batch sizes differ.
        """
        if visual.ndim != 2 or visual.shape[1] != self.visual_dim:
            raise ValueError(f"visual must have shape (B, {self.visual_dim}), got {tuple(visual.shape)}")
        if topo.ndim != 2 or topo.shape[1] != self.topo_dim:
            raise ValueError(f"topo must have shape (B, {self.topo_dim}), got {tuple(topo.shape)}")
        if visual.shape[0] != topo.shape[0]:
            raise ValueError(f"batch sizes differ: visual {visual.shape[0]}, topo {topo.shape[0]}")
        v = self.visual_proj(visual)
        t = self.topo_proj(topo)
        if self.gate_mode == "uniform":
            weights = v.new_full((v.shape[0], len(self.experts)), 1.0 / len(self.experts))
        else:
            weights = torch.softmax(self.gate(torch.cat([v, t], dim=-1)), dim=-1)
        outputs = torch.stack([self.expert_modules[name](v, t) for name in self.experts], dim=1)
        features = torch.einsum("be,bed->bd", weights, outputs)
        return FusionOutput(features=features, gate_weights=weights)


class FusedEncoder(nn.Module):
    """Visual backbone + topology encoder + MoE fusion as one ``view -> (B, expert_dim)`` encoder.

    Both sub-encoders receive the whole view dict (the visual backbone reads ``view["image"]``, the
    topology encoder the diagrams). The gate weights of the last forward are kept, detached, in
    ``last_gate_weights`` (``(B, n_experts)``, columns in ``fusion.experts`` order) for per-sample export.

    Args:
        visual: Module mapping the view to ``(B, fusion.visual_dim)``.
        topology: Module mapping the view to ``(B, fusion.topo_dim)``, e.g. ``TopologyEncoder``.
        fusion: The ``MoEFusion`` combining the two.

    Raises:
        ValueError: If ``visual`` or ``topology`` has a ``feat_dim`` attribute that does not match
            ``fusion.visual_dim`` / ``fusion.topo_dim``.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from topo.trainer.models.topology_encoder import TopologyEncoder
        >>> class TinyVisual(nn.Module):
        ...     feat_dim = 512
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc = nn.Linear(3 * 8 * 8, 512)
        ...     def forward(self, view):
        ...         return self.fc(view["image"].flatten(1))
        >>> enc = FusedEncoder(TinyVisual(), TopologyEncoder(), MoEFusion(visual_dim=512))
        >>> view = {
        ...     "image": torch.randn(2, 3, 8, 8),
        ...     "pd_h0": torch.rand(2, 48, 2), "n_h0": torch.tensor([3, 48]),
        ...     "pd_h1": torch.rand(2, 96, 2), "n_h1": torch.tensor([0, 7]),
        ... }
        >>> enc(view).shape, enc.last_gate_weights.shape
        (torch.Size([2, 512]), torch.Size([2, 5]))
    """

    def __init__(self, visual: nn.Module, topology: nn.Module, fusion: MoEFusion) -> None:
        super().__init__()
        for name, module, expected in (
            ("visual", visual, fusion.visual_dim),
            ("topology", topology, fusion.topo_dim),
        ):
            dim = getattr(module, "feat_dim", None)
            if dim is not None and dim != expected:
                raise ValueError(f"{name}.feat_dim={dim} does not match the fusion's {name} input width {expected}")
        self.visual = visual
        self.topology = topology
        self.fusion = fusion
        self.feat_dim = fusion.expert_dim
        # A plain attribute, not a buffer: it is per-batch state and must stay out of the state_dict.
        self.last_gate_weights: Tensor | None = None
        # Gate weights (with their graph) of every training forward since the trainer last took them, for the
        # balance loss and the gate monitors; None: not recording (evaluation, target copies of momentum methods).
        self.gate_record: list[Tensor] | None = None

    def forward(self, view: Mapping[str, Tensor]) -> Tensor:
        """Encode a view.

        Args:
            view: Mapping with ``"image"`` for the visual backbone and ``"pd_h0"``, ``"n_h0"``, ``"pd_h1"``,
                ``"n_h1"`` for the topology encoder (shapes as in ``TopologyEncoder.forward``).

        Returns:
            Fused features, shape ``(B, expert_dim)``.
        """
        out = self.fusion(self.visual(view), self.topology(view))
        self.last_gate_weights = out.gate_weights.detach()
        if self.gate_record is not None and self.training and torch.is_grad_enabled():
            self.gate_record.append(out.gate_weights)
        return out.features

    def take_gate_weights(self) -> Tensor | None:
        """The gate weights recorded since the last call, concatenated ``(N, n_experts)``; starts recording."""
        rec, self.gate_record = self.gate_record, []
        return torch.cat(rec) if rec else None
