"""Where does the label go inside a trained joint encoder? A linear probe on each part of it, the same store.

    python bench/diagnose_fusion.py RUN_DIR STORE [--out rows.jsonl]

``RUN_DIR`` holds ``topo/`` (stage 2) and ``joint/`` (stage 3) runs, as ``bench/reproduce_topocl.py`` writes them.
Each part is probed the same way: standardised features, scikit-learn L2 logistic regression, C in
{0.01, 0.1, 1, 10} chosen on val, the test split scored once. Parts: the stage-2 topology encoder, and inside the
joint encoder its topology encoder, the projected topology features, its visual backbone, each expert's output, and
the gated mixture (the features ``topo eval`` probes).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import nn

from topo.trainer.build import encoder_from_checkpoint
from topo.trainer.eval.extract import extract_features

C_GRID = (0.01, 0.1, 1.0, 10.0)


class _Part(nn.Module):
    def __init__(self, fn: Callable[[dict], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, view: dict) -> torch.Tensor:
        return self.fn(view)


def _probe(enc: nn.Module, store: str, stage: str, size: int) -> dict[str, float]:
    sets = {s: extract_features(enc, store, s, stage=stage, image_size=size) for s in ("train", "val", "test")}
    scale = StandardScaler().fit(sets["train"].x)
    x = {s: scale.transform(fs.x) for s, fs in sets.items()}
    fits = [(C, LogisticRegression(C=C, max_iter=3000).fit(x["train"], sets["train"].y)) for C in C_GRID]
    C, best = max(fits, key=lambda cm: cm[1].score(x["val"], sets["val"].y))  # first best on val
    return {
        "dim": int(x["train"].shape[1]),
        "C": C,
        "val_acc": float(best.score(x["val"], sets["val"].y)),
        "test_acc": float(best.score(x["test"], sets["test"].y)),
    }


def _parts(run: Path) -> list[tuple[str, nn.Module, str]]:
    topo, _, _ = encoder_from_checkpoint(str(run / "topo" / "checkpoints" / "final.pt"))
    joint, _, _ = encoder_from_checkpoint(str(run / "joint" / "checkpoints" / "final.pt"))
    fusion = joint.fusion

    def expert(name: str) -> Callable[[dict], torch.Tensor]:
        def out(v: dict) -> torch.Tensor:
            return fusion.expert_modules[name](fusion.visual_proj(joint.visual(v)), fusion.topo_proj(joint.topology(v)))

        return out

    return [
        ("stage-2 topology encoder", topo, "topo"),
        ("joint: topology encoder", _Part(lambda v: joint.topology(v)), "joint"),
        ("joint: projected topology features", _Part(lambda v: fusion.topo_proj(joint.topology(v))), "joint"),
        ("joint: visual backbone", _Part(lambda v: joint.visual(v)), "joint"),
        *[(f"joint: expert {name}", _Part(expert(name)), "joint") for name in fusion.experts],
        ("joint: gated mixture (what topo eval probes)", joint, "joint"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("store")
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--out", type=Path, default=None, help="append one JSON row per part")
    a = ap.parse_args()
    torch.set_num_threads(2)
    for name, enc, stage in _parts(a.run):
        row = {"run": str(a.run), "part": name, **_probe(enc, a.store, stage, a.size)}
        print(f"{name:46s} dim {row['dim']:4d}  val {100 * row['val_acc']:5.1f}  test {100 * row['test_acc']:5.1f}")
        if a.out:
            with a.out.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
