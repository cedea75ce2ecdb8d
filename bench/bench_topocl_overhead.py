"""TopoCL's cost over the visual-only baseline, measured as a ratio in one run (the paper: +6 … +18 % time).

Baseline step: BYOL on the visual encoder. TopoCL step: BYOL on the fused encoder (visual + topology encoder + MoE)
with the diagrams of both topology-aware views computed online. The diagrams are computed in DataLoader workers,
in parallel with the training step; this script measures (a) the model step ratio with diagrams ready, and
(b) how many topology-aware views (with their diagrams) one worker produces per second, hence the workers needed
to keep up with a given step rate.

    python bench/bench_topocl_overhead.py --store CALIBRATED_STORE [--backbone resnet18 --batch 32 --steps 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from topo.pipeline.calibrate import load_ranges
from topo.pipeline.persistence import FiltrationSpec
from topo.store_schema import open_store
from topo.trainer.data import StoreDataset, make_loader
from topo.trainer.eval.extract import DIAGRAM_KEYS
from topo.trainer.methods import build_method
from topo.trainer.models.fusion import FusedEncoder, MoEFusion
from topo.trainer.models.topology_encoder import TopologyEncoder
from topo.trainer.models.visual import VisualEncoder
from topo.trainer.topo_views import TopoViews
from topo.trainer.visual_views import VIEW1, VIEW2, augment, step_generator


def step_time(method, views_fn, steps: int, dev: torch.device) -> float:
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-3)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")
    times = []
    for step in range(steps + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        v1, v2 = views_fn(step)
        with autocast:
            out = method(v1, v2)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        method.on_step_end(step, 1000)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - t0)
    return sum(times) / len(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--topo-width", type=int, default=384)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    st = open_store(args.store)
    g = st.geometry
    tv = TopoViews(load_ranges(st), FiltrationSpec.from_json(st.persistence_spec))
    keys = ("index", "label", "image", "roi_mask", *DIAGRAM_KEYS)
    ds = StoreDataset(args.store, batch_size=args.batch, rank=0, world_size=1, keys=keys)
    raw = [s for _, s in zip(range(args.batch), iter(ds), strict=False)]
    t0 = time.perf_counter()
    for s in raw:
        tv(s)
    per_sample = (time.perf_counter() - t0) / len(raw)
    batch = next(
        iter(
            make_loader(StoreDataset(args.store, batch_size=args.batch, rank=0, world_size=1, keys=keys, transform=tv))
        )
    )
    size = g.height

    def visual_views(step):
        im = batch["image"].to(dev)
        return (
            {"image": augment(im, VIEW1, size=size, generator=step_generator(0, step, 0, dev))},
            {"image": augment(im, VIEW2, size=size, generator=step_generator(0, step, 1, dev))},
        )

    def topo_views(step):
        out = []
        for k, recipe in enumerate((VIEW1, VIEW2)):
            tv_k = batch["views"][k]
            v = {key: torch.as_tensor(tv_k[key]).to(dev) for key in DIAGRAM_KEYS}
            v["image"] = augment(tv_k["image"].to(dev), recipe, size=size, generator=step_generator(0, step, k, dev))
            out.append(v)
        return out[0], out[1]

    torch.manual_seed(0)
    vis = VisualEncoder(args.backbone, in_chans=g.channels)
    base = build_method("byol", vis, vis.feat_dim).to(dev)
    t_base = step_time(base, visual_views, args.steps, dev)
    torch.manual_seed(0)
    vis2 = VisualEncoder(args.backbone, in_chans=g.channels)
    topo = TopologyEncoder(k0=g.k0, k1=g.k1, width=args.topo_width)
    fused = FusedEncoder(vis2, topo, MoEFusion(visual_dim=vis2.feat_dim, topo_dim=topo.feat_dim))
    topocl = build_method("byol", fused, fused.feat_dim).to(dev)
    t_topo = step_time(topocl, topo_views, args.steps, dev)
    img_s = args.batch / t_topo
    print(
        f"store {args.store}: {g.height}²×{g.channels}, {args.backbone}, batch {args.batch}, {args.device}, "
        f"topology width {args.topo_width}"
    )
    print("| | ms/step | img/s |")
    print("|---|---|---|")
    print(f"| baseline (BYOL, visual) | {1000 * t_base:,.0f} | {args.batch / t_base:,.1f} |")
    print(f"| TopoCL (BYOL, fused, diagrams ready) | {1000 * t_topo:,.0f} | {img_s:,.1f} |")
    print(f"| ratio | {t_topo / t_base:.3f} (+{100 * (t_topo / t_base - 1):.1f} %) | |")
    print(
        f"topology-aware views (2 per sample, with diagrams): {1000 * per_sample:.2f} ms/sample per worker = "
        f"{1 / per_sample:,.0f} samples/s; workers needed at this step rate: {img_s * per_sample:.2f}; "
        f"at 574 img/s (the paper's H100 TopoCL rate): {574 * per_sample:.1f}"
    )


if __name__ == "__main__":
    main()
