"""``synthetic-betti``: generated grey images whose class is a Betti number (1–4 holes in a textured sheet).

A benchmark where the answer is known: topology decides the label, appearance does not. Each image is a dark,
textured sheet (a rotated ellipse) on a bright background; the sheet is pierced by ``k`` bright holes, ``k`` being
the class (1–4), so under the store's sublevel filtration the class is the number of long-lived H1 pairs. So that
pixels alone are a weak cue, every appearance parameter is drawn from the *same* distribution for every class:

* the sheet's size, aspect, rotation and position; its grey level and the background's contrast above it;
* the **total** hole area (split among the ``k`` holes with a Dirichlet draw, so mean brightness does not count holes);
* 0–3 bright "notches" bitten into the sheet's rim: as bright and as large as holes, but open to the background,
  so they add no H1 (a pixel-level look-alike of a hole);
* low-frequency texture, Gaussian blur and pixel noise.

Everything comes from ``seed``: sample ``i`` of split ``s`` is drawn with ``numpy.random.default_rng([seed, s, i])``,
so payloads are made lazily, chunk by chunk, and a rebuild gives the same bytes. No file is read or downloaded.
Fixed sizes: :data:`SPLIT_SIZES` (balanced classes); smaller sets can be made with :class:`SyntheticBettiSource`
directly (tests).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from topo.pipeline.sources.base import SPLITS, Payload, SampleRecord, Source, SourceError, SourceInfo

NAME = "synthetic-betti"
N_HOLES = (1, 2, 3, 4)
SPLIT_SIZES: dict[str, int] = {"train": 2000, "val": 400, "test": 800}
VERSION = 1  # bump when the generator changes what it draws (it is part of the store's fingerprint)
MIN_SIZE = 24
N_DISKS = 4  # bright disks per image, holes or notches
Disk = tuple[float, float, float]  # (cy, cx, r)


def _disk(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def _sheet(size: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float, float, float, float]]:
    """A rotated ellipse mask and its (cy, cx, a, b, theta)."""
    a = size * rng.uniform(0.34, 0.42)
    b = a * rng.uniform(0.75, 1.0)
    cy, cx = (size - 1) / 2 + rng.uniform(-0.04, 0.04, 2) * size
    theta = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
    v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0, (cy, cx, a, b, theta)


def _place_disks(sheet: np.ndarray, radii: np.ndarray, rng: np.random.Generator, margin: float) -> list[Disk]:
    """Centres for disjoint disks lying inside the sheet with ``margin`` pixels of sheet around each."""
    size = sheet.shape[0]
    inside_dist = ndimage.distance_transform_edt(sheet)  # "inside with margin" is one lookup per candidate
    placed: list[Disk] = []
    for r in radii:
        # 200 candidate centres at once; keep the first one deep enough inside and clear of the disks so far.
        cand = rng.uniform(0, size - 1, (200, 2))
        ok = inside_dist[np.rint(cand[:, 0]).astype(int), np.rint(cand[:, 1]).astype(int)] >= r + margin
        for py, px, pr in placed:
            ok &= np.hypot(cand[:, 0] - py, cand[:, 1] - px) >= r + pr + margin
        hits = np.flatnonzero(ok)
        if not len(hits):
            return []
        placed.append((float(cand[hits[0], 0]), float(cand[hits[0], 1]), float(r)))
    return placed


def _segment_dist(yy: np.ndarray, xx: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    d = p1 - p0
    t = np.clip(((yy - p0[0]) * d[0] + (xx - p0[1]) * d[1]) / float(d @ d), 0.0, 1.0)
    return np.hypot(yy - (p0[0] + t * d[0]), xx - (p0[1] + t * d[1]))


def _channel(disk: Disk, others: list[Disk], size: int, width: float, rng: np.random.Generator) -> np.ndarray | None:
    """A unit direction from ``disk`` out of the image whose straight channel misses every other disk."""
    for _ in range(100):
        phi = rng.uniform(0, 2 * np.pi)
        u = np.array([np.sin(phi), np.cos(phi)])
        c = np.array(disk[:2])
        far = c + 2 * size * u
        if all(_segment_dist(np.array(o[0]), np.array(o[1]), c, far) >= o[2] + width + 1.0 for o in others):
            return u
    return None


def render(n_holes: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``size``² uint8 image: a sheet with four bright disks, ``n_holes`` of them closed (holes).

    Every disk has a bright channel running radially out of the sheet; an open disk's channel reaches it (so it is a
    notch, no H1), a hole's channel stops ``gap`` pixels short (so sheet closes around it). Pixels differ between
    classes only in those few gap pixels; the diagram differs by one long-lived H1 pair per hole.
    """
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    scale = size / 32
    for _ in range(100):
        sheet, _geom = _sheet(size, rng)
        radii = rng.uniform(2.0, 3.2, N_DISKS) * scale
        disks = []
        for _ in range(20):  # greedy placement fails often; retrying on the same sheet is cheap
            disks = _place_disks(sheet, radii, rng, margin=2.5 * scale)
            if disks:
                break
        if not disks:
            continue
        width = rng.uniform(2.4, 3.2) * scale
        dirs = [_channel(d, [o for o in disks if o is not d], size, width, rng) for d in disks]
        if all(u is not None for u in dirs):
            break
    else:  # pragma: no cover - the sheet is always large enough for four disks of these radii
        raise SourceError(f"could not place {N_DISKS} disks in a {size}² image")
    closed = rng.permutation(N_DISKS) < n_holes
    bright = ~sheet
    for (cy, cx, r), u, is_hole in zip(disks, dirs, closed, strict=True):
        c = np.array([cy, cx])
        gap = rng.uniform(2.0, 3.0) * scale
        # A hole's disk grows by the area its gap takes from the channel, so brightness does not count holes.
        grow = gap * width / (2 * np.pi * r) if is_hole else 0.0
        bright |= _disk(yy, xx, cy, cx, r + grow)
        start = c + u * (r + grow + gap + width / 2) if is_hole else c
        bright |= _segment_dist(yy, xx, start, c + 2 * size * u) <= width / 2
    dark = rng.uniform(0.10, 0.35)
    light = dark + rng.uniform(0.35, 0.55)
    img = np.where(bright, light, dark)
    texture = ndimage.gaussian_filter(rng.normal(size=(size, size)), rng.uniform(1.5, 3.0) * scale)
    img = img + rng.uniform(0.0, 0.04) * texture / max(1e-9, float(texture.std()))
    img = ndimage.gaussian_filter(img, rng.uniform(0.3, 0.6) * scale)
    img = img + rng.normal(0, rng.uniform(0.01, 0.03), img.shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


class SyntheticBettiSource(Source):
    """Generated 1–4-hole images (see the module docstring); ``sizes`` per split, balanced classes."""

    def __init__(self, *, seed: int = 0, size: int = 32, sizes: dict[str, int] | None = None) -> None:
        if size < MIN_SIZE:
            raise SourceError(f"--dataset {NAME} needs --size of at least {MIN_SIZE} (got {size})")
        self.seed, self.size = int(seed), int(size)
        self.sizes = dict(SPLIT_SIZES if sizes is None else sizes)
        unknown = set(self.sizes) - set(SPLITS)
        if unknown:
            raise SourceError(f"unknown split(s) {sorted(unknown)}; valid: {', '.join(SPLITS)}")

    def info(self) -> SourceInfo:
        return SourceInfo(
            name=NAME,
            class_names=tuple(f"{k} hole{'s' if k > 1 else ''}" for k in N_HOLES),
            license="CC0 (generated)",
            channels=1,
            image_size=self.size,
            description="grey sheets with 1-4 holes; appearance drawn from one law for every class",
            split_policy=f"generated: {', '.join(f'{s} {n}' for s, n in self.sizes.items())}",
            extra={"seed": self.seed, "generator_version": VERSION},
        )

    def records(self) -> list[SampleRecord]:
        out = []
        for split, n in self.sizes.items():
            for i in range(n):
                out.append(SampleRecord(f"{NAME}/{split}/{i:06d}", f"{NAME}:{split}[{i}]", i % len(N_HOLES), split))
        return out

    def image(self, split: str, i: int) -> np.ndarray:
        """Sample ``i`` of ``split``: its label is ``i % 4`` (``i % 4 + 1`` holes)."""
        rng = np.random.default_rng([self.seed, SPLITS.index(split), i])
        return render(N_HOLES[i % len(N_HOLES)], self.size, rng)

    def payloads(self, records: Sequence[SampleRecord]) -> Iterator[Payload]:
        for r in records:
            yield self.image(r.split, int(r.source_ref.rsplit("[", 1)[1].rstrip("]")))

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """All images (N, H, W) and labels (N,) of ``split``, e.g. for the pixel/diagram cue check."""
        n = self.sizes.get(split, 0)
        x = np.stack([self.image(split, i) for i in range(n)]) if n else np.zeros((0, self.size, self.size), np.uint8)
        return x, np.arange(n) % len(N_HOLES)

    def content_options(self) -> dict[str, Any]:
        return {"seed": self.seed, "size": self.size, "sizes": self.sizes, "version": VERSION}
