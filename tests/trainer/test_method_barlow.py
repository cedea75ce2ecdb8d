"""Barlow Twins method: loss decreases on a fixed batch, λ options, view-agnostic, registry errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from topo.trainer.losses import barlow_twins_loss
from topo.trainer.methods import BarlowTwins, BarlowTwinsConfig, build_method

torch.set_num_threads(1)

FEAT = 16
SMALL = {"proj_hidden_dim": 32, "proj_dim": 16}


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
        opt.step()
        method.on_step_end(step, steps)
        losses.append(out.metrics["loss"])
    return losses


def test_loss_decreases_on_fixed_batch() -> None:
    torch.manual_seed(0)
    method = build_method("barlow", TinyConvNet(), FEAT, **SMALL)
    losses = train(method, *image_views(), steps=20)
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0]


def test_projector_shape_and_loss_wiring() -> None:
    torch.manual_seed(0)
    method = build_method("barlow", TinyConvNet(), FEAT, **SMALL)
    linears = [m for m in method.projector if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(FEAT, 32), (32, 32), (32, 16)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in method.projector) == 2
    v1, v2 = image_views()
    out = method(v1, v2)
    with torch.no_grad():
        expected = barlow_twins_loss(
            method.projector(method.backbone(v1)), method.projector(method.backbone(v2)), lambd=0.0051
        )
    torch.testing.assert_close(out.loss.detach(), expected)
    assert set(out.metrics) == {"loss"} and out.features.shape == (8, FEAT)
    method.on_step_end(0, 10)  # no momentum encoder: a no-op that must not fail


def test_lambda_none_means_one_over_proj_dim() -> None:
    assert BarlowTwinsConfig(proj_dim=64, lambd=None).effective_lambda == pytest.approx(1 / 64)
    assert BarlowTwinsConfig().effective_lambda == 0.0051
    torch.manual_seed(0)
    method = build_method("barlow", TinyConvNet(), FEAT, lambd=None, **SMALL)
    v1, v2 = image_views()
    out = method(v1, v2)
    with torch.no_grad():
        z1, z2 = method.projector(method.backbone(v1)), method.projector(method.backbone(v2))
    torch.testing.assert_close(out.loss.detach(), barlow_twins_loss(z1, z2, lambd=1 / 16))


def test_topology_views() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    method = build_method("barlow", TinyDiagramNet(), FEAT, **SMALL)
    out = method(diagram_view(6, g), diagram_view(6, g))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None for p in method.backbone.parameters())


def test_registry_and_config_errors() -> None:
    method = build_method("barlow", TinyConvNet(), FEAT, proj_batchnorm=False, **SMALL)
    assert isinstance(method, BarlowTwins)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in method.projector)
    cfg = BarlowTwinsConfig()
    assert (cfg.proj_hidden_dim, cfg.proj_dim, cfg.lambd, cfg.proj_batchnorm) == (2048, 2048, 0.0051, True)
    with pytest.raises(ValueError, match=r"\['lambda'\].*valid keys.*'lambd'"):
        build_method("barlow", TinyConvNet(), FEAT, **{"lambda": 0.1})
    with pytest.raises(ValueError, match=r"lambd must be >= 0 or None.*got -1"):
        build_method("barlow", TinyConvNet(), FEAT, lambd=-1)
    with pytest.raises(ValueError, match="at least 2 samples, got 1"):
        build_method("barlow", TinyConvNet(), FEAT, **SMALL).eval()(*image_views(batch=1))
