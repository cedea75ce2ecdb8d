"""Tests of the hierarchical topology encoder (shapes, parameter count, masking, invariances, ablations)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from topo.trainer.models.topology_encoder import TopologyEncoder, _masked_attention

PAPER_PARAMS = 3.83e6  # Table 7 of the TopoCL paper


# --- parameter-count formula, written independently of the implementation ---------------------------


def _linear(i: int, o: int) -> int:
    return i * o + o


def _layernorm(d: int) -> int:
    return 2 * d


def _mha(d: int) -> int:
    # in_proj (3 d x d + 3 d) + out_proj (d x d + d)
    return 4 * d * d + 4 * d


def _mlp(dims: list[int], final_act: bool) -> int:
    n = len(dims) - 1
    total = 0
    for i in range(n):
        total += _linear(dims[i], dims[i + 1])
        if i < n - 1 or final_act:
            total += _layernorm(dims[i + 1])
    return total


def expected_params(*, width: int = 384, out_dim: int = 256, self_attn: bool = True, cross: bool = True) -> dict:
    parts = {"point_mlp": _mlp([4, 64, 128, 256, width], final_act=True)}
    if self_attn:
        parts["self_attn"] = 2 * _mha(width)
        parts["alpha"] = 2
    if cross:
        parts["cross_attn"] = 2 * _mha(width)
    pooled = (3 if cross else 2) * 2 * width
    parts["proj"] = _mlp([pooled, 768, 512, out_dim], final_act=False)
    return parts


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- helpers ------------------------------------------------------------------------------------------


def make_view(
    b: int,
    *,
    k0: int = 48,
    k1: int = 96,
    n0: list[int] | None = None,
    n1: list[int] | None = None,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Random diagrams (birth <= death) with loud garbage in the padding rows."""
    g = torch.Generator().manual_seed(seed)
    n0_t = torch.tensor(n0) if n0 is not None else torch.randint(2, k0 + 1, (b,), generator=g)
    n1_t = torch.tensor(n1) if n1 is not None else torch.randint(2, k1 + 1, (b,), generator=g)
    view = {"n_h0": n0_t, "n_h1": n1_t}
    for key, k, n in (("pd_h0", k0, n0_t), ("pd_h1", k1, n1_t)):
        pd = torch.rand(b, k, 2, generator=g).sort(dim=-1).values
        pad = torch.arange(k)[None, :] >= n[:, None]
        garbage = 100.0 * torch.randn(b, k, 2, generator=g)
        view[key] = torch.where(pad[..., None], garbage, pd)
    return view


def repad(view: dict[str, torch.Tensor], *, extra0: int = 0, extra1: int = 0, seed: int = 1) -> dict:
    """Same diagrams, new garbage in every padding row (including NaN / inf), optionally more slots."""
    g = torch.Generator().manual_seed(seed)
    out = dict(view)
    for key, nkey, extra in (("pd_h0", "n_h0", extra0), ("pd_h1", "n_h1", extra1)):
        pd = view[key]
        b, k, _ = pd.shape
        pd = torch.cat([pd, torch.zeros(b, extra, 2)], dim=1)
        pad = torch.arange(k + extra)[None, :] >= view[nkey][:, None]
        garbage = -1e3 * torch.rand(b, k + extra, 2, generator=g)
        garbage[:, :1, 0] = float("nan")
        garbage[:, -1:, 1] = float("inf")
        out[key] = torch.where(pad[..., None], garbage, pd)
    return out


@pytest.fixture(scope="module")
def encoder() -> TopologyEncoder:
    torch.manual_seed(0)
    return TopologyEncoder().eval()


ABLATIONS = {
    "full": {},
    "no_self": {"self_attention": False},
    "no_cross": {"cross_attention": False},
    "no_hier": {"hierarchical": False},
}


# --- shapes and parameter count -----------------------------------------------------------------------


