"""ROI quality of the Otsu backend on real dermoscopy (the ISIC 2019 sample): how often is the mask implausible?

A mask is counted as implausible when it covers >= 0.85 of the image, or when it is brighter than its surround
(dermoscopic lesions are darker than the skin around them), or when it is (IoU >= 0.95) the field-of-view disc.
Usage: python bench/bench_roi_isic.py DIR [--size 224] [--legacy]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from topo.pipeline.decode import decode
from topo.pipeline.roi import OtsuRoi
from topo.pipeline.roi.base import grey_uint8
from topo.pipeline.roi.field_of_view import field_of_view


def _legacy_mask(g: np.ndarray) -> np.ndarray:
    """The previous rule (border mean > 0.5 -> invert), without morphology, for the before/after figure."""
    from skimage.filters import threshold_otsu

    fg = g > threshold_otsu(g)
    border = np.concatenate([fg[0], fg[-1], fg[:, 0], fg[:, -1]])
    return ~fg if border.mean() > 0.5 else fg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--legacy", action="store_true")
    ap.add_argument("--show-bad", action="store_true")
    ap.add_argument("--polarity", default="auto")
    a = ap.parse_args()
    files = sorted((a.root / "ISIC_2019_Training_Input").glob("*.jpg"))
    labels = {}
    for line in (a.root / "ISIC_2019_Training_GroundTruth.csv").read_text().splitlines()[1:]:
        f = line.split(",")
        labels[f[0]] = "MEL" if float(f[1]) else "NV"
    roi = OtsuRoi(polarity=a.polarity)
    bad = {"MEL": 0, "NV": 0}
    tot = {"MEL": 0, "NV": 0}
    fov_equal = 0
    t0 = time.perf_counter()
    for f in files:
        im = decode(f.read_bytes(), height=a.size, width=a.size, channels=3).image
        g = grey_uint8(im)
        m = _legacy_mask(g) if a.legacy else roi.checked([im])[0].mask.astype(bool)
        area = m.mean()
        fov = field_of_view(g)
        # The surround is the field outside the mask: a black vignette is not the skin around the lesion.
        sur = fov & ~m
        inside = g[m].mean() if m.any() else 0
        outside = g[sur].mean() if sur.any() else 0
        brighter = m.any() and sur.any() and inside > outside
        iou = (m & fov).sum() / max(1, (m | fov).sum())
        eq_fov = fov.mean() < 0.97 and iou >= 0.9
        fov_equal += eq_fov
        c = labels[f.stem]
        tot[c] += 1
        if area >= 0.85 or brighter or eq_fov:
            bad[c] += 1
            if a.show_bad:
                print(f.stem, c, f"area={area:.3f} in={inside:.0f} out={outside:.0f} fov_iou={iou:.2f}")
    n = sum(tot.values())
    print(
        f"{'legacy' if a.legacy else 'otsu polarity=' + a.polarity} size={a.size}: implausible {sum(bad.values())}/{n} "
        f"({sum(bad.values()) / n:.1%}); MEL {bad['MEL']}/{tot['MEL']}, NV {bad['NV']}/{tot['NV']}; "
        f"equal to FOV {fov_equal}; {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    main()
