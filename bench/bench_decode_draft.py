"""JPEG draft decode vs full decode + resize on full-size dermoscopy JPEGs (the ISIC sample upscaled).

The shipped sample is 640 px; the real archive is 1-1.7 MP, so each image is upscaled (bicubic) to 1504x1129 and
re-encoded (JPEG q=90) in memory first. Both paths run in one process, same files, same run; the figure is the
ratio of their rates and the pixel difference of the stored images.
Usage: python bench/bench_decode_draft.py DIR [--n 60] [--size 224]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from topo.pipeline.decode import decode


def _full_size(path: Path, w: int = 1504, h: int = 1129) -> bytes:
    a = np.asarray(Image.open(path).convert("RGB"))
    big = cv2.resize(a, (w, h), interpolation=cv2.INTER_CUBIC)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--size", type=int, default=224)
    a = ap.parse_args()
    files = sorted((a.root / "ISIC_2019_Training_Input").glob("*.jpg"))[: a.n]
    data = [_full_size(f) for f in files]
    rates, out = {}, {}
    for draft in (False, True, False, True):  # interleaved: a noisy shared machine hits both alike
        t0 = time.perf_counter()
        imgs = [decode(d, height=a.size, width=a.size, channels=3, draft=draft).image for d in data]
        dt = time.perf_counter() - t0
        rates.setdefault(draft, []).append(len(data) / dt)
        out[draft] = imgs
    mad = [np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(out[True], out[False], strict=True)]
    mx = max(int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(out[True], out[False], strict=True))
    full, dr = max(rates[False]), max(rates[True])
    # Per-image work of one build worker (decode -> Otsu ROI + quality -> GUDHI top-k), both decode modes.
    from topo.pipeline.persistence import FiltrationSpec, topk_diagrams
    from topo.pipeline.roi import OtsuRoi
    from topo.pipeline.roi.quality import roi_quality

    roi, spec, work = OtsuRoi(polarity="dark"), FiltrationSpec(), {}
    for draft in (False, True):
        t0 = time.perf_counter()
        imgs = [decode(d, height=a.size, width=a.size, channels=3, draft=draft).image for d in data]
        masks = [r.mask for r in roi.checked(imgs)]
        _ = [roi_quality(i, m, "dark") for i, m in zip(imgs, masks, strict=True)]
        topk_diagrams(imgs, masks, spec)
        work[draft] = len(data) / (time.perf_counter() - t0)
    print(
        f"one worker, decode+ROI+quality+persistence: full {work[False]:.1f} img/s, draft {work[True]:.1f} img/s, "
        f"ratio {work[True] / work[False]:.2f}x; plain full decode alone {full:.1f} img/s"
    )
    print(
        f"{len(data)} JPEGs 1504x1129 -> {a.size}x{a.size}: full decode+resize {full:.1f} img/s, "
        f"draft {dr:.1f} img/s, ratio {dr / full:.2f}x; stored pixels |draft - full|: mean {np.mean(mad):.2f}, "
        f"worst image mean {np.max(mad):.2f}, max {mx} grey levels"
    )


if __name__ == "__main__":
    main()
