"""Training step time of each SSL method (visual stage): forward of both views, backward, AdamW step, momentum update.

CPU default: resnet18 (standard stem) at 64², batch 64, the methods' default heads, on real MedNIST images.
On a GPU: ``--device cuda --backbone resnet50 --size 224 --batch 256`` (the paper's setting).

    python bench/bench_methods.py --store PATH [--steps 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_topocl_overhead import step_time

from topo.trainer.data import StoreDataset, make_loader
from topo.trainer.methods import METHODS, build_method
from topo.trainer.models.visual import VisualEncoder
from topo.trainer.visual_views import VIEW1, VIEW2, augment, step_generator


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    dev = torch.device(args.device)
    ds = StoreDataset(args.store, batch_size=args.batch, rank=0, world_size=1, keys=("image",))
    images = next(iter(make_loader(ds)))["image"].to(dev)
    print(f"| method | ms/step | img/s | ({args.backbone}, {args.size}², batch {args.batch}, {args.device}) |")
    print("|---|---|---|---|")
    for name in args.methods.split(","):
        torch.manual_seed(0)
        enc = VisualEncoder(args.backbone, in_chans=images.shape[1], small_input=False)
        method = build_method(name, enc, enc.feat_dim).to(dev)

        def views(step: int, method=method) -> tuple[dict, dict]:
            return (
                {"image": augment(images, VIEW1, size=args.size, generator=step_generator(0, step, 0, dev))},
                {"image": augment(images, VIEW2, size=args.size, generator=step_generator(0, step, 1, dev))},
            )

        ms = 1000 * step_time(method, views, args.steps, dev)
        print(f"| {name} | {ms:,.0f} | {args.batch / ms * 1000:,.1f} | |")


if __name__ == "__main__":
    main()
