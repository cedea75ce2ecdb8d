"""Standard visual augmentations as batched tensor operations (on the training device).

Every sample of a batch draws its own parameters from a ``torch.Generator`` seeded by ``(seed, step, view)``, so a
resumed run applies exactly the augmentations an uninterrupted one would. The recipe is BYOL's asymmetric pair
(Grill et al. 2020), scaled to the image size: random resized crop, horizontal flip, colour jitter (brightness,
contrast, saturation), random grayscale, Gaussian blur (always on view 1, rarely on view 2) and solarisation
(view 2 only). Hue jitter is left out: most stores are grey, and the RGB ones are stained or dermoscopic images
whose hue carries the diagnosis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from topo.store_schema.filtration import BT601_LUMA

MEAN, STD = 0.5, 0.25
"""Fixed normalisation for any medical store (ImageNet statistics mean nothing for ultrasound or X-ray)."""


@dataclass(frozen=True)
class ViewRecipe:
    """Probabilities and strengths of one view's standard augmentations."""

    crop_scale: tuple[float, float] = (0.2, 1.0)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    grayscale_p: float = 0.2
    blur_p: float = 1.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # at 224²; scaled with the output size
    solarize_p: float = 0.0


VIEW1 = ViewRecipe(blur_p=1.0, solarize_p=0.0)
VIEW2 = ViewRecipe(blur_p=0.1, solarize_p=0.2)


def _u(g: torch.Generator, n: int, lo: float, hi: float, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def random_resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float], g: torch.Generator) -> torch.Tensor:
    """Per-sample crops (area fraction in ``scale``, aspect ratio in [3/4, 4/3]) resampled with ``roi_align``."""
    b, _, h, w = x.shape
    dev = x.device
    area = _u(g, b, *scale, dev) * h * w
    logr = _u(g, b, math.log(3 / 4), math.log(4 / 3), dev)
    ratio = torch.exp(logr)
    cw = torch.sqrt(area * ratio).clamp(1, w)
    ch = torch.sqrt(area / ratio).clamp(1, h)
    x0 = torch.rand(b, generator=g, device=dev) * (w - cw)
    y0 = torch.rand(b, generator=g, device=dev) * (h - ch)
    boxes = torch.stack([torch.arange(b, device=dev, dtype=x.dtype), x0, y0, x0 + cw, y0 + ch], dim=1)
    return roi_align(x, boxes.to(x.dtype), output_size=(size, size), spatial_scale=1.0, sampling_ratio=2, aligned=True)


def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    weights = torch.as_tensor(BT601_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x[:, :3] * weights).sum(dim=1, keepdim=True)


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with one sigma per sample (grouped convolution)."""
    b, c, h, w = x.shape
    radius = max(1, math.ceil(3 * float(sigma.max())))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t[None] ** 2) / (2 * sigma[:, None] ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (b*c, 2r+1)
    y = x.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), k[:, None, None, :], groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), k[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


def augment(images: torch.Tensor, recipe: ViewRecipe, *, size: int, generator: torch.Generator) -> torch.Tensor:
    """uint8 ``(B, C, H, W)`` → normalised float ``(B, C, size, size)`` with per-sample random parameters."""
    g, dev = generator, images.device
    x = images.float() / 255.0
    b = x.shape[0]
    x = random_resized_crop(x, size, recipe.crop_scale, g)
    flip = torch.rand(b, generator=g, device=dev) < recipe.flip_p
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    on = (torch.rand(b, generator=g, device=dev) < recipe.jitter_p)[:, None, None, None]
    fb = _u(g, b, 1 - recipe.brightness, 1 + recipe.brightness, dev)[:, None, None, None]
    fc = _u(g, b, 1 - recipe.contrast, 1 + recipe.contrast, dev)[:, None, None, None]
    fs = _u(g, b, 1 - recipe.saturation, 1 + recipe.saturation, dev)[:, None, None, None]
    j = (x * fb).clamp(0, 1)
    mean = _grey(j).mean(dim=(1, 2, 3), keepdim=True)
    j = ((j - mean) * fc + mean).clamp(0, 1)
    if x.shape[1] == 3:
        gr = _grey(j)
        j = ((j - gr) * fs + gr).clamp(0, 1)
        grey_on = (torch.rand(b, generator=g, device=dev) < recipe.grayscale_p)[:, None, None, None]
        j = torch.where(grey_on, _grey(j).expand_as(j), j)
    x = torch.where(on, j, x)
    scale = size / 224
    sigma = _u(g, b, recipe.blur_sigma[0] * scale, recipe.blur_sigma[1] * scale, dev).clamp_min(1e-3)
    blur_on = torch.rand(b, generator=g, device=dev) < recipe.blur_p
    if blur_on.any():
        x = torch.where(blur_on[:, None, None, None], _blur(x, sigma), x)
    sol = (torch.rand(b, generator=g, device=dev) < recipe.solarize_p)[:, None, None, None]
    x = torch.where(sol & (x >= 0.5), 1 - x, x)
    return (x - MEAN) / STD


def normalise(images: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """uint8 images → the encoder's input without augmentation (evaluation), resized if ``size`` differs."""
    x = images.float() / 255.0
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x - MEAN) / STD


def step_generator(seed: int, step: int, view: int, device: torch.device) -> torch.Generator:
    """The generator for one view of one step: reproducible across resumes and independent of world size."""
    from topo.trainer.dist import get_rank

    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + step * 97 + view * 7 + get_rank() * 1_000_000_007) % (2**63 - 1))
    return g
