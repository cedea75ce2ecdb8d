"""Shared by the five method test files: tiny backbones, views, and a fixed-batch training loop."""

from __future__ import annotations

import torch
from torch import nn

FEAT = 16  # the feature size both tiny backbones emit; each test file passes it on to ``build_method``


class TinyConvNet(nn.Module):
    """Visual backbone: ``{"image": (B, 3, 16, 16)}`` to ``(B, FEAT)``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(16, FEAT),
        )

    def forward(self, view: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(view["image"])


class TinyDiagramNet(nn.Module):
    """Topology backbone: padded persistence diagrams with counts to ``(B, FEAT)`` (masked DeepSets)."""

    def __init__(self) -> None:
        super().__init__()
        self.phi = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16))
        self.rho = nn.Linear(32, FEAT)

    def forward(self, view: dict[str, torch.Tensor]) -> torch.Tensor:
        pooled = []
        for dim in ("h0", "h1"):
            points, counts = view[f"pd_{dim}"], view[f"n_{dim}"]
            mask = torch.arange(points.shape[1]) < counts[:, None]
            pooled.append((self.phi(points) * mask[..., None]).sum(dim=1) / counts.clamp(min=1)[:, None])
        return self.rho(torch.cat(pooled, dim=1))


class NoPeekView(dict):
    """A view the method may pass on but not inspect: only ``view[key]`` (the backbone's access) works."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("the method looked inside the view")

    __iter__ = __len__ = keys = values = items = get = _refuse  # type: ignore[assignment]


def image_views(batch: int = 8, seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, 16, 16, generator=g)
    v1 = x + 0.1 * torch.randn(x.shape, generator=g)
    v2 = x.flip(-1) + 0.1 * torch.randn(x.shape, generator=g)
    return {"image": v1}, {"image": v2}


def diagram_view(batch: int, g: torch.Generator) -> NoPeekView:
    return NoPeekView(
        pd_h0=torch.rand(batch, 48, 2, generator=g),
        n_h0=torch.randint(1, 48, (batch,), generator=g),
        pd_h1=torch.rand(batch, 96, 2, generator=g),
        n_h1=torch.randint(0, 96, (batch,), generator=g),
    )


def train(method: nn.Module, v1: dict, v2: dict, steps: int, lr: float = 1e-3) -> list[float]:
    opt = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=lr)
    losses = []
    for step in range(steps):
        out = method(v1, v2)
        opt.zero_grad()
        out.loss.backward()
        method.before_optimizer_step(step, steps)
        opt.step()
        method.on_step_end(step, steps)
        losses.append(out.metrics["loss"])
    return losses
