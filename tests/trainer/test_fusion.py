"""Tests of the MoE fusion and of the fused (visual + topology) encoder."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import pytest
import torch
from torch import Tensor, nn

from topo.trainer.models.fusion import EXPERTS, FusedEncoder, FusionOutput, MoEFusion
from topo.trainer.models.topology_encoder import TopologyEncoder

# --- parameter-count formula, written independently of the implementation ---------------------------


def _linear(i: int, o: int) -> int:
    return i * o + o


def _mlp(dims: list[int]) -> int:
    # LayerNorm (2 d) after every linear layer but the last
    return sum(_linear(a, b) for a, b in itertools.pairwise(dims)) + sum(2 * d for d in dims[1:-1])


def expected_params(visual_dim: int, experts: tuple[str, ...] = EXPERTS, p: int = 256, e: int = 512) -> dict:
    parts = {
        "visual_proj": _mlp([visual_dim, p, p, p]),
        "topo_proj": _mlp([256, p, p, p]),
        "gate": _mlp([2 * p, 256, 128, len(experts)]),
    }
    for name in experts:
        in_dim = 2 * p if name in ("concat", "cross") else p
        n = _mlp([in_dim, e, e, e])
        if name == "gated":
            n += _linear(2 * p, p)
        if name == "cross":
            n += 2 * (4 * p * p + 4 * p)  # two nn.MultiheadAttention(p)
        parts[name] = n
    return parts


def n_params(module: nn.Module) -> int:
    return sum(q.numel() for q in module.parameters())


# --- helpers ------------------------------------------------------------------------------------------


class TinyVisual(nn.Module):
    """Stand-in for a visual backbone: reads view["image"] only."""

    def __init__(self, feat_dim: int = 512) -> None:
        super().__init__()
        self.feat_dim = feat_dim
        self.fc = nn.Linear(3 * 4 * 4, feat_dim)

    def forward(self, view: Mapping[str, Tensor]) -> Tensor:
        return self.fc(view["image"].flatten(1))


def make_view(b: int, k0: int = 6, k1: int = 8) -> dict[str, Tensor]:
    return {
        "image": torch.randn(b, 3, 4, 4),
        "pd_h0": torch.rand(b, k0, 2).sort(dim=-1).values,
        "n_h0": torch.randint(1, k0 + 1, (b,)),
        "pd_h1": torch.rand(b, k1, 2).sort(dim=-1).values,
        "n_h1": torch.randint(1, k1 + 1, (b,)),
    }


def _check_gate(w: Tensor, b: int, n: int) -> None:
    assert w.shape == (b, n)
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(dim=1), torch.ones(b), atol=1e-6, rtol=0)


# --- shapes, gate, parameter count --------------------------------------------------------------------


@pytest.mark.parametrize("visual_dim", [512, 2048])
def test_shapes_and_gate_weights(visual_dim: int) -> None:
    torch.manual_seed(0)
    fusion = MoEFusion(visual_dim=visual_dim)
    out = fusion(10.0 * torch.randn(4, visual_dim), torch.randn(4, 256))
    assert isinstance(out, FusionOutput)
    assert out.features.shape == (4, 512)
    assert fusion.feat_dim == fusion.expert_dim == 512
    assert fusion.experts == EXPERTS
    _check_gate(out.gate_weights, 4, 5)
    # LayerNorm, not BatchNorm: a batch of one works in training mode too.
    assert fusion.train()(torch.randn(1, visual_dim), torch.randn(1, 256)).features.shape == (1, 512)


@pytest.mark.parametrize("visual_dim", [512, 2048])
def test_parameter_count_matches_formula(visual_dim: int) -> None:
    fusion = MoEFusion(visual_dim=visual_dim)
    parts = expected_params(visual_dim)
    assert n_params(fusion) == sum(parts.values())
    assert n_params(fusion.visual_proj) == parts["visual_proj"]
    assert n_params(fusion.gate) == parts["gate"]
    for name in EXPERTS:
        assert n_params(fusion.expert_modules[name]) == parts[name], name
    print(f"\nMoEFusion(visual_dim={visual_dim}): {n_params(fusion):,} parameters; breakdown {parts}")


def test_bad_shapes_raise_value_error() -> None:
    fusion = MoEFusion(visual_dim=16)
    with pytest.raises(ValueError, match="visual"):
        fusion(torch.randn(2, 15), torch.randn(2, 256))
    with pytest.raises(ValueError, match="topo"):
        fusion(torch.randn(2, 16), torch.randn(2, 255))
    with pytest.raises(ValueError, match="batch"):
        fusion(torch.randn(2, 16), torch.randn(3, 256))
    with pytest.raises(ValueError, match="divisible"):
        MoEFusion(visual_dim=16, proj_dim=30, heads=4)


# --- experts argument ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "experts",
    [("vision", "texture"), ("visual",), ()],
    ids=["one_unknown", "typo", "empty"],
)
def test_experts_rejects_bad_names(experts: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as info:
        MoEFusion(visual_dim=16, experts=experts)
    for name in EXPERTS:
        assert name in str(info.value)


def test_experts_rejects_duplicates_and_bare_string() -> None:
    with pytest.raises(ValueError, match="duplicates"):
        MoEFusion(visual_dim=16, experts=("vision", "vision"))
    with pytest.raises(ValueError, match="string"):
        MoEFusion(visual_dim=16, experts="vision")


def test_experts_kept_in_canonical_order() -> None:
    fusion = MoEFusion(visual_dim=16, experts=["cross", "topology", "vision"])
    assert fusion.experts == ("vision", "topology", "cross")
    assert list(fusion.expert_modules) == ["vision", "topology", "cross"]


# --- gradients ----------------------------------------------------------------------------------------


def test_every_expert_and_cross_direction_receives_gradient() -> None:
    torch.manual_seed(0)
    fusion = MoEFusion(visual_dim=32).train()
    out = fusion(torch.randn(6, 32), torch.randn(6, 256))
    (out.features * torch.randn(6, 512)).sum().backward()
    for name, p in fusion.named_parameters():
        assert p.grad is not None, name
        if name.endswith("in_proj_bias"):
            # The key bias shifts all logits of a query equally, so softmax makes its gradient exactly 0.
            d = p.numel() // 3
            p_grad = torch.cat([p.grad[:d], p.grad[2 * d :]])
        else:
            p_grad = p.grad
        assert p_grad.abs().sum() > 0, name
    cross = fusion.expert_modules["cross"].mix
    for label in ("vision_queries", "topology_queries"):
        mha = getattr(cross, label)
        d = mha.embed_dim
        for part, sl in (("q", slice(0, d)), ("k", slice(d, 2 * d)), ("v", slice(2 * d, 3 * d))):
            assert mha.in_proj_weight.grad[sl].abs().sum() > 0, f"{label}: {part}"
    assert fusion.expert_modules["gated"].mix.gate.weight.grad.abs().sum() > 0


# --- ablations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("removed", EXPERTS)
def test_removing_an_expert_is_exactly_a_zero_gate(removed: str) -> None:
    # The ablated fusion equals the full one whose gate never picks the removed expert.
    torch.manual_seed(0)
    full = MoEFusion(visual_dim=32).eval()
    kept = tuple(e for e in EXPERTS if e != removed)
    ablated = MoEFusion(visual_dim=32, experts=kept).eval()
    assert ablated.experts == kept
    assert removed not in ablated.expert_modules
    assert not any(k.startswith(f"expert_modules.{removed}.") for k in ablated.state_dict())
    assert n_params(ablated) == sum(expected_params(32, kept).values())

    last = len(full.gate) - 1
    state = {k: v for k, v in full.state_dict().items() if not k.startswith(f"gate.{last}.")}
    state = {k: v for k, v in state.items() if not k.startswith(f"expert_modules.{removed}.")}
    rows = [EXPERTS.index(e) for e in kept]
    state[f"gate.{last}.weight"] = full.gate[last].weight.detach()[rows]
    state[f"gate.{last}.bias"] = full.gate[last].bias.detach()[rows]
    ablated.load_state_dict(state)

    v, t = torch.randn(5, 32), torch.randn(5, 256)
    with torch.no_grad():
        out_full = full(v, t)
        out_ablated = ablated(v, t)
        _check_gate(out_ablated.gate_weights, 5, 4)
        assert (out_full.features - out_ablated.features).abs().max() > 1e-4
        full.gate[last].bias[EXPERTS.index(removed)] = -1e4
        torch.testing.assert_close(full(v, t).features, out_ablated.features, atol=1e-5, rtol=0)


def test_single_expert_gate_is_one() -> None:
    fusion = MoEFusion(visual_dim=8, experts=("concat",))
    out = fusion(torch.randn(3, 8), torch.randn(3, 256))
    assert torch.equal(out.gate_weights, torch.ones(3, 1))


# --- fused encoder ------------------------------------------------------------------------------------


def test_fused_encoder_forward_gate_export_and_gradients() -> None:
    torch.manual_seed(0)
    topo = TopologyEncoder(k0=6, k1=8, width=32, heads=4)
    enc = FusedEncoder(TinyVisual(512), topo, MoEFusion(visual_dim=512, experts=("vision", "gated", "cross")))
    assert enc.feat_dim == 512
    assert enc.last_gate_weights is None
    view = make_view(3)
    out = enc(view)
    assert out.shape == (3, 512)
    w = enc.last_gate_weights
    assert w is not None and not w.requires_grad
    _check_gate(w, 3, 3)
    assert "last_gate_weights" not in enc.state_dict()
    out.square().sum().backward()
    assert enc.visual.fc.weight.grad.abs().sum() > 0
    assert topo.point_mlp[0].weight.grad.abs().sum() > 0
    assert topo.cross_attn["h1_queries_h0"].in_proj_weight.grad.abs().sum() > 0
    enc(make_view(2))
    assert enc.last_gate_weights.shape == (2, 3)  # the last batch only


def test_fused_encoder_rejects_mismatched_widths() -> None:
    topo = TopologyEncoder(k0=6, k1=8, width=32, heads=4)
    with pytest.raises(ValueError, match="visual"):
        FusedEncoder(TinyVisual(512), topo, MoEFusion(visual_dim=2048))
    with pytest.raises(ValueError, match="topology"):
        FusedEncoder(TinyVisual(512), TopologyEncoder(out_dim=128), MoEFusion(visual_dim=512))
