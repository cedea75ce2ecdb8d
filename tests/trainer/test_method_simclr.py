"""SimCLR method: training on a fixed batch lowers the loss; view-agnostic; registry and config errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from topo.trainer.methods import METHODS, MethodOutput, SimCLR, SimCLRConfig, build_method

torch.set_num_threads(1)

FEAT = 16
SMALL = {"proj_hidden_dim": 32, "proj_dim": 8}


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
            summed = (self.phi(points) * mask[..., None]).sum(dim=1)
            pooled.append(summed / counts.clamp(min=1)[:, None])
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
    method = build_method("simclr", TinyConvNet(), FEAT, **SMALL)
    losses = train(method, *image_views(), steps=20)
    assert sum(losses[-3:]) / 3 < 0.9 * losses[0]


def test_output_contract() -> None:
    torch.manual_seed(0)
    method = SimCLR(TinyConvNet(), FEAT, SimCLRConfig(**SMALL))
    v1, v2 = image_views(batch=6)
    out = method(v1, v2)
    assert isinstance(out, MethodOutput)
    assert out.loss.ndim == 0 and out.loss.requires_grad
    assert out.features.shape == (6, FEAT) and not out.features.requires_grad
    torch.testing.assert_close(out.features, method.encoder(v1))
    assert "metrics" not in vars(out)  # converted lazily: a step that does not log pays no device sync
    assert set(out.metrics) == {"loss", "pos_cos"}
    assert all(isinstance(v, float) for v in out.metrics.values())
    assert out.metrics["loss"] == pytest.approx(float(out.loss.detach()))
    assert method.encoder is method.backbone


def test_topology_views_are_passed_through_untouched() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    method = build_method("simclr", TinyDiagramNet(), FEAT, **SMALL)
    out = method(diagram_view(5, g), diagram_view(5, g))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None for p in method.backbone.parameters())


def test_timm_resnet_backbone() -> None:
    timm = pytest.importorskip("timm")

    class TimmImage(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = timm.create_model("resnet18", pretrained=False, num_classes=0)

        def forward(self, view: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.model(view["image"])

    torch.manual_seed(0)
    backbone = TimmImage()
    method = build_method("simclr", backbone, backbone.model.num_features, **SMALL)
    out = method(*image_views(batch=4))
    out.loss.backward()
    assert out.features.shape == (4, 512)
    assert backbone.model.conv1.weight.grad is not None


def test_wrong_feat_dim_is_reported() -> None:
    method = build_method("simclr", TinyConvNet(), FEAT + 1, **SMALL)
    with pytest.raises(ValueError, match=rf"expected \(B, {FEAT + 1}\)"):
        method(*image_views())


def test_registry() -> None:
    assert set(METHODS) == {"simclr", "mocov3", "byol", "dino", "barlow"}
    assert all(cls.name == name for name, cls in METHODS.items())
    method = build_method("simclr", TinyConvNet(), FEAT, temperature=0.3, proj_batchnorm=False, **SMALL)
    assert isinstance(method, SimCLR)
    assert method.cfg == SimCLRConfig(temperature=0.3, proj_batchnorm=False, **SMALL)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in method.projector.modules())


def test_config_defaults() -> None:
    cfg = SimCLRConfig()
    assert (cfg.proj_hidden_dim, cfg.proj_dim, cfg.temperature, cfg.proj_batchnorm) == (2048, 128, 0.1, True)


def test_registry_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown method 'simclrr'.*'barlow'.*'simclr'"):
        build_method("simclrr", TinyConvNet(), FEAT)
    with pytest.raises(ValueError, match=r"\['temp'\].*valid keys.*'temperature'"):
        build_method("simclr", TinyConvNet(), FEAT, temp=0.2)
    with pytest.raises(ValueError, match=r"temperature must be > 0, got 0\.0"):
        build_method("simclr", TinyConvNet(), FEAT, temperature=0.0)
    with pytest.raises(ValueError, match="feat_dim"):
        build_method("simclr", TinyConvNet(), 0)