def test_output_shape_and_feat_dim(encoder: TopologyEncoder) -> None:
    view = make_view(3)
    with torch.no_grad():
        out = encoder(view)
    assert out.shape == (3, 256)
    assert encoder.feat_dim == 256
    small = TopologyEncoder(k0=5, k1=7, width=32, heads=2, out_dim=16)
    assert small(make_view(2, k0=5, k1=7)).shape == (2, 16)
    assert small.feat_dim == 16


def test_parameter_count_matches_formula_and_report_against_paper(encoder: TopologyEncoder) -> None:
    parts = expected_params()
    total = sum(parts.values())
    assert n_params(encoder) == total == 4_805_314
    assert n_params(encoder.point_mlp) == parts["point_mlp"] == 142_016
    assert n_params(encoder.self_attn) == parts["self_attn"] == 2 * 591_360
    assert n_params(encoder.cross_attn) == parts["cross_attn"] == 2 * 591_360
    assert n_params(encoder.proj) == parts["proj"] == 2_297_856
    print(
        f"\nTopologyEncoder parameters: {total:,} vs paper Table 7 {PAPER_PARAMS:,.0f} "
        f"({total - PAPER_PARAMS:+,.0f}, {100 * (total / PAPER_PARAMS - 1):+.1f} %); breakdown {parts}"
    )


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_ablation_parameter_counts(name: str) -> None:
    kw = ABLATIONS[name]
    enc = TopologyEncoder(**kw)
    self_on = kw.get("self_attention", True) and kw.get("hierarchical", True)
    cross_on = kw.get("cross_attention", True) and kw.get("hierarchical", True)
    parts = expected_params(self_attn=self_on, cross=cross_on)
    assert n_params(enc) == sum(parts.values())
    print(f"\n{name}: {n_params(enc):,} parameters")


# --- invariances and masking --------------------------------------------------------------------------


