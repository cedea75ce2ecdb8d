"""Pixel codecs: compression ratio and one-thread encode/decode speed on real images (the store's choice of codec).

python bench/bench_codecs.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numcodecs
import numpy as np
from numcodecs import Blosc

sys.path.insert(0, str(Path(__file__).parent))
from tiles import real_tiles

CODECS = {
    "lz4 (store default)": Blosc("lz4", 5, Blosc.NOSHUFFLE),
    "zstd bit-shuffled (--image-codec zstd)": Blosc("zstd", 3, Blosc.BITSHUFFLE),
    "zstd": Blosc("zstd", 3, Blosc.NOSHUFFLE),
    "lz4hc": Blosc("lz4hc", 5, Blosc.NOSHUFFLE),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data", help="folder with breastmnist.npz and pneumoniamnist.npz")
    args = ap.parse_args()
    numcodecs.blosc.set_nthreads(1)
    sets = {"224²×3 retina/IHC tiles (256)": real_tiles(256)}
    for name in ("breastmnist", "pneumoniamnist"):
        f = Path(args.data) / f"{name}.npz"
        if f.exists():
            sets[f"{name} 28² (2,048)"] = np.load(f)["train_images"][:2048]
    print("| images | codec | ratio | encode MB/s | decode MB/s |")
    print("|---|---|---:|---:|---:|")
    for sname, x in sets.items():
        for cname, codec in CODECS.items():
            t = time.perf_counter()
            enc = codec.encode(x)
            te = time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(5):
                codec.decode(enc)
            td = (time.perf_counter() - t) / 5
            ratio, enc_mb, dec_mb = x.nbytes / len(enc), x.nbytes / te / 1e6, x.nbytes / td / 1e6
            print(f"| {sname} | {cname} | {ratio:.2f} | {enc_mb:,.0f} | {dec_mb:,.0f} |")


if __name__ == "__main__":
    main()
