"""A minimal plain-torch SimCLR, deliberately independent of the project's trainer (nothing imported from topo).

Recipe: ResNet-18 (timm, random init), two views of RandomResizedCrop(scale 0.2–1) + horizontal flip + brightness /
contrast jitter 0.4 + Gaussian noise σ 0.03, projector 512 → 512 → 128 (BN + ReLU in the hidden layer), NT-Xent
τ 0.2, AdamW lr 1e-3 wd 1e-4 constant, batch 128 (last partial batch dropped). Pixels are scaled to [0, 1] and
normalised with mean 0.5, std 0.25. Features for the probe are the encoder's pooled 512-d output of the
un-augmented images.

    python bench/reference_simclr.py --npz data/breastmnist.npz --epochs 15 --seed 0 --out ref_features.npz
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn


def load_npz(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (images uint8 (N, C, H, W), labels (N,))}`` from a MedMNIST-layout npz."""
    d = np.load(path, allow_pickle=False)
    out = {}
    for split in ("train", "val", "test"):
        x = d[f"{split}_images"]
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        out[split] = (x, d[f"{split}_labels"].reshape(-1).astype(np.int64))
    return out


def encoder(in_chans: int, small_stem: bool) -> nn.Module:
    net = timm.create_model("resnet18", pretrained=False, num_classes=0, in_chans=in_chans)
    if small_stem:  # 3×3/1 stem, no max-pool: the usual choice for 32²-sized inputs
        net.conv1 = nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
    return net


def random_resized_crop(img: torch.Tensor, g: torch.Generator, scale=(0.2, 1.0)) -> torch.Tensor:
    """One image (C, H, W) → a crop of area fraction in ``scale``, aspect in [3/4, 4/3], resized to (H, W)."""
    _, h, w = img.shape
    for _ in range(10):
        area = h * w * (scale[0] + (scale[1] - scale[0]) * torch.rand(1, generator=g).item())
        ratio = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * torch.rand(1, generator=g).item())
        cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            x0 = int(torch.randint(0, w - cw + 1, (1,), generator=g))
            y0 = int(torch.randint(0, h - ch + 1, (1,), generator=g))
            crop = img[:, y0 : y0 + ch, x0 : x0 + cw]
            return F.interpolate(crop[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    return img


def view(batch: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """float [0, 1] (B, C, H, W) → one augmented, normalised view."""
    out = []
    for img in batch:
        x = random_resized_crop(img, g)
        if torch.rand(1, generator=g) < 0.5:
            x = x.flip(-1)
        b = 0.6 + 0.8 * torch.rand(1, generator=g).item()
        c = 0.6 + 0.8 * torch.rand(1, generator=g).item()
        x = (x * b).clamp(0, 1)
        x = ((x - x.mean()) * c + x.mean()).clamp(0, 1)
        x = (x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1)
        out.append(x)
    return (torch.stack(out) - 0.5) / 0.25


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float = 0.2) -> torch.Tensor:
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / tau
    n = z1.shape[0]
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


@torch.no_grad()
def features(enc: nn.Module, x: np.ndarray) -> np.ndarray:
    enc.eval()
    out = [enc((torch.from_numpy(x[i : i + 256]).float() / 255 - 0.5) / 0.25) for i in range(0, len(x), 256)]
    return torch.cat(out).numpy()


def train(npz: str, *, epochs: int, seed: int, small_stem: bool, batch: int = 128) -> tuple[dict, float]:
    """Train, then return ``{split: (features, labels)}`` and the training wall time in seconds."""
    torch.manual_seed(seed)
    data = load_npz(npz)
    x_train = torch.from_numpy(data["train"][0]).float() / 255
    enc = encoder(x_train.shape[1], small_stem)
    proj = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Linear(512, 128))
    opt = torch.optim.AdamW([*enc.parameters(), *proj.parameters()], lr=1e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        enc.train()
        proj.train()
        order = torch.randperm(len(x_train), generator=g)
        losses = []
        for i in range(len(x_train) // batch):
            xb = x_train[order[i * batch : (i + 1) * batch]]
            loss = nt_xent(proj(enc(view(xb, g))), proj(enc(view(xb, g))))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        print(f"reference epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f}", flush=True)
    wall = time.perf_counter() - t0
    return {s: (features(enc, x), y) for s, (x, y) in data.items()}, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", required=True)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--small-stem", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--out", required=True, help="features .npz ({split}_x, {split}_y)")
    a = ap.parse_args()
    feats, wall = train(a.npz, epochs=a.epochs, seed=a.seed, small_stem=a.small_stem)
    np.savez(a.out, **{f"{s}_x": x for s, (x, _) in feats.items()}, **{f"{s}_y": y for s, (_, y) in feats.items()})
    print(f"reference SimCLR: {a.epochs} epochs in {wall:.0f} s -> {a.out}")


if __name__ == "__main__":
    main()