@pytest.mark.parametrize("dim", ["h0", "h1"])
def test_permutation_invariance_within_dimension(encoder: TopologyEncoder, dim: str) -> None:
    view = make_view(4, seed=3)
    g = torch.Generator().manual_seed(7)
    permuted = dict(view)
    pd = view[f"pd_{dim}"].clone()
    for i, n in enumerate(view[f"n_{dim}"].tolist()):
        perm = torch.randperm(n, generator=g)
        if torch.equal(perm, torch.arange(n)):
            perm = perm.flip(0)  # make sure the rows really move
        pd[i, :n] = pd[i, perm]
    permuted[f"pd_{dim}"] = pd
    with torch.no_grad():
        torch.testing.assert_close(encoder(permuted), encoder(view), atol=1e-5, rtol=0)


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_padding_content_does_not_matter(encoder: TopologyEncoder, grad: bool) -> None:
    # no_grad + eval takes nn.MultiheadAttention's fused fast path; grad mode takes the regular one.
    view = make_view(4, seed=5)
    with torch.set_grad_enabled(grad):
        out = encoder(view)
        out2 = encoder(repad(view))
    assert torch.isfinite(out2).all()
    torch.testing.assert_close(out2, out, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_more_padding_slots_do_not_matter(name: str) -> None:
    torch.manual_seed(0)
    enc = TopologyEncoder(k0=12, k1=20, width=64, heads=4, **ABLATIONS[name]).eval()
    wider = TopologyEncoder(k0=15, k1=27, width=64, heads=4, **ABLATIONS[name]).eval()
    wider.load_state_dict(enc.state_dict())  # weights do not depend on k0 / k1
    view = make_view(5, k0=12, k1=20, n0=[12, 1, 5, 0, 3], n1=[20, 4, 0, 9, 1], seed=11)
    with torch.no_grad():
        out = enc(view)
        out_wider = wider(repad(view, extra0=3, extra1=7))
    torch.testing.assert_close(out_wider, out, atol=1e-5, rtol=0)


def test_empty_dimensions_give_finite_output_and_gradients() -> None:
    torch.manual_seed(0)
    enc = TopologyEncoder(k0=8, k1=10, width=32, heads=4).train()
    view = make_view(4, k0=8, k1=10, n0=[0, 3, 0, 8], n1=[5, 0, 0, 10], seed=2)
    out = enc(view)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # With both dimensions empty only the (constant) projection of zero pools is left, whatever the padding.
    with torch.no_grad():
        torch.testing.assert_close(enc(repad(view))[2], out[2].detach(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_attention_over_no_valid_key_is_zero_not_nan(grad: bool) -> None:
    # In eval + no_grad, nn.MultiheadAttention's fast path returns NaN for a fully masked key set
    # (torch 2.14); the helper must return zeros there and the ordinary result elsewhere.
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    nn.init.normal_(mha.out_proj.bias)
    x = torch.randn(2, 3, 8)
    valid = torch.tensor([[False, False, False], [True, False, True]])
    with torch.set_grad_enabled(grad):
        out = _masked_attention(mha, x, x, valid)
        ref, _ = mha(x, x, x, key_padding_mask=~valid, need_weights=False)
    assert torch.isfinite(out).all()
    assert torch.equal(out[0], torch.zeros(3, 8))
    torch.testing.assert_close(out[1], ref[1], atol=1e-6, rtol=0)


def test_bad_inputs_raise_value_error(encoder: TopologyEncoder) -> None:
    view = make_view(2)
    with pytest.raises(ValueError, match="n_h0"):
        encoder({**view, "n_h0": torch.tensor([49, 1])})
    with pytest.raises(ValueError, match="n_h1"):
        encoder({**view, "n_h1": torch.tensor([-1, 1])})
    with pytest.raises(ValueError, match=r"\(2, 48, 2\)"):
        encoder({**view, "pd_h0": torch.zeros(2, 47, 2)})
    with pytest.raises(ValueError, match="pd_h1"):
        encoder({k: v for k, v in view.items() if k != "pd_h1"})
    with pytest.raises(ValueError, match="divisible"):
        TopologyEncoder(width=30, heads=4)
    with pytest.raises(ValueError, match="k0"):
        TopologyEncoder(k0=0)


# --- gradients ----------------------------------------------------------------------------------------


def _assert_attention_trains(mha: nn.MultiheadAttention, label: str) -> None:
    w = mha.in_proj_weight.grad
    assert w is not None, label
    d = mha.embed_dim
    for part, sl in (("q", slice(0, d)), ("k", slice(d, 2 * d)), ("v", slice(2 * d, 3 * d))):
        assert w[sl].abs().sum() > 0, f"{label}: no gradient on the {part} projection"
    assert mha.out_proj.weight.grad.abs().sum() > 0, label


def test_every_attention_direction_receives_gradient() -> None:
    torch.manual_seed(0)
    enc = TopologyEncoder(k0=10, k1=12, width=32, heads=4).train()
    view = make_view(3, k0=10, k1=12, seed=4)
    (enc(view) * torch.randn(3, 256)).sum().backward()
    assert enc.self_attn is not None and enc.cross_attn is not None and enc.alpha is not None
    _assert_attention_trains(enc.self_attn["h0"], "self H0")
    _assert_attention_trains(enc.self_attn["h1"], "self H1")
    _assert_attention_trains(enc.cross_attn["h0_queries_h1"], "cross H0->H1")
    _assert_attention_trains(enc.cross_attn["h1_queries_h0"], "cross H1->H0")
    assert (enc.alpha.grad != 0).all()
    for name, p in enc.named_parameters():
        assert p.grad is not None, name


# --- ablations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_ablation_removes_component(name: str) -> None:
    enc = TopologyEncoder(k0=6, k1=9, width=32, heads=4, **ABLATIONS[name])
    keys = set(enc.state_dict())
    has_self = any(k.startswith("self_attn.") for k in keys) or "alpha" in keys
    has_cross = any(k.startswith("cross_attn.") for k in keys)
    expect_self = name in ("full", "no_cross")
    expect_cross = name in ("full", "no_self")
    assert has_self == expect_self
    assert has_cross == expect_cross
    assert (enc.self_attn is not None) == expect_self and (enc.alpha is not None) == expect_self
    assert (enc.cross_attn is not None) == expect_cross
    assert enc.proj[0].in_features == (3 if expect_cross else 2) * 2 * 32
    out = enc(make_view(2, k0=6, k1=9))
    assert out.shape == (2, 256) and torch.isfinite(out).all()


def test_hierarchical_false_is_both_attentions_off() -> None:
    a = TopologyEncoder(hierarchical=False)
    b = TopologyEncoder(self_attention=False, cross_attention=False)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


def test_self_attention_ablation_is_exactly_alpha_zero() -> None:
    # The ablated model equals the full one with the self-attention residual switched off, and differs
    # from it otherwise: the flag removes exactly that component.
    torch.manual_seed(0)
    full = TopologyEncoder(k0=8, k1=10, width=32, heads=4).eval()
    ablated = TopologyEncoder(k0=8, k1=10, width=32, heads=4, self_attention=False).eval()
    missing, unexpected = ablated.load_state_dict(full.state_dict(), strict=False)
    assert not missing and unexpected and all(k.startswith("self_attn.") or k == "alpha" for k in unexpected)
    view = make_view(3, k0=8, k1=10, seed=9)
    with torch.no_grad():
        out_full = full(view)
        out_ablated = ablated(view)
        assert (out_full - out_ablated).abs().max() > 1e-4
        full.alpha.zero_()
        torch.testing.assert_close(full(view), out_ablated, atol=1e-5, rtol=0)


def test_cross_attention_ablation_changes_output() -> None:
    # Without cross-attention the pooled vector loses its third set; with it, perturbing either cross
    # direction moves the output (so both are really used).
    torch.manual_seed(0)
    full = TopologyEncoder(k0=8, k1=10, width=32, heads=4).eval()
    view = make_view(3, k0=8, k1=10, seed=9)
    with torch.no_grad():
        ref = full(view)
        for direction in ("h0_queries_h1", "h1_queries_h0"):
            mha = full.cross_attn[direction]
            saved = mha.out_proj.weight.clone()
            mha.out_proj.weight.add_(0.5)
            assert (full(view) - ref).abs().max() > 1e-4, direction
            mha.out_proj.weight.copy_(saved)
    ablated = TopologyEncoder(k0=8, k1=10, width=32, heads=4, cross_attention=False)
    assert ablated.proj[0].in_features == 4 * 32


# --- pooling: the paper's max + mean is count-blind, the sum ablation is not --------------------------


def _doubled(view: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every valid point twice: the same point set at twice the count (padding stays at the end)."""
    out = dict(view)
    for key, nkey in (("pd_h0", "n_h0"), ("pd_h1", "n_h1")):
        n = int(view[nkey][0])
        pts = view[key][:, :n]
        k = view[key].shape[1]
        out[key] = torch.cat([pts, pts, torch.zeros(1, k - 2 * n, 2)], dim=1)
        out[nkey] = view[nkey] * 2
    return out


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_max_mean_cannot_count_and_the_sum_pooling_can(name: str) -> None:
    view = make_view(1, k0=16, k1=24, n0=[5], n1=[7], seed=3)
    doubled = _doubled(view)
    torch.manual_seed(0)
    paper = TopologyEncoder(k0=16, k1=24, width=32, heads=4, **ABLATIONS[name]).eval()
    torch.manual_seed(0)
    counting = TopologyEncoder(k0=16, k1=24, width=32, heads=4, pooling="max+mean+sum", **ABLATIONS[name]).eval()
    assert counting.pooled_dim == paper.pooled_dim * 3 // 2
    with torch.no_grad():
        # Attention over duplicated keys gives the same weights per distinct point, max and mean are unchanged:
        # the paper's encoder maps a diagram and the same diagram at twice the count to one embedding.
        torch.testing.assert_close(paper(doubled), paper(view), atol=1e-5, rtol=0)
        gap = (counting(doubled) - counting(view)).abs().max()
    assert gap > 1e-3


def test_unknown_pooling_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown pooling 'sum'"):
        TopologyEncoder(pooling="sum")
