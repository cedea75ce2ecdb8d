"""Distributed plumbing: identity without a process group; 2-process gloo DDP equals 1 process.

The 2-process test spawns real processes on localhost. Each builds the same method from the same seed,
wraps it in ``DistributedDataParallel`` and runs one forward/backward on its half of a global batch; the
averaged gradients must equal those of one process on the whole batch. Backbones and projectors have no
BatchNorm there, because BN statistics are per rank by design (use SyncBatchNorm to share them).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from topo.trainer.dist import (
    all_reduce_mean,
    all_reduce_sum_with_grad,
    gather_with_grad,
    get_rank,
    get_world_size,
    is_main_process,
)
from topo.trainer.methods import build_method

torch.set_num_threads(1)

WORLD = 2
LOCAL_BATCH = 4
FEAT = 8
CASES: dict[str, dict[str, object]] = {
    "simclr": {"proj_hidden_dim": 16, "proj_dim": 8, "proj_batchnorm": False},
    "barlow": {"proj_hidden_dim": 16, "proj_dim": 8, "proj_batchnorm": False},
    "mocov3": {"proj_hidden_dim": 16, "proj_dim": 8, "pred_hidden_dim": 16, "proj_batchnorm": False},
    "byol": {"proj_hidden_dim": 16, "proj_dim": 8, "pred_hidden_dim": 16, "proj_batchnorm": False},
    "dino": {"head_hidden_dim": 32, "bottleneck_dim": 16, "out_dim": 16},
}


class MLPBackbone(nn.Module):
    """A BatchNorm-free backbone on ``{"x": (B, 3, 4)}``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, FEAT))

    def forward(self, view: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(view["x"].flatten(1))


def global_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(WORLD * LOCAL_BATCH, 3, 4, generator=g, dtype=torch.float64)
    return x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64), x.flip(-1)


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_method(name, MLPBackbone(), FEAT, **CASES[name]).double()


def _worker(rank: int, port: int, out_dir: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        res: dict[str, object] = {"rank": get_rank(), "world": get_world_size(), "main": is_main_process()}

        x = torch.full((2, 3), float(rank + 1), dtype=torch.float64, requires_grad=True)
        gathered = gather_with_grad(x)
        weights = torch.arange(12, dtype=torch.float64).reshape(4, 3)
        (gathered * weights * (rank + 1)).sum().backward()
        res["gathered"], res["gather_grad"] = gathered.detach(), x.grad

        s = torch.tensor([float(rank + 1)], dtype=torch.float64, requires_grad=True)
        summed = all_reduce_sum_with_grad(s)
        (summed * (rank + 1)).sum().backward()
        res["summed"], res["sum_grad"] = summed.detach(), s.grad
        local = torch.tensor([float(rank), 10.0])
        res["mean"], res["mean_input_after"] = all_reduce_mean(local), local.clone()

        v1, v2 = global_batch()
        part = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
        for name in CASES:
            model = build(name)
            ddp = DistributedDataParallel(model)  # keep a reference: its reducer averages in backward
            out = ddp({"x": v1[part]}, {"x": v2[part]})
            out.loss.backward()
            res[name] = {
                "loss": out.loss.detach(),
                "grads": {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
                "features": out.features,
            }
            if name == "dino":
                res["dino_center"] = model.loss_fn.center.clone()
        torch.save(res, out_dir / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_single_process_plumbing_is_identity() -> None:
    assert not dist.is_initialized()
    assert (get_rank(), get_world_size(), is_main_process()) == (0, 1, True)
    t = torch.randn(3, 2, requires_grad=True)
    assert gather_with_grad(t) is t
    assert all_reduce_sum_with_grad(t) is t
    assert all_reduce_mean(t) is t


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), out_dir), nprocs=WORLD, join=True)
    return [torch.load(out_dir / f"rank{r}.pt") for r in range(WORLD)]


def test_collectives_across_two_ranks(ranks: list[dict]) -> None:
    assert [(r["rank"], r["world"], r["main"]) for r in ranks] == [(0, 2, True), (1, 2, False)]
    expected = torch.cat([torch.full((2, 3), 1.0), torch.full((2, 3), 2.0)]).double()
    weights = torch.arange(12, dtype=torch.float64).reshape(4, 3)
    for r, res in enumerate(ranks):
        torch.testing.assert_close(res["gathered"], expected)
        # rank k's loss weights the gathered rows by (k + 1); each rank's slice collects both ranks' terms
        torch.testing.assert_close(res["gather_grad"], (1 + 2) * weights[2 * r : 2 * r + 2])
        torch.testing.assert_close(res["summed"], torch.tensor([3.0], dtype=torch.float64))
        torch.testing.assert_close(res["sum_grad"], torch.tensor([3.0], dtype=torch.float64))
        torch.testing.assert_close(res["mean"], torch.tensor([0.5, 10.0]))
        torch.testing.assert_close(res["mean_input_after"], torch.tensor([float(r), 10.0]))


@pytest.mark.parametrize("name", list(CASES))
def test_ddp_gradients_match_single_process(ranks: list[dict], name: str) -> None:
    v1, v2 = global_batch()
    single = build(name)
    out = single({"x": v1}, {"x": v2})
    out.loss.backward()
    want = {n: p.grad for n, p in single.named_parameters() if p.grad is not None}
    assert want, "no gradients in the single-process run"
    for res in ranks:
        got = res[name]["grads"]
        assert got.keys() == want.keys()
        for n in want:
            torch.testing.assert_close(got[n], want[n], atol=1e-9, rtol=1e-7, msg=f"{name}: {n}")
    # the objective DDP optimises is the mean of the per-rank losses
    mean_loss = sum(res[name]["loss"] for res in ranks) / WORLD
    torch.testing.assert_close(mean_loss, out.loss.detach())
    torch.testing.assert_close(torch.cat([res[name]["features"] for res in ranks]), out.features)
    if name == "barlow":  # the statistics are global, so every rank sees the global loss itself
        for res in ranks:
            torch.testing.assert_close(res[name]["loss"], out.loss.detach())
    if name == "dino":  # the centre is updated with the global batch mean
        for res in ranks:
            torch.testing.assert_close(res["dino_center"], single.loss_fn.center)
