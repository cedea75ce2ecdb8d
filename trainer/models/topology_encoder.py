"""Hierarchical topology encoder of TopoCL (2026): persistence diagrams -> a 256-d topology embedding.

The encoder follows the paper's description, not the authors' released code:

1. The top-``k0`` H0 and top-``k1`` H1 ``(birth, death)`` pairs are extended with a one-hot homology
   dimension, giving ``k0 + k1`` points of 4 values ``(birth, death, is_h0, is_h1)``.
2. One point-wise MLP ``4 -> 64 -> 128 -> 256 -> width``, shared by the H0 and H1 points (PointNet-like).
3. Self-attention inside each homology dimension with a learned weighted residual
   ``x + alpha_d * attn_d(x)`` (one scalar ``alpha`` per dimension).
4. Bidirectional cross-attention: H0 queries H1 and H1 queries H0; both outputs are kept and
   concatenated along the point axis into one "cross" set of ``k0 + k1`` points.
5. Max and mean pooling of the three sets (H0, H1, cross) -> ``6 * width`` values.
6. Projection MLP ``6 * width -> 768 -> 512 -> out_dim``.

Max and mean cannot count: on a set whose label is the number of long H1 pairs among many short ones, only the
*fraction* of long pairs reaches the projection (bench/RESULTS.md, "Synthetic Betti-number set").
``pooling="max+mean+sum"`` (an ablation, not the paper's) adds a third pooling, the sum over valid points divided
by the number of slots ``k``, which grows with the count.

Padding rows (past ``n_h0`` / ``n_h1``) are zeroed on input, masked as keys in every attention and
masked in both poolings, so the output depends neither on their content nor on how many there are.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from topo.trainer.models.mlp import mlp

__all__ = ["POOLINGS", "TopologyEncoder"]

#: Set poolings: the paper's max + mean, and the count-aware ablation that adds a slot-normalised sum.
POOLINGS: tuple[str, ...] = ("max+mean", "max+mean+sum")

# Hidden widths fixed by the paper; only the last point-MLP width (``width``) and the output are tunable.
_POINT_HIDDEN = (64, 128, 256)
_PROJ_HIDDEN = (768, 512)
# Small but non-zero: the encoder starts close to the plain PointNet features (stable early training),
# while the attention weights still receive gradient from the first step (alpha = 0 would stall them).
_ALPHA_INIT = 0.1


def _masked_attention(mha: nn.Module, query: Tensor, kv: Tensor, key_valid: Tensor) -> Tensor:
    """Attention of ``query`` over the valid rows of ``kv``; zero output where no key is valid.

    Args:
        mha: A ``batch_first`` multi-head attention module.
        query: Queries, shape ``(B, Nq, C)``.
        kv: Keys and values, shape ``(B, Nk, C)``.
        key_valid: Boolean mask of the valid keys, shape ``(B, Nk)``.

    Returns:
        Attention output, shape ``(B, Nq, C)``; all zeros for the samples with no valid key.
    """
    empty = ~key_valid.any(dim=1)
    key_padding_mask = ~key_valid
    # A softmax over keys that are all masked is 0/0 = NaN (and NaN gradients). Such samples are given one
    # (padding) key so everything stays finite, and their output is replaced by zeros below, which is the
    # definition of "attending to an empty set" that the poolings also use.
    key_padding_mask = torch.cat([key_padding_mask[:, :1] & ~empty[:, None], key_padding_mask[:, 1:]], dim=1)
    out, _ = mha(query, kv, kv, key_padding_mask=key_padding_mask, need_weights=False)
    return out.masked_fill(empty[:, None, None], 0.0)


def _masked_max_mean(x: Tensor, valid: Tensor, with_sum: bool = False) -> Tensor:
    """Max and mean (and, with ``with_sum``, sum / N) over the valid rows of a padded set; zeros for an empty set.

    Args:
        x: Point features, shape ``(B, N, C)``.
        valid: Boolean mask of the valid rows, shape ``(B, N)``.
        with_sum: Also the sum over valid rows divided by the slot count ``N`` (a constant, so it keeps the count).

    Returns:
        ``[max, mean]`` (or ``[max, mean, sum / N]``) concatenated, shape ``(B, 2 * C)`` (or ``(B, 3 * C)``).
    """
    v = valid[..., None]
    count = valid.sum(dim=1, keepdim=True)
    # masked_fill (not multiplication by the mask) so that even a non-finite padded row cannot leak in.
    mx = x.masked_fill(~v, float("-inf")).amax(dim=1)
    mx = mx.masked_fill(count == 0, 0.0)
    total = x.masked_fill(~v, 0.0).sum(dim=1)
    mean = total / count.clamp(min=1).to(x.dtype)
    parts = [mx, mean, total / x.shape[1]] if with_sum else [mx, mean]
    return torch.cat(parts, dim=-1)


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class TopologyEncoder(nn.Module):
    """Hierarchical topology encoder: zero-padded H0/H1 persistence diagrams -> ``(B, out_dim)``.

    Architecture (TopoCL, 2026, Sec. "Hierarchical topology encoder"; ablations of Table 5): a shared
    point-wise MLP ``4 -> 64 -> 128 -> 256 -> width`` on ``(birth, death, is_h0, is_h1)`` points,
    self-attention within H0 and within H1 with residual ``x + alpha * attn(x)``, bidirectional
    cross-attention (H0 -> H1 and H1 -> H0, both outputs used), max + mean pooling of the H0, H1 and
    cross sets (``6 * width``), and a projection MLP ``6 * width -> 768 -> 512 -> out_dim``. Hidden
    layers use ``LayerNorm`` + ReLU, which act per point, so padded rows cannot affect valid ones.

    With the defaults the encoder has 4,805,314 parameters (point MLP 142,016; 4 attentions of
    591,360 each; 2 alphas; projection 2,297,856); Table 7 of the paper lists 3.83 M.

    Ablations (paper's Table 5): ``self_attention=False`` removes the two self-attention blocks and their
    ``alpha``; ``cross_attention=False`` removes both cross-attention blocks and the cross set, so the
    pooled vector is ``4 * width`` wide; ``hierarchical=False`` removes both (MLP + pooling of H0 and H1).

    Empty diagrams are allowed: an empty set pools to zeros, and cross-attention rows whose other
    dimension is empty (no keys) are dropped from the cross set.

    Args:
        k0: Number of H0 slots the diagrams are padded to (``view["pd_h0"].shape[1]``).
        k1: Number of H1 slots (``view["pd_h1"].shape[1]``).
        width: Width of the point features and of every attention.
        heads: Number of attention heads; must divide ``width``.
        out_dim: Output embedding width; also exposed as ``feat_dim``.
        self_attention: Keep the per-dimension self-attention (Table 5 "w/o self-attention" when false).
        cross_attention: Keep the bidirectional cross-attention (Table 5 "w/o cross-attention" when false).
        hierarchical: Shortcut; ``False`` turns both attentions off whatever the two flags above say
            (Table 5 "w/o hierarchical attention").
        pooling: ``"max+mean"`` (the paper's) or ``"max+mean+sum"`` (count-aware ablation; the pooled vector is
            then ``9 * width`` wide, ``6 * width`` without cross-attention).

    Raises:
        ValueError: If a size is not a positive integer, ``width`` is not divisible by ``heads`` or ``pooling``
            is unknown.

    Examples:
        >>> import torch
        >>> enc = TopologyEncoder()
        >>> view = {
        ...     "pd_h0": torch.rand(2, 48, 2), "n_h0": torch.tensor([48, 5]),
        ...     "pd_h1": torch.rand(2, 96, 2), "n_h1": torch.tensor([10, 0]),
        ... }
        >>> enc(view).shape
        torch.Size([2, 256])
        >>> enc.feat_dim
        256
        >>> TopologyEncoder(hierarchical=False)(view).shape
        torch.Size([2, 256])
    """

    def __init__(
        self,
        *,
        k0: int = 48,
        k1: int = 96,
        width: int = 384,
        heads: int = 4,
        out_dim: int = 256,
        self_attention: bool = True,
        cross_attention: bool = True,
        hierarchical: bool = True,
        pooling: str = "max+mean",
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        for name, value in (("k0", k0), ("k1", k1), ("width", width), ("heads", heads), ("out_dim", out_dim)):
            _check_positive_int(name, value)
        if width % heads != 0:
            raise ValueError(f"width must be divisible by heads, got width={width}, heads={heads}")
        self.k0 = k0
        self.k1 = k1
        self.width = width
        self.feat_dim = out_dim
        self.use_self_attention = bool(hierarchical and self_attention)
        self.use_cross_attention = bool(hierarchical and cross_attention)

        self.point_mlp = mlp([4, *_POINT_HIDDEN, width], norm=True, final_act=True)

        self.self_attn: nn.ModuleDict | None = None
        self.alpha: nn.Parameter | None
        if self.use_self_attention:
            self.self_attn = nn.ModuleDict(
                {d: nn.MultiheadAttention(width, heads, batch_first=True) for d in ("h0", "h1")}
            )
            # alpha[0] weighs the H0 residual, alpha[1] the H1 one.
            self.alpha = nn.Parameter(torch.full((2,), _ALPHA_INIT))
        else:
            self.register_parameter("alpha", None)

        self.cross_attn: nn.ModuleDict | None = None
        if self.use_cross_attention:
            self.cross_attn = nn.ModuleDict(
                {
                    "h0_queries_h1": nn.MultiheadAttention(width, heads, batch_first=True),
                    "h1_queries_h0": nn.MultiheadAttention(width, heads, batch_first=True),
                }
            )

        self.with_sum = pooling == "max+mean+sum"
        n_sets = 3 if self.use_cross_attention else 2
        self.pooled_dim = n_sets * (3 if self.with_sum else 2) * width
        self.proj = mlp([self.pooled_dim, *_PROJ_HIDDEN, out_dim], norm=True, final_act=False)

    def _read(self, view: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        missing = [key for key in ("pd_h0", "n_h0", "pd_h1", "n_h1") if key not in view]
        if missing:
            raise ValueError(f"view lacks {missing}; TopologyEncoder needs pd_h0, n_h0, pd_h1, n_h1")
        pd0, n0, pd1, n1 = view["pd_h0"], view["n_h0"], view["pd_h1"], view["n_h1"]
        b = pd0.shape[0]
        for name, pd, k in (("pd_h0", pd0, self.k0), ("pd_h1", pd1, self.k1)):
            if pd.ndim != 3 or pd.shape[0] != b or pd.shape[1] != k or pd.shape[2] != 2:
                raise ValueError(f"view[{name!r}] must have shape ({b}, {k}, 2), got {tuple(pd.shape)}")
        for name, n in (("n_h0", n0), ("n_h1", n1)):
            if n.shape != (b,):
                raise ValueError(f"view[{name!r}] must have shape ({b},), got {tuple(n.shape)}")
        n0, n1 = n0.long(), n1.long()
        # One host sync per batch for a readable error instead of silent garbage; skipped under
        # torch.compile to avoid a graph break.
        if not torch.compiler.is_compiling():
            bad = torch.stack([((n0 < 0) | (n0 > self.k0)).any(), ((n1 < 0) | (n1 > self.k1)).any()])
            if bad.any():
                raise ValueError(
                    f"valid counts must lie in [0, k]: n_h0 in [0, {self.k0}], n_h1 in [0, {self.k1}], "
                    f"got n_h0={n0.tolist()}, n_h1={n1.tolist()}"
                )
        return pd0, n0, pd1, n1

    def _embed(self, pd: Tensor, valid: Tensor, dim: int) -> Tensor:
        """Point-wise MLP of ``(birth, death, one-hot dim)``; padded rows are zeroed before the MLP."""
        onehot = pd.new_zeros(*pd.shape[:2], 2)
        onehot[..., dim] = 1.0
        points = torch.cat([pd, onehot], dim=-1).masked_fill(~valid[..., None], 0.0)
        return self.point_mlp(points)

    def forward(self, view: Mapping[str, Tensor]) -> Tensor:
        """Encode a batch of diagrams.

        Args:
            view: Mapping with ``"pd_h0"`` ``(B, k0, 2)`` float (birth, death), ``"n_h0"`` ``(B,)`` int valid
                H0 counts, ``"pd_h1"`` ``(B, k1, 2)`` float and ``"n_h1"`` ``(B,)`` int. Rows past the counts
                are padding and are ignored. Other keys (e.g. ``"image"``) are ignored.

        Returns:
            Topology embedding, shape ``(B, out_dim)``.

        Raises:
            ValueError: If a key is missing, a shape does not match ``k0`` / ``k1``, or a count is outside
                ``[0, k]``.
        """
        pd0, n0, pd1, n1 = self._read(view)
        valid0 = torch.arange(self.k0, device=pd0.device)[None, :] < n0[:, None]
        valid1 = torch.arange(self.k1, device=pd1.device)[None, :] < n1[:, None]

        x0 = self._embed(pd0, valid0, 0)
        x1 = self._embed(pd1, valid1, 1)

        if self.self_attn is not None:
            assert self.alpha is not None
            x0 = x0 + self.alpha[0] * _masked_attention(self.self_attn["h0"], x0, x0, valid0)
            x1 = x1 + self.alpha[1] * _masked_attention(self.self_attn["h1"], x1, x1, valid1)

        pooled = [_masked_max_mean(x0, valid0, self.with_sum), _masked_max_mean(x1, valid1, self.with_sum)]

        if self.cross_attn is not None:
            c0 = _masked_attention(self.cross_attn["h0_queries_h1"], x0, x1, valid1)
            c1 = _masked_attention(self.cross_attn["h1_queries_h0"], x1, x0, valid0)
            # A query whose other dimension is empty attended to nothing; it is left out of the cross set
            # rather than pooled as a zero vector, so the set is empty when either dimension is empty.
            has0, has1 = valid0.any(dim=1, keepdim=True), valid1.any(dim=1, keepdim=True)
            cross_valid = torch.cat([valid0 & has1, valid1 & has0], dim=1)
            pooled.append(_masked_max_mean(torch.cat([c0, c1], dim=1), cross_valid, self.with_sum))

        return self.proj(torch.cat(pooled, dim=-1))
