"""The visual encoder: a timm backbone that reads ``view["image"]`` (or a plain image tensor)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn


class VisualEncoder(nn.Module):
    """A timm model without its classifier, mapping ``view["image"] (B, C, H, W) float`` to ``(B, feat_dim)``.

    Args:
        name: timm model name (``resnet50`` as in the paper; ``resnet18`` for CPU work).
        in_chans: input channels (1 for grey stores, 3 for RGB).
        small_input: replace a ResNet's 7×7/2 stem and max-pool with a 3×3/1 convolution, as SSL libraries do for
            CIFAR-sized inputs; without it a 28² image is reduced to a single pixel before the first block.
        weights: a local state-dict file to start from (never downloaded).

    Raises:
        ValueError: ``small_input`` asked for a model without a ResNet stem.

    Examples:
        >>> enc = VisualEncoder("resnet18", in_chans=1, small_input=True)
        >>> enc({"image": torch.zeros(2, 1, 28, 28)}).shape
        torch.Size([2, 512])
        >>> enc(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 512])
    """

    def __init__(
        self, name: str = "resnet50", *, in_chans: int = 3, small_input: bool = False, weights: str | Path | None = None
    ) -> None:
        super().__init__()
        self.name, self.small_input = name, small_input
        # timm models carry model-specific attributes (conv1, num_features) that nn.Module does not declare.
        net: Any = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans)
        if small_input:
            if not (hasattr(net, "conv1") and hasattr(net, "maxpool")):
                raise ValueError(f"small_input needs a ResNet-style stem (conv1 + maxpool); {name} has none")
            out_ch = net.conv1.out_channels
            net.conv1 = nn.Conv2d(in_chans, out_ch, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        if weights is not None:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        self.net = net
        self.feat_dim: int = int(net.num_features)

    def forward(self, view: Mapping[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Features of ``view["image"]``, or of a plain image tensor (what timm and tracing tools pass)."""
        return self.net(view if isinstance(view, torch.Tensor) else view["image"])
